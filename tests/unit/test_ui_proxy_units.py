"""The UI proxy's parts without running it: the user store (names, passwords, bcrypt hashes, one
role per user, owner-only files, the nginx role map) and the rendered nginx configuration (which
`nginx -t` accepts)."""

from __future__ import annotations

import stat
from pathlib import Path

import bcrypt
import pytest

from latam_dagster.settings import UiProxySettings
from latam_dagster.uiproxy import nginx
from latam_dagster.uiproxy.users import ROLES, UserError, UserStore, htpasswd_file

PASSWORD = "a-long-enough-password"


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_a_user_has_one_role_and_a_bcrypt_hash(tmp_path):
    store = UserStore(tmp_path / "users")
    assert store.add("ana", "analyst", PASSWORD) is False
    store.add("otto", "operator", PASSWORD)
    assert [(u.name, u.role) for u in store.list()] == [("ana", "analyst"), ("otto", "operator")]
    name, hashed = _lines(htpasswd_file(store.dir, "operator"))[0].split(":", 1)
    assert name == "otto" and hashed.startswith("$2b$")
    assert bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    assert _lines(store.dir / "roles.map") == ['"ana" analyst;', '"otto" operator;']

    with pytest.raises(UserError, match="exists"):
        store.add("ana", "operator", PASSWORD)
    assert store.add("ana", "operator", PASSWORD, replace=True) is True
    assert _lines(htpasswd_file(store.dir, "analyst")) == []
    assert store.role_of("ana") == "operator"

    assert store.remove("ana") == "operator"
    with pytest.raises(UserError, match="no user"):
        store.remove("ana")
    assert [u.name for u in store.list()] == ["otto"]


def test_the_files_are_readable_by_their_owner_only(tmp_path):
    store = UserStore(tmp_path / "users")
    store.add("ana", "analyst", PASSWORD)
    for path in [*(htpasswd_file(store.dir, r) for r in ROLES), store.dir / "roles.map"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "name", ["Ana", "ana smith", 'ana"', "ana:x", "ana;", "-ana", "", "a" * 65, "ana\n"]
)
def test_names_that_could_break_a_file_or_collide_are_refused(tmp_path, name):
    with pytest.raises(UserError, match="invalid user name"):
        UserStore(tmp_path).add(name, "analyst", PASSWORD)


@pytest.mark.parametrize("password", ["short", "x" * 73, "two\nlines-password"])
def test_weak_or_unusable_passwords_are_refused(tmp_path, password):
    with pytest.raises(UserError, match="password"):
        UserStore(tmp_path).add("ana", "analyst", password)


def test_an_unknown_role_is_refused(tmp_path):
    with pytest.raises(UserError, match="unknown role"):
        UserStore(tmp_path).add("ana", "admin", PASSWORD)


def _config(tmp_path: Path, **kwargs) -> nginx.ProxyConfig:
    settings = UiProxySettings(auth_dir=str(tmp_path / "users"), host="127.0.0.1", **kwargs)
    return nginx.ProxyConfig.from_settings(
        settings, 8443, "127.0.0.1:3001", "127.0.0.1:3002", tmp_path / "state"
    )


def test_the_configuration_routes_by_role_and_nginx_accepts_it(tmp_path):
    config = _config(tmp_path)
    text = nginx.render(config)
    assert "listen 127.0.0.1:8443;" in text and "ssl" not in text
    assert "server 127.0.0.1:3001;" in text.split("upstream dagster_analyst")[1].split("}")[0]
    assert "server 127.0.0.1:3002;" in text.split("upstream dagster_operator")[1].split("}")[0]
    assert f"include {tmp_path.resolve()}/users/roles.map;" in text
    assert f"auth_basic_user_file {tmp_path.resolve()}/users/$latam_ui_role.htpasswd;" in text
    assert "proxy_pass http://dagster_$latam_ui_role;" in text
    assert 'proxy_set_header Authorization "";' in text
    assert f"pid {tmp_path.resolve()}/state/nginx.pid;" in text
    assert config.url == "http://127.0.0.1:8443"
    nginx.write_config(config)
    try:
        nginx.check(config)  # `nginx -t`
    except nginx.NginxMissing:
        pytest.skip("nginx not installed (infra/ci/install-tools.sh installs it)")


def test_with_a_certificate_the_proxy_serves_https_only(tmp_path):
    config = _config(tmp_path, tls_cert="/etc/latam/ui.pem", tls_key="/etc/latam/ui.key")
    text = nginx.render(config)
    assert "listen 127.0.0.1:8443 ssl;" in text
    assert "listen 127.0.0.1:8443;" not in text
    assert "ssl_certificate /etc/latam/ui.pem;" in text
    assert "ssl_certificate_key /etc/latam/ui.key;" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert config.url == "https://127.0.0.1:8443"


def test_a_certificate_without_its_key_is_a_settings_error(monkeypatch):
    monkeypatch.setenv("LATAM_UI_TLS_CERT", "/etc/latam/ui.pem")
    monkeypatch.delenv("LATAM_UI_TLS_KEY", raising=False)
    with pytest.raises(ValueError, match="LATAM_UI_TLS_KEY"):
        UiProxySettings()


@pytest.mark.parametrize("state_dir", ["/tmp/with space", "/tmp/semi;colon", "/tmp/$var"])
def test_paths_nginx_would_misread_are_refused(tmp_path, state_dir):
    config = _config(tmp_path)
    bad = nginx.ProxyConfig(**{**config.__dict__, "state_dir": Path(state_dir)})
    with pytest.raises(ValueError, match="cannot appear"):
        nginx.render(bad)


def test_the_demo_webservers_listen_on_loopback_and_one_is_read_only():
    from latam_dagster.demo import webserver_args

    full, read_only = webserver_args(3001, False), webserver_args(3002, True)
    for args, port in ((full, "3001"), (read_only, "3002")):
        assert args[args.index("-h") + 1] == "127.0.0.1" and args[args.index("-p") + 1] == port
    assert "--read-only" in read_only and "--read-only" not in full


def test_the_demo_logins_are_new_at_every_start_and_leave_other_users_alone(tmp_path):
    from latam_dagster.demo import demo_logins

    store = UserStore(tmp_path / "users")
    store.add("maria", "operator", PASSWORD)
    first, second = demo_logins(store), demo_logins(store)
    assert first["operator"][0] == "demo-operator" and first["analyst"][0] == "demo-analyst"
    assert first["operator"][1] != second["operator"][1]
    assert {(u.name, u.role) for u in store.list()} == {
        ("demo-analyst", "analyst"),
        ("demo-operator", "operator"),
        ("maria", "operator"),
    }


def test_ui_proxy_config_needs_both_api_options(tmp_path):
    from click.testing import CliRunner

    from latam_dagster.cli.ui_users import ui_proxy_config

    args = [
        "--port", "3000", "--analyst-upstream", "127.0.0.1:1", "--operator-upstream",
        "127.0.0.1:2", "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    result = CliRunner().invoke(ui_proxy_config, [*args, "--api-upstream", "127.0.0.1:8080"])
    assert result.exit_code == 2 and "--api-upstream and --api-port go together" in result.output
