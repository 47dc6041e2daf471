"""Transport security of the platform's links to RabbitMQ and PostgreSQL.

- RabbitMQ: an `amqps://` URL connects over TLS with the broker's certificate checked against
  LATAM_RABBITMQ_CA_FILE (the system's CAs when unset) and its host name checked against the
  URL's host; TLS 1.2 at least. `amqp_ssl_options` builds that for pika.
- PostgreSQL: libpq does the work; the URL carries `sslmode=verify-full` (certificate and host
  name checked) and `sslrootcert=<CA file>`. The platform keeps a URL's query parameters on every
  form it derives (psycopg2, SQLAlchemy, Great Expectations, Dagster storage).
- With LATAM_ENV=production, `plaintext_problem` names what is wrong with a URL that would travel
  in clear (or, for Postgres, without the server's certificate and host name checked): an
  `amqp://` URL, or a Postgres URL whose sslmode is not `verify-full`. The connection functions
  (`db.connect`, `ingest.topology.open_connection`) refuse such URLs through `refuse_plaintext`
  and `amqp_parameters`, except where LATAM_ALLOW_PLAINTEXT_LOOPBACK is on and every host the
  URL names is loopback (a local TLS proxy, a Unix socket).

See docs/tls.md.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import pika

VERIFY_FULL = "verify-full"
AMQP_SCHEMES = ("amqp", "amqps")
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)")
_QUERY_PASSWORD = re.compile(r"((?:^|&)password=)[^&]*")


def redact(url: str) -> str:
    """`url` with its password (in the user part, a `password` query parameter, or a `key=value`
    string's `password=`) replaced by ***."""
    if "://" not in url:
        return _KV_PASSWORD.sub(r"\1***", url)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{password}@", ":***@"))
    return urlunsplit(parts._replace(query=_QUERY_PASSWORD.sub(r"\1***", parts.query)))


def is_loopback(host: str) -> bool:
    """True for `localhost`, a loopback address (127.0.0.0/8, ::1), or a Unix-socket path."""
    host = host.strip().strip("[]")
    if not host or host.startswith(("/", "@")):
        return True
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pg_params(url: str) -> dict[str, str]:
    """The connection parameters libpq reads from `url` (a URL in any of the platform's forms,
    or a `key=value` string)."""
    from psycopg2.extensions import parse_dsn

    from latam_dagster.settings import libpq_url

    return parse_dsn(libpq_url(url))


def _pg_hosts(params: dict[str, str]) -> list[str]:
    """Where libpq will connect: `hostaddr` when given, else `host`; empty means the default
    Unix socket."""
    hosts = params.get("hostaddr") or params.get("host") or ""
    return hosts.split(",")


def plaintext_problem(url: str, *, allow_plaintext_loopback: bool = False) -> str | None:
    """Why `url` is not acceptable in production, or None when it is.

    AMQP URLs must be `amqps://`; Postgres URLs must carry `sslmode=verify-full`. With
    `allow_plaintext_loopback`, a URL whose hosts are all loopback passes either way.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in AMQP_SCHEMES:
        if scheme == "amqps":
            return None
        host = urlsplit(url).hostname or "localhost"
        if allow_plaintext_loopback and is_loopback(host):
            return None
        return (
            f"{redact(url)} is plain AMQP: in production the broker is reached over TLS only. "
            "Use an amqps:// URL (and LATAM_RABBITMQ_CA_FILE for a private CA)"
        )
    try:
        params = _pg_params(url)
    except Exception as exc:  # psycopg2.ProgrammingError: libpq cannot read it
        return f"{redact(url)} is not a connection URL libpq accepts ({exc})"
    sslmode = params.get("sslmode", "")
    if sslmode == VERIFY_FULL:
        return None
    if allow_plaintext_loopback and all(is_loopback(h) for h in _pg_hosts(params)):
        return None
    found = f"sslmode={sslmode}" if sslmode else "no sslmode"
    return (
        f"{redact(url)} has {found}: in production Postgres is reached over TLS with the "
        f"server's certificate and host name checked. Add ?sslmode={VERIFY_FULL}"
        "&sslrootcert=<CA file> to the URL"
    )


def amqp_ssl_options(url: str, ca_file: str | None) -> pika.SSLOptions | None:
    """pika's TLS options for an `amqps://` URL (None for `amqp://`).

    The broker's certificate must chain to `ca_file` (PEM; the system's CAs when None) and name
    the URL's host; TLS 1.2 or later. Any `ssl_options` in the URL's query is replaced.
    """
    import pika

    parts = urlsplit(url)
    if parts.scheme.lower() != "amqps":
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return pika.SSLOptions(context, server_hostname=parts.hostname)


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a failed connection attempt, if that is what failed."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLError):
            return item
        pending.extend([item.__cause__, item.__context__, *item.args])
        pending.extend(getattr(item, "exceptions", ()) or ())
    return None


class TransportRefused(RuntimeError):
    """A URL the platform will not connect with (see `plaintext_problem`), or TLS set-up that
    cannot be used (an unreadable CA file)."""


def _policy() -> tuple[bool, bool, str | None]:
    """(production, allow plaintext on loopback, RabbitMQ CA file), read from the settings now."""
    from latam_dagster.settings import get_settings

    settings = get_settings()
    return settings.production, settings.allow_plaintext_loopback, settings.rabbitmq_ca_file


def _refuse(url: str, production: bool, allow_loopback: bool) -> None:
    if production:
        problem = plaintext_problem(url, allow_plaintext_loopback=allow_loopback)
        if problem:
            raise TransportRefused(f"refusing to connect: {problem}")


def refuse_plaintext(url: str) -> None:
    """Raise `TransportRefused` when the platform runs in production and `url` is not secure."""
    production, allow_loopback, _ca = _policy()
    _refuse(url, production, allow_loopback)


def amqp_parameters(url: str) -> pika.URLParameters:
    """pika's parameters for `url`: TLS as `amqp_ssl_options` sets it up for amqps://, after
    `refuse_plaintext`. Raises `TransportRefused`."""
    import pika

    production, allow_loopback, ca_file = _policy()
    _refuse(url, production, allow_loopback)
    params = pika.URLParameters(url)
    try:
        params.ssl_options = amqp_ssl_options(url, ca_file)
    except OSError as exc:  # ssl.SSLError included: a file that holds no certificate
        raise TransportRefused(
            f"cannot use LATAM_RABBITMQ_CA_FILE={ca_file} for {redact(url)}: {exc}"
        ) from exc
    return params


def amqp_tls_problem(url: str, exc: BaseException) -> str | None:
    """A clear account of a connection attempt that failed in TLS (None if it failed otherwise)."""
    failure = tls_failure(exc)
    if failure is None:
        return None
    host = urlsplit(url).hostname
    if isinstance(failure, ssl.SSLCertVerificationError):
        reason = f"certificate verify failed: {failure.verify_message}"
    else:
        reason = str(failure)
    return (
        f"TLS with RabbitMQ at {redact(url)} failed ({reason}): the broker's certificate must be "
        "signed by a CA of LATAM_RABBITMQ_CA_FILE (the system's CAs when unset) and name the "
        f"URL's host {host!r}"
    )


def pg_tls_problem(message: str) -> bool:
    """True when libpq's error `message` is about TLS (the certificate, its host name, SSL)."""
    reason = message.rsplit(" failed: ", 1)[-1].lower()  # past the server's name and address
    return any(phrase in reason for phrase in ("ssl", "certificate", "does not match host name"))
