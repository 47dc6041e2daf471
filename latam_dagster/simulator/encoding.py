"""Cheap encoders for the fields every event carries: RFC 3339 timestamps, UUIDs, opaque refs.

Times inside the simulator are integer milliseconds since the Unix epoch; these functions turn
them into text without building datetime or UUID objects per event, which is what keeps the
generator fast enough for million-event benchmarks.
"""

from __future__ import annotations

from datetime import date, datetime

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MASK64 = (1 << 64) - 1
_VARIANT = "89ab89ab89ab89ab"  # RFC 4122 variant nibble for each original nibble
_DAY_TEXT: dict[int, str] = {}
_MINUTE_TEXT: dict[int, tuple[str, str]] = {}
_SECONDS = [f"{i:02d}" for i in range(60)]
_MILLIS = [f"{i:03d}" for i in range(1000)]


def to_ms(ts: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(round(ts.timestamp() * 1000))


def offset_text(offset_s: int) -> str:
    """`Z` for UTC, else `+hh:mm` / `-hh:mm`."""
    if offset_s == 0:
        return "Z"
    sign = "-" if offset_s < 0 else "+"
    h, m = divmod(abs(offset_s) // 60, 60)
    return f"{sign}{h:02d}:{m:02d}"


def _day_text(days: int) -> str:
    text = _DAY_TEXT.get(days)
    if text is None:
        text = _DAY_TEXT[days] = date.fromordinal(_EPOCH_ORDINAL + days).isoformat()
    return text


def rfc3339(ms: int, offset_s: int = 0, millis: bool = True) -> str:
    """Format epoch ms as RFC 3339 in the local time of a fixed UTC offset.

    Events come in time order, so the text up to the minute is cached and reused.
    """
    local = ms + offset_s * 1000
    minute, rem = divmod(local, 60_000)
    key = minute * 131_072 + offset_s
    cached = _MINUTE_TEXT.get(key)
    if cached is None:
        if len(_MINUTE_TEXT) > 16_384:
            _MINUTE_TEXT.clear()
        days, mins = divmod(minute, 1440)
        h, m = divmod(mins, 60)
        cached = _MINUTE_TEXT[key] = (f"{_day_text(days)}T{h:02d}:{m:02d}:", offset_text(offset_s))
    head, off = cached
    secs, frac = divmod(rem, 1000)
    if millis:
        return head + _SECONDS[secs] + "." + _MILLIS[frac] + off
    return head + _SECONDS[secs] + off


def uuid4_text(bits: int) -> str:
    """The text of `uuid.UUID(int=bits, version=4)`, without building the object."""
    h = bits.to_bytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:]}"


def mix64(x: int) -> int:
    """SplitMix64 finaliser: a fast bijective hash for deriving per-passenger attributes."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)
