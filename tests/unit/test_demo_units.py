"""Stopping the demo also stops the code servers its Dagster processes started."""

from __future__ import annotations

import subprocess
import sys
import time

from latam_dagster.demo import stop_code_servers


def _fake_code_server(home: str) -> subprocess.Popen:
    # a process whose command line looks like a code server of the instance under `home`
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", f"dagster api grpc --x {home}/s"]
    )


def test_only_the_code_servers_of_this_instance_are_stopped(tmp_path):
    ours = _fake_code_server(str(tmp_path / "dagster-home_1"))
    theirs = _fake_code_server(str(tmp_path / "another-home"))
    try:
        time.sleep(0.2)
        stop_code_servers(tmp_path / "dagster-home_1")
        assert ours.wait(10) != 0  # killed
        assert theirs.poll() is None  # another instance's: left alone
    finally:
        for proc in (ours, theirs):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
