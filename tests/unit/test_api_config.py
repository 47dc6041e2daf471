"""The API's database URL is the warehouse URL with the read-only role, unless set."""

from api_service.config import get_api_config, role_url


def test_role_url_replaces_user_and_drops_password():
    url = "postgresql+psycopg2://owner:secret@db.example:6543/latam?sslmode=require"
    assert role_url(url, "latam_api_reader") == (
        "postgresql://latam_api_reader@db.example:6543/latam?sslmode=require"
    )
    assert (
        role_url("postgresql://localhost/latam", "r", "p@ss")
        == "postgresql://r:p%40ss@localhost/latam"
    )
    assert role_url("postgresql://u@[::1]:5432/x", "r") == "postgresql://r@[::1]:5432/x"


def test_api_database_url_defaults_to_the_reader_role(monkeypatch):
    monkeypatch.setenv("LATAM_WAREHOUSE_URL", "postgresql://postgres@localhost:5432/latam")
    monkeypatch.delenv("LATAM_API_DATABASE_URL", raising=False)
    assert get_api_config().database_url == "postgresql://latam_api_reader@localhost:5432/latam"
    monkeypatch.setenv("LATAM_API_DATABASE_URL", "postgresql://api:pw@replica/latam")
    assert get_api_config().database_url == "postgresql://api:pw@replica/latam"


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("LATAM_API_WORKERS", "5")
    monkeypatch.setenv("LATAM_API_PORT", "9000")
    config = get_api_config()
    assert config.workers == 5 and config.port == 9000
    assert get_api_config(port=1234).port == 1234


def test_the_password_goes_into_the_derived_url_only(monkeypatch):
    monkeypatch.setenv("LATAM_WAREHOUSE_URL", "postgresql+psycopg2://owner:o@db:5432/latam")
    monkeypatch.delenv("LATAM_API_DATABASE_URL", raising=False)
    monkeypatch.setenv("LATAM_API_DATABASE_PASSWORD", "p@ss")
    assert get_api_config().database_url == "postgresql://latam_api_reader:p%40ss@db:5432/latam"
    monkeypatch.setenv("LATAM_API_DATABASE_URL", "postgresql+psycopg2://api@replica/latam")
    assert get_api_config().database_url == "postgresql://api@replica/latam"


def test_secret_overrides_are_secret_too():
    """Tests and the CLI pass plain strings; they are kept as SecretStr like the environment's."""
    config = get_api_config(cursor_secret="c", session_secret="s")
    assert config.cursor_secret.get_secret_value() == "c"
    assert config.session_secret.get_secret_value() == "s"


def test_role_url_keeps_every_host_of_a_failover_url():
    url = "postgresql://owner:pw@10.0.0.1:5432,10.0.0.2:5433/latam?target_session_attrs=read-write"
    assert role_url(url, "latam_api_reader") == (
        "postgresql://latam_api_reader@10.0.0.1:5432,10.0.0.2:5433/latam"
        "?target_session_attrs=read-write"
    )
