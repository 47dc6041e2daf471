"""Throwaway PostgreSQL nodes for the failover and restore drills: a primary that archives its
WAL, a streaming replica made with `pg_basebackup -R`, promotion, a crash of the primary
(SIGKILL of its postmaster), base backups and point-in-time restores, all on loopback ports of
their own under one scratch directory.

The machine's own Postgres is never touched. Every node started here is stopped, and the
directory removed, when the `pg_cluster()` block exits, whatever happened inside it. Waits are
on the servers' own state (pg_isready, pg_stat_replication, pg_is_in_recovery), never a sleep.
As root the servers run as the `postgres` user (initdb and postgres refuse root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from bench.harness import stop_process_group
from tests.tls_support import (
    LOOPBACK,
    PG_BIN,
    ServerFailed,
    _as_user,
    _give,
    _new_port,
    _service_user,
    _tail,
    run_as,
    scratch_dir,
)
from tests.waiting import eventually

START_TIMEOUT = 90.0
SUPERUSER = "postgres"


def _settings_text(settings: dict[str, object]) -> str:
    lines = [f"{name} = '{value}'" for name, value in settings.items()]
    return "\n# set by tests/ha/pg_cluster.py (later lines win)\n" + "\n".join(lines) + "\n"


def multi_host_url(nodes: Sequence[PgNode], database: str, user: str, session_attrs: str) -> str:
    """A libpq URL over several nodes: libpq tries them in order and keeps the first whose
    session matches `target_session_attrs` (read-write, prefer-standby, any...)."""
    hosts = ",".join(f"{LOOPBACK}:{n.port}" for n in nodes)
    return f"postgresql://{user}@{hosts}/{database}?target_session_attrs={session_attrs}"


@dataclass
class PgNode:
    """One server: its port, data directory and log; `proc` is its postmaster while running."""

    name: str
    port: int
    data_dir: Path
    socket_dir: Path
    log: Path
    user: pwd.struct_passwd | None
    proc: subprocess.Popen | None = None

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@{LOOPBACK}:{self.port}/{database}"

    def configure(self, **settings: object) -> None:
        """Append settings to postgresql.conf (read at the next start or reload)."""
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(_settings_text(settings))

    def start(self) -> None:
        """Start the postmaster and wait until it accepts connections (a standby in hot standby
        accepts them too, once its replay is consistent)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(PG_BIN / "postgres"), "-D", str(self.data_dir)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir.parent,
                start_new_session=True,
                **_as_user(self.user),
            )
        self.wait_for(self._accepting, "accepting connections")

    def _accepting(self) -> bool:
        ready = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-q", "-h", LOOPBACK, "-p", str(self.port), "-t", "2"],
            timeout=30,
        )
        return ready.returncode == 0

    def wait_for(
        self, probe: Callable[[], object], what: str, timeout: float = START_TIMEOUT
    ) -> object:
        """Wait until `probe()` is true; fail at once, with the log's tail, if the postmaster
        exits meanwhile (a recovery that cannot reach its target ends that way)."""

        def alive_and(probe=probe):
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise ServerFailed(f"{self.name} is not running (exit {code}):\n{_tail(self.log)}")
            return probe()

        return eventually(
            alive_and,
            timeout,
            f"{self.name}: {what}",
            interval=0.05,
            errors=(psycopg2.OperationalError,),
            detail=lambda: _tail(self.log),
            failure=ServerFailed,
        )

    def sql(self, statement: str, params: tuple = (), database: str = "postgres") -> list[tuple]:
        """Run one statement as the superuser in autocommit (ALTER SYSTEM needs that)."""
        conn = psycopg2.connect(self.url(database), connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def in_recovery(self) -> bool:
        return self.sql("SELECT pg_is_in_recovery()")[0][0]

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions are disconnected, nothing is waited for)."""
        stop_process_group(self.proc, signal.SIGINT)

    def kill9(self) -> None:
        """Crash the node: SIGKILL to the postmaster alone, as `kill -9` would. Its backends
        notice the postmaster is gone and exit on their own; returns once they all have, so
        nothing of the old server still answers."""
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} is not running"
        children = _children(self.proc.pid)
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        eventually(
            lambda: not any(_running(pid) for pid in children),
            30,
            f"{self.name}'s backends exited after the postmaster died",
            interval=0.02,
        )


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (the postmaster's backends and helpers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # the command name in parentheses may hold spaces: the fields after it are fixed
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a reparented child may not be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class PgCluster:
    """The nodes of one drill and their shared WAL archive, under one scratch directory."""

    root: Path
    user: pwd.struct_passwd | None = field(default_factory=lambda: _service_user("postgres"))
    nodes: list[PgNode] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)

    @property
    def archive(self) -> Path:
        return self.root / "wal_archive"

    def _node(self, name: str) -> PgNode:
        node_dir = self.root / name
        node_dir.mkdir()
        _give(self.user, node_dir)
        node = PgNode(
            name=name,
            port=_new_port(self.ports, LOOPBACK),
            data_dir=node_dir / "data",
            socket_dir=node_dir,
            log=node_dir / "postgres.log",
            user=self.user,
        )
        self.nodes.append(node)
        return node

    def _run(self, argv: list[str | Path], what: str) -> None:
        """Run a program as the servers' account (the files it writes must be theirs)."""
        run_as(self.user, argv, what, timeout=300, cwd=self.root)

    def _own_settings(self, node: PgNode) -> None:
        """What differs between nodes made from the same files: address, sockets, name (a
        standby reports its cluster_name to the primary as its application_name)."""
        node.configure(
            listen_addresses=LOOPBACK,
            port=node.port,
            unix_socket_directories=node.socket_dir,
            cluster_name=node.name,
        )

    def primary(self, name: str = "primary") -> PgNode:
        """initdb (trust authentication: loopback test servers only) and start a primary that
        can feed replicas and copies each finished WAL segment into the archive."""
        self.archive.mkdir(exist_ok=True)
        _give(self.user, self.archive)
        node = self._node(name)
        initdb = [PG_BIN / "initdb", "-D", node.data_dir, "-U", SUPERUSER, "--auth=trust"]
        self._run([*initdb, "--encoding=UTF8", "--locale=C", "--no-sync"], "initdb")
        node.configure(
            wal_level="replica",
            archive_mode="on",
            # never overwrite a segment already archived (a promoted standby archives too)
            archive_command=f"test ! -f {self.archive}/%f && cp %p {self.archive}/%f",
            max_wal_senders=5,
            max_replication_slots=5,
            hot_standby="on",
            shared_buffers="16MB",
            max_connections=50,
        )
        self._own_settings(node)
        node.start()
        return node

    def replica(self, primary: PgNode, name: str = "replica") -> PgNode:
        """A streaming standby of `primary`: `pg_basebackup -R` with a replication slot of its
        own (the primary keeps the WAL it has not received). Returns once it streams."""
        node = self._node(name)
        slot = f"{name}_slot"
        stream = ["-X", "stream", "-R", "-C", "-S", slot, "--checkpoint=fast", "--no-sync"]
        self._run([*_basebackup(primary, node.data_dir), *stream], f"pg_basebackup of {name}")
        self._own_settings(node)
        node.start()
        node.wait_for(node.in_recovery, "in recovery (a standby)")
        primary.wait_for(
            lambda: primary.sql(
                "SELECT 1 FROM pg_stat_replication WHERE application_name = %s "
                "AND state = 'streaming'",
                (name,),
            ),
            f"{name} streaming",
        )
        return node

    def make_synchronous(self, primary: PgNode, standby: PgNode) -> None:
        """Commits on `primary` return only once `standby` has applied them (remote_apply), so
        whatever a client saw committed is readable on the standby and survives its promotion.
        Returns once the primary reports the standby as synchronous."""
        primary.sql("ALTER SYSTEM SET synchronous_standby_names = %s", (f'"{standby.name}"',))
        primary.sql("ALTER SYSTEM SET synchronous_commit = 'remote_apply'")
        primary.sql("SELECT pg_reload_conf()")
        primary.wait_for(
            lambda: primary.sql(
                "SELECT 1 FROM pg_stat_replication WHERE application_name = %s "
                "AND sync_state = 'sync'",
                (standby.name,),
            ),
            f"{standby.name} synchronous",
        )

    def promote(self, standby: PgNode) -> float:
        """Promote `standby` to primary; returns the seconds it took. Its synchronous standby
        list is cleared: a new primary without standbys must not wait for one on each commit."""
        began = time.monotonic()
        (promoted,) = standby.sql("SELECT pg_promote(wait => true, wait_seconds => 60)")[0]
        if not promoted:
            raise ServerFailed(f"{standby.name} was not promoted:\n{_tail(standby.log)}")
        standby.sql("ALTER SYSTEM RESET synchronous_standby_names")
        standby.sql("SELECT pg_reload_conf()")
        standby.wait_for(lambda: not standby.in_recovery(), "out of recovery")
        return time.monotonic() - began

    def base_backup(self, primary: PgNode, name: str = "backup") -> Path:
        """A compressed tar base backup of `primary` without WAL (`-X none`): restoring it takes
        the WAL archive. pg_basebackup returns once the backup's last segment is archived."""
        folder = self.root / name
        folder.mkdir()
        _give(self.user, folder)
        tar = ["-F", "tar", "-z", "-X", "none", "--checkpoint=fast"]
        self._run([*_basebackup(primary, folder), *tar], "pg_basebackup (tar)")
        return folder

    def restore(self, backup: Path, restore_point: str, name: str = "restored") -> PgNode:
        """A new node from `backup` and the WAL archive, recovered up to `restore_point` and
        promoted there. Returns once it is out of recovery (a target it cannot reach makes the
        server exit, which fails the wait at once)."""
        node = self._node(name)
        node.data_dir.mkdir(mode=0o700)
        _give(self.user, node.data_dir)
        self._run(["tar", "-xzf", backup / "base.tar.gz", "-C", node.data_dir], "unpacking")
        self._own_settings(node)
        node.configure(
            restore_command=f"cp {self.archive}/%f %p",
            recovery_target_name=restore_point,
            recovery_target_action="promote",
            # a restored copy is a new branch of history: it must not write into the drill's
            # archive, which still serves other restores
            archive_mode="off",
        )
        (node.data_dir / "recovery.signal").touch()
        _give(self.user, node.data_dir / "recovery.signal")
        node.start()
        node.wait_for(lambda: not node.in_recovery(), f"recovered to {restore_point!r}")
        return node

    def close(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


def _basebackup(primary: PgNode, into: Path) -> list[str | Path]:
    """pg_basebackup of `primary` into `into`, as the superuser (trust on loopback)."""
    source = ["-h", LOOPBACK, "-p", str(primary.port), "-U", SUPERUSER]
    return [PG_BIN / "pg_basebackup", *source, "-D", into]


@contextlib.contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    """A `PgCluster` in a scratch directory; every node it started is stopped and the directory
    removed on exit, also when the block fails."""
    with scratch_dir("latam-ha-pg-") as root:
        cluster = PgCluster(root)
        try:
            yield cluster
        finally:
            cluster.close()
