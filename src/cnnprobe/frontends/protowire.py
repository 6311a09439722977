"""Protocol Buffers wire format: the primitives of a small hand-written reader.

Only the wire format is known here (varints, fixed-width scalars, length-delimited payloads); what
the fields mean is up to the caller (:mod:`.onnx_wire`, the SavedModel metadata reader). Every
function works on a ``bytes`` buffer and ``[pos, end)`` offsets, so that payloads are never copied
until the caller asks for them. Every malformed input raises :class:`WireError` (a
:class:`~cnnprobe.errors.ModelError`) with a one-line message that gives the byte offset; no
``IndexError``, no recursion, and no allocation larger than the input.

Wire types: 0 varint, 1 fixed 64-bit, 2 length-delimited, 5 fixed 32-bit. Groups (3, 4) are
deprecated and never used by the formats read here: they are rejected as corrupt.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

from ..errors import ModelError

VARINT = 0
I64 = 1
LEN = 2
I32 = 5

WIRE_NAMES = {
    0: "varint",
    1: "fixed64",
    2: "length-delimited",
    3: "group",
    4: "group",
    5: "fixed32",
}

MASK32 = (1 << 32) - 1
MASK64 = (1 << 64) - 1
#: Largest field number protobuf allows.
MAX_FIELD = (1 << 29) - 1


class WireError(ModelError):
    """The bytes are not valid protobuf wire format (truncated, corrupt)."""


def varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` (truncated to 64 bits, as protobuf does) and the position
    after it. At most 10 bytes; it must end before ``end``."""
    result = 0
    shift = 0
    start = pos
    while pos < end:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & MASK64, pos
        shift += 7
        if shift >= 70:
            raise WireError(f"varint longer than 10 bytes at byte {start}")
    raise WireError(f"truncated varint at byte {start}")


def key(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """A field key at ``pos``: (field number, wire type, position after it)."""
    k = buf[pos]  # callers guarantee pos < end
    if k < 0x80:
        pos += 1
    else:
        k, pos = varint(buf, pos, end)
        if k > MASK32:
            raise WireError(f"field key out of range at byte {pos}")
    num = k >> 3
    if num == 0:
        raise WireError(f"field number 0 at byte {pos - 1}")
    return num, k & 7, pos


def length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A length-delimited payload at ``pos`` (just after its key): its ``[start, stop)`` span,
    checked to lie within ``end``; ``stop`` is where the next field begins."""
    n = buf[pos] if pos < end else 0x80
    if n < 0x80:
        pos += 1
    else:
        n, pos = varint(buf, pos, end)
    stop = pos + n
    if stop > end:
        raise WireError(f"length {n} at byte {pos} runs past the end of its message ({end})")
    return pos, stop


def skip(buf: bytes, pos: int, end: int, wire: int) -> int:
    """The position after a field's value (``pos`` is just after its key)."""
    if wire == VARINT:
        return varint(buf, pos, end)[1]
    if wire == LEN:
        return length(buf, pos, end)[1]
    if wire == I64:
        stop = pos + 8
    elif wire == I32:
        stop = pos + 4
    else:
        raise WireError(f"unsupported wire type {wire} at byte {pos}")
    if stop > end:
        raise WireError(f"truncated fixed-width value at byte {pos}")
    return stop


def expect(num: int, wire: int, wanted: int, message: str, pos: int) -> None:
    """Raise unless a known field has the wire type its declaration implies."""
    if wire != wanted:
        raise WireError(
            f"field {num} of {message} is {WIRE_NAMES.get(wire, wire)}, expected "
            f"{WIRE_NAMES[wanted]} (byte {pos})"
        )


def fixed32(buf: bytes, pos: int, end: int) -> tuple[float, int]:
    """A little-endian IEEE float (wire type 5) at ``pos`` and the position after it."""
    if pos + 4 > end:
        raise WireError(f"truncated fixed32 at byte {pos}")
    return struct.unpack_from("<f", buf, pos)[0], pos + 4


def fixed64(buf: bytes, pos: int, end: int) -> tuple[float, int]:
    """A little-endian IEEE double (wire type 1) at ``pos`` and the position after it."""
    if pos + 8 > end:
        raise WireError(f"truncated fixed64 at byte {pos}")
    return struct.unpack_from("<d", buf, pos)[0], pos + 8


def packed_varints(buf: bytes, start: int, stop: int) -> list[int]:
    """The unsigned varints of a packed repeated field's payload ``[start, stop)``."""
    out: list[int] = []
    pos = start
    while pos < stop:
        b = buf[pos]
        if b < 0x80:
            out.append(b)
            pos += 1
        else:
            v, pos = varint(buf, pos, stop)
            out.append(v)
    return out


_LONG_VARINT = re.compile(rb"[\x80-\xff]{10}")


def check_packed_varints(buf: bytes, start: int, stop: int, num: int) -> None:
    """Check, without decoding, that a packed varint payload holds whole varints of at most 10
    bytes (then :func:`packed_varints` cannot fail on it)."""
    if stop > start and buf[stop - 1] >= 0x80:
        raise WireError(f"truncated varint in packed field {num} at byte {stop - 1}")
    m = _LONG_VARINT.search(buf, start, stop)
    if m is not None:
        raise WireError(f"varint longer than 10 bytes in packed field {num} at byte {m.start()}")


def packed_fixed(buf: bytes, start: int, stop: int, code: str) -> tuple[float, ...]:
    """The fixed-width values (``code`` ``f`` or ``d``) of a packed payload ``[start, stop)``."""
    size = 4 if code == "f" else 8
    n, rest = divmod(stop - start, size)
    if rest:
        raise WireError(f"packed fixed-width field of {stop - start} bytes at byte {start}")
    values: tuple[float, ...] = struct.unpack_from(f"<{n}{code}", buf, start)
    return values


def int64(v: int) -> int:
    """An unsigned 64-bit varint value as the signed int64 it encodes."""
    return v - (1 << 64) if v >> 63 else v


def int32(v: int) -> int:
    """A varint value as the signed int32 it encodes (protobuf keeps the low 32 bits)."""
    v &= MASK32
    return v - (1 << 32) if v >> 31 else v


def iter_fields(
    buf: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, int, int]]:
    """The fields of one message ``buf[start:end]`` as (field number, wire type, a, b): for a
    varint, ``a`` is its (unsigned) value and ``b`` 0; otherwise ``buf[a:b]`` is the payload (the
    value's 4 or 8 bytes, or the length-delimited contents)."""
    stop = len(buf) if end is None else end
    pos = start
    while pos < stop:
        num, wire, pos = key(buf, pos, stop)
        if wire == VARINT:
            v, pos = varint(buf, pos, stop)
            yield num, wire, v, 0
        elif wire == LEN:
            a, pos = length(buf, pos, stop)
            yield num, wire, a, pos
        else:
            a = pos
            pos = skip(buf, pos, stop, wire)
            yield num, wire, a, pos
