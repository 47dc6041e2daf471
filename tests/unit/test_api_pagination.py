"""Keyset cursors: round trip, and every kind of tampering is a CursorError (a 400)."""

import datetime as dt

import pytest

from api_service.pagination import (
    CursorError,
    as_date,
    as_int,
    as_text,
    decode_cursor,
    encode_cursor,
    page,
)

SECRET = "s3cret"
PARSERS = (as_date, as_text)


def test_round_trip():
    cursor = encode_cursor(SECRET, "flights", [dt.date(2026, 11, 27), "LA800-2026-11-27-SCL"])
    assert decode_cursor(SECRET, "flights", cursor, PARSERS) == (
        dt.date(2026, 11, 27),
        "LA800-2026-11-27-SCL",
    )


def test_cursor_is_opaque_url_safe_text():
    cursor = encode_cursor(SECRET, "flights", [dt.date(2026, 11, 27), "x' OR 1=1 --"])
    assert all(c.isalnum() or c in "-_." for c in cursor)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # signature altered
        lambda c: ("A" if c[0] != "A" else "B") + c[1:],  # payload altered
        lambda c: c.replace(".", ""),  # no separator
        lambda c: c + ".x",  # two separators
        lambda c: "",
        lambda c: "not-a-cursor",
        lambda c: "%%%.%%%",
        lambda c: "a" * 600,
        lambda c: "é.é",
    ],
)
def test_tampered_cursor_is_rejected(mutate):
    cursor = encode_cursor(SECRET, "flights", [dt.date(2026, 11, 27), "LA800-2026-11-27-SCL"])
    with pytest.raises(CursorError):
        decode_cursor(SECRET, "flights", mutate(cursor), PARSERS)


def test_cursor_of_another_endpoint_or_secret_is_rejected():
    cursor = encode_cursor(SECRET, "routes", [dt.date(2026, 11, 27), "LA"])
    with pytest.raises(CursorError):
        decode_cursor(SECRET, "flights", cursor, PARSERS)
    with pytest.raises(CursorError):
        decode_cursor("other", "routes", cursor, PARSERS)


@pytest.mark.parametrize(
    "values",
    [["2026-02-30", "LA800"], [20261127, "LA800"], ["2026-11-27"], ["2026-11-27", 5], [None, None]],
)
def test_signed_cursor_with_wrong_values_is_rejected(values):
    cursor = encode_cursor(SECRET, "flights", values)
    with pytest.raises(CursorError):
        decode_cursor(SECRET, "flights", cursor, PARSERS)


def test_int_parser_refuses_bools_and_text():
    for bad in (True, "1", 1.5):
        cursor = encode_cursor(SECRET, "events", [bad])
        with pytest.raises(CursorError):
            decode_cursor(SECRET, "events", cursor, (as_int,))


def test_page_splits_the_extra_row():
    rows = [{"k": i} for i in range(4)]
    data, nxt = page(rows, 3, lambda r: f"after-{r['k']}")
    assert data == rows[:3] and nxt == "after-2"
    data, nxt = page(rows[:3], 3, lambda r: "never")
    assert data == rows[:3] and nxt is None
