"""Write ONNX models exported by PyTorch, as they exist in the wild (dynamic batch, Shape/Gather
chains, exporter node names), for tests that compare cnnprobe with onnxruntime measurements.

Run with a Python that has torch (CPU build: ``pip install torch==2.13.0 onnx onnxscript``)::

    python sample_models/make_torch_samples.py [NAME.onnx ...]

(all of them without names). The files come out byte-identical on every run, except
``torch_functions.onnx``: torch lists the attributes of an exported function in an order that
varies between runs (the model is the same).

The committed ``torch_*.onnx`` files are what the tests read; torch is never needed to test.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, 4, 1)
        self.fc2 = nn.Conv2d(4, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class SENet(nn.Module):
    """Stem with a 'same'-style stride-2 conv, a residual block with a strided projection, an
    SE gate, and a classifier head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 5, padding=2)
        self.proj = nn.Conv2d(8, 16, 1, stride=2)
        self.se = SqueezeExcite(16)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.bn(self.stem(x)))
        y = self.conv2(F.relu(self.conv1(x)))
        x = F.relu(y + self.proj(x))
        x = self.pool(self.se(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Attention(nn.Module):
    """Patchify, self-attention over positions with a residual, back to a map, upsample."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.qkv = nn.Linear(16, 48)
        self.out = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        a = torch.softmax(q @ k.transpose(1, 2) / 4.0, dim=-1)
        t = t + a @ v
        x = t.transpose(1, 2).reshape(b, c, h, w)
        return F.interpolate(self.out(x), scale_factor=2, mode="bilinear", align_corners=False)


class ViT(nn.Module):
    """A vision transformer in miniature: 4x4 patches, a class token concatenated before them,
    position embeddings, one encoder block (torch's MultiheadAttention), the class token's
    output to a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 16))
        self.pos = nn.Parameter(torch.zeros(1, 17, 16))
        self.ln1 = nn.LayerNorm(16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.ln2 = nn.LayerNorm(16)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1) + self.pos
        y = self.ln1(t)
        t = t + self.attn(y, y, y, need_weights=False)[0]
        t = t + self.mlp(self.ln2(t))
        return self.head(t[:, 0])


class UNet(nn.Module):
    """Encoder with ceil-mode pooling on odd sizes, a dilated conv, a transposed conv, nearest
    upsampling and concatenations."""

    def __init__(self) -> None:
        super().__init__()
        self.e1 = nn.Conv2d(1, 4, 3, padding=1)
        self.e2 = nn.Conv2d(4, 8, 3, padding=1)
        self.mid = nn.Conv2d(8, 8, 3, dilation=2, padding=2)
        self.up = nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1)
        self.d1 = nn.Conv2d(16, 4, 3, padding=1)
        self.d2 = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.e1(x))
        b = F.relu(self.e2(F.max_pool2d(a, 2, ceil_mode=True)))
        m = F.relu(self.mid(F.max_pool2d(b, 2, ceil_mode=True)))
        u = torch.cat([self.up(m), b], dim=1)
        d = F.interpolate(F.relu(self.d1(u)), scale_factor=2, mode="nearest")
        return self.d2(torch.cat([d, a], dim=1))


class ConvAct(nn.Module):
    """Conv, batch norm, ReLU: exported as a model-local function of its own."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, dilation: int) -> None:
        super().__init__()
        pad = dilation * (k - 1) // 2
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Block(nn.Module):
    """A residual block (ConvAct, then a conv, plus a strided 1x1 projection), exported as a
    function that calls ConvAct's: instances differ in kernel, stride and dilation, which the
    exporter passes as attributes of each call."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.a = ConvAct(cin, cout, k, stride, dilation)
        self.b = nn.Conv2d(cout, cout, 3, padding=1)
        self.proj = nn.Conv2d(cin, cout, 1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.b(self.a(x)) + self.proj(x))


class FunctionNet(nn.Module):
    """Blocks kept as model-local functions (``export_modules_as_functions``), nested (Block
    calls ConvAct), then ceil-mode pooling and a global head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.b1 = Block(8, 8, 3, 1, 1)
        self.b2 = Block(8, 16, 5, 2, 1)
        self.b3 = Block(16, 16, 3, 1, 2)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.b3(self.b2(self.b1(self.stem(x))))
        x = F.max_pool2d(x, 3, stride=2, ceil_mode=True)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def export(
    model: nn.Module, shape: tuple[int, ...], name: str, functions: set[type[nn.Module]]
) -> None:
    torch.manual_seed(0)
    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    x = torch.randn(*shape)
    torch.onnx.export(
        model, (x,), str(HERE / name), input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17,
        dynamo=False, export_modules_as_functions=functions or False,
    )
    print("wrote", name)


SAMPLES = {
    "torch_se_net.onnx": (SENet, (1, 3, 64, 64)),
    "torch_attention.onnx": (Attention, (1, 3, 32, 32)),
    "torch_unet.onnx": (UNet, (1, 1, 30, 30)),
    "torch_vit.onnx": (ViT, (1, 3, 16, 16)),
    "torch_functions.onnx": (FunctionNet, (1, 3, 37, 29)),
}
#: modules exported as model-local functions
FUNCTIONS: dict[str, set[type[nn.Module]]] = {"torch_functions.onnx": {Block, ConvAct}}

if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or list(SAMPLES):
        build, shape = SAMPLES[name]
        export(build(), shape, name, FUNCTIONS.get(name, set()))
