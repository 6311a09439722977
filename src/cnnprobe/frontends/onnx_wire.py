"""A pure-Python reader of the parts of an ONNX ``ModelProto`` that the frontend uses.

``onnx.load`` costs an ``import onnx`` (with protobuf and numpy: 100-200 ms) before a single byte
is read, and then builds every message of the file. This module reads the protobuf wire format
directly (:mod:`.protowire`) and keeps only: the IR version, opsets and producer; per node its
name, op type, domain, inputs, outputs and attributes; per initializer its name, dims and element
type; the names, element types and shapes of graph inputs, outputs and ``value_info``. Everything
else is skipped by wire type without being decoded: weights (``raw_data``) are never copied, and
subgraphs (attribute ``g`` of ``If``/``Loop``/``Scan``) are never entered, so there is no recursion.
Tensor values are decoded only on request (:func:`tensor_values`), for small tensors.

Field numbers are those of onnx.proto (proto2). Semantics follow protobuf where a reader can tell:
the last value of a scalar field wins, a repeated sub-message field appends, an optional
sub-message that appears twice is merged, packed and unpacked repeated scalars are both accepted,
a closed enum ignores unknown values, and unknown fields are skipped. Stricter than protobuf: a
known field with the wrong wire type, groups, and a string field that is not UTF-8 are errors.

Malformed input raises :class:`~cnnprobe.errors.ModelError` with a one-line message and no path
(the caller adds it).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from sys import intern
from typing import Any

from ..errors import ModelError
from .protowire import (
    I32,
    I64,
    LEN,
    MASK32,
    VARINT,
    WireError,
    check_packed_varints,
    expect,
    fixed32,
    int32,
    int64,
    key,
    length,
    packed_fixed,
    packed_varints,
    skip,
    varint,
)

# TensorProto.DataType values
FLOAT = 1
UINT8 = 2
INT8 = 3
UINT16 = 4
INT16 = 5
INT32 = 6
INT64 = 7
STRING = 8
BOOL = 9
FLOAT16 = 10
DOUBLE = 11
UINT32 = 12
UINT64 = 13

# AttributeProto.AttributeType values
ATTR_FLOAT = 1
ATTR_INT = 2
ATTR_STRING = 3
ATTR_TENSOR = 4
ATTR_GRAPH = 5
ATTR_FLOATS = 6
ATTR_INTS = 7
ATTR_STRINGS = 8
#: Values of the closed enum AttributeType (others are ignored, as protobuf does).
ATTR_TYPES = frozenset(range(15))

#: ONNX element type -> (Array dtype, struct code of raw_data, item size, typed-data field).
DTYPES: dict[int, tuple[str, str, int, int]] = {
    FLOAT: ("f4", "f", 4, 4),
    UINT8: ("u1", "B", 1, 5),
    INT8: ("i1", "b", 1, 5),
    UINT16: ("u2", "H", 2, 5),
    INT16: ("i2", "h", 2, 5),
    INT32: ("i4", "i", 4, 5),
    INT64: ("i8", "q", 8, 7),
    BOOL: ("b1", "B", 1, 5),
    FLOAT16: ("f2", "e", 2, 5),
    DOUBLE: ("f8", "d", 8, 10),
    UINT32: ("u4", "I", 4, 11),
    UINT64: ("u8", "Q", 8, 11),
}

# Known fields that are skipped, with their wire type (checked); other field numbers are unknown
# (newer onnx) and skipped whatever their wire type.
_MODEL_SKIP = {4: LEN, 5: VARINT, 6: LEN, 14: LEN, 20: LEN, 26: LEN}
_GRAPH_SKIP = {10: LEN, 14: LEN, 16: LEN}
#: AttributeProto and TensorProto: every known field, and the wire types that are not LEN (a
#: repeated scalar may also be packed, as LEN).
_ATTR_FIELDS = frozenset({*range(1, 12), 13, 14, 15, 20, 21, 22, 23})
_ATTR_WIRE = {2: I32, 3: VARINT, 7: I32, 8: VARINT, 20: VARINT}
_TENSOR_FIELDS = frozenset({*range(1, 15), 16})
_TENSOR_WIRE = {1: VARINT, 2: VARINT, 4: I32, 5: VARINT, 7: VARINT, 10: I64, 11: VARINT, 14: VARINT}


# ---------------------------------------------------------------------------------------------
# what the reader returns


class Array:
    """The values of a small tensor: flat row-major ``data`` (Python ints, or floats for the
    ``f*`` dtypes), a ``shape`` and a numpy-style dtype code (``b1``, ``i1``-``i8``,
    ``u1``-``u8``, ``f2``, ``f4``, ``f8``)."""

    __slots__ = ("data", "dtype", "shape")

    def __init__(self, shape: tuple[int, ...], data: list[Any], dtype: str) -> None:
        self.shape = shape
        self.data = data
        self.dtype = dtype

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Array):
            return NotImplemented
        return (self.shape, self.dtype, self.data) == (other.shape, other.dtype, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Array({self.shape}, {self.data!r}, {self.dtype!r})"


class TensorInfo:
    """A ``TensorProto`` without its data: name, dims, element type, whether the data lives in
    an external file. :func:`tensor_values` decodes the data of a small one from the buffer.

    A model has one per weight (tens of thousands in a large one), so the positions in the
    buffer are plain ints, not tuples and lists."""

    __slots__ = (
        "_buf",
        "_more",
        "_raw_a",
        "_raw_b",
        "_start",
        "_stop",
        "data_type",
        "dims",
        "external",
        "name",
        "segment",
    )

    def __init__(self, buf: bytes) -> None:
        self.name = ""
        self.dims: tuple[int, ...] = ()
        self.data_type = 0
        self.external = False
        self.segment = False
        self._buf = buf
        # the message's [start, stop) in the buffer; further ones when it appears again (merged)
        self._start = self._stop = -1
        self._more: list[tuple[int, int]] | None = None
        # [start, stop) of raw_data, -1 if absent
        self._raw_a = self._raw_b = -1

    @property
    def raw(self) -> tuple[int, int] | None:
        """``[start, stop)`` of ``raw_data`` in the buffer, if present."""
        return None if self._raw_a < 0 else (self._raw_a, self._raw_b)

    def spans(self) -> list[tuple[int, int]]:
        """``[start, stop)`` of each occurrence of the message in the buffer."""
        if self._start < 0:
            return []
        return [(self._start, self._stop), *(self._more or ())]

    @property
    def size(self) -> int:
        """Number of elements (1 for a scalar; may be negative or huge in a corrupt file)."""
        return math.prod(self.dims)

    def __repr__(self) -> str:
        return f"TensorInfo({self.name!r}, dims={self.dims}, data_type={self.data_type})"


@dataclass(slots=True)
class ValueInfo:
    """A graph input, output or ``value_info`` entry. ``shape`` is ``None`` when the type is not
    a tensor type or records no shape; a symbolic or missing dimension is ``None``."""

    name: str
    elem_type: int = 0
    shape: tuple[int | None, ...] | None = None


@dataclass(slots=True)
class NodeInfo:
    """A ``NodeProto``. ``attrs`` maps names to decoded values by attribute type: INT -> int,
    FLOAT -> float, STRING -> str (invalid UTF-8 replaced), INTS/FLOATS/STRINGS -> tuples,
    TENSOR -> :class:`TensorInfo`. Graph, sparse-tensor and type attributes are left out."""

    name: str
    op_type: str
    domain: str
    input: tuple[str, ...]
    output: tuple[str, ...]
    attrs: dict[str, Any]
    #: picks one of several model-local functions of the same domain and name (IR 10)
    overload: str = ""


@dataclass(slots=True)
class GraphInfo:
    name: str = ""
    node: list[NodeInfo] = field(default_factory=list)
    initializer: list[TensorInfo] = field(default_factory=list)
    input: list[ValueInfo] = field(default_factory=list)
    output: list[ValueInfo] = field(default_factory=list)
    value_info: list[ValueInfo] = field(default_factory=list)
    #: ``sparse_initializer``: constants too (their values are never read)
    sparse_initializer: list[SparseInfo] = field(default_factory=list)


@dataclass(slots=True)
class SparseInfo:
    """A ``SparseTensorProto``: the name and element type of its ``values``, and its dense dims."""

    name: str = ""
    dims: tuple[int, ...] = ()
    data_type: int = 0


@dataclass(slots=True)
class ModelInfo:
    ir_version: int = 0
    producer_name: str = ""
    producer_version: str = ""
    #: (domain, version) per ``opset_import`` entry, in file order.
    opset_import: list[tuple[str, int]] = field(default_factory=list)
    #: ``None`` when the file has no graph field.
    graph: GraphInfo | None = None
    #: model-local functions (``ModelProto.functions``), in file order
    functions: list[FunctionInfo] = field(default_factory=list)


@dataclass(slots=True)
class FunctionInfo:
    """A model-local ``FunctionProto``: nodes of the main graph whose domain, op type and overload
    match it stand for its body."""

    name: str = ""
    domain: str = ""
    overload: str = ""
    input: tuple[str, ...] = ()
    output: tuple[str, ...] = ()
    #: attribute names; ``defaults`` holds those that have a default value
    attribute: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    node: list[NodeInfo] = field(default_factory=list)
    #: per body node: attribute name -> the name of the calling node's attribute it refers to
    refs: list[dict[str, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# entry point


def read_model_bytes(data: bytes) -> ModelInfo:
    """Parse a serialized ``ModelProto``. Raises :class:`ModelError` (no path) if ``data`` is not
    valid protobuf for the fields read."""
    try:
        return _model(bytes(data))
    except WireError as exc:
        raise ModelError(f"not a valid ONNX model (cannot parse protobuf: {exc.message})") from None
    except UnicodeDecodeError:
        raise ModelError(
            "not a valid ONNX model (cannot parse protobuf: a name is not UTF-8 text)"
        ) from None


def _text(buf: bytes, a: int, b: int) -> str:
    return str(buf[a:b], "utf-8")


def _past(pos: int, n: int, end: int) -> WireError:
    return WireError(f"length {n} at byte {pos} runs past the end of its message ({end})")


def _skip_unread(
    buf: bytes, pos: int, end: int, num: int, wire: int, known: dict[int, int], message: str
) -> int:
    """Skip a field the reader does not read, after checking the wire type of a known one."""
    if num in known:
        expect(num, wire, known[num], message, pos)
    return skip(buf, pos, end, wire)


def _model(buf: bytes) -> ModelInfo:
    m = ModelInfo()
    pos, end = 0, len(buf)
    while pos < end:
        num, wire, pos = key(buf, pos, end)
        if num == 1:
            expect(num, wire, VARINT, "ModelProto", pos)
            v, pos = varint(buf, pos, end)
            m.ir_version = int64(v)
        elif num in (2, 3, 7, 8, 25):
            expect(num, wire, LEN, "ModelProto", pos)
            a, pos = length(buf, pos, end)
            if num == 7:
                if m.graph is None:
                    m.graph = GraphInfo()
                _graph(buf, a, pos, m.graph)
            elif num == 25:
                m.functions.append(_function(buf, a, pos))
            elif num == 8:
                m.opset_import.append(_opset(buf, a, pos))
            elif num == 2:
                m.producer_name = _text(buf, a, pos)
            else:
                m.producer_version = _text(buf, a, pos)
        else:
            pos = _skip_unread(buf, pos, end, num, wire, _MODEL_SKIP, "ModelProto")
    return m


def _opset(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    domain, version = "", 0
    while pos < end:
        num, wire, pos = key(buf, pos, end)
        if num == 1:
            expect(num, wire, LEN, "OperatorSetIdProto", pos)
            a, pos = length(buf, pos, end)
            domain = _text(buf, a, pos)
        elif num == 2:
            expect(num, wire, VARINT, "OperatorSetIdProto", pos)
            v, pos = varint(buf, pos, end)
            version = int64(v)
        else:
            pos = skip(buf, pos, end, wire)
    return domain, version


def _graph(buf: bytes, pos: int, end: int, g: GraphInfo) -> None:
    # tensor names appear once as an output and again as each reader's input, and most nodes
    # share a few attribute values and weight shapes: one object each (less memory, and dict
    # lookups by these names compare identities)
    shared: dict[Any, Any] = {}
    while pos < end:
        k = buf[pos]
        if 8 <= k < 0x80:
            pos += 1
            num, wire = k >> 3, k & 7
        else:
            num, wire, pos = key(buf, pos, end)
        if num in (1, 2, 5, 11, 12, 13, 15):
            if wire != LEN:
                expect(num, wire, LEN, "GraphProto", pos)
            # nodes and initializers are mostly 128 bytes to 16 kB long: 2-byte lengths
            if pos + 1 < end and buf[pos] >= 0x80 and buf[pos + 1] < 0x80:
                n = (buf[pos] & 0x7F) | buf[pos + 1] << 7
                a = pos + 2
                pos = a + n
                if pos > end:
                    raise _past(a, n, end)
            else:
                a, pos = length(buf, pos, end)
            if num == 1:
                g.node.append(_node(buf, a, pos, shared))
            elif num == 5:
                t = TensorInfo(buf)
                _tensor(buf, a, pos, t, shared)
                g.initializer.append(t)
            elif num == 11:
                g.input.append(_value_info(buf, a, pos))
            elif num == 12:
                g.output.append(_value_info(buf, a, pos))
            elif num == 13:
                g.value_info.append(_value_info(buf, a, pos))
            elif num == 15:
                g.sparse_initializer.append(_sparse(buf, a, pos))
            else:
                g.name = _text(buf, a, pos)
        else:
            pos = _skip_unread(buf, pos, end, num, wire, _GRAPH_SKIP, "GraphProto")


def _node(
    buf: bytes,
    pos: int,
    end: int,
    shared: dict[Any, Any],
    refs: dict[str, str] | None = None,
) -> NodeInfo:
    """A NodeProto: the hot loop of the reader (one pass per node), so the common one-byte keys
    and lengths are decoded inline. ``refs`` (function bodies only) receives the attributes that
    refer to the calling node's."""
    inputs: list[str] = []
    outputs: list[str] = []
    name = op_type = domain = overload = ""
    attrs: dict[str, Any] = {}
    while pos < end:
        k = buf[pos]
        if 8 <= k < 0x80:
            pos += 1
            num, wire = k >> 3, k & 7
        else:
            num, wire, pos = key(buf, pos, end)
        if wire != LEN:
            if num <= 10:  # every known NodeProto field is length-delimited
                expect(num, wire, LEN, "NodeProto", pos)
            pos = skip(buf, pos, end, wire)
            continue
        n = buf[pos] if pos < end else 0x80
        if n < 0x80:
            a = pos + 1
            pos = a + n
            if pos > end:
                raise _past(a, n, end)
        else:
            a, pos = length(buf, pos, end)
        if num == 1:
            x = str(buf[a:pos], "utf-8")
            inputs.append(shared.setdefault(x, x))
        elif num == 2:
            x = str(buf[a:pos], "utf-8")
            outputs.append(shared.setdefault(x, x))
        elif num == 5:
            _attribute(buf, a, pos, attrs, shared, refs)
        elif num == 4:
            op_type = intern(str(buf[a:pos], "utf-8"))  # a few dozen names, shared by all nodes
        elif num == 3:
            name = str(buf[a:pos], "utf-8")
        elif num == 7:
            domain = intern(str(buf[a:pos], "utf-8"))
        elif num == 8:
            overload = str(buf[a:pos], "utf-8")
        # 6 doc_string, 9 metadata_props, 10 device_configurations: skipped
    if overload:
        return NodeInfo(name, op_type, domain, tuple(inputs), tuple(outputs), attrs, overload)
    return NodeInfo(name, op_type, domain, tuple(inputs), tuple(outputs), attrs)


#: INTS attribute values and dims up to this length are shared between nodes and weights
SHARED_TUPLE_LEN = 8


def _attribute(
    buf: bytes,
    pos: int,
    end: int,
    attrs: dict[str, Any],
    shared: dict[Any, Any],
    refs: dict[str, str] | None = None,
) -> None:
    name = ref = ""
    atype = 0
    f = 0.0
    i = 0
    s = b""
    t: TensorInfo | None = None
    floats: list[float] = []
    ints: list[int] = []
    strings: list[bytes] = []
    while pos < end:
        k = buf[pos]
        if 8 <= k < 0x80:
            pos += 1
            num, wire = k >> 3, k & 7
        elif k == 0xA0 and pos + 1 < end and buf[pos + 1] == 0x01:  # `type`, a varint
            pos += 2
            num, wire = 20, VARINT
        else:
            num, wire, pos = key(buf, pos, end)
        if wire == LEN:
            n = buf[pos] if pos < end else 0x80
            if n < 0x80:
                a = pos + 1
                pos = a + n
                if pos > end:
                    raise _past(a, n, end)
            else:
                a, pos = length(buf, pos, end)
            if num == 1:
                name = intern(str(buf[a:pos], "utf-8"))  # a few dozen, shared by all nodes
            elif num == 8:
                ints.extend(packed_varints(buf, a, pos))
            elif num == 7:
                floats.extend(packed_fixed(buf, a, pos, "f"))
            elif num == 4:
                s = buf[a:pos]
            elif num == 9:
                strings.append(buf[a:pos])
            elif num == 5:
                if t is None:
                    t = TensorInfo(buf)
                _tensor(buf, a, pos, t)
            elif num in _ATTR_WIRE:  # f, i, type: not length-delimited
                expect(num, wire, _ATTR_WIRE[num], "AttributeProto", a)
            elif num == 21:
                ref = str(buf[a:pos], "utf-8")
            # g (subgraphs), graphs, tensors, sparse tensors, type protos, doc_string,
            # unknown fields: skipped, never entered
        elif wire == VARINT:
            b = buf[pos] if pos < end else 0x80
            if b < 0x80:
                v = b
                pos += 1
            else:
                v, pos = varint(buf, pos, end)
            if num == 20:
                v = int32(v)
                if v in ATTR_TYPES:  # a closed enum: unknown values are ignored
                    atype = v
            elif num == 3:
                i = int64(v)
            elif num == 8:
                ints.append(v)
            elif num in _ATTR_FIELDS:
                expect(num, wire, _ATTR_WIRE.get(num, LEN), "AttributeProto", pos)
        elif wire == I32 and (num == 2 or num == 7):
            x, pos = fixed32(buf, pos, end)
            if num == 2:
                f = x
            else:
                floats.append(x)
        else:
            if num in _ATTR_FIELDS:
                expect(num, wire, _ATTR_WIRE.get(num, LEN), "AttributeProto", pos)
            pos = skip(buf, pos, end, wire)
    if ref and refs is not None:  # a function body's reference to its caller's attribute
        refs[name] = ref
        return
    if atype == ATTR_INT:
        attrs[name] = i
    elif atype == ATTR_INTS:
        tup = tuple(v - (1 << 64) if v >> 63 else v for v in ints)
        attrs[name] = shared.setdefault(tup, tup) if len(tup) <= SHARED_TUPLE_LEN else tup
    elif atype == ATTR_FLOAT:
        attrs[name] = f
    elif atype == ATTR_FLOATS:
        attrs[name] = tuple(floats)
    elif atype == ATTR_STRING:
        attrs[name] = s.decode("utf-8", "replace")
    elif atype == ATTR_STRINGS:
        attrs[name] = tuple(x.decode("utf-8", "replace") for x in strings)
    elif atype == ATTR_TENSOR:
        attrs[name] = t if t is not None else TensorInfo(buf)


def _tensor(
    buf: bytes, pos: int, end: int, t: TensorInfo, shared: dict[Any, Any] | None = None
) -> None:
    """Read a TensorProto's header into ``t`` (merging, when the message appears twice). Typed
    data is only checked here (so that :func:`tensor_values` cannot fail); it is decoded there."""
    if t._start < 0:
        t._start, t._stop = pos, end
    elif t._more is None:
        t._more = [(pos, end)]
    else:
        t._more.append((pos, end))
    dims: list[int] | None = None
    while pos < end:
        k = buf[pos]
        if 8 <= k < 0x80:
            pos += 1
            num, wire = k >> 3, k & 7
        else:
            num, wire, pos = key(buf, pos, end)
        if wire == VARINT:
            b = buf[pos] if pos < end else 0x80
            if b < 0x80:
                v = b
                pos += 1
            else:
                v, pos = varint(buf, pos, end)
            if num == 1:
                if dims is None:
                    dims = list(t.dims)
                dims.append(v - (1 << 64) if v >> 63 else v)
            elif num == 2:
                t.data_type = int32(v)
            elif num == 14:
                v = int32(v)
                if v in (0, 1):  # closed enum DataLocation: DEFAULT, EXTERNAL
                    t.external = v == 1
            elif num in _TENSOR_FIELDS and _TENSOR_WIRE.get(num) != VARINT:
                expect(num, wire, _TENSOR_WIRE.get(num, LEN), "TensorProto", pos)
        elif wire == LEN:
            n = buf[pos] if pos < end else 0x80
            if n < 0x80:
                a = pos + 1
                pos = a + n
                if pos > end:
                    raise _past(a, n, end)
            else:
                a, pos = length(buf, pos, end)
            if num == 8:
                t.name = str(buf[a:pos], "utf-8")
            elif num == 9:
                t._raw_a, t._raw_b = a, pos  # never copied here
            elif num == 1:
                if dims is None:
                    dims = list(t.dims)
                dims.extend(v - (1 << 64) if v >> 63 else v for v in packed_varints(buf, a, pos))
            elif num == 4 or num == 10:
                if (pos - a) % (4 if num == 4 else 8):
                    raise WireError(f"packed field {num} of {pos - a} bytes at byte {a}")
            elif num == 5 or num == 7 or num == 11:
                check_packed_varints(buf, a, pos, num)
            elif num == 3:
                t.segment = True
            elif num == 2 or num == 14:
                expect(num, wire, VARINT, "TensorProto", a)
        elif (wire == I32 and num == 4) or (wire == I64 and num == 10):
            pos = skip(buf, pos, end, wire)
        else:
            if num in _TENSOR_FIELDS:
                expect(num, wire, _TENSOR_WIRE.get(num, LEN), "TensorProto", pos)
            pos = skip(buf, pos, end, wire)
    if dims is not None:
        tup = tuple(dims)
        t.dims = (
            shared.setdefault(tup, tup)
            if shared is not None and len(tup) <= SHARED_TUPLE_LEN
            else tup
        )


def _sparse(buf: bytes, pos: int, end: int) -> SparseInfo:
    sp = SparseInfo()
    dims: list[int] = []
    while pos < end:
        num, wire, pos = key(buf, pos, end)
        if num == 1:
            expect(num, wire, LEN, "SparseTensorProto", pos)
            a, pos = length(buf, pos, end)
            values = TensorInfo(buf)
            _tensor(buf, a, pos, values)
            sp.name, sp.data_type = values.name, values.data_type
        elif num == 3 and wire == LEN:
            a, pos = length(buf, pos, end)
            dims.extend(int64(v) for v in packed_varints(buf, a, pos))
        elif num == 3:
            expect(num, wire, VARINT, "SparseTensorProto", pos)
            v, pos = varint(buf, pos, end)
            dims.append(int64(v))
        else:  # 2: indices, never read
            pos = _skip_unread(buf, pos, end, num, wire, {2: LEN}, "SparseTensorProto")
    sp.dims = tuple(dims)
    return sp


#: FunctionProto fields other than the ones read, with their wire types
_FUNCTION_SKIP = {8: LEN, 9: LEN, 12: LEN, 14: LEN}


def _function(buf: bytes, pos: int, end: int) -> FunctionInfo:
    f = FunctionInfo()
    shared: dict[Any, Any] = {}
    inputs: list[str] = []
    outputs: list[str] = []
    attributes: list[str] = []
    while pos < end:
        num, wire, pos = key(buf, pos, end)
        if num in (1, 4, 5, 6, 7, 10, 11, 13):
            expect(num, wire, LEN, "FunctionProto", pos)
            a, pos = length(buf, pos, end)
            if num == 7:
                refs: dict[str, str] = {}
                f.node.append(_node(buf, a, pos, shared, refs))
                f.refs.append(refs)
            elif num == 4:
                inputs.append(_text(buf, a, pos))
            elif num == 5:
                outputs.append(_text(buf, a, pos))
            elif num == 6:
                attributes.append(_text(buf, a, pos))
            elif num == 11:
                before = len(f.defaults)
                _attribute(buf, a, pos, f.defaults, shared)
                if len(f.defaults) > before:
                    attributes.append(next(reversed(f.defaults)))
            elif num == 1:
                f.name = _text(buf, a, pos)
            elif num == 10:
                f.domain = _text(buf, a, pos)
            else:
                f.overload = _text(buf, a, pos)
        else:
            pos = _skip_unread(buf, pos, end, num, wire, _FUNCTION_SKIP, "FunctionProto")
    f.input, f.output, f.attribute = tuple(inputs), tuple(outputs), tuple(attributes)
    return f


def _value_info(buf: bytes, pos: int, end: int) -> ValueInfo:
    vi = ValueInfo("")
    # [is a tensor type, elem_type, has a shape, dims]: merged over repeated `type` fields
    state: list[Any] = [False, 0, False, []]
    seen_type = False
    while pos < end:
        num, wire, pos = key(buf, pos, end)
        if num in (1, 2, 3, 4):
            expect(num, wire, LEN, "ValueInfoProto", pos)
            a, pos = length(buf, pos, end)
            if num == 1:
                vi.name = str(buf[a:pos], "utf-8")
            elif num == 2:
                seen_type = True
                _type(buf, a, pos, state)
        else:
            pos = skip(buf, pos, end, wire)
    if seen_type and state[0]:
        vi.elem_type = state[1]
        if state[2]:
            vi.shape = tuple(state[3])
    return vi


def _type(buf: bytes, pos: int, end: int, state: list[Any]) -> None:
    """TypeProto: only ``tensor_type`` (1) is read; another member of the ``value`` oneof (4, 5,
    7, 8, 9) replaces it."""
    while pos < end:
        num, wire, pos = key(buf, pos, end)
        if num in (1, 4, 5, 6, 7, 8, 9):
            expect(num, wire, LEN, "TypeProto", pos)
            a, pos = length(buf, pos, end)
            if num == 1:
                if not state[0]:
                    state[:] = [True, 0, False, []]
                _tensor_type(buf, a, pos, state)
            elif num != 6:  # 6: denotation
                state[:] = [False, 0, False, []]
        else:
            pos = skip(buf, pos, end, wire)


def _tensor_type(buf: bytes, pos: int, end: int, state: list[Any]) -> None:
    while pos < end:
        num, wire, pos = key(buf, pos, end)
        if num == 1:
            expect(num, wire, VARINT, "TypeProto.Tensor", pos)
            v, pos = varint(buf, pos, end)
            state[1] = int32(v)
        elif num == 2:
            expect(num, wire, LEN, "TypeProto.Tensor", pos)
            a, pos = length(buf, pos, end)
            state[2] = True
            _shape(buf, a, pos, state[3])
        else:
            pos = skip(buf, pos, end, wire)


def _shape(buf: bytes, pos: int, end: int, dims: list[int | None]) -> None:
    while pos < end:
        num, wire, pos = key(buf, pos, end)
        if num == 1:
            expect(num, wire, LEN, "TensorShapeProto", pos)
            a, pos = length(buf, pos, end)
            dims.append(_dim(buf, a, pos))
        else:
            pos = skip(buf, pos, end, wire)


def _dim(buf: bytes, pos: int, end: int) -> int | None:
    value: int | None = None
    while pos < end:
        num, wire, pos = key(buf, pos, end)
        if num == 1:
            expect(num, wire, VARINT, "TensorShapeProto.Dimension", pos)
            v, pos = varint(buf, pos, end)
            value = int64(v)
        elif num in (2, 3):
            expect(num, wire, LEN, "TensorShapeProto.Dimension", pos)
            pos = skip(buf, pos, end, wire)
            if num == 2:  # dim_param: the other member of the oneof
                value = None
        else:
            pos = skip(buf, pos, end, wire)
    return value


# ---------------------------------------------------------------------------------------------
# tensor values


def tensor_values(t: TensorInfo) -> Array | None:
    """The values of ``t`` as an :class:`Array` (decoded from ``raw_data`` or the typed field,
    as ``onnx.numpy_helper.to_array`` does), or ``None`` when they cannot be decoded without
    reading elsewhere: external data, an element type without an :class:`Array` dtype (strings,
    bfloat16, 8/4/2-bit floats and ints, complex), a segment, negative dims, or a data length that
    does not match the dims. Callers bound ``t.size`` first: this decodes whatever it is given."""
    spec = DTYPES.get(t.data_type)
    if spec is None or t.external or t.segment or any(d < 0 for d in t.dims):
        return None
    dtype, code, itemsize, typed = spec
    n = t.size
    buf = t._buf
    a, b = t._raw_a, t._raw_b
    if a >= 0:
        if b - a != n * itemsize:
            return None
        values: list[Any] = list(struct.unpack_from(f"<{n}{code}", buf, a))
        if dtype == "b1":
            values = [1 if x else 0 for x in values]
        return Array(t.dims, values, dtype)
    raw: list[Any] = []
    for start, stop in t.spans():
        _collect(buf, start, stop, typed, raw)
    if len(raw) != n:
        return None
    return Array(t.dims, _convert_typed(raw, dtype), dtype)


def _collect(buf: bytes, pos: int, end: int, want: int, out: list[Any]) -> None:
    """Append the elements of typed-data field ``want`` of the TensorProto at ``[pos, end)``
    (checked by :func:`_tensor` already)."""
    while pos < end:
        num, wire, pos = key(buf, pos, end)
        if num != want:
            pos = skip(buf, pos, end, wire)
        elif wire == LEN:
            a, pos = length(buf, pos, end)
            if want == 4:
                out.extend(packed_fixed(buf, a, pos, "f"))
            elif want == 10:
                out.extend(packed_fixed(buf, a, pos, "d"))
            else:
                out.extend(packed_varints(buf, a, pos))
        elif wire == VARINT:
            v, pos = varint(buf, pos, end)
            out.append(v)
        else:
            a = pos
            pos = skip(buf, pos, end, wire)
            out.append(struct.unpack_from("<f" if wire == I32 else "<d", buf, a)[0])


def _convert_typed(raw: list[Any], dtype: str) -> list[Any]:
    """Typed-data elements (unsigned varints, or floats) as values of ``dtype``, wrapping as
    numpy's ``astype`` does."""
    if dtype[0] == "f" and dtype != "f2":
        return raw
    if dtype == "i8":
        return [int64(v) for v in raw]
    if dtype == "u8":
        return raw
    if dtype == "u4":
        return [v & MASK32 for v in raw]
    small = [int32(v) for v in raw]  # the int32_data field
    if dtype == "i4":
        return small
    if dtype == "u1":
        return [v & 0xFF for v in small]
    if dtype == "i1":
        return [((v + 0x80) & 0xFF) - 0x80 for v in small]
    if dtype == "u2":
        return [v & 0xFFFF for v in small]
    if dtype == "i2":
        return [((v + 0x8000) & 0xFFFF) - 0x8000 for v in small]
    if dtype == "b1":
        return [1 if v & 0xFF else 0 for v in small]
    # f2: IEEE half-precision bits
    bits = [v & 0xFFFF for v in small]
    return list(struct.unpack(f"<{len(bits)}e", struct.pack(f"<{len(bits)}H", *bits)))
