"""Inputs of a shift test, each a *canvas* in pixel space and the model's layout (one sample).

- ``pink``: smooth noise with a 1/f amplitude spectrum (natural images have one), independent per
  channel, with standard deviation 0.18 around a mean brightness drawn uniformly in [0.3, 0.7]
  per input and channel, clipped to [0, 1]. Generated in the Fourier domain, so it is periodic:
  rolls show no seam.
- ``white``: independent uniform [0, 1] pixels. Any one-pixel shift makes it a new input; it shows
  how a network reacts to content it cannot track.
- images (PNG, JPEG and whatever else Pillow reads): converted to the model's channel count (1, 3
  or 4), resized so that the short side fits the canvas (bicubic), centre-cropped, scaled to
  [0, 1].
- a ``.npy`` array: ``[N, *sample]`` or one sample, in the model's layout, used as is (centre-
  cropped when larger than the canvas).

``--mean``/``--std`` are applied to each view after it is shifted, so the ``pad`` mode's zero fill
is black in pixel space. Every input is generated from ``(seed, index)`` alone: results do not
depend on the batch size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
PINK_MEAN = (0.3, 0.7)  #: range of the mean brightness per input and channel
PINK_STD = 0.18


@dataclass(frozen=True)
class Layout:
    """Shape of one canvas: channels, spatial size, where the channels live."""

    channels: int
    spatial: tuple[int, ...]  #: canvas size per spatial axis
    channels_first: bool

    @property
    def shape(self) -> tuple[int, ...]:
        if self.channels_first:
            return (self.channels, *self.spatial)
        return (*self.spatial, self.channels)

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """Spatial axes of one sample (no batch axis)."""
        n = len(self.spatial)
        return tuple(range(1, n + 1)) if self.channels_first else tuple(range(n))

    @property
    def channel_axis(self) -> int:
        return 0 if self.channels_first else len(self.spatial)


class InputSource:
    """A numbered set of canvases."""

    kind: str = ""
    description: str = ""
    count: int = 0
    files: tuple[str, ...] = ()
    #: the canvases are in the model's own space already (a ``.npy`` without --mean/--std)
    model_space: bool = False

    def canvas(self, index: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


def pink_noise(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    """Noise with a 1/f amplitude spectrum per channel, sd 0.18 around a random mean brightness
    in [0.3, 0.7], clipped to [0, 1]."""
    spatial = layout.spatial
    axes = tuple(range(1, len(spatial) + 1))
    white = rng.standard_normal((layout.channels, *spatial))
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in spatial], indexing="ij")
    radius = np.sqrt(sum(f * f for f in freqs))
    amplitude = np.zeros_like(radius)
    amplitude[radius > 0] = 1.0 / radius[radius > 0]
    field = np.fft.ifftn(np.fft.fftn(white, axes=axes) * amplitude, axes=axes).real
    sd = field.std(axis=axes, keepdims=True)
    field = field / np.where(sd > 0, sd, 1.0)
    mean = rng.uniform(*PINK_MEAN, size=(layout.channels,) + (1,) * len(spatial))
    img = np.clip(mean + PINK_STD * field, 0.0, 1.0).astype(np.float32)
    return img if layout.channels_first else np.moveaxis(img, 0, -1)


class NoiseSource(InputSource):
    def __init__(self, kind: str, count: int, layout: Layout, seed: int) -> None:
        self.kind = kind
        self.count = count
        self.layout = layout
        self.seed = seed
        label = "pink noise (1/f amplitude)" if kind == "pink" else "white noise (uniform)"
        self.description = f"{label}, {count} inputs"

    def canvas(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 0x1F, index])
        if self.kind == "pink":
            return pink_noise(rng, self.layout)
        return rng.random(self.layout.shape, dtype=np.float32)


class ImageSource(InputSource):
    def __init__(self, files: Sequence[str], layout: Layout) -> None:
        if len(layout.spatial) != 2:
            raise UsageError(
                f"image files need a model with 2 spatial axes (this one has "
                f"{len(layout.spatial)}): give a .npy array"
            )
        if layout.channels not in (1, 3, 4):
            raise UsageError(
                f"the model input has {layout.channels} channels; images give 1, 3 or 4: "
                "give a .npy array"
            )
        self.kind = "images"
        self.files = tuple(files)
        self.count = len(self.files)
        self.layout = layout
        folders = {os.path.dirname(f) for f in self.files}
        where = f" from {next(iter(folders)) or '.'}" if len(folders) == 1 else ""
        self.description = f"{self.count} image(s){where}"

    def canvas(self, index: int) -> np.ndarray:
        return load_image(self.files[index], self.layout)


def load_image(path: str, layout: Layout) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise UsageError(
            "reading images needs Pillow: pip install 'cnnprobe[images]' (or give a .npy array)"
        ) from None
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[layout.channels]
    height, width = layout.spatial
    try:
        with Image.open(path) as im:
            im.load()
            img = im.convert(mode)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"cannot read image ({first})", path) from None
    w, h = img.size
    if w < 1 or h < 1:
        raise UsageError("empty image", path)
    scale = max(height / h, width / w)
    new = (max(width, round(w * scale)), max(height, round(h * scale)))
    if new != (w, h):
        img = img.resize(new, Image.Resampling.BICUBIC)
    left, top = (new[0] - width) // 2, (new[1] - height) // 2
    img = img.crop((left, top, left + width, top + height))
    arr = np.asarray(img, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(np.moveaxis(arr, -1, 0) if layout.channels_first else arr)


class NpySource(InputSource):
    def __init__(
        self, path: str, layout: Layout, size: tuple[int, ...], mode: str, count: int | None
    ) -> None:
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UsageError(f"cannot read .npy array ({first})", path) from None
        want = len(layout.shape)
        if arr.ndim == want:
            arr = arr[None]
        if arr.ndim != want + 1:
            raise UsageError(
                f"array of shape {list(arr.shape)}: expected [N, {_dims(layout, size)}] or one "
                f"sample [{_dims(layout, size)}] (the model's layout)",
                path,
            )
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise UsageError(f"array of dtype {arr.dtype}: expected numbers", path)
        sample = arr.shape[1:]
        ch = sample[layout.channel_axis]
        spatial = tuple(sample[a] for a in layout.spatial_axes)
        if ch != layout.channels:
            raise UsageError(
                f"array of shape {list(arr.shape)} has {ch} channels on the channel axis; the "
                f"model takes {layout.channels} ([N, {_dims(layout, size)}])",
                path,
            )
        if any(s < c for s, c in zip(spatial, layout.spatial)):
            need = "x".join(str(c) for c in layout.spatial)
            hint = (
                ": crop mode cuts shifted views out of a larger canvas; give larger arrays or use "
                "--mode roll or pad"
                if mode == "crop" and layout.spatial != size
                else ""
            )
            raise UsageError(
                f"arrays are {'x'.join(str(s) for s in spatial)} pixels, smaller than the "
                f"{need} needed{hint}",
                path,
            )
        self.kind = "npy"
        self.array = arr
        self.layout = layout
        self.count = int(arr.shape[0]) if count is None else min(count, int(arr.shape[0]))
        self.files = (path,)
        self.model_space = True
        self.description = f"{self.count} array(s) from {os.path.basename(path)}"

    def canvas(self, index: int) -> np.ndarray:
        sample = np.asarray(self.array[index], dtype=np.float32)
        index_: list[slice] = [slice(None)] * sample.ndim
        for a, c in zip(self.layout.spatial_axes, self.layout.spatial):
            extra = sample.shape[a] - c
            index_[a] = slice(extra // 2, extra // 2 + c)
        out = np.ascontiguousarray(sample[tuple(index_)])
        if not np.all(np.isfinite(out)):
            raise UsageError(f"array {index} holds NaN or infinite values", self.files[0])
        return out


def _dims(layout: Layout, size: tuple[int, ...]) -> str:
    lay = Layout(layout.channels, size, layout.channels_first)
    return ", ".join(str(d) for d in lay.shape)


def list_images(paths: Sequence[str]) -> list[str]:
    """Image files named directly or found (not recursively) in folders, in sorted order."""
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(
                os.path.join(p, f)
                for f in os.listdir(p)
                if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(p, f))
            )
            if not found:
                exts = ", ".join(IMAGE_EXTENSIONS)
                raise UsageError(f"no image files in this folder (looked for {exts})", p)
            files.extend(found)
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise UsageError("no such input file or folder", p)
    return files


def open_inputs(
    inputs: Sequence[str],
    layout: Layout,
    size: tuple[int, ...],
    mode: str,
    count: int | None,
    auto_count: int,
    seed: int,
) -> InputSource:
    """The input source for ``--inputs``; ``layout`` has the canvas size, ``size`` the model's."""
    if len(inputs) == 1 and inputs[0] in ("pink", "white"):
        return NoiseSource(inputs[0], count or auto_count, layout, seed)
    npys = [p for p in inputs if p.lower().endswith(".npy")]
    if npys:
        if len(inputs) > 1:
            raise UsageError("give one .npy file, or image files and folders, not both")
        if not os.path.isfile(npys[0]):
            raise UsageError("no such .npy file", npys[0])
        return NpySource(npys[0], layout, size, mode, count)
    files = list_images(inputs)
    return ImageSource(files[:count] if count is not None else files, layout)


def normalize(
    view: np.ndarray,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    channel_axis: int,
) -> np.ndarray:
    """``(view - mean) / std`` per channel (a single value applies to every channel)."""
    if mean is None and std is None:
        return view
    channels = view.shape[channel_axis]
    shape = [1] * view.ndim
    shape[channel_axis] = channels
    out = view
    if mean is not None:
        out = out - _per_channel(mean, channels, "--mean").reshape(shape)
    if std is not None:
        out = out / _per_channel(std, channels, "--std").reshape(shape)
    return out


def _per_channel(values: Sequence[float], channels: int, option: str) -> np.ndarray:
    if len(values) == 1:
        return np.full(channels, values[0], dtype=np.float64)
    if len(values) != channels:
        raise UsageError(f"{option} has {len(values)} values; the model has {channels} channels")
    return np.asarray(values, dtype=np.float64)
