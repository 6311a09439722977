"""Build the small ONNX sample models used by cnnprobe's tests and docs.

Run ``python sample_models/make_onnx_samples.py``: every model is written next to this script.
Weights are random (fixed seed), so the models are only good for geometry and shape analysis.
Tensor names equal the name of the node that produces them; the image input is called ``input``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
SEED = 20240611
OUT_DIR = Path(__file__).resolve().parent


class GraphBuilder:
    """Collects nodes and float32 initializers for one ONNX graph."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def weight(self, name: str, shape: Sequence[int], fan_in: int) -> str:
        scale = float(np.sqrt(2.0 / max(fan_in, 1)))
        data = (self.rng.standard_normal(tuple(shape)) * scale).astype(np.float32)
        self.initializers.append(numpy_helper.from_array(data, name))
        return name

    def bias(self, name: str, size: int) -> str:
        data = (self.rng.standard_normal(size) * 0.1).astype(np.float32)
        self.initializers.append(numpy_helper.from_array(data, name))
        return name

    def const(self, name: str, data: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(data, name))
        return name

    def node(self, op: str, inputs: Sequence[str], name: str, **attrs: object) -> str:
        """Add a node whose single output tensor is named like the node."""
        node = helper.make_node(op, list(inputs), [name], name=name)
        node.attribute.extend(
            helper.make_attribute(key, value) for key, value in sorted(attrs.items())
        )
        self.nodes.append(node)
        return name

    def conv(
        self,
        x: str,
        name: str,
        c_in: int,
        c_out: int,
        kernel: Sequence[int],
        **attrs: object,
    ) -> str:
        fan_in = c_in * int(np.prod(kernel))
        w = self.weight(f"{name}.weight", (c_out, c_in, *kernel), fan_in)
        b = self.bias(f"{name}.bias", c_out)
        return self.node("Conv", [x, w, b], name, kernel_shape=list(kernel), **attrs)

    def gemm(self, x: str, name: str, n_in: int, n_out: int) -> str:
        w = self.weight(f"{name}.weight", (n_in, n_out), n_in)
        b = self.bias(f"{name}.bias", n_out)
        return self.node("Gemm", [x, w, b], name)

    def model(
        self,
        graph_name: str,
        inputs: Sequence[onnx.ValueInfoProto],
        output: str,
        output_shape: Sequence[int],
        value_info: Sequence[onnx.ValueInfoProto] = (),
        extra_opsets: Sequence[onnx.OperatorSetIdProto] = (),
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            graph_name,
            list(inputs),
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, list(output_shape))],
            initializer=self.initializers,
            value_info=list(value_info),
        )
        opsets = [helper.make_opsetid("", OPSET), *extra_opsets]
        model = helper.make_model(
            graph, opset_imports=opsets, producer_name="cnnprobe-samples", ir_version=IR_VERSION
        )
        return model


def float_input(name: str, shape: Sequence[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def mnist_convnet() -> onnx.ModelProto:
    g = GraphBuilder(SEED + 1)
    x = "input"
    for i, (c_in, c_out) in enumerate([(1, 32), (32, 64), (64, 64)], start=1):
        x = g.conv(x, f"conv{i}", c_in, c_out, (3, 3))
        x = g.node("Relu", [x], f"relu{i}")
    return g.model("mnist_convnet", [float_input("input", [1, 1, 28, 28])], x, [1, 64, 22, 22])


def mnist_pooled() -> onnx.ModelProto:
    g = GraphBuilder(SEED + 2)
    pool = {"kernel_shape": [2, 2], "strides": [2, 2]}
    # 28 -> conv 26 -> pool 13 -> conv 11 -> pool 5 -> conv 3: flatten 64 * 3 * 3 = 576
    x = g.conv("input", "conv1", 1, 32, (3, 3))
    x = g.node("Relu", [x], "relu1")
    x = g.node("MaxPool", [x], "pool1", **pool)
    x = g.conv(x, "conv2", 32, 64, (3, 3))
    x = g.node("Relu", [x], "relu2")
    x = g.node("MaxPool", [x], "pool2", **pool)
    x = g.conv(x, "conv3", 64, 64, (3, 3))
    x = g.node("Relu", [x], "relu3")
    x = g.node("Flatten", [x], "flatten", axis=1)
    x = g.gemm(x, "dense", 64 * 3 * 3, 10)
    x = g.node("Softmax", [x], "softmax", axis=1)
    return g.model("mnist_pooled", [float_input("input", [1, 1, 28, 28])], x, [1, 10])


def residual_net() -> onnx.ModelProto:
    g = GraphBuilder(SEED + 3)
    same = {"pads": [1, 1, 1, 1]}
    x = g.conv("input", "stem_conv", 3, 16, (3, 3), **same)
    stem = g.node("Relu", [x], "stem_relu")
    # main path: 3x3 stride 2 then 3x3; shortcut: strided 1x1 projection
    y = g.conv(stem, "block_conv1", 16, 32, (3, 3), strides=[2, 2], **same)
    y = g.node("Relu", [y], "block_relu1")
    y = g.conv(y, "block_conv2", 32, 32, (3, 3), **same)
    s = g.conv(stem, "shortcut_conv", 16, 32, (1, 1), strides=[2, 2])
    x = g.node("Add", [y, s], "block_add")
    x = g.node("Relu", [x], "block_relu2")
    x = g.node("GlobalAveragePool", [x], "gap")
    x = g.node("Flatten", [x], "flatten", axis=1)
    x = g.gemm(x, "fc", 32, 10)
    return g.model("residual_net", [float_input("input", [1, 3, 32, 32])], x, [1, 10])


def dilated_1d() -> onnx.ModelProto:
    g = GraphBuilder(SEED + 4)
    # 64 -> 62 (d=1) -> 58 (d=2) -> 50 (d=4)
    x = g.conv("input", "conv1", 4, 8, (3,), dilations=[1])
    x = g.node("Relu", [x], "relu1")
    x = g.conv(x, "conv2", 8, 8, (3,), dilations=[2])
    x = g.node("Relu", [x], "relu2")
    x = g.conv(x, "conv3", 8, 8, (3,), dilations=[4])
    return g.model("dilated_1d", [float_input("input", [1, 4, 64])], x, [1, 8, 50])


def unet_like() -> onnx.ModelProto:
    g = GraphBuilder(SEED + 5)
    same = {"pads": [1, 1, 1, 1]}
    pool = {"kernel_shape": [2, 2], "strides": [2, 2]}
    x = g.conv("input", "enc1_conv", 3, 8, (3, 3), **same)
    enc1 = g.node("Relu", [x], "enc1_relu")  # 8 x 64 x 64
    x = g.node("MaxPool", [enc1], "pool1", **pool)  # 8 x 32 x 32
    x = g.conv(x, "enc2_conv", 8, 16, (3, 3), **same)
    enc2 = g.node("Relu", [x], "enc2_relu")  # 16 x 32 x 32
    x = g.node("MaxPool", [enc2], "pool2", **pool)  # 16 x 16 x 16
    x = g.conv(x, "bottleneck_conv", 16, 16, (3, 3), **same)
    # ConvTranspose weight layout: [C_in, C_out / group, kH, kW]
    w = g.weight("up1.weight", (16, 16, 2, 2), 16 * 4)
    b = g.bias("up1.bias", 16)
    x = g.node("ConvTranspose", [x, w, b], "up1", kernel_shape=[2, 2], strides=[2, 2])
    x = g.node("Concat", [x, enc2], "concat1", axis=1)  # 32 x 32 x 32
    x = g.conv(x, "dec1_conv", 32, 16, (3, 3), **same)
    scales = g.const("up2.scales", np.array([1.0, 1.0, 2.0, 2.0], dtype=np.float32))
    x = g.node(
        "Resize",
        [x, "", scales],
        "up2",
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
    )  # 16 x 64 x 64
    x = g.node("Concat", [x, enc1], "concat2", axis=1)  # 24 x 64 x 64
    x = g.conv(x, "dec2_conv", 24, 8, (3, 3), **same)
    x = g.conv(x, "head_conv", 8, 2, (1, 1))
    return g.model("unet_like", [float_input("input", [1, 3, 64, 64])], x, [1, 2, 64, 64])


def custom_op() -> onnx.ModelProto:
    g = GraphBuilder(SEED + 6)
    x = g.conv("input", "conv1", 3, 8, (3, 3))  # 8 x 30 x 30
    g.nodes.append(
        helper.make_node("MyCustomBlur", [x], ["blur"], name="blur", domain="com.example")
    )
    x = g.conv("blur", "conv2", 8, 8, (3, 3))  # 8 x 28 x 28
    x = g.node("GlobalAveragePool", [x], "gap")
    return g.model(
        "custom_op",
        [float_input("input", [1, 3, 32, 32])],
        x,
        [1, 8, 1, 1],
        value_info=[helper.make_tensor_value_info("blur", TensorProto.FLOAT, [1, 8, 30, 30])],
        extra_opsets=[helper.make_opsetid("com.example", 1)],
    )


BUILDERS: dict[str, Callable[[], onnx.ModelProto]] = {
    "mnist_convnet.onnx": mnist_convnet,
    "mnist_pooled.onnx": mnist_pooled,
    "residual_net.onnx": residual_net,
    "dilated_1d.onnx": dilated_1d,
    "unet_like.onnx": unet_like,
    "custom_op.onnx": custom_op,
}

# Models that onnxruntime cannot run (unknown custom op): checked without full_check.
NOT_RUNNABLE = {"custom_op.onnx"}


def smoke_run(model: onnx.ModelProto) -> None:
    """Run the model once in onnxruntime on random input and compare the output shape."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    (inp,) = session.get_inputs()
    rng = np.random.default_rng(0)
    data = rng.standard_normal(inp.shape).astype(np.float32)
    (out,) = session.run(None, {inp.name: data})
    declared = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    if list(out.shape) != declared:
        raise RuntimeError(f"{model.graph.name}: output shape {out.shape} != declared {declared}")
    if not np.all(np.isfinite(out)):
        raise RuntimeError(f"{model.graph.name}: non-finite output")


def main() -> None:
    for file_name, build in BUILDERS.items():
        model = build()
        runnable = file_name not in NOT_RUNNABLE
        onnx.checker.check_model(model, full_check=runnable)
        if runnable:
            smoke_run(model)
        path = OUT_DIR / file_name
        onnx.save(model, path)
        print(f"wrote {path.name} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
