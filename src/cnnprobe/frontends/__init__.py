"""Frontends: a model file becomes an :class:`~cnnprobe.ir.Graph`.

Each frontend is imported only when a file of its format is read, so that start-up stays fast.
"""

from __future__ import annotations

import os

from ..errors import ModelError, UsageError
from ..ir import Graph, Shape

FORMATS = {".onnx": "onnx", ".keras": "keras", ".h5": "h5", ".hdf5": "h5"}


def given_shape(name: str, recorded: Shape | None, given: Shape | None, path: str) -> Shape | None:
    """The input shape to analyse: ``--input-shape`` (same rank as the file's) or the file's."""
    if given is None:
        return recorded
    if recorded is not None and len(recorded) != len(given):
        raise UsageError(
            f"--input-shape has {len(given)} dims but input {name!r} has {len(recorded)}", path
        )
    return tuple(given)


def detect_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "config.json")):
            return "keras"
        if os.path.isfile(os.path.join(path, "keras_metadata.pb")) or os.path.isfile(
            os.path.join(path, "saved_model.pb")
        ):
            return "savedmodel"
        if ext not in FORMATS:
            raise ModelError(
                "is a directory without a Keras config.json or a SavedModel keras_metadata.pb",
                path,
            )
    fmt = FORMATS.get(ext)
    if fmt is not None:
        return fmt
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head.startswith(b"PK\x03\x04"):
            return "keras"
        if head.startswith(b"\x89HDF\r\n\x1a\n"):
            return "h5"
    known = ", ".join(sorted(FORMATS))
    kind = ext or "(no extension)"
    raise ModelError(f"unsupported file type {kind!r} (supported: {known})", path)


def load_graph(
    path: str,
    input_name: str | None = None,
    input_shape: Shape | None = None,
    layout: str = "auto",
) -> Graph:
    if not os.path.exists(path):
        raise ModelError("no such file", path)
    fmt = detect_format(path)
    if fmt == "onnx":
        from .onnx_frontend import load_onnx

        return load_onnx(path, input_name, input_shape, layout)
    if fmt in ("keras", "h5", "savedmodel"):
        from .keras_frontend import load_keras

        return load_keras(path, input_name, input_shape, layout, fmt)
    raise ModelError(f"{fmt} files are not supported yet", path)
