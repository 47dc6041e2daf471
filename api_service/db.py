"""The API's connection pool: read-only, autocommit, UTC, with a statement timeout.

Each statement is its own read-only transaction (autocommit), so a request costs one round trip
per query and never holds a snapshot open. A connection that broke (server restart, network) is
dropped from the pool and the query retried once on a fresh one; if that fails too the caller
gets `DatabaseUnavailable`, which the API answers with 503.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from latam_dagster.tls import refuse_plaintext

Row = dict[str, Any]

# numeric columns (delays, percentages, load factors) as floats: JSON numbers either way, and
# converting in the driver is far cheaper than Decimal objects serialised one by one
NUMERIC_AS_FLOAT = psycopg2.extensions.new_type(
    psycopg2.extensions.DECIMAL.values,
    "NUMERIC_AS_FLOAT",
    lambda value, _cursor: float(value) if value is not None else None,
)


class DatabaseUnavailable(RuntimeError):
    """The warehouse did not answer (or not in time)."""


class _Pool:
    """Up to `size` connections, opened on demand and kept open; a caller waits for a free one."""

    def __init__(self, connect: Callable[[], psycopg2.extensions.connection], size: int):
        self._connect = connect
        self._idle: list[psycopg2.extensions.connection] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()

    def get(self, timeout: float) -> psycopg2.extensions.connection:
        if not self._slots.acquire(timeout=timeout):
            raise DatabaseUnavailable("every database connection stayed busy")
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            return self._connect()
        except BaseException:
            self._slots.release()
            raise

    def put(self, conn: psycopg2.extensions.connection, discard: bool) -> None:
        if discard or conn.closed:
            with contextlib.suppress(psycopg2.Error):
                conn.close()
        else:
            with self._lock:
                self._idle.append(conn)
        self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(psycopg2.Error):
                conn.close()


class Database:
    """A lazily opened, thread-safe pool; safe to create before gunicorn forks its workers."""

    def __init__(self, url: str, max_connections: int = 4, statement_timeout_ms: int = 5000):
        refuse_plaintext(url)  # production: the API reads the warehouse over verified TLS only
        self.url = url
        self.max_connections = max(1, max_connections)
        self.options = (
            "-c default_transaction_read_only=on -c TimeZone=UTC "
            f"-c statement_timeout={int(statement_timeout_ms)} "
            "-c application_name=latam_api"
        )
        self._pool: _Pool | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def _connect(self) -> psycopg2.extensions.connection:
        try:
            conn = psycopg2.connect(self.url, options=self.options, connect_timeout=5)
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable(" ".join(str(exc).split())) from exc
        conn.autocommit = True
        psycopg2.extensions.register_type(NUMERIC_AS_FLOAT, conn)
        return conn

    def _get_pool(self) -> _Pool:
        if self._pool is None or self._pid != os.getpid():  # never share sockets across a fork
            with self._lock:
                if self._pool is None or self._pid != os.getpid():
                    self._pool = _Pool(self._connect, self.max_connections)
                    self._pid = os.getpid()
        return self._pool

    def fetch_all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        """Rows of one parameterised query as dicts keyed by column name."""
        pool = self._get_pool()
        for attempt in (1, 2):
            conn = pool.get(timeout=10)
            broken = False
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, params)
                    names = [d.name for d in cur.description]
                    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            except psycopg2.errors.QueryCanceled as exc:
                raise DatabaseUnavailable("query took longer than the statement timeout") from exc
            except psycopg2.errors.UndefinedTable as exc:
                # the pipeline has not built this table yet in this warehouse
                raise DatabaseUnavailable(str(exc).splitlines()[0]) from exc
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                broken = True
                if attempt == 2:
                    raise DatabaseUnavailable(" ".join(str(exc).split())) from exc
            finally:
                pool.put(conn, discard=broken)
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        rows = self.fetch_all(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
