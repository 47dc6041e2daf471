"""Make text that came from a message safe to store, log and print.

A source controls every byte of a message: its body, routing key, properties and headers. Only the
body is kept exactly as received (as `bytea`); every other piece of text that reaches a text column,
a log line or a terminal goes through `safe_text` first, so that a NUL (which Postgres text cannot
hold), a lone surrogate (which UTF-8 cannot encode), invalid UTF-8, or a terminal escape sequence
can never fail a batch or mislead a reader.
"""

from __future__ import annotations

import re

# C0 and C1 control characters, DEL, lone surrogates, and the bidirectional and invisible
# formatting marks that can make a terminal show text other than what is stored
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: str | bytes | None, limit: int = 500) -> str | None:
    """`value` as printable text: invalid UTF-8 and control characters backslash-escaped, cut to
    `limit` characters (with a marker when cut). None stays None."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8", errors="backslashreplace")
    elif not isinstance(value, str):
        value = str(value)
    if _UNSAFE.search(value):
        value = _UNSAFE.sub(_escape, value)
    if len(value) > limit:
        return value[: max(limit - 1, 0)] + "…"
    return value


def preview(body: bytes, limit: int = 200, total: int | None = None) -> str:
    """A body for a person to look at: escaped text when it is UTF-8, else hex; at most `limit`
    characters of output, marked with "…" when the body goes on. `total` is the whole body's
    size when `body` is only its first part (a character cut at the end of that part is not
    taken for invalid UTF-8)."""
    total = len(body) if total is None else total
    head = bytes(body[: limit * 2])
    cut = total > len(head)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not (cut and exc.reason == "unexpected end of data"):
            return "hex:" + head[: limit // 2].hex() + ("…" if total > limit // 2 else "")
        text = head[: exc.start].decode("utf-8")
    shown = safe_text(text, limit) or ""
    if cut and not shown.endswith("…"):
        shown += "…"
    return shown
