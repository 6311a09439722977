"""Reading the architecture JSON out of Keras containers, without Keras or TensorFlow.

Only the architecture is read: the ``config.json`` member of a ``.keras`` zip (or directory), the
``model_config`` root attribute of a legacy ``.h5`` file, or the root object's metadata in a
SavedModel's ``keras_metadata.pb`` (parsed by hand from the protobuf wire format). Weights are never
opened, nothing a file names is imported, and every size is bounded before it is read.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelError

#: Largest architecture JSON accepted (bytes). Real configs are a few MB at most.
MAX_JSON_BYTES = 64 << 20
#: Most members a ``.keras`` zip may list, and the largest central directory read.
MAX_ZIP_MEMBERS = 10_000
MAX_CENTRAL_DIR = 16 << 20
#: Largest ``keras_metadata.pb`` read.
MAX_METADATA_PB = 256 << 20
#: Digits in a JSON integer literal.
MAX_INT_DIGITS = 24

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass
class KerasSource:
    """The architecture of one file: its JSON config plus facts about the container."""

    config: dict[str, Any]
    format: str  #: "keras", "h5" or "savedmodel"
    meta: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# JSON


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in JSON")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer with {len(text)} digits in JSON")
    return int(text)


def parse_json(data: bytes | str, what: str, path: str) -> Any:
    """Parse JSON with bounded size, integers and nesting; NaN and Infinity are rejected."""
    if len(data) > MAX_JSON_BYTES:
        raise ModelError(
            f"{what} is {len(data)} bytes, over the {MAX_JSON_BYTES >> 20} MB limit", path
        )
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelError(f"{what} is not UTF-8 text ({exc.reason})", path) from None
    else:
        text = data
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int)
    except RecursionError:
        raise ModelError(f"{what} is nested too deeply", path) from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{what} is not valid JSON ({msg})", path) from None


# ---------------------------------------------------------------------------------------------
# .keras zip


def _zip_counts(fh: Any, size: int, path: str) -> None:
    """Check the end-of-central-directory record: member count and directory size, before
    :mod:`zipfile` reads the directory into memory."""
    tail_len = min(size, 65557 + 20 + 56)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        raise ModelError("not a .keras archive (no zip end record: truncated or not a zip)", path)
    (_, _, _, _, count, cd_size, _, _) = struct.unpack("<4sHHHHIIH", tail[pos : pos + 22])
    if (count == 0xFFFF or cd_size == 0xFFFFFFFF) and pos >= 20:
        loc = tail[pos - 20 : pos]
        if loc[:4] == b"PK\x06\x07":
            (off64,) = struct.unpack("<Q", loc[8:16])
            if off64 + 56 > size:
                raise ModelError("corrupt .keras archive (bad zip64 record)", path)
            fh.seek(off64)
            rec = fh.read(56)
            if rec[:4] != b"PK\x06\x06":
                raise ModelError("corrupt .keras archive (bad zip64 record)", path)
            count, cd_size = struct.unpack("<QQ", rec[32:48])
    if count > MAX_ZIP_MEMBERS:
        raise ModelError(
            f"the archive lists {count} members (at most {MAX_ZIP_MEMBERS} accepted)", path
        )
    if cd_size > MAX_CENTRAL_DIR:
        raise ModelError(f"the archive's directory is {cd_size} bytes: too large", path)


def _bad_member_name(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/"):
        return True
    if len(name) > 2 and name[1] == ":":
        return True
    return any(part == ".." for part in name.split("/"))


def _read_member(zf: Any, name: str, cap: int, path: str) -> bytes | None:
    import zipfile

    infos = [i for i in zf.infolist() if i.filename == name]
    if not infos:
        return None
    if len(infos) > 1:
        raise ModelError(f"the archive holds {len(infos)} members named {name!r}", path)
    info = infos[0]
    if info.file_size > cap:
        raise ModelError(
            f"member {name!r} is {info.file_size} bytes, over the {cap >> 20} MB limit", path
        )
    try:
        with zf.open(info) as member:
            data: bytes = member.read(cap + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ModelError(f"cannot read member {name!r} ({exc})", path) from None
    except Exception as exc:  # zlib/bz2/lzma errors of a corrupt stream
        raise ModelError(
            f"cannot read member {name!r} ({type(exc).__name__}: {exc})", path
        ) from None
    if len(data) > cap:
        raise ModelError(
            f"member {name!r} expands beyond the {cap >> 20} MB limit (declared {info.file_size})",
            path,
        )
    return data


def read_keras_zip(path: str) -> KerasSource:
    import zipfile

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(4)
            if not head:
                raise ModelError("empty file, not a .keras archive", path)
            if head != ZIP_MAGIC:
                raise ModelError("not a .keras archive (no zip signature)", path)
            _zip_counts(fh, size, path)
            fh.seek(0)
            try:
                zf = zipfile.ZipFile(fh)
            except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
                raise ModelError(f"not a valid .keras archive ({exc})", path) from None
            with zf:
                bad = [i.filename for i in zf.infolist() if _bad_member_name(i.filename)]
                if bad:
                    raise ModelError(f"the archive has a path-like member name {bad[0]!r}", path)
                config = _read_member(zf, "config.json", MAX_JSON_BYTES, path)
                metadata = _read_member(zf, "metadata.json", 1 << 20, path)
                names = {i.filename for i in zf.infolist()}
    except OSError as exc:
        raise ModelError(f"cannot read file ({exc.strerror or exc})", path) from None
    if config is None:
        if any(n.endswith(".weights.h5") or n.endswith(".npz") for n in names):
            raise ModelError("the archive has weights but no config.json (no architecture)", path)
        raise ModelError("the archive has no config.json: not a Keras model", path)
    return _keras_source(config, metadata, path, "keras")


def read_keras_dir(path: str) -> KerasSource:
    cfg_path = os.path.join(path, "config.json")
    meta_path = os.path.join(path, "metadata.json")
    config = _read_file(cfg_path, MAX_JSON_BYTES, path, "config.json")
    metadata = (
        _read_file(meta_path, 1 << 20, path, "metadata.json") if os.path.isfile(meta_path) else None
    )
    return _keras_source(config, metadata, path, "keras")


def _read_file(file: str, cap: int, path: str, what: str) -> bytes:
    try:
        with open(file, "rb") as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise ModelError(f"cannot read {what} ({exc.strerror or exc})", path) from None
    if len(data) > cap:
        raise ModelError(f"{what} is over the {cap >> 20} MB limit", path)
    return data


def _keras_source(config: bytes, metadata: bytes | None, path: str, fmt: str) -> KerasSource:
    meta: dict[str, str] = {}
    if metadata is not None:
        try:
            md = parse_json(metadata, "metadata.json", path)
        except ModelError:
            md = None
        if isinstance(md, dict):
            for key in ("keras_version", "date_saved"):
                if isinstance(md.get(key), str):
                    meta[key] = md[key][:100]
    cfg = parse_json(config, "config.json", path)
    if not isinstance(cfg, dict):
        raise ModelError(f"config.json holds a {_tname(cfg)}, not a model object", path)
    return KerasSource(cfg, fmt, meta)


# ---------------------------------------------------------------------------------------------
# legacy HDF5


def read_h5(path: str) -> KerasSource:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ModelError(f"cannot read file ({exc.strerror or exc})", path) from None
    if not head:
        raise ModelError("empty file, not an HDF5 model", path)
    if head != HDF5_MAGIC:
        raise ModelError("not an HDF5 file (no HDF5 signature)", path)
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a declared dependency of the extra
        raise ModelError(
            "reading .h5 files needs h5py (pip install 'cnnprobe[keras]')", path
        ) from None
    meta: dict[str, str] = {}
    try:
        with h5py.File(path, "r") as f:
            attrs = f.attrs
            if "model_config" not in attrs:
                if "layer_names" in attrs or "layers" in f or "model_weights" in f:
                    raise ModelError(
                        "a weights-only HDF5 file (no 'model_config' attribute): it holds no "
                        "architecture; save the whole model with model.save()",
                        path,
                    )
                raise ModelError("not a Keras HDF5 model (no 'model_config' attribute)", path)
            aid = h5py.h5a.open(f.id, b"model_config")
            dt = aid.dtype
            if dt.kind not in ("S", "O", "U"):
                raise ModelError("the 'model_config' attribute is not a string", path)
            if aid.shape not in ((), (1,)):
                raise ModelError("the 'model_config' attribute is not a single string", path)
            if dt.kind in ("S", "U") and dt.itemsize > MAX_JSON_BYTES:
                raise ModelError("the 'model_config' attribute is too large", path)
            raw = attrs["model_config"]
            for key in ("keras_version", "backend"):
                if key in attrs:
                    v = attrs[key]
                    v = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                    if isinstance(v, str):
                        meta[key] = v[:100]
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(
            f"cannot read the HDF5 file (truncated or corrupt: {first})", path
        ) from None
    if hasattr(raw, "shape") and getattr(raw, "shape", None) == (1,):
        raw = raw[0]
    if not isinstance(raw, (bytes, str)):
        raise ModelError("the 'model_config' attribute is not a string", path)
    cfg = parse_json(raw, "the 'model_config' attribute", path)
    if not isinstance(cfg, dict):
        raise ModelError(f"'model_config' holds a {_tname(cfg)}, not a model object", path)
    return KerasSource(cfg, "h5", meta)


# ---------------------------------------------------------------------------------------------
# SavedModel keras_metadata.pb (protobuf wire format, read by hand)


def _varint(buf: bytes, pos: int, path: str) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ModelError("keras_metadata.pb is truncated (inside a varint)", path)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ModelError("keras_metadata.pb is corrupt (varint too long)", path)


def _fields(buf: bytes, path: str) -> list[tuple[int, int, int | bytes]]:
    """Top-level fields of one message: (field number, wire type, value)."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    n = len(buf)
    while pos < n:
        key, pos = _varint(buf, pos, path)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ModelError("keras_metadata.pb is corrupt (field number 0)", path)
        if wt == 0:
            val, pos = _varint(buf, pos, path)
            out.append((num, wt, val))
        elif wt == 1:
            pos += 8
        elif wt == 5:
            pos += 4
        elif wt == 2:
            length, pos = _varint(buf, pos, path)
            if pos + length > n:
                raise ModelError("keras_metadata.pb is truncated (field runs past the end)", path)
            out.append((num, wt, buf[pos : pos + length]))
            pos += length
        else:
            raise ModelError(f"keras_metadata.pb is corrupt (wire type {wt})", path)
        if pos > n:
            raise ModelError("keras_metadata.pb is truncated", path)
    return out


def read_savedmodel(path: str) -> KerasSource:
    pb = os.path.join(path, "keras_metadata.pb")
    if not os.path.isfile(pb):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise ModelError(
                "a SavedModel without keras_metadata.pb (not saved by tf.keras 2.5+): its "
                "architecture cannot be read without TensorFlow; export it to ONNX or .keras",
                path,
            )
        raise ModelError("no keras_metadata.pb in this directory", path)
    data = _read_file(pb, MAX_METADATA_PB, path, "keras_metadata.pb")
    root: bytes | None = None
    for num, wt, val in _fields(data, path):
        if num != 1 or wt != 2 or not isinstance(val, bytes):
            continue
        node_path = b""
        metadata = b""
        for n2, w2, v2 in _fields(val, path):
            if n2 == 3 and w2 == 2 and isinstance(v2, bytes):
                node_path = v2
            elif n2 == 5 and w2 == 2 and isinstance(v2, bytes):
                metadata = v2
        if node_path == b"root":
            root = metadata
            break
    if root is None:
        raise ModelError("keras_metadata.pb has no root object", path)
    md = parse_json(root, "the root metadata in keras_metadata.pb", path)
    if not isinstance(md, dict):
        raise ModelError("the root metadata in keras_metadata.pb is not an object", path)
    md = unwrap_tuples(md, path)
    if not isinstance(md.get("config"), dict) or "layers" not in md["config"]:
        cls = md.get("class_name")
        raise ModelError(
            f"the SavedModel's root ({cls!r}) has no layer config: a subclassed model's "
            "architecture is Python code, which is never run",
            path,
        )
    cfg = {"class_name": md.get("class_name"), "config": md["config"]}
    meta = (
        {"keras_version": str(md.get("keras_version", ""))[:100]} if md.get("keras_version") else {}
    )
    return KerasSource(cfg, "savedmodel", meta)


def unwrap_tuples(obj: Any, path: str) -> Any:
    """Replace ``{"class_name": "__tuple__" / "TensorShape", "items": [...]}`` by lists
    (iteratively, so that depth costs no stack)."""

    def wrapped(x: Any) -> bool:
        return (
            isinstance(x, dict)
            and x.get("class_name") in ("__tuple__", "TensorShape")
            and isinstance(x.get("items"), list)
        )

    def unwrap(x: Any) -> Any:
        while wrapped(x):
            x = x["items"]
        return x

    root = unwrap(obj)
    stack = [root]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for k, v in cur.items():
                nv = unwrap(v)
                if nv is not v:
                    cur[k] = nv
                if isinstance(nv, (dict, list)):
                    stack.append(nv)
        elif isinstance(cur, list):
            for i, v in enumerate(cur):
                nv = unwrap(v)
                if nv is not v:
                    cur[i] = nv
                if isinstance(nv, (dict, list)):
                    stack.append(nv)
    return root


def _tname(x: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(x), type(x).__name__
    )
