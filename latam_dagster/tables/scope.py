"""Helpers of the scope functions: how an incremental run finds the keys its batch changed."""

from __future__ import annotations

from typing import Any


def count_scope(cur: Any, table: str) -> int:
    """Rows of a scope temp table, after ANALYZE: the planner must know a scope is small to use
    indexes rather than scans."""
    cur.execute(f"ANALYZE {table}")
    cur.execute(f"SELECT count(*) FROM {table}")
    return int(cur.fetchone()[0])


def xid(marks: dict[str, int], table: str) -> str:
    """A watermark as the text form of an xid8 parameter."""
    return str(int(marks[table]))
