"""The pure-Python ONNX reader (``onnx_wire``) against ``onnx.load``, its behaviour on hostile
bytes, and the numpy-free constant folding against the numpy code it replaced."""

from __future__ import annotations

import math
import random
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnprobe.errors import CnnprobeError, ModelError
from cnnprobe.frontends import onnx_frontend as fe
from cnnprobe.frontends.onnx_wire import (
    DTYPES,
    Array,
    GraphInfo,
    ModelInfo,
    TensorInfo,
    ValueInfo,
    read_model_bytes,
    tensor_values,
)
from cnnprobe.frontends.protowire import iter_fields
from paths import SAMPLES, zoo_dir

# ---------------------------------------------------------------------------------------------
# a minimal protobuf encoder, for encodings onnx never writes (packed attribute ints, unpacked
# tensor data, merged messages, corrupt bytes)


def varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num: int, wire: int) -> bytes:
    return varint(num << 3 | wire)


def ld(num: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return key(num, 2) + varint(len(payload)) + payload


def vf(num: int, value: int) -> bytes:
    """A varint field."""
    return key(num, 0) + varint(value)


# ---------------------------------------------------------------------------------------------
# the same facts, read both ways


def _norm(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, (list, tuple)):
        return tuple(_norm(e) for e in x)
    return x


def _onnx_values(t: onnx.TensorProto) -> Any:
    if t.data_type not in DTYPES or t.data_location == 1 or t.HasField("segment"):
        return None
    if any(d < 0 for d in t.dims) or math.prod(t.dims) > fe.FOLD_LIMIT:
        return None
    try:
        arr = numpy_helper.to_array(t)
    except ValueError:  # data that does not match the dims
        return None
    return _norm(
        [int(x) if isinstance(x, (bool, np.bool_)) else x for x in arr.reshape(-1).tolist()]
    )


def _wire_values(t: TensorInfo) -> Any:
    if math.prod(t.dims) > fe.FOLD_LIMIT:
        return None
    v = tensor_values(t)
    if v is None:
        return None
    assert v.shape == t.dims
    return _norm(v.data)


def describe_onnx_tensor(t: onnx.TensorProto) -> tuple[Any, ...]:
    return (t.name, tuple(t.dims), t.data_type, t.data_location == 1, _onnx_values(t))


def describe_wire_tensor(t: TensorInfo) -> tuple[Any, ...]:
    return (t.name, t.dims, t.data_type, t.external, _wire_values(t))


def _onnx_attr(at: onnx.AttributeProto) -> Any:
    A = onnx.AttributeProto
    return {
        A.INT: lambda: at.i,
        A.INTS: lambda: tuple(at.ints),
        A.FLOAT: lambda: _norm(at.f),
        A.FLOATS: lambda: _norm(tuple(at.floats)),
        A.STRING: lambda: at.s.decode("utf-8", "replace"),
        A.STRINGS: lambda: tuple(s.decode("utf-8", "replace") for s in at.strings),
        A.TENSOR: lambda: describe_onnx_tensor(at.t),
    }.get(at.type, lambda: "skipped")()


def _wire_attr(v: Any) -> Any:
    return describe_wire_tensor(v) if isinstance(v, TensorInfo) else _norm(v)


def _onnx_vi(vi: onnx.ValueInfoProto) -> tuple[Any, ...]:
    if not vi.type.HasField("tensor_type"):
        return (vi.name, 0, None)
    tt = vi.type.tensor_type
    shape = (
        tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        if tt.HasField("shape")
        else None
    )
    return (vi.name, tt.elem_type, shape)


def _wire_vi(vi: ValueInfo) -> tuple[Any, ...]:
    return (vi.name, vi.elem_type, vi.shape)


def describe_onnx(m: onnx.ModelProto) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ir_version": m.ir_version,
        "producer": (m.producer_name, m.producer_version),
        "opsets": [(o.domain, o.version) for o in m.opset_import],
        "graph": m.HasField("graph"),
    }
    g = m.graph
    out["name"] = g.name
    out["nodes"] = []
    for p in g.node:
        attrs = {}
        for at in p.attribute:  # a repeated name: the last one of a known type wins
            v = _onnx_attr(at)
            if v != "skipped":
                attrs[at.name] = v
        out["nodes"].append((p.name, p.op_type, p.domain, tuple(p.input), tuple(p.output), attrs))
    out["initializers"] = [describe_onnx_tensor(t) for t in g.initializer]
    out["inputs"] = [_onnx_vi(vi) for vi in g.input]
    out["outputs"] = [_onnx_vi(vi) for vi in g.output]
    out["value_info"] = [_onnx_vi(vi) for vi in g.value_info]
    return out


def describe_wire(m: ModelInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ir_version": m.ir_version,
        "producer": (m.producer_name, m.producer_version),
        "opsets": m.opset_import,
        "graph": m.graph is not None,
    }
    g = m.graph if m.graph is not None else GraphInfo()
    out["name"] = g.name
    out["nodes"] = [
        (
            p.name,
            p.op_type,
            p.domain,
            p.input,
            p.output,
            {k: _wire_attr(v) for k, v in p.attrs.items()},
        )
        for p in g.node
    ]
    out["initializers"] = [describe_wire_tensor(t) for t in g.initializer]
    out["inputs"] = [_wire_vi(vi) for vi in g.input]
    out["outputs"] = [_wire_vi(vi) for vi in g.output]
    out["value_info"] = [_wire_vi(vi) for vi in g.value_info]
    return out


def assert_same(data: bytes) -> ModelInfo:
    ours = read_model_bytes(data)
    theirs = onnx.load_model_from_string(data)
    a, b = describe_wire(ours), describe_onnx(theirs)
    for k in b:
        assert a[k] == b[k], k
    return ours


# ---------------------------------------------------------------------------------------------
# real files


def _files() -> list[Path]:
    return sorted(SAMPLES.glob("*.onnx")) + sorted(zoo_dir().glob("*.onnx"))


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_files_read_as_onnx_reads_them(path: Path) -> None:
    assert_same(path.read_bytes())


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_inferred_files_read_as_onnx_reads_them(path: Path) -> None:
    """Shape inference adds value_info with shapes and symbolic dims: the fallback's input."""
    data = onnx.shape_inference.infer_shapes(path.read_bytes(), data_prop=True).SerializeToString()
    assert_same(data)


def _node_test_models() -> list[onnx.ModelProto]:
    try:
        from onnx.backend.test.case import node
    except ImportError:  # pragma: no cover
        return []
    try:
        cases = node.collect_testcases(None)
    except TypeError:  # pragma: no cover - older signature
        cases = node.collect_testcases()  # type: ignore[call-arg]
    return [c.model for c in cases if c.model is not None]


def test_onnx_node_test_models_read_as_onnx_reads_them() -> None:
    """onnx's own operator test models: every attribute type, subgraphs (If, Loop, Scan),
    sparse tensors, type protos, strings, every element type."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = _node_test_models()
    if not models:  # pragma: no cover
        pytest.skip("onnx's node test cases are not available")
    for m in models:
        assert_same(m.SerializeToString())
    assert len(models) > 500


# ---------------------------------------------------------------------------------------------
# hand-made models: every encoding the frontend meets


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto] | None = None,
    inits: list[onnx.TensorProto] | None = None,
    opset: int = 17,
    ir: int = 8,
    outputs: list[onnx.ValueInfoProto] | None = None,
) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    g = helper.make_graph(
        nodes,
        "g",
        inputs if inputs is not None else [x],
        outputs or [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        inits or [],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="t")
    m.ir_version = ir
    return m


def _with_extra_node(m: onnx.ModelProto, node_bytes: bytes) -> bytes:
    """``m`` serialized with one more node (given as raw bytes) at the end of its graph: appended
    repeated fields are part of the message, as protobuf merges concatenated messages."""
    graph = m.graph.SerializeToString() + ld(1, node_bytes)
    rest = onnx.ModelProto()
    rest.CopyFrom(m)
    rest.ClearField("graph")
    return rest.SerializeToString() + ld(7, graph)


def test_attribute_types() -> None:
    node = helper.make_node(
        "Custom",
        ["x"],
        ["y"],
        name="n",
        domain="my.domain",
        i=-7,
        ints=[1, -2, 3, 1 << 40, -(1 << 62)],
        f=0.1,
        floats=[1.5, -2.25, float("inf")],
        s="héllo",
        strings=["a", "", "ß"],
        t=helper.make_tensor("tt", TensorProto.INT64, [2], [5, -6]),
    )
    empty = helper.make_attribute("empty_ints", [], attr_type=onnx.AttributeProto.INTS)
    node.attribute.append(empty)
    info = assert_same(_model([node]).SerializeToString())
    assert info.graph is not None
    a = info.graph.node[0].attrs
    assert a["i"] == -7 and a["ints"] == (1, -2, 3, 1 << 40, -(1 << 62))
    assert a["f"] == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert a["s"] == "héllo" and a["strings"] == ("a", "", "ß") and a["empty_ints"] == ()
    assert tensor_values(a["t"]) == Array((2,), [5, -6], "i8")


def test_packed_and_unpacked_repeated_scalars() -> None:
    """onnx writes attribute ints/floats and tensor dims unpacked and typed tensor data packed;
    other writers may do the opposite: both are valid protobuf."""
    ints = [3, -1, 1 << 33]
    floats = [0.5, -4.0]
    packed_ints = ld(1, b"ints") + vf(20, 7) + ld(8, b"".join(varint(v) for v in ints))
    packed_floats = ld(1, b"floats") + vf(20, 6) + ld(7, struct.pack(f"<{len(floats)}f", *floats))
    unpacked_tensor = (
        b"".join(vf(1, d) for d in (3,))  # dims, unpacked (onnx's own way)
        + vf(2, TensorProto.INT64)
        + b"".join(vf(7, v) for v in (-1, 2, 3))  # int64_data, unpacked
        + ld(8, b"k")
    )
    packed_dims_f32 = (
        ld(1, varint(2) + varint(1))  # dims packed
        + vf(2, TensorProto.FLOAT)
        + b"".join(key(4, 5) + struct.pack("<f", v) for v in (1.0, -2.0))  # float_data unpacked
    )
    node = (
        ld(1, b"x")
        + ld(2, b"y")
        + ld(4, b"Custom")
        + ld(5, packed_ints)
        + ld(5, packed_floats)
        + ld(5, ld(1, b"t1") + vf(20, 4) + ld(5, unpacked_tensor))
        + ld(5, ld(1, b"t2") + vf(20, 4) + ld(5, packed_dims_f32))
    )
    data = _with_extra_node(_model([helper.make_node("Relu", ["x"], ["r"])]), node)
    info = assert_same(data)
    assert info.graph is not None
    a = info.graph.node[-1].attrs
    assert a["ints"] == tuple(ints) and a["floats"] == tuple(floats)
    assert tensor_values(a["t1"]) == Array((3,), [-1, 2, 3], "i8")
    assert tensor_values(a["t2"]) == Array((2, 1), [1.0, -2.0], "f4")


@pytest.mark.parametrize(
    "dtype",
    [
        TensorProto.INT64,
        TensorProto.INT32,
        TensorProto.FLOAT,
        TensorProto.DOUBLE,
        TensorProto.FLOAT16,
        TensorProto.UINT8,
        TensorProto.INT8,
        TensorProto.UINT16,
        TensorProto.INT16,
        TensorProto.UINT32,
        TensorProto.UINT64,
        TensorProto.BOOL,
        TensorProto.BFLOAT16,
        TensorProto.STRING,
    ],
)
@pytest.mark.parametrize("raw", [True, False])
def test_constant_tensors_raw_and_typed(dtype: int, raw: bool) -> None:
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    if dtype == TensorProto.STRING:
        arr = np.array([b"a", b"bc"], dtype=object)
        if raw:
            pytest.skip("strings have no raw_data")
    elif dtype == TensorProto.BOOL:
        arr = np.array([[True, False, True]])
    elif np.dtype(np_type).kind == "f" or dtype == TensorProto.BFLOAT16:
        arr = np.array([[0.5, -2.0, 65504.0], [1e-3, 3.0, -0.0]]).astype(np_type)
    else:
        info = np.iinfo(np_type)
        arr = np.array([int(info.min), int(info.max), 0, 1, 7], dtype=object).astype(np_type)
    if raw:
        t = numpy_helper.from_array(arr, "v")
    else:
        vals = arr.reshape(-1).tolist()
        if dtype in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
            t = helper.make_tensor("v", dtype, arr.shape, arr.reshape(-1), raw=False)
        else:
            t = helper.make_tensor("v", dtype, arr.shape, vals, raw=False)
    node = helper.make_node("Constant", [], ["c"], value=t)
    info = assert_same(
        _model([node, helper.make_node("Add", ["x", "c"], ["y"])]).SerializeToString()
    )
    assert info.graph is not None
    value = info.graph.node[0].attrs["value"]
    assert value.dims == arr.shape
    got = tensor_values(value)
    if dtype in (TensorProto.STRING, TensorProto.BFLOAT16):
        assert got is None  # no Array dtype: the shape is known, the value is not
    else:
        assert got is not None and got.data == [
            int(x) if isinstance(x, bool) else x for x in arr.reshape(-1).tolist()
        ]


def test_ir3_initializers_listed_as_inputs_and_symbolic_dims() -> None:
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    shape = numpy_helper.from_array(np.array([0, -1], np.int64), "shape")
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", None]),
        helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3]),
        helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("Reshape", ["c", "shape"], ["y"]),
    ]
    m = _model(nodes, inputs, [w, shape], opset=8, ir=3)
    m.graph.value_info.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", 4, 6, 6]))
    m.graph.value_info.append(helper.make_tensor_value_info("nothing", TensorProto.FLOAT, None))
    seq = helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, [1])
    m.graph.value_info.append(seq)
    info = assert_same(m.SerializeToString())
    assert info.graph is not None
    assert info.graph.input[0].shape == (None, 3, None, None)
    assert [vi.shape for vi in info.graph.value_info] == [(None, 4, 6, 6), None, None]
    graph = fe.load_onnx_bytes(m.SerializeToString(), "m.onnx", input_shape=(1, 3, 10, 10))
    assert graph.input.name == "x" and graph.other_inputs == ()
    assert graph.meta["ir_version"] == "3" and graph.meta["opset"] == "8"
    reshape = graph.nodes[-1]
    assert reshape.attrs["target"] == (0, -1)


def test_external_data_is_never_read(tmp_path: Path) -> None:
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    small = numpy_helper.from_array(np.array([1, 1, 2, 2], np.int64), "pads")
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    m = _model(nodes, inits=[w, small])
    onnx.save_model(
        m,
        tmp_path / "m.onnx",
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    (tmp_path / "weights.bin").unlink()  # would make any read fail
    data = (tmp_path / "m.onnx").read_bytes()
    info = assert_same(data)
    assert info.graph is not None
    assert all(t.external for t in info.graph.initializer)
    assert all(tensor_values(t) is None for t in info.graph.initializer)
    graph = fe.load_onnx(str(tmp_path / "m.onnx"))
    # an external small operand is not loaded: its value is unknown, never guessed as zeros
    assert graph.nodes[0].attrs["pads"] is None
    assert graph.declared_shapes["w"] == (4, 3, 3, 3)
    from cnnprobe import analyze

    result = analyze(tmp_path / "m.onnx")
    assert result.layers[0].status == "uncertain"
    assert "pads-not-static" in [d.code for d in result.diagnostics]


def test_subgraphs_are_skipped_whatever_their_depth() -> None:
    """If/Loop bodies are never entered: a 5,000-deep nest of If nodes costs no recursion
    (onnx's own parser gives up at depth 100)."""
    depth = 5_000
    node = ld(2, b"z") + ld(4, b"Relu")  # the innermost NodeProto
    for _ in range(depth):
        attr = ld(1, b"then_branch") + vf(20, 5) + ld(6, ld(1, node))  # g: a GraphProto
        node = ld(1, b"cond") + ld(2, b"z") + ld(4, b"If") + ld(5, attr)
    data = _with_extra_node(_model([helper.make_node("Relu", ["x"], ["r"])]), node)
    info = read_model_bytes(data)
    assert info.graph is not None
    assert info.graph.node[-1].op_type == "If" and info.graph.node[-1].attrs == {}


def test_merged_messages_and_last_scalar_wins() -> None:
    """A sub-message field that appears twice is merged; a scalar's last value wins."""
    m = _model([helper.make_node("Relu", ["x"], ["y"])])
    extra_graph = helper.make_graph(
        [helper.make_node("Relu", ["y"], ["z"])],
        "second",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    data = m.SerializeToString() + ld(7, extra_graph.SerializeToString()) + vf(1, 9)
    info = assert_same(data)
    assert info.ir_version == 9 and info.graph is not None
    assert [n.op_type for n in info.graph.node] == ["Relu", "Relu"]
    assert info.graph.name == "second"


def test_big_raw_data_is_not_copied() -> None:
    big = numpy_helper.from_array(np.zeros((5_000_000,), np.float32), "big")  # 20 MB
    m = _model([helper.make_node("Relu", ["x"], ["y"])], inits=[big])
    data = m.SerializeToString()
    tracemalloc.start()
    try:
        info = read_model_bytes(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.graph is not None and info.graph.initializer[0].dims == (5_000_000,)
    assert peak < 1_000_000


# ---------------------------------------------------------------------------------------------
# hostile input: ModelError with one line, or a result; never another exception


def _check_hostile(data: bytes) -> None:
    try:
        info = read_model_bytes(data)
    except ModelError as exc:
        assert exc.path is None and "\n" not in exc.message
        assert exc.message.startswith("not a valid ONNX model")
        return
    assert isinstance(info, ModelInfo)
    if info.graph is not None:  # values of small tensors decode or are None, never raise
        for t in info.graph.initializer:
            if math.prod(t.dims) <= fe.FOLD_LIMIT:
                tensor_values(t)


def _load_hostile(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "m.onnx"
    p.write_bytes(data)
    try:
        fe.load_onnx(str(p))
    except CnnprobeError as exc:
        assert "\n" not in str(exc)


def test_truncations(tmp_path: Path) -> None:
    data = (SAMPLES / "mnist_pooled.onnx").read_bytes()
    cuts = sorted({*range(0, 400), *range(0, len(data), max(1, len(data) // 300))})
    for n in cuts:
        _check_hostile(data[:n])
    for n in cuts[::10]:
        _load_hostile(tmp_path, data[:n])


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    for size in (1, 2, 3, 7, 16, 100, 1000, 4096):
        data = bytes(rng.randrange(256) for _ in range(size))
        _check_hostile(data)
    _load_hostile(tmp_path, bytes(rng.randrange(256) for _ in range(4096)))


@pytest.mark.parametrize("seed", range(4))
def test_mutations(seed: int, tmp_path: Path) -> None:
    """Bytes flipped in a real model: every header, length and key gets hit."""
    base = (SAMPLES / "residual_net.onnx").read_bytes()
    rng = random.Random(seed)
    for k in range(300):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            data[pos] = rng.choice([0, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        _check_hostile(bytes(data))
        if k % 30 == 0:
            _load_hostile(tmp_path, bytes(data))


GOOD = _model([helper.make_node("Relu", ["x"], ["y"])]).SerializeToString()


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (key(7, 2) + varint(1 << 40) + b"\x00", "runs past the end"),
        (key(7, 2) + varint(5) + b"\x0a", "runs past the end"),
        (GOOD + key(7, 2) + varint(len(GOOD) * 2), "runs past the end"),
        (key(1, 0) + b"\xff" * 10 + b"\x01", "varint longer than 10 bytes"),
        (key(1, 0) + b"\xff\xff", "truncated varint"),
        (b"\x80", "truncated varint"),
        (key(1, 2) + varint(1) + b"x", "field 1 of ModelProto is length-delimited"),
        (key(7, 0) + varint(1), "field 7 of ModelProto is varint"),
        (key(7, 2) + varint(2) + key(1, 0) + b"\x00", "field 1 of GraphProto is varint"),
        (ld(7, ld(1, key(4, 0) + b"\x01")), "field 4 of NodeProto is varint"),
        (ld(7, ld(1, ld(5, key(20, 2) + b"\x00"))), "field 20 of AttributeProto"),
        (ld(7, ld(5, key(9, 0) + b"\x00")), "field 9 of TensorProto is varint"),
        (ld(7, ld(5, ld(4, b"\x00\x00\x00"))), "packed field 4 of 3 bytes"),
        (ld(7, ld(5, ld(7, b"\x80"))), "truncated varint in packed field 7"),
        (ld(7, ld(11, ld(2, ld(1, key(2, 0) + b"\x00")))), "field 2 of TypeProto.Tensor"),
        (key(9, 3), "unsupported wire type 3"),
        (key(9, 7), "unsupported wire type 7"),
        (b"\x00\x01", "field number 0"),
        (ld(7, ld(1, ld(3, b"\xff\xfe"))), "not UTF-8"),
        (ld(7, ld(1, ld(1, b"a\xc3"))), "not UTF-8"),
        (ld(8, ld(1, b"\xc0\x80")), "not UTF-8"),
    ],
)
def test_malformed(data: bytes, needle: str) -> None:
    with pytest.raises(ModelError) as info:
        read_model_bytes(data)
    assert needle in info.value.message and "\n" not in info.value.message
    assert info.value.message.startswith("not a valid ONNX model (cannot parse protobuf: ")


def test_unknown_fields_and_wire_types_of_unknown_fields_are_skipped() -> None:
    extra = vf(999, 5) + key(998, 1) + b"\x00" * 8 + key(997, 5) + b"\x00" * 4 + ld(996, b"zz")
    info = assert_same(GOOD + extra)
    assert info.graph is not None and len(info.graph.node) == 1


def test_frontend_messages_keep_their_checks(tmp_path: Path) -> None:
    """Garbage that happens to be valid protobuf still fails as before."""
    p = tmp_path / "m.onnx"
    for data, needle in [
        (vf(999, 1), "no IR version or no graph"),
        (vf(1, 7), "no IR version or no graph"),
        (vf(1, 7) + ld(7, b""), "the ONNX graph has no nodes"),
        (ld(7, ld(1, b"")), "no IR version or no graph"),
    ]:
        p.write_bytes(data)
        with pytest.raises(ModelError) as info:
            fe.load_onnx(str(p))
        assert needle in str(info.value) and str(p) in str(info.value)


def test_iter_fields() -> None:
    data = vf(1, 300) + ld(2, b"abc") + key(3, 5) + b"\x01\x02\x03\x04" + key(4, 1) + b"\x00" * 8
    fields = list(iter_fields(data))
    assert [(n, w) for n, w, _, _ in fields] == [(1, 0), (2, 2), (3, 5), (4, 1)]
    assert fields[0][2] == 300
    _, _, a, b = fields[1]
    assert data[a:b] == b"abc"


# ---------------------------------------------------------------------------------------------
# the normal path needs neither onnx nor numpy; the fallback still runs shape inference


def test_normal_path_imports_neither_onnx_nor_numpy() -> None:
    code = (
        "import sys\n"
        "from cnnprobe.frontends import load_graph\n"
        f"g = load_graph({str(SAMPLES / 'residual_net.onnx')!r})\n"
        "assert g.nodes, 'no nodes'\n"
        "print(sorted(m for m in ('onnx', 'numpy', 'google.protobuf') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_shape_inference_fallback() -> None:
    """A Conv without kernel_shape whose weight shape is only known through inference."""
    w = numpy_helper.from_array(np.ones((3, 36), np.float32), "w_flat")
    shape = numpy_helper.from_array(np.array([3, 4, 3, 3], np.int64), "wshape")
    nodes = [
        helper.make_node("Reshape", ["w_flat", "wshape"], ["w"]),
        helper.make_node("Relu", ["w"], ["w2"]),
        helper.make_node("ConvTranspose", ["x", "w2"], ["y"]),
    ]
    m = _model(nodes, inits=[w, shape])
    graph = fe.load_onnx_bytes(m.SerializeToString(), "m.onnx")
    conv = graph.nodes[-1]
    assert conv.attrs["kernel"] == (3, 3) and conv.attrs["out_channels"] == 4
    assert graph.declared_shapes["w2"] == (3, 4, 3, 3)


# ---------------------------------------------------------------------------------------------
# folding without numpy gives what the numpy code gave


def _np(a: Array) -> np.ndarray:
    return np.array(a.data, dtype=np.dtype(a.dtype)).reshape(a.shape)


def _reference_fold(op: str, a: dict[str, Any], v: list[Any]) -> np.ndarray | None:
    """The numpy implementation this module replaced (opset >= 10)."""
    if op == "Unsqueeze":
        axes = list(a["axes"]) if "axes" in a else [int(x) for x in np.asarray(v[1]).reshape(-1)]
        out = np.asarray(v[0])
        rank = out.ndim + len(axes)
        for ax in sorted(x % rank for x in axes):
            out = np.expand_dims(out, ax)
        return out
    if op == "Squeeze":
        sq = (
            a.get("axes")
            if "axes" in a
            else ([int(x) for x in np.asarray(v[1]).reshape(-1)] if len(v) > 1 else None)
        )
        return np.squeeze(np.asarray(v[0]), axis=tuple(sq) if sq is not None else None)
    if op == "Concat":
        return np.concatenate([np.atleast_1d(x) for x in v], axis=int(a["axis"]))
    if op == "Gather":
        if np.asarray(v[1]).dtype not in (np.int32, np.int64):  # ONNX: int32 or int64 indices
            raise TypeError("Gather indices must be int32 or int64")
        return np.take(np.asarray(v[0]), np.asarray(v[1]), axis=int(a.get("axis", 0)))
    if op in ("Add", "Sub", "Mul", "Div"):
        x, y = np.asarray(v[0]), np.asarray(v[1])
        if op == "Div" and x.dtype.kind in "iu":
            return np.asarray(x // y)
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
        return np.asarray(fn(x, y))
    if op == "Mod":  # ONNX Mod (numpy mod / fmod); integer or float, no bools, no zero divisor
        x, y = np.asarray(v[0]), np.asarray(v[1])
        if x.dtype.kind == "b" or y.dtype.kind == "b":
            raise TypeError("Mod of booleans")
        if not a.get("fmod", 0) and (x.dtype.kind == "f" or y.dtype.kind == "f"):
            raise TypeError("Mod of floats needs fmod=1")
        if x.size and y.size and not np.all(np.broadcast_arrays(x, y)[1]):
            raise ZeroDivisionError("Mod by zero")
        return np.asarray(np.fmod(x, y) if a.get("fmod", 0) else np.mod(x, y))
    if op == "Transpose":
        x = np.asarray(v[0])
        perm = a.get("perm")
        return np.transpose(x, None if perm is None else tuple(perm))
    if op == "Slice":
        data = np.asarray(v[0])
        starts, ends = np.asarray(v[1]).reshape(-1), np.asarray(v[2]).reshape(-1)
        axes = np.asarray(v[3]).reshape(-1) if len(v) > 3 else np.arange(len(starts))
        steps = np.asarray(v[4]).reshape(-1) if len(v) > 4 else np.ones(len(starts), np.int64)
        idx: list[Any] = [slice(None)] * data.ndim
        for ax, s, e, st in zip(axes, starts, ends, steps):
            idx[int(ax)] = slice(int(s), int(min(e, fe.BIG)), int(st))
        return np.asarray(data[tuple(idx)])
    if op == "Cast":
        x = np.asarray(v[0])
        dt = np.dtype(a["to_code"])
        if dt.kind in "iu" and x.dtype.kind == "f":  # numpy's result is undefined out of range
            info = np.iinfo(dt)
            # (compared in Python: exact between floats and ints)
            if not all(math.isfinite(f) and info.min - 1 < f < info.max + 1
                       for f in x.reshape(-1).tolist()):
                raise OverflowError("out of range")
        return np.asarray(x.astype(dt))
    if op == "Equal":
        return np.asarray(np.equal(np.asarray(v[0]), np.asarray(v[1])))
    if op == "Where":
        return np.asarray(np.where(np.asarray(v[0]), np.asarray(v[1]), np.asarray(v[2])))
    if op == "Reshape":
        target = [int(x) for x in np.asarray(v[1]).reshape(-1)]
        data = np.asarray(v[0])
        return data.reshape([data.shape[k] if t == 0 else t for k, t in enumerate(target)])
    raise AssertionError(op)


_CODES = ["i8", "i8", "i8", "i4", "f4", "f8", "f2", "u1", "i1", "b1", "u8", "i2"]
_VALUES = [0, 1, -1, 2, 3, -3, 7, 255, 2**31 - 1, 2**62, 2**63 - 1, -(2**63), 0.5, -2.5, 1e30]


def _rand_array(rng: random.Random) -> Array:
    dtype = rng.choice(_CODES)
    shape = tuple(rng.choice([0, 1, 1, 2, 3]) for _ in range(rng.choice([0, 1, 1, 1, 2, 3])))
    raw = [rng.choice(_VALUES) for _ in range(math.prod(shape))]
    npdt = np.dtype(dtype)
    if npdt.kind == "f":
        arr = np.array([float(x) for x in raw], dtype=np.float64).astype(npdt)
    elif npdt.kind == "b":
        arr = np.array([bool(x) for x in raw], dtype=bool)
    else:
        info = np.iinfo(npdt)
        arr = np.array([min(max(int(x), info.min), info.max) for x in raw], dtype=npdt)
    data = [int(x) for x in arr.tolist()] if npdt.kind == "b" else arr.tolist()
    return Array(shape, data, dtype)


def test_folding_matches_numpy() -> None:
    rng = random.Random(0)
    ops = ["Unsqueeze", "Squeeze", "Concat", "Gather", "Add", "Sub", "Mul", "Div", "Slice"]
    ops += ["Reshape", "Mod", "Transpose", "Equal", "Where", "Cast"]
    compared = 0
    with np.errstate(all="ignore"):
        for _ in range(8000):
            op = rng.choice(ops)
            n_in = {
                "Concat": rng.randint(1, 3),
                "Slice": rng.randint(3, 5),
                "Transpose": 1,
                "Cast": 1,
                "Where": 3,
            }.get(op, 2)
            if op in ("Unsqueeze", "Squeeze") and rng.random() < 0.4:
                n_in = 1
            v = [_rand_array(rng) for _ in range(n_in)]
            if op in ("Reshape", "Slice", "Unsqueeze", "Squeeze", "Gather") and rng.random() < 0.7:
                for k in range(1, len(v)):  # mostly valid-looking integer operands
                    v[k] = Array((rng.randint(0, 3),), [], "i8")
                    v[k].data = [rng.randint(-3, 3) for _ in range(v[k].shape[0])]
            attrs: dict[str, Any] = {}
            if op == "Mod":
                attrs["fmod"] = rng.choice([0, 1])
            if op == "Cast":
                to = rng.choice([1, 2, 3, 5, 6, 7, 9, 10, 11, 12, 13])
                attrs["to"] = to
                attrs["to_code"] = fe._CAST_TO[to]
            if op == "Transpose" and rng.random() < 0.8:
                perm = list(range(v[0].ndim))
                rng.shuffle(perm)
                if rng.random() < 0.1 and perm:
                    perm[0] = len(perm)  # not a permutation
                attrs["perm"] = tuple(perm)
            if op in ("Concat", "Gather") or (op in ("Unsqueeze", "Squeeze") and n_in == 1):
                key_ = "axis" if op in ("Concat", "Gather") else "axes"
                if key_ == "axis":
                    attrs[key_] = rng.randint(-2, 2)
                elif op == "Unsqueeze" or rng.random() < 0.7:
                    attrs[key_] = tuple(rng.randint(-3, 3) for _ in range(rng.randint(1, 2)))
            try:
                want = _reference_fold(op, attrs, [_np(x) for x in v])
            except (ValueError, IndexError, TypeError, OverflowError, ZeroDivisionError):
                want = None
            try:
                got = fe._fold_op(op, attrs, v, 17)
                if got is not None:
                    fe._check_shape(got.shape, got.dtype)
            except (ValueError, IndexError, KeyError, TypeError, OverflowError, ZeroDivisionError):
                got = None
            if want is not None and want.size > fe.FOLD_LIMIT:
                continue
            if want is None:
                assert got is None, (op, attrs, v)
                continue
            assert got is not None, (op, attrs, v, want)
            assert got.shape == want.shape, (op, attrs, v)
            expected = [int(x) if isinstance(x, bool) else x for x in want.reshape(-1).tolist()]
            assert _norm(got.data) == _norm(expected), (op, attrs, v)
            assert _np(got).dtype == want.dtype, (op, attrs, v, got.dtype, want.dtype)
            compared += 1
    assert compared > 2000


def test_folding_zero_size_arrays_with_huge_dims() -> None:
    """numpy represents shape (2**40, 0) without iterating over it: so must the folding."""
    empty = Array((2**40, 0), [], "i8")
    ints = Array((2,), [0, 5], "i8")
    cases: list[tuple[str, dict[str, Any], list[Array]]] = [
        ("Slice", {}, [empty, Array((1,), [1], "i8"), Array((1,), [2**50], "i8")]),
        ("Gather", {"axis": 1}, [empty, Array((0,), [], "i8")]),
        ("Gather", {"axis": 1}, [empty, ints]),  # out of range: numpy raises
        ("Concat", {"axis": 1}, [empty, empty]),
        ("Add", {}, [empty, Array((1, 1), [1], "i8")]),
        ("Mul", {}, [empty, Array((0,), [], "i8")]),
        ("Unsqueeze", {"axes": (0,)}, [empty]),
        ("Reshape", {}, [empty, Array((2,), [0, 2**40], "i8")]),
    ]
    with np.errstate(all="ignore"):
        for op, attrs, v in cases:
            try:
                want = _reference_fold(op, attrs, [_np(x) for x in v])
            except (ValueError, IndexError, TypeError, OverflowError, MemoryError):
                want = None  # MemoryError: numpy allocates (2**40, 2) before checking indices
            try:
                got = fe._fold_op(op, attrs, v, 17)
            except (ValueError, IndexError, KeyError, TypeError, OverflowError):
                got = None
            assert (got is None) == (want is None), op
            if got is not None and want is not None:
                assert got.shape == want.shape and got.data == [], op


# ---------------------------------------------------------------------------------------------
# the two deliberate differences from the numpy/onnx frontend


def test_big_constant_keeps_its_shape() -> None:
    """A Constant over FOLD_LIMIT elements has no value but keeps its dims (the old frontend
    recorded shape () for it, so a Conv weight given that way lost its kernel size)."""
    big = numpy_helper.from_array(np.ones((64, 3, 5, 5), np.float32), "big")
    nodes = [
        helper.make_node("Constant", [], ["w"], value=big),
        helper.make_node("Conv", ["x", "w"], ["y"], pads=[2, 2, 2, 2]),
    ]
    graph = fe.load_onnx_bytes(_model(nodes).SerializeToString(), "m.onnx")
    assert graph.declared_shapes["w"] == (64, 3, 5, 5)
    conv = graph.nodes[-1]
    assert conv.attrs["kernel"] == (5, 5) and conv.attrs["out_channels"] == 64


def test_concat_without_axis_is_a_model_error() -> None:
    """Folding a Concat without ``axis`` raised a bare KeyError before; now the converter's
    'malformed' ModelError reports it."""
    one = numpy_helper.from_array(np.array([1], np.int64), "one")
    nodes = [
        helper.make_node("Concat", ["one", "one"], ["two"]),
        helper.make_node("Reshape", ["x", "two"], ["y"]),
    ]
    with pytest.raises(ModelError, match=r"Concat.*malformed"):
        fe.load_onnx_bytes(_model(nodes, inits=[one]).SerializeToString(), "m.onnx")


def test_shape_inference_gets_weights_without_their_values() -> None:
    """Inference needs the dims of large weights, never their values: they are emptied first
    (a model of hundreds of MB would otherwise be copied several times over); small operands
    keep theirs, since data propagation folds them."""
    big = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w")  # 216 values
    big_fold = numpy_helper.from_array(np.ones((fe.FOLD_LIMIT + 1,), np.float32), "huge")
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["c", "shape"], ["y"]),
        helper.make_node("Add", ["huge", "huge"], ["unused"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("unused", TensorProto.FLOAT, None)],
        [big, big_fold, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    out = onnx.load_model_from_string(fe.infer_shapes(model.SerializeToString(), "m.onnx"))
    inits = {t.name: t for t in out.graph.initializer}
    assert list(inits["huge"].dims) == [fe.FOLD_LIMIT + 1] and not inits["huge"].raw_data
    assert inits["w"].raw_data == big.raw_data  # small enough to fold: kept
    assert numpy_helper.to_array(inits["shape"]).tolist() == [1, -1]
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in [*out.graph.value_info, *out.graph.output]}
    assert shapes["y"] == [1, 128] and shapes["c"] == [1, 8, 4, 4]


def test_sparse_initializers_give_name_dims_and_type() -> None:
    vals = onnx.numpy_helper.from_array(np.array([1, 2], np.int64), "s")
    idx = onnx.numpy_helper.from_array(np.array([[0, 1], [2, 3]], np.int64), "s_idx")
    sparse = onnx.helper.make_sparse_tensor(vals, idx, [4, 5])
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 4, 4])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [], sparse_initializer=[sparse]
    )
    data = onnx.helper.make_model(graph).SerializeToString()
    info = assert_same(data)
    assert info.graph is not None
    [sp] = info.graph.sparse_initializer
    assert (sp.name, sp.dims, sp.data_type) == ("s", (4, 5), onnx.TensorProto.INT64)
