"""Golden data for the FID resize protocols (data/src/resize.rs; test in data/tests/resize.rs).

`clean` is clean-fid's `make_resizer("PIL", False, "bicubic", (299, 299))` (cleanfid/resize.py): every channel
of the uint8 RGB image, as a float32 array in [0, 255], goes through PIL's `Image.resize(size, BICUBIC)` in
mode 'F' (no quantisation afterwards), and the result is clipped to [0, 255]. Here the raw PIL output is kept
(before the clip), so the test checks the resampler itself and then the clip separately.
`legacy` is pytorch-fid's `F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)`.

Cases:
- `photo_*`: crops of CMP facades photos (`../shared/datasets/facades`: photo|labels side by side, 512x256 RGB
  JPEGs) as PIL decodes them, stored as uint8 (`<case>.input`, (3, h, w)) so the test resizes exactly the same
  pixels, each resized to 299x299 (up-sampling) and to 61x83 (down-sampling, antialiased);
- `file_*`: whole facades files, resized to 299x299 (horizontal down-sampling 512 -> 299, vertical
  up-sampling 256 -> 299); the test decodes the JPEG itself (when the dataset is present), so these compare the
  whole pipeline, decoder included; the PIL-decoded pixels are identified by an FNV-1a 64 hash, so the test
  knows whether its decoder gave the same input (the `image` crate's JPEG decoder differs from PIL's
  libjpeg-turbo by about 0.25 levels on average, up to 5);
- `chirp_*`, a synthetic 3x480x640 image of integers in [0, 255] (a zone plate: frequencies up to Nyquist,
  aliasing everywhere without the antialiasing filter) that the test rebuilds with the same integer formula,
  resized to 299x299, to 131x97 and up to 700x650; and `tiny_299`, its 23x37 crop, up to 299x299.

Outputs are float32 planes (C, H', W') in [0, 255] (the raw bicubic output overshoots a little at edges);
to keep the files small only every `stride`-th row and column is stored (`out[:, ::s, ::s]`), with the
stride in the JSON. Writes resize_golden.safetensors (`<case>.clean`, `<case>.legacy`, the crops' inputs) and
resize_golden.json.

Run from the repo root: .venv/bin/python data/golden/resize_golden.py   (Pillow, torch 2.11.0; CPU)
"""

import json
import os

import numpy as np
import PIL
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FACADES = os.path.join(HERE, "..", "..", "..", "shared", "datasets", "facades")
FILES = ["test/1.jpg", "val/17.jpg"]
# (file, top, left, height, width) of the stored photo crops.
CROPS = [("train/100.jpg", 40, 24, 128, 176), ("test/1.jpg", 100, 60, 128, 176)]


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def chirp(h, w):
    """The synthetic test image: integers in [0, 255], exact in float32 (the Rust test builds the same)."""
    y, x = np.meshgrid(np.arange(h, dtype=np.int64), np.arange(w, dtype=np.int64), indexing="ij")
    planes = [(x * x + 3 * y * y) // 7 % 256, (x * y + 5 * x) // 3 % 256, ((x // 2 + y) % 2) * 255]
    return np.stack(planes).astype(np.float32)  # (3, h, w)


def pil_bicubic(planes, out_hw):
    """clean-fid's per-channel PIL resize of float planes, without its final clip."""
    oh, ow = out_hw
    out = []
    for p in planes:
        img = Image.fromarray(np.ascontiguousarray(p, dtype=np.float32))
        assert img.mode == "F"
        out.append(np.asarray(img.resize((ow, oh), resample=Image.BICUBIC), dtype=np.float32))
    return np.stack(out)


def bilinear(planes, out_hw):
    x = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32))[None]
    return F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False)[0].numpy()


def main():
    cases, tensors = [], {}

    def add(name, planes, out_hw, stride, source):
        clean = pil_bicubic(planes, out_hw)
        legacy = bilinear(planes, out_hw)
        tensors[f"{name}.clean"] = torch.from_numpy(np.ascontiguousarray(clean[:, ::stride, ::stride]))
        tensors[f"{name}.legacy"] = torch.from_numpy(np.ascontiguousarray(legacy[:, ::stride, ::stride]))
        cases.append({"name": name, "source": source, "in_hw": list(planes.shape[1:]), "out_hw": list(out_hw),
                      "stride": stride, "clean_min": float(clean.min()), "clean_max": float(clean.max())})

    def decode(f):
        with Image.open(os.path.join(FACADES, f)) as im:
            return np.asarray(im.convert("RGB"))  # (256, 512, 3) uint8

    for f, top, left, h, w in CROPS:
        crop = np.ascontiguousarray(decode(f)[top:top + h, left:left + w].transpose(2, 0, 1))  # (3, h, w) uint8
        name = "photo_" + f.replace("/", "_").replace(".jpg", "")
        tensors[f"{name}.input"] = torch.from_numpy(crop)
        src = {"file": f, "crop": [top, left, h, w], "stored_input": f"{name}.input"}
        add(f"{name}_299", crop.astype(np.float32), (299, 299), 6, src)
        add(f"{name}_61x83", crop.astype(np.float32), (61, 83), 2, src)
    for f in FILES:
        rgb = decode(f)
        src = {"file": f, "decoded_fnv1a64": f"{fnv1a64(rgb.tobytes()):016x}"}
        name = "file_" + f.replace("/", "_").replace(".jpg", "")
        add(f"{name}_299", rgb.transpose(2, 0, 1).astype(np.float32), (299, 299), 8, src)
    c = chirp(480, 640)
    add("chirp_299", c, (299, 299), 6, {"chirp": [480, 640]})
    add("chirp_131x97", c, (131, 97), 3, {"chirp": [480, 640]})
    add("chirp_650x700", c, (650, 700), 13, {"chirp": [480, 640]})
    add("tiny_299", c[:, :23, :37], (299, 299), 6, {"chirp": [480, 640], "crop": [23, 37]})

    save_file(tensors, os.path.join(HERE, "resize_golden.safetensors"))
    meta = {"pillow": PIL.__version__, "torch": torch.__version__, "cases": cases}
    with open(os.path.join(HERE, "resize_golden.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    print(f"{len(cases)} cases, {size / 1e6:.2f} MB")
    assert size < 700_000, "keep the committed golden data small"


if __name__ == "__main__":
    main()
