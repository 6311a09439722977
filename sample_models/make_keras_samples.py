"""Build the Keras sample models used by cnnprobe's tests and docs, and their ONNX twins.

Needs Keras 3 with the torch backend (and ``onnx``/``onnxscript`` for the export); cnnprobe itself
never imports Keras. Run it in a separate environment::

    python3 -m venv /tmp/kvenv
    /tmp/kvenv/bin/pip install torch keras h5py onnx onnxruntime onnxscript
    KERAS_BACKEND=torch /tmp/kvenv/bin/python sample_models/make_keras_samples.py [NAME ...]

With ``--tf-keras`` it instead writes Keras 2 files with tf_keras (``pip install tensorflow-cpu
tf-keras``; run with ``TF_USE_LEGACY_KERAS=1``): ``tf_keras_nested.h5``, ``tf_keras_nested.keras``
and the ``keras_metadata.pb`` of its SavedModel (``tf_keras_nested_savedmodel/``), which carry
Keras-2-style nodes: 1-based indices of nested models and ``TFOpLambda`` layers.

Every model is written next to this script as ``keras_<name>.keras``, ``keras_<name>.h5`` and
``keras_<name>.onnx`` (exported by Keras itself). Weights are random (fixed seed): the files are
only good for geometry and shape analysis. Filters are few, except in the MNIST convnets, which
use the classic 32/64/64.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

TF_KERAS = "--tf-keras" in sys.argv
os.environ.setdefault("KERAS_BACKEND", "torch")

if TF_KERAS:
    import tf_keras as keras
    from tf_keras import layers

    ops = None
else:
    import keras
    from keras import layers, ops

import numpy as np  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent
SEED = 20240611


def mnist_convnet() -> keras.Model:
    """Three valid 3×3 convs on 28×28×1: each unit of the last one sees 7×7 of 28×28."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            layers.Conv2D(64, 3, activation="relu", name="conv3"),
        ],
        name="mnist_convnet",
    )


def mnist_pooled() -> keras.Model:
    """conv - pool - conv - pool - conv - flatten - dense: RF 18, jump 4 at conv3."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Conv2D(64, 3, activation="relu", name="conv3"),
            layers.Flatten(name="flatten"),
            layers.Dense(10, activation="softmax", name="dense"),
        ],
        name="mnist_pooled",
    )


def residual_net() -> keras.Model:
    """A stem, then a residual block whose shortcut is a stride-2 1×1 projection."""
    inp = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", name="stem")(inp)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    y = layers.Conv2D(16, 3, strides=2, padding="same", name="block_conv1")(x)
    y = layers.ReLU(name="block_relu1")(y)
    y = layers.Conv2D(16, 3, padding="same", name="block_conv2")(y)
    s = layers.Conv2D(16, 1, strides=2, name="shortcut")(x)
    z = layers.Add(name="add")([y, s])
    z = layers.ReLU(name="block_relu2")(z)
    z = layers.GlobalAveragePooling2D(name="gap")(z)
    out = layers.Dense(10, name="logits")(z)
    return keras.Model(inp, out, name="residual_net")


def nested_net() -> keras.Model:
    """A Functional block (holding a nested Sequential) called twice, Keras op layers (``x + y``,
    ``ops.relu``) and a nested Sequential head; the model's output is the block's second call."""
    unit = keras.Sequential(
        [
            keras.Input((None, None, 8), name="unit_in"),
            layers.Conv2D(8, 3, padding="same", name="conv"),
            layers.BatchNormalization(name="bn"),
        ],
        name="unit",
    )
    b_in = keras.Input((None, None, 8), name="block_in")
    b = unit(b_in)
    b = ops.relu(b)
    b = layers.Conv2D(8, 3, padding="same", name="conv_b")(b)
    b = b + b_in
    block = keras.Model(b_in, b, name="block")

    inp = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", name="stem")(inp)
    x = block(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = block(x)
    return keras.Model(inp, x, name="nested_net")


def se_net() -> keras.Model:
    """Squeeze-and-excitation: the Multiply output is a feature map that sees the whole input."""
    inp = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    s = layers.GlobalAveragePooling2D(name="squeeze")(x)
    s = layers.Dense(2, activation="relu", name="reduce")(s)
    s = layers.Dense(8, activation="sigmoid", name="expand")(s)
    s = layers.Reshape((1, 1, 8), name="reshape")(s)
    x = layers.Multiply(name="excite")([x, s])
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    return keras.Model(inp, x, name="se_net")


def decoder_net() -> keras.Model:
    """Padding, cropping, a transposed conv with output padding and bilinear upsampling."""
    inp = keras.Input((16, 16, 3), name="image")
    x = layers.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(inp)
    x = layers.Conv2D(4, 3, strides=2, name="down")(x)
    u = layers.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1, name="up")(x)
    v = layers.UpSampling2D(2, interpolation="bilinear", name="upsample")(x)
    c = layers.Concatenate(name="concat")([u, v])
    c = layers.Cropping2D(((1, 1), (0, 2)), name="crop")(c)
    out = layers.Conv2D(2, 3, padding="same", name="head")(c)
    return keras.Model(inp, out, name="decoder_net")


def video_net() -> keras.Model:
    """A clip of 6 frames of 20×20: per-frame convs and pooling (TimeDistributed), a temporal
    conv across frames (Conv3D 3×1×1), then another per-frame conv: the last layer's units see
    3 frames × 13×13 pixels."""
    inp = keras.Input((6, 20, 20, 3), name="clip")
    x = layers.TimeDistributed(layers.Conv2D(4, 3, strides=2), name="frame_conv")(inp)
    x = layers.TimeDistributed(layers.MaxPooling2D(2), name="frame_pool")(x)
    x = layers.Conv3D(4, (3, 1, 1), name="temporal")(x)
    x = layers.TimeDistributed(layers.Conv2D(4, 3, padding="same"), name="frame_conv2")(x)
    return keras.Model(inp, x, name="video_net")


def crnn() -> keras.Model:
    """A text-line recogniser (CRNN): convs, a pooling over the whole height, the width as a
    sequence: an LSTM (step t has read columns 0..t; also its final state), a bidirectional GRU
    (every step has read every column), a per-step classifier."""
    inp = keras.Input((8, 24, 1), name="line")
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = layers.MaxPooling2D((8, 1), name="pool")(x)
    x = layers.Reshape((24, 4), name="columns")(x)
    seq, state_h, _ = layers.LSTM(5, return_sequences=True, return_state=True, name="lstm")(x)
    x = layers.Bidirectional(layers.GRU(3, return_sequences=True), name="bigru")(seq)
    out = layers.Dense(6, name="classes")(x)
    return keras.Model(inp, [out, seq, state_h], name="crnn")


SAMPLES: dict[str, Callable[[], keras.Model]] = {
    "mnist_convnet": mnist_convnet,
    "mnist_pooled": mnist_pooled,
    "residual_net": residual_net,
    "nested_net": nested_net,
    "se_net": se_net,
    "decoder_net": decoder_net,
    "video_net": video_net,
    "crnn": crnn,
}


def tf_keras_nested() -> None:
    """A Keras 2 model: a nested Functional called twice, a nested Sequential, TFOpLambda ops."""
    import tensorflow as tf

    b_in = keras.Input((None, None, 4), name="block_in")
    b = layers.Conv2D(4, 3, padding="same", name="conv_b")(b_in)
    b = tf.nn.relu(b)
    b = layers.Add(name="add")([b, b_in])
    block = keras.Model(b_in, b, name="block")
    head = keras.Sequential(
        [keras.Input((None, None, 4)), layers.Conv2D(4, 3, name="head_conv")], name="head"
    )
    inp = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="stem")(inp)
    x = block(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = block(x)
    x = x * 2.0
    x = tf.reduce_mean(x, axis=[1, 2], keepdims=True) * x
    x = head(x)
    model = keras.Model(inp, x, name="tf_keras_nested")
    base = OUT_DIR / "tf_keras_nested"
    model.save(f"{base}.h5")
    model.save(f"{base}.keras")
    with tempfile.TemporaryDirectory() as tmp:
        model.save(os.path.join(tmp, "sm"), save_format="tf")
        out = OUT_DIR / "tf_keras_nested_savedmodel"
        out.mkdir(exist_ok=True)
        shutil.copy(os.path.join(tmp, "sm", "keras_metadata.pb"), out / "keras_metadata.pb")
    print(f"wrote {base.name}.h5, .keras and _savedmodel/keras_metadata.pb")


def main() -> None:
    if TF_KERAS:
        tf_keras_nested()
        return
    keras.utils.set_random_seed(SEED)
    warnings.filterwarnings("ignore")
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(SAMPLES)
    for name in names:
        model = SAMPLES[name]()
        shape = model.inputs[0].shape
        x = np.random.default_rng(SEED).standard_normal((1, *shape[1:])).astype("float32")
        model(x)  # the ONNX export needs a called model
        base = OUT_DIR / f"keras_{name}"
        model.save(f"{base}.keras")
        model.save(f"{base}.h5")
        # a static batch of 1 keeps the exported graph free of run-time shape arithmetic
        spec = keras.InputSpec(shape=(1, *shape[1:]), dtype="float32")
        model.export(f"{base}.onnx", format="onnx", verbose=False, input_signature=[spec])
        sizes = ", ".join(
            f"{ext} {os.path.getsize(f'{base}.{ext}') // 1024} KiB"
            for ext in ("keras", "h5", "onnx")
        )
        print(f"wrote {base.name}: {sizes}")


if __name__ == "__main__":
    main()
