"""Golden data for the shim's leaky_relu (models/ext/src/lib.rs; test in
models/ext/tests/shim.rs): torch.nn.functional.leaky_relu forward and backward, and the second derivative
through a gradient penalty, for slopes 0.2 and 0.01.

Inputs are exact in float32 (multiples of 1/64 in [-4, 4], with +0.0 and -0.0), so every output is a product of
two float32 numbers rounded once: the same on every CPU kernel, and compared exactly.

Writes leaky_relu_golden.safetensors: `x` (5, 13); for s in (0.2, 0.01): `y_{s}` = leaky_relu(x, s),
`grad_{s}` = d(sum(leaky_relu(x, s) * w))/dx with `w` (5, 13) also stored, and `gp_{s}` = d/dx of
sum((d(sum(leaky_relu(x, s)**2))/dx)**2) (a double backward, as WGAN-GP and R1 take it).

Run from the repo root: .venv/bin/python models/ext/golden/leaky_relu_golden.py   (torch 2.11.0, CPU)
"""

import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

g = torch.Generator().manual_seed(0)
x = torch.randint(-256, 257, (5, 13), generator=g).float() / 64
x[0, 0], x[0, 1] = 0.0, -0.0
w = torch.randint(-64, 65, (5, 13), generator=g).float() / 16
out = {"x": x, "w": w}
for s in (0.2, 0.01):
    xi = x.clone().requires_grad_(True)
    y = F.leaky_relu(xi, s)
    (grad,) = torch.autograd.grad((y * w).sum(), xi)
    xi2 = x.clone().requires_grad_(True)
    (d,) = torch.autograd.grad((F.leaky_relu(xi2, s) ** 2).sum(), xi2, create_graph=True)
    (gp,) = torch.autograd.grad((d**2).sum(), xi2)
    out[f"y_{s}"], out[f"grad_{s}"], out[f"gp_{s}"] = y.detach(), grad, gp
save_file(out, str(pathlib.Path(__file__).with_name("leaky_relu_golden.safetensors")))
print({k: tuple(v.shape) for k, v in out.items()})
