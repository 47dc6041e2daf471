-- The exporter counts identity rejections per source system (docs/sources.md): it reads the
-- quarantine reason, which names the rule and the JSON path, never a value (no personal data).
GRANT SELECT (reason) ON raw.quarantine TO latam_exporter;
