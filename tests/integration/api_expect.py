"""What the API must answer, computed straight from the warehouse (as its owner).

Values are converted to their JSON form here independently of the API's serializer: timestamps to
RFC 3339 UTC with `Z`, numerics to floats, dates to ISO dates.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import psycopg2


def json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        text = value.astimezone(dt.UTC).isoformat()
        return text.replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def rows(url: str, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    """Rows of a query as dicts of JSON values."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            names = [d.name for d in cur.description]
            return [{n: json_value(v) for n, v in zip(names, r, strict=True)} for r in cur]
    finally:
        conn.close()


def scalar(url: str, sql: str, params: Any = ()) -> Any:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()[0]
    finally:
        conn.close()


def walk(client, url: str, limit: int, max_pages: int = 10_000) -> tuple[list[dict], int]:
    """Every row of a list endpoint, page by page. Returns (rows, pages)."""
    sep = "&" if "?" in url else "?"
    collected: list[dict] = []
    cursor = None
    for pages in range(1, max_pages + 1):
        page_url = f"{url}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(page_url)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert len(body["data"]) <= limit
        collected.extend(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return collected, pages
        assert len(body["data"]) == limit
    raise AssertionError("pagination did not end")
