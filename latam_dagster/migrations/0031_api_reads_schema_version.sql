-- The API checks at start that the warehouse has exactly its code's migrations, as its own
-- read-only role: it may read which versions are applied, and nothing else of the table.
GRANT SELECT (version) ON public.schema_migrations TO latam_api_reader;
