"""A throwaway RabbitMQ cluster of real nodes on loopback, for the failover drills.

Each node is a `rabbitmq-server` of the machine's installation with a node name, AMQP and
Erlang distribution ports, data, logs, configuration and env file of its own under one scratch
directory, so nothing of the machine's node (rabbit@localhost, /etc/rabbitmq, port 5672) is read
or touched. As root the servers and every `rabbitmqctl` run as the `rabbitmq` user, whose home
holds the Erlang cookie they must share to form a cluster. The nodes register with the
machine's epmd, which stays as it is.

Each server runs in a process group of its own. `rabbit_cluster()` kills every group it started
and removes the directory when its block exits, whatever happened inside it. Waits are on the
nodes' own state (`await_startup`, `cluster_status`), never a sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.tls_support import (
    LOOPBACK,
    RABBITMQ_SBIN,
    START_TIMEOUT,
    ServerFailed,
    _as_user,
    _give,
    _service_user,
    _tail,
    run_as,
    scratch_dir,
)
from tests.waiting import eventually

PORT_RANGE = (20000, 32000)
"""Below Linux's ephemeral ports (32768 and up): while a killed node is down, no outgoing
connection of the machine can take its port as a source port before the node binds it again."""
MACHINE_PORTS = frozenset({4369, 5672, 15672, 25672})


def available() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if not (RABBITMQ_SBIN / "rabbitmq-server").exists():
        return f"no rabbitmq-server in {RABBITMQ_SBIN} (LATAM_TEST_RABBITMQ_SBIN)"
    return None


def _ports(count: int) -> list[int]:
    """`count` distinct ports of PORT_RANGE that nothing listens on now (10000 above each, where
    the CLI tools take theirs, is left alone too)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(*PORT_RANGE)
        if port in ports or {port, port + 10000} & MACHINE_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
        ports.append(port)
    return ports


@dataclass
class RabbitNode:
    """One member: its name, ports and directory; `proc` is its server while it runs."""

    name: str
    amqp_port: int
    dist_port: int
    home: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{self.amqp_port}/%2F"

    @property
    def log(self) -> Path:
        return self.home / "log" / "node.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class RabbitCluster:
    """Nodes `latam-ha-<run_id>-<i>@localhost`, i = 1..size, with their files under `root`."""

    def __init__(self, root: Path, run_id: str, size: int = 3) -> None:
        self.root = root
        self.user = _service_user("rabbitmq")
        self.procs: list[subprocess.Popen] = []  # every server started, for the teardown
        self.formed_seconds = 0.0
        ports = _ports(2 * size)
        self.nodes = [
            RabbitNode(
                f"latam-ha-{run_id}-{i}@localhost",
                ports[2 * i - 2],
                ports[2 * i - 1],
                root / f"node{i}",
            )
            for i in range(1, size + 1)
        ]
        (root / "rabbitmq-env.conf").write_text(
            "# these nodes' settings come from the environment\n"
        )
        (root / "enabled_plugins").write_text("[].\n")
        for node in self.nodes:
            (node.home / "log").mkdir(parents=True)
            (node.home / "rabbitmq.conf").write_text(
                f"listeners.tcp.1 = {LOOPBACK}:{node.amqp_port}\n"
                f"log.file = {node.log}\n"
                "log.console = false\n"
                # leaders spread over the nodes (by default all start on the declaring node),
                # so that a kill moves some queues' leaders, not every one at once
                "queue_leader_locator = balanced\n"
            )
        _give(self.user, root)

    @property
    def url(self) -> str:
        """Every node's AMQP URL, comma-separated: LATAM_AMQP_URL for this cluster."""
        return ",".join(node.url for node in self.nodes)

    @property
    def names(self) -> set[str]:
        return {node.name for node in self.nodes}

    def node(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if node.name == name)

    def live_node(self) -> RabbitNode:
        return next(node for node in self.nodes if node.running)

    def _env(self, node: RabbitNode) -> dict[str, str]:
        home = self.user.pw_dir if self.user else os.environ.get("HOME", str(self.root))
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,  # its .erlang.cookie
            "LANG": "C.UTF-8",
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "ERL_CRASH_DUMP_SECONDS": "0",  # a killed node writes no crash dump
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONFIG_FILE": str(node.home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.home / "advanced.config"),
            "RABBITMQ_MNESIA_BASE": str(node.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.home / "log"),
            "RABBITMQ_PID_FILE": str(node.home / "beam.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    # --- the CLI -----------------------------------------------------------------------------

    def ctl(self, node: RabbitNode, *args: str, tool: str = "rabbitmqctl") -> str:
        """Run a CLI tool against `node`; its stdout, or `ServerFailed` with its output."""
        argv = [RABBITMQ_SBIN / tool, "-q", "-n", node.name, *args]
        what = f"{tool} {' '.join(args)} on {node.name}"
        return run_as(self.user, argv, what, timeout=120, cwd=self.root, env=self._env(node))

    def ctl_json(self, node: RabbitNode, *args: str) -> object:
        return json.loads(self.ctl(node, *args, "--formatter", "json"))

    def running_nodes(self) -> set[str]:
        status = self.ctl_json(self.live_node(), "cluster_status")
        return set(status["running_nodes"]) if isinstance(status, dict) else set()

    def queues(self, *columns: str) -> dict[str, dict]:
        """`list_queues name <columns>` as a running node sees them: name -> row."""
        rows = self.ctl_json(self.live_node(), "list_queues", "name", *columns)
        return {row["name"]: row for row in rows} if isinstance(rows, list) else {}

    # --- node life -----------------------------------------------------------------------------

    def start(self, node: RabbitNode) -> None:
        """Start `node`'s server in a process group of its own (not waiting for it)."""
        with (node.home / "log" / "stdout.log").open("ab") as out:
            node.proc = subprocess.Popen(
                [str(RABBITMQ_SBIN / "rabbitmq-server")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(node),
                cwd=self.root,
                start_new_session=True,
                **_as_user(self.user),
            )
        self.procs.append(node.proc)

    def await_startup(self, node: RabbitNode, timeout: float = START_TIMEOUT) -> None:
        """Wait until the RabbitMQ application runs on `node`; fail at once if its server exits."""

        def started() -> bool:
            if not node.running:
                raise AssertionError(f"{node.name} exited while starting:\n{_tail(node.log)}")
            self.ctl(node, "await_startup", "--timeout", "15")
            return True

        eventually(
            started,
            timeout,
            f"{node.name} started",
            interval=0.2,
            errors=(ServerFailed,),
            detail=lambda: _tail(node.log),
        )

    def await_all_running(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the cluster status lists every node as running."""
        eventually(
            lambda: self.running_nodes() == self.names,
            timeout,
            f"{sorted(self.names)} running",
            interval=0.2,
            errors=(ServerFailed,),
        )

    def form(self) -> None:
        """Start every node at once, then join the others to the first one."""
        started = time.monotonic()
        for node in self.nodes:
            self.start(node)
        for node in self.nodes:
            self.await_startup(node)
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", self.nodes[0].name)
            self.ctl(node, "start_app")
        self.await_all_running()
        self.formed_seconds = time.monotonic() - started

    def kill(self, node: RabbitNode) -> float:
        """`kill -9` the node's Erlang VM (the pid its server wrote) and wait until its server is
        gone; returns that moment (time.monotonic)."""
        assert node.proc is not None and node.running, f"{node.name} is not running"
        os.kill(int((node.home / "beam.pid").read_text()), signal.SIGKILL)
        node.proc.wait(timeout=30)
        return time.monotonic()

    def restart(self, node: RabbitNode) -> None:
        """Start a killed node again with its data, and wait until the cluster has it back."""
        self.start(node)
        self.await_startup(node)
        self.await_all_running()

    def close(self) -> None:
        """Kill every node still running as the drill does (its server then reaps its VM), then
        SIGKILL every process group started here, the groups of servers that exited included."""
        for node in self.nodes:
            if node.running:
                with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
                    self.kill(node)
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@contextlib.contextmanager
def rabbit_cluster(run_id: str, size: int = 3) -> Iterator[RabbitCluster]:
    """A formed cluster of `size` running nodes; on exit every process started is killed and
    every file removed, also when forming it failed half-way."""
    with scratch_dir(f"latam-ha-{run_id}-") as root:
        cluster = RabbitCluster(root, run_id, size)
        try:
            cluster.form()
            yield cluster
        finally:
            cluster.close()
