"""The Dagster UI's authenticating proxy: nginx with HTTP basic authentication in front of a
read-only Dagster webserver (analysts) and the full one (operators). `users` keeps the users and
their roles, `nginx` renders the configuration and runs nginx (docs/ui-access.md)."""
