"""What the platform shows or stores of text a message brought: escaped, never raw."""

from __future__ import annotations

import pytest

from latam_dagster.ingest.safe_text import preview, safe_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("flight.sabre", "flight.sabre"),
        ("a\x00b", "a\\x00b"),
        ("\x1b[2Jclear", "\\x1b[2Jclear"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("\u202eevil", "\\u202eevil"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        (b"\xff\xfeab", "\\xff\\xfeab"),
        ("São Paulo ✈", "São Paulo ✈"),
        (None, None),
    ],
)
def test_safe_text_escapes_what_could_fail_a_column_or_fool_a_terminal(raw, shown):
    assert safe_text(raw) == shown


def test_safe_text_cuts_long_text_and_says_so():
    assert safe_text("x" * 600, 10) == "x" * 9 + "…"


@pytest.mark.parametrize(
    ("body", "kwargs", "shown"),
    [
        (b"\xff\xfe\x00{", {}, "hex:fffe007b"),
        (b'{"a":1}\xff', {}, "hex:7b2261223a317dff"),
        ('{"city":"São"}'.encode(), {}, '{"city":"São"}'),
        ("ã".encode() * 3 + b"\xc3", {"total": 100}, "ããã…"),  # a head cut inside a character
        (b"x" * 1000, {"limit": 10}, "x" * 9 + "…"),
    ],
)
def test_preview_shows_text_escaped_or_hex(body, kwargs, shown):
    assert preview(body, **kwargs) == shown
