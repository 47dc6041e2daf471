"""What every sensor of the pipeline shares: on from the start, paced by a setting."""

import inspect
from collections.abc import Callable
from typing import Any

from dagster import DefaultSensorStatus, SensorDefinition, sensor


def running_sensor(
    interval_seconds: float, **target: Any
) -> Callable[[Callable[..., Any]], SensorDefinition]:
    """A sensor named after its function and described by its docstring, running from the start
    (nobody has to switch it on in the UI) and evaluated at most every `interval_seconds`;
    `target` is its job (`job=` or `job_name=`)."""

    def decorate(fn: Callable[..., Any]) -> SensorDefinition:
        return sensor(
            minimum_interval_seconds=interval_seconds,
            default_status=DefaultSensorStatus.RUNNING,
            description=inspect.getdoc(fn),
            **target,
        )(fn)

    return decorate
