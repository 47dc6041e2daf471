"""Everything a run config can set in the code location, listed: no resource takes run config,
and the op config is the operator choices below, none of them a location.

A new field anywhere in a job's run config schema fails this test on purpose: whoever adds one
decides here, in review, whether it may name a database, a broker, a queue or a directory (it may
not: those come from the environment; see docs/ui-access.md).
"""

from __future__ import annotations

import os
import subprocess
import sys

from dagster._config import ConfigTypeKind

from latam_dagster.definitions import defs

# what a run may choose: how a run executes and logs, and what the curated and mart steps do
ALLOWED = {
    "execution.config.retries.enabled",
    "execution.config.retries.disabled",
    # Dagster's in-process executor: deprecated and read by nothing
    "execution.config.marker_to_close",
    "execution.config.step_dependency_config.require_upstream_step_success",
    "loggers.console.config.log_level",
    "loggers.console.config.name",
    "ops.*.config.full_refresh",
    "ops.*.config.only_pending",
}


def _leaves(config_type, path: tuple[str, ...] = ()):
    """(dotted path, kind) of every settable leaf; op names become `*`."""
    kind = config_type.kind
    if kind in (
        ConfigTypeKind.STRICT_SHAPE,
        ConfigTypeKind.PERMISSIVE_SHAPE,
        ConfigTypeKind.SELECTOR,
    ):
        for name, field in config_type.fields.items():
            key = "*" if path == ("ops",) else name
            yield from _leaves(field.config_type, (*path, key))
        if kind is ConfigTypeKind.SELECTOR and not config_type.fields:
            yield ".".join(path), kind
    elif kind in (ConfigTypeKind.NONEABLE, ConfigTypeKind.ARRAY, ConfigTypeKind.MAP):
        yield from _leaves(config_type.inner_type, path)
    else:
        yield ".".join(path), kind


def _jobs():
    return defs.get_repository_def().get_all_jobs()


def test_no_resource_of_any_job_takes_run_config():
    for job in _jobs():
        resources = job.run_config_schema.config_type.fields["resources"].config_type
        for key, field in resources.fields.items():
            config = field.config_type.fields.get("config")
            settable = config.config_type.fields if config is not None else {}
            assert not settable, f"{job.name}: resources.{key}.config has {sorted(settable)}"


def test_the_run_config_of_every_job_is_the_listed_choices():
    for job in _jobs():
        unexpected = {
            path
            for path, kind in _leaves(job.run_config_schema.config_type)
            # an op without config takes Any and ignores it
            if path not in ALLOWED
            and not (path.startswith("ops.*.") and kind is ConfigTypeKind.ANY)
        }
        assert not unexpected, f"{job.name}: run config may set {sorted(unexpected)}"


PROBE = """
from dagster import build_resources
from latam_dagster.definitions import defs
with build_resources({"rabbitmq": defs.resources["rabbitmq"]}) as built:
    print(built.rabbitmq.amqp_url, built.rabbitmq.prefix)
"""


def test_the_fixed_resources_carry_the_environment_settings():
    """Fixed when the code location loads, from its environment: what a run gets is what the
    settings say (a fresh process, as every run is)."""
    env = {
        **os.environ,
        "LATAM_AMQP_URL": "amqp://guest:guest@broker.internal:5672/ops",
        "LATAM_TOPOLOGY_PREFIX": "fromenv",
    }
    env.pop("DAGSTER_HOME", None)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.split() == ["amqp://guest:guest@broker.internal:5672/ops", "fromenv"]
