"""Throwaway TLS servers for the TLS tests: a test CA and certificates, a RabbitMQ node with a TLS
listener, and a PostgreSQL cluster with ssl=on, each on loopback and free ports of its own.

- `make_pki(dir)` writes a CA, a server certificate for 127.0.0.1 and localhost (SAN entries)
  signed by it, a certificate signed by the same CA for another host name only, and a second CA
  that signs nothing the servers present (the client given it must refuse them).
- `rabbitmq_nodes(...)` starts RabbitMQ nodes of their own (node name, AMQPS and distribution
  ports, data, log and config directories, a private epmd) that accept only TLS, and stops them.
- `postgres_cluster(...)` runs `initdb` into a temporary directory and starts a cluster that
  accepts only TLS connections (`hostssl` in pg_hba.conf), and stops it.

The machine's own broker and database are never touched. When the tests run as root, the
servers run as the `rabbitmq` and `postgres` users (initdb refuses root, and a RabbitMQ node
needs a home with an Erlang cookie); otherwise they run as the current user.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bench.harness import stop_process_group
from tests.waiting import eventually

LOOPBACK = "127.0.0.1"
SERVER_NAMES = ("localhost", LOOPBACK)
WRONG_HOST = "wrong-host.invalid"


def _pg_bin() -> Path:
    """PostgreSQL's server programs: LATAM_TEST_PG_BIN, else Debian's newest
    /usr/lib/postgresql/<major>/bin, else wherever `initdb` is on PATH."""
    if os.environ.get("LATAM_TEST_PG_BIN"):
        return Path(os.environ["LATAM_TEST_PG_BIN"])
    majors = [
        p.parent
        for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if p.parent.parent.name.isdigit()
    ]
    if majors:
        return max(majors, key=lambda bin_dir: int(bin_dir.parent.name))
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
RABBITMQ_SBIN = Path(os.environ.get("LATAM_TEST_RABBITMQ_SBIN", "/usr/lib/rabbitmq/bin"))
START_TIMEOUT = 90.0


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files `make_pki` wrote."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    wrong_host_cert: Path
    wrong_host_key: Path
    other_ca_cert: Path


KEY_USAGES = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)  # fmt: skip


def _key_usage(*granted: str) -> x509.KeyUsage:
    """A KeyUsage extension allowing exactly `granted` (every other usage off)."""
    unknown = set(granted) - set(KEY_USAGES)
    if unknown:
        raise ValueError(f"unknown key usages {sorted(unknown)}")
    return x509.KeyUsage(**{usage: usage in granted for usage in KEY_USAGES})


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LATAM data platform tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(
        now + dt.timedelta(days=2)
    )


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    public = key.public_key()
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage("digital_signature", "key_cert_sign", "crl_sign"),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return builder.sign(key, hashes.SHA256()), key


def _leaf(
    names: tuple[str, ...], ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for `names` (DNS names or IP addresses, all as SAN entries)."""
    key = _key()
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    return builder.sign(ca_key, hashes.SHA256()), key


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def make_pki(directory: Path) -> Pki:
    """Write a throwaway CA, its certificates and an unrelated CA into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ca("LATAM test CA")
    server, server_key = _leaf(SERVER_NAMES, ca, ca_key)
    wrong, wrong_key = _leaf((WRONG_HOST,), ca, ca_key)
    other_ca, _other_key = _ca("LATAM untrusted test CA")
    return Pki(
        ca_cert=_write_cert(directory / "ca.crt", ca),
        server_cert=_write_cert(directory / "server.crt", server),
        server_key=_write_key(directory / "server.key", server_key),
        wrong_host_cert=_write_cert(directory / "wrong-host.crt", wrong),
        wrong_host_key=_write_key(directory / "wrong-host.key", wrong_key),
        other_ca_cert=_write_cert(directory / "other-ca.crt", other_ca),
    )


# --- processes ---------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_dir(prefix: str = "latam-tls-") -> Iterator[Path]:
    """A temporary directory the servers' accounts can enter (pytest's own are private to the
    user running the tests); removed with everything in it on exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o711)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _service_user(name: str) -> pwd.struct_passwd | None:
    """The account a server runs as: `name` when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(name)


def _give(user: pwd.struct_passwd | None, *paths: Path) -> None:
    """Hand files and directories (recursively) to the server's account."""
    if user is None:
        return
    for path in paths:
        for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
            os.chown(p, user.pw_uid, user.pw_gid)


def _as_user(user: pwd.struct_passwd | None) -> dict:
    """`subprocess` keyword arguments that run a child as `user` (nothing when None)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class ServerFailed(RuntimeError):
    """A throwaway server exited or did not come up; the message carries its log's tail."""


def run_as(
    user: pwd.struct_passwd | None,
    argv: Sequence[str | Path],
    what: str,
    timeout: float,
    **options: Any,
) -> str:
    """Run a server's program as its account (the files it writes must be theirs) and return its
    stdout; a non-zero exit is a `ServerFailed` naming `what`, with the program's output.
    `options` go to `subprocess.run` (cwd, env)."""
    proc = subprocess.run(
        [str(arg) for arg in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        **options,
        **_as_user(user),
    )
    if proc.returncode != 0:
        raise ServerFailed(f"{what} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_port(
    host: str, port: int, proc: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT
) -> None:
    """Wait until `host:port` accepts a TCP connection; fail at once when `proc` exits."""

    def listening() -> bool:
        if proc.poll() is not None:
            raise ServerFailed(f"{proc.args[0]} exited with {proc.returncode}:\n{_tail(log)}")
        socket.create_connection((host, port), timeout=1).close()
        return True

    eventually(
        listening, timeout, f"{host}:{port} listening", interval=0.1, errors=(OSError,),
        detail=lambda: _tail(log), failure=ServerFailed,
    )  # fmt: skip


# --- RabbitMQ ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RabbitNode:
    """A running throwaway node: its TLS port on loopback, and how to reach it with the CLI."""

    node_name: str
    host: str
    amqps_port: int
    env: dict[str, str]
    user: pwd.struct_passwd | None

    def url(self, host: str | None = None, vhost: str = "%2F") -> str:
        return f"amqps://guest:guest@{host or self.host}:{self.amqps_port}/{vhost}"

    def ctl(self, *args: str) -> str:
        """Run `rabbitmqctl` against this node (through its private epmd); returns stdout."""
        return run_as(
            self.user,
            [RABBITMQ_SBIN / "rabbitmqctl", "-q", "-n", self.node_name, *args],
            f"rabbitmqctl {' '.join(args)}",
            timeout=120,
            env=self.env,
        )


def _rabbitmq_conf(cert: Path, key: Path, ca: Path, host: str, port: int, log_dir: Path) -> str:
    return "\n".join(
        [
            "# TLS only: no plain AMQP listener, one TLS listener on loopback",
            "listeners.tcp = none",
            f"listeners.ssl.default = {host}:{port}",
            f"ssl_options.cacertfile = {ca}",
            f"ssl_options.certfile = {cert}",
            f"ssl_options.keyfile = {key}",
            "ssl_options.verify = verify_peer",
            "ssl_options.fail_if_no_peer_cert = false",
            "ssl_options.versions.1 = tlsv1.3",
            "ssl_options.versions.2 = tlsv1.2",
            f"log.file = {log_dir / 'node.log'}",
            "log.console = false",
            "",
        ]
    )


def _launch_node(
    stack: contextlib.ExitStack,
    workdir: Path,
    cert: Path,
    key: Path,
    ca: Path,
    host: str,
    ports: set[int],
) -> tuple[RabbitNode, subprocess.Popen, Path]:
    """Start one node (not waiting for it); `stack` stops it and its epmd."""
    user = _service_user("rabbitmq")
    workdir.mkdir(parents=True, exist_ok=True)
    tls_dir, data_dir, log_dir = workdir / "tls", workdir / "mnesia", workdir / "log"
    for d in (tls_dir, data_dir, log_dir):
        d.mkdir(exist_ok=True)
    files = {"cert": cert, "key": key, "ca": ca}
    for name, src in files.items():
        files[name] = Path(shutil.copy(src, tls_dir / f"{name}.pem"))
    port, dist_port, epmd_port = (_new_port(ports, h) for h in (host, LOOPBACK, LOOPBACK))
    node_name = f"latam-tls-{uuid.uuid4().hex[:8]}@localhost"
    conf = workdir / "rabbitmq.conf"
    conf.write_text(_rabbitmq_conf(files["cert"], files["key"], files["ca"], host, port, log_dir))
    env_file = workdir / "rabbitmq-env.conf"
    env_file.write_text("# this node's settings come from the environment\n")
    plugins = workdir / "enabled_plugins"
    plugins.write_text("[].\n")
    _give(user, workdir)
    home = user.pw_dir if user else os.environ.get("HOME", str(workdir))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "ERL_EPMD_ADDRESS": LOOPBACK,
        "ERL_EPMD_PORT": str(epmd_port),
        "RABBITMQ_CONF_ENV_FILE": str(env_file),
        "RABBITMQ_NODENAME": node_name,
        "RABBITMQ_CONFIG_FILE": str(conf.with_suffix("")),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
        "RABBITMQ_MNESIA_BASE": str(data_dir),
        "RABBITMQ_LOG_BASE": str(log_dir),
        "RABBITMQ_DIST_PORT": str(dist_port),
        # Erlang distribution on loopback only, on the port above
        "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }
    epmd_log = log_dir / "epmd.log"
    with epmd_log.open("wb") as out:
        epmd = subprocess.Popen(
            ["epmd", "-address", LOOPBACK, "-port", str(epmd_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            **_as_user(user),
        )
    stack.callback(stop_process_group, epmd, signal.SIGKILL)
    wait_for_port(LOOPBACK, epmd_port, epmd, epmd_log, timeout=10)
    with (log_dir / "stdout.log").open("wb") as out:
        node = subprocess.Popen(
            [str(RABBITMQ_SBIN / "rabbitmq-server")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
            start_new_session=True,
            **_as_user(user),
        )
    # a throwaway node: killed outright (the whole process group), its data directory goes with
    # the test's temporary directory
    stack.callback(stop_process_group, node, signal.SIGKILL)
    found = RabbitNode(node_name=node_name, host=host, amqps_port=port, env=env, user=user)
    return found, node, log_dir / "node.log"


def _new_port(taken: set[int], host: str) -> int:
    """A free port not already handed out for the nodes being started together."""
    while (port := free_port(host)) in taken:
        pass
    taken.add(port)
    return port


@contextlib.contextmanager
def rabbitmq_nodes(
    workdir: Path, ca: Path, *identities: tuple[Path, Path], host: str = LOOPBACK
) -> Iterator[list[RabbitNode]]:
    """Start one TLS-only RabbitMQ node per (certificate, key) under `workdir`, all at once, and
    stop them on exit.

    Each has its own node name, AMQPS and distribution ports, a private epmd on a free port (the
    machine's node and its epmd are never contacted), no plugins (so no management listener),
    and its own env file (the system one would force the machine's node name). Client
    certificates are verified when offered (`ca`), not required.
    """
    ports: set[int] = set()
    with contextlib.ExitStack() as stack:
        started = [
            _launch_node(stack, workdir / f"node{i}", cert, key, ca, host, ports)
            for i, (cert, key) in enumerate(identities)
        ]
        for node, proc, log in started:
            wait_for_port(node.host, node.amqps_port, proc, log)
        yield [node for node, _proc, _log in started]


# --- PostgreSQL --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgCluster:
    """A running throwaway cluster: its loopback port and data directory."""

    host: str
    port: int
    data_dir: Path

    def url(self, database: str = "postgres", host: str | None = None, **query: str) -> str:
        params = "&".join(f"{k}={v}" for k, v in query.items())
        base = f"postgresql://postgres@{host or self.host}:{self.port}/{database}"
        return f"{base}?{params}" if params else base


@contextlib.contextmanager
def postgres_cluster(
    workdir: Path, cert: Path, key: Path, host: str = LOOPBACK
) -> Iterator[PgCluster]:
    """initdb a cluster under `workdir`, start it with ssl=on and TLS-only access; stop on exit."""
    user = _service_user("postgres")
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    log = workdir / "postgres.log"
    _give(user, workdir)
    run_as(
        user,
        [
            PG_BIN / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        ],
        "initdb",
        timeout=120,
        cwd=workdir,
    )
    shutil.copy(cert, data / "server.crt")
    shutil.copy(key, data / "server.key")
    (data / "server.key").chmod(0o600)
    port = free_port(host)
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# throwaway TLS test cluster\n"
            f"listen_addresses = '{host}'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{workdir}'\n"
            "ssl = on\n"
            "ssl_cert_file = 'server.crt'\n"
            "ssl_key_file = 'server.key'\n"
            "ssl_min_protocol_version = 'TLSv1.2'\n"
            "fsync = off\n"
            "shared_buffers = 16MB\n"
            "max_connections = 30\n"
        )
    # TCP only over TLS: `hostssl` lines and nothing that matches a plain TCP connection
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        f"hostssl all all {host}/32 trust\n"
        "hostnossl all all 0.0.0.0/0 reject\n"
    )
    _give(user, data)
    proc = None
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(data)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
                start_new_session=True,
                **_as_user(user),
            )
        wait_for_port(host, port, proc, log)
        ready = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", str(workdir), "-p", str(port), "-t", "60"],
            capture_output=True,
            timeout=90,
        )
        if ready.returncode != 0:
            raise ServerFailed(f"cluster not accepting connections:\n{_tail(log)}")
        yield PgCluster(host=host, port=port, data_dir=data)
    finally:
        if proc is not None:
            # SIGINT: Postgres' fast shutdown (disconnects sessions, no wait for them)
            stop_process_group(proc, signal.SIGINT)
