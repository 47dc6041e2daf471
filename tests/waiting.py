"""Waiting for something to become true, for the tests' servers, pages and queues: one polling
loop, with what it waited for and the last error it saw in the failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(
    probe: Callable[[], Any],
    timeout: float,
    what: str,
    *,
    interval: float = 0.5,
    errors: tuple[type[BaseException], ...] = (),
    detail: Callable[[], str] | None = None,
    failure: type[Exception] = AssertionError,
) -> Any:
    """Call `probe` every `interval` seconds until it returns something true, and return that.

    An exception of a type in `errors` counts as "not yet"; any other one propagates at once.
    After `timeout` seconds raise `failure`, naming `what`, the last such error and `detail()`
    (a log's tail, the page's text)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except errors as exc:
            last = exc
        if time.monotonic() > deadline:
            message = f"{what} within {timeout:.0f} s"
            if last is not None:
                message += f" (last error: {last!r})"
            if detail is not None:
                message += f"\n{detail()}"
            raise failure(message)
        time.sleep(interval)
