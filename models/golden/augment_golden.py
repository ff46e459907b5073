"""Golden data for DiffAugment (models/src/augment.rs; test in models/tests/augment.rs).

Re-implements the official DiffAugment ops of Zhao et al. 2020 (mit-han-lab/data-efficient-gans,
DiffAugment_pytorch.py: rand_brightness, rand_saturation, rand_contrast, rand_translation with ratio 0.125,
rand_cutout with ratio 0.5) with their random numbers passed in instead of drawn, everything else as the
official code computes it (the 1-pixel zero pad and clamped gather of the translation, the clamped index
scatter of the cutout mask). The parameters are chosen here, in the official ranges and including the extreme
shifts and offsets, and written next to the outputs; the Rust test builds its parameters from the same numbers.

Writes augment_golden.json with two cases, `even` (N 4, C 3, H 8, W 12) and `odd` (N 3, C 2, H 7, W 5, odd
cutout sides), each holding the input `x`, the parameters `brightness`, `saturation`, `contrast` (N,),
`shift_h`, `shift_w`, `offset_h`, `offset_w` (N,) and the outputs `color`, `translation`, `cutout` (each op
alone on x) and `policy` (color, translation, cutout in that order). float64 throughout; inputs in [-1, 1] and
the official factor ranges keep every output O(1) (checked: |value| < 10).

Run from the repo root: .venv/bin/python models/golden/augment_golden.py   (torch 2.11.0, CPU)
"""

import json
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.set_default_dtype(torch.float64)


def color(x, b, s, c):
    x = x + b.view(-1, 1, 1, 1)  # rand_brightness: b = U(0, 1) - 0.5
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * s.view(-1, 1, 1, 1) + m  # rand_saturation: s = U(0, 1) * 2
    m = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - m) * c.view(-1, 1, 1, 1) + m  # rand_contrast: c = U(0, 1) + 0.5


def translation(x, th, tw):
    n, _, h, w = x.shape
    gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(h), torch.arange(w), indexing="ij")
    gx = torch.clamp(gx + th.view(-1, 1, 1) + 1, 0, h + 1)
    gy = torch.clamp(gy + tw.view(-1, 1, 1) + 1, 0, w + 1)
    x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return x_pad.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def cutout(x, oh, ow):
    n, _, h, w = x.shape
    size = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
    gb, gx, gy = torch.meshgrid(torch.arange(n), torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    gx = torch.clamp(gx + oh.view(-1, 1, 1) - size[0] // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + ow.view(-1, 1, 1) - size[1] // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


def case(gen, n, c, h, w, shift_h, shift_w, offset_h, offset_w):
    shift_max = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
    size = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
    assert all(abs(t) <= shift_max[0] for t in shift_h) and all(abs(t) <= shift_max[1] for t in shift_w)
    assert all(0 <= o < h + 1 - size[0] % 2 for o in offset_h) and all(0 <= o < w + 1 - size[1] % 2 for o in offset_w)
    x = torch.rand(n, c, h, w, generator=gen) * 2 - 1
    b = torch.rand(n, generator=gen) - 0.5
    s = torch.rand(n, generator=gen) * 2
    k = torch.rand(n, generator=gen) + 0.5
    th, tw, oh, ow = (torch.tensor(v) for v in (shift_h, shift_w, offset_h, offset_w))
    out = {
        "color": color(x, b, s, k),
        "translation": translation(x, th, tw),
        "cutout": cutout(x, oh, ow),
        "policy": cutout(translation(color(x, b, s, k), th, tw), oh, ow),
    }
    for name, t in out.items():
        assert float(t.abs().max()) < 10, name
    res = {"x": x, "brightness": b, "saturation": s, "contrast": k}
    res.update(out)
    res = {key: v.tolist() for key, v in res.items()}
    res.update(shift_h=shift_h, shift_w=shift_w, offset_h=offset_h, offset_w=offset_w)
    return res


def main():
    gen = torch.Generator().manual_seed(0)
    golden = {
        # max shift (1, 2), cutout 4 x 6, offsets in [0, 8] x [0, 12]
        "even": case(gen, 4, 3, 8, 12, [-1, 0, 1, 1], [2, -2, 0, 1], [0, 8, 3, 5], [12, 0, 6, 2]),
        # max shift (1, 1), cutout 4 x 3 (odd: offsets in [0, 4]), offsets in [0, 7] x [0, 4]
        "odd": case(gen, 3, 2, 7, 5, [1, -1, 0], [-1, 1, 1], [7, 0, 2], [4, 0, 3]),
    }
    with open(os.path.join(HERE, "augment_golden.json"), "w") as f:
        json.dump(golden, f)
        f.write("\n")
    print({k: {o: float(torch.tensor(v[o]).abs().max()) for o in ("color", "translation", "cutout", "policy")} for k, v in golden.items()})


if __name__ == "__main__":
    main()
