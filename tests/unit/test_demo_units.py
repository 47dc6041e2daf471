"""Stopping the demo also stops the code servers its Dagster processes started."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from latam_dagster.demo import stop_code_servers


def _fake_code_server(home: str) -> subprocess.Popen:
    # a process whose command line looks like a code server of the instance under `home`
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", f"dagster api grpc --x {home}/s"]
    )


def _wait_for_command_line(proc: subprocess.Popen, marker: str, timeout: float = 10.0) -> None:
    """Wait until `proc`'s command line (what pkill -f matches) names `marker`."""
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    deadline = time.monotonic() + timeout
    while marker not in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
        assert time.monotonic() < deadline, f"{proc.args} never showed {marker!r}"
        time.sleep(0.01)


def test_only_the_code_servers_of_this_instance_are_stopped(tmp_path):
    ours = _fake_code_server(str(tmp_path / "dagster-home_1"))
    theirs = _fake_code_server(str(tmp_path / "another-home"))
    try:
        for proc in (ours, theirs):
            _wait_for_command_line(proc, "dagster api grpc")
        stop_code_servers(tmp_path / "dagster-home_1")
        assert ours.wait(10) != 0  # killed
        assert theirs.poll() is None  # another instance's: left alone
    finally:
        for proc in (ours, theirs):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
