"""Deterministic simulator of LATAM airline events (flight status, passengers, positions).

`generate` yields contract-v1 messages (optionally with duplicates, late and broken ones) for a
seed; `run` publishes them at a given rate; `latam simulate` is the command line.
"""

from latam_dagster.simulator.generator import DEFAULT_START, SimMessage, generate, world
from latam_dagster.simulator.runner import run
from latam_dagster.simulator.systems import source_systems

__all__ = ["DEFAULT_START", "SimMessage", "generate", "run", "source_systems", "world"]
