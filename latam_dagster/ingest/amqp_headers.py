"""Header values pika cannot decode, kept as raw bytes instead of failing the connection.

A publisher chooses the bytes of its headers, and RabbitMQ stores and forwards them as they are:
a timestamp far past year 9999, say, or a field type pika does not know. Plain pika fails on such
a value while reading the frame and drops the whole connection, so one message would stop every
drain of its queue (and `latam dead list`) until the delivery limit dead-lettered it. With
`tolerate_odd_headers()` such a value is kept as its undecoded bytes (type tag included); every
value pika can decode is decoded exactly as before. The drain never reads headers; the
dead-letter commands show them.
"""

from __future__ import annotations

import struct

import pika.data
import pika.exceptions

# bytes after the type tag, for the field types of a fixed size; and the types whose size is a
# 4-byte length after the tag (long string, byte array, array, table)
_FIXED_SIZES = {
    **dict.fromkeys((b"t", b"b", b"B"), 1),
    **dict.fromkeys((b"U", b"u", b"s"), 2),
    **dict.fromkeys((b"I", b"i", b"f"), 4),
    **dict.fromkeys((b"L", b"l", b"d", b"T"), 8),
    b"D": 5,
    b"V": 0,
}
_SIZED = (b"S", b"x", b"A", b"F")
_DECODE_ERRORS = (
    ValueError,
    OverflowError,
    OSError,
    struct.error,
    pika.exceptions.InvalidFieldTypeException,
)


def tolerate_odd_headers() -> None:
    """Make pika keep a header value it cannot decode (a timestamp past year 9999, an unknown
    field type) as its raw bytes instead of failing the whole connection. It applies to the whole
    process, and changes nothing for values pika can decode. Idempotent."""
    if pika.data.decode_table is not _lenient_decode_table:
        pika.data.decode_table = _lenient_decode_table


def _lenient_decode_table(encoded: bytes, offset: int) -> tuple[dict, int]:
    result: dict = {}
    size = struct.unpack_from(">I", encoded, offset)[0]
    offset += 4
    limit = offset + size
    while offset < limit:
        key, offset = pika.data.decode_short_string(encoded, offset)
        try:
            value, offset = pika.data.decode_value(encoded, offset)
        except _DECODE_ERRORS:
            end = _value_end(encoded, offset, limit)
            value, offset = bytes(encoded[offset:end]), end  # type tag and value, undecoded
        result[key] = value
    return result, offset


def _value_end(encoded: bytes, offset: int, limit: int) -> int:
    """Where the field value at `offset` ends; `limit` (the rest of the table) when its type is
    unknown and its length cannot be told."""
    kind = bytes(encoded[offset : offset + 1])
    if kind in _FIXED_SIZES:
        end = offset + 1 + _FIXED_SIZES[kind]
    elif kind in _SIZED and offset + 5 <= limit:
        end = offset + 5 + struct.unpack_from(">I", encoded, offset + 1)[0]
    else:
        end = limit
    return min(end, limit)
