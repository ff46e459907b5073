"""Writes golden.json: PyTorch reference numbers for ganzoo-models' losses, gradient penalty, R1 and optimizers.

Run from the repository root:  .venv/bin/python models/golden/make_golden.py

Stability: float64 throughout, on scores of order 1-10 and small optimizer problems, so the Rust side can be
matched to 1e-6 relative regardless of operation order or CPU kernels (models/golden/stability.py: regenerated
with ATEN_CPU_CAPABILITY=default and one thread, the largest relative difference is 2e-16).
"""
import json
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
out = {"torch_version": torch.__version__}

# ---------------------------------------------------------------- adversarial losses
scores = torch.tensor([-3.0, -1.2, -0.3, 0.0, 0.4, 1.1, 2.5, 7.0])
ones, zeros = torch.ones_like(scores), torch.zeros_like(scores)
bce_real = F.binary_cross_entropy_with_logits(scores, ones)
bce_fake = F.binary_cross_entropy_with_logits(scores, zeros)
losses = {
    "minimax": {"d_real": bce_real, "d_fake": bce_fake, "g": -bce_fake},
    "non_saturating": {"d_real": bce_real, "d_fake": bce_fake, "g": bce_real},
    "lsgan": {"d_real": F.mse_loss(scores, ones), "d_fake": F.mse_loss(scores, zeros), "g": F.mse_loss(scores, ones)},
    "wasserstein": {"d_real": -scores.mean(), "d_fake": scores.mean(), "g": -scores.mean()},
    "hinge": {"d_real": F.relu(1 - scores).mean(), "d_fake": F.relu(1 + scores).mean(), "g": -scores.mean()},
}
out["losses"] = {"scores": scores.tolist(),
                 "expected": {k: {t: float(v) for t, v in d.items()} for k, d in losses.items()}}

# ---------------------------------------------------------------- gradient penalty (Gulrajani et al. 2017, eq. 3)
# critic(x) = tanh(x @ w1 + b1) @ w2 ; x: (4, 3); the penalty's gradient w.r.t. w1 needs double backward.
real = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7], [-0.2, 0.8, 0.1], [2.2, -1.3, 0.4]])
fake = torch.tensor([[0.1, 0.2, 0.3], [-1.0, 0.5, 1.2], [0.7, -0.4, -1.1], [0.0, 1.0, -2.0]])
eps = torch.tensor([[0.1], [0.5], [0.9], [0.33]])
w1 = torch.tensor([[0.3, -0.8], [1.1, 0.4], [-0.5, 0.9]], requires_grad=True)
b1 = torch.tensor([0.1, -0.2], requires_grad=True)
w2 = torch.tensor([[1.5], [-0.7]], requires_grad=True)
x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
scores_gp = (torch.tanh(x_hat @ w1 + b1) @ w2).reshape(-1)
(g,) = torch.autograd.grad(scores_gp.sum(), x_hat, create_graph=True)
gp = ((g.norm(2, dim=1) - 1) ** 2).mean()
gp.backward()
out["gp"] = {"real": real.tolist(), "fake": fake.tolist(), "eps": eps.tolist(),
             "w1": w1.tolist(), "b1": b1.tolist(), "w2": w2.tolist(),
             "penalty": float(gp.detach()), "grad_w1": w1.grad.tolist(), "grad_w2": w2.grad.tolist()}

# ---------------------------------------------------------------- R1 (Mescheder et al. 2018, eq. 9) and penalties on patch maps
# R1 = mean over the batch of |grad_x D(x)|^2 at the real samples, graph kept (its backward reaches D's weights).
# A critic with several scores per sample (a PatchGAN map) is reduced per sample by the mean over the
# non-batch dimensions before differentiating, in R1 and in the gradient penalty alike.
def per_sample_mean(out):
    return out.reshape(out.shape[0], -1).mean(1)


def r1(critic, x):
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(per_sample_mean(critic(x)).sum(), x, create_graph=True)
    return g.reshape(g.shape[0], -1).pow(2).sum(1).mean()


def gp(critic, real, fake, eps):
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(per_sample_mean(critic(x_hat)).sum(), x_hat, create_graph=True)
    return ((g.reshape(g.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()


for p in (w1, b1, w2):
    p.grad = None
r1_mlp = r1(lambda x: (torch.tanh(x @ w1 + b1) @ w2).reshape(-1), real)
r1_mlp.backward()
out["r1"] = {"penalty": float(r1_mlp.detach()), "grad_w1": w1.grad.tolist(), "grad_b1": b1.grad.tolist(),
             "grad_w2": w2.grad.tolist()}

# Patch critic: conv 3x3 (2 -> 3, padding 1, bias) + tanh + conv 2x2 stride 2 (3 -> 1): (N, 2, 4, 4) -> (N, 1, 2, 2).
gen = torch.Generator().manual_seed(3)
k1 = (0.5 * torch.randn(3, 2, 3, 3, generator=gen)).requires_grad_(True)
c1 = (0.1 * torch.randn(3, generator=gen)).requires_grad_(True)
k2 = (0.5 * torch.randn(1, 3, 2, 2, generator=gen)).requires_grad_(True)
x_real = torch.rand(3, 2, 4, 4, generator=gen) * 2 - 1
x_fake = torch.rand(3, 2, 4, 4, generator=gen) * 2 - 1
eps_patch = torch.rand(3, 1, 1, 1, generator=gen)


def patch_critic(x):
    return F.conv2d(torch.tanh(F.conv2d(x, k1, c1, padding=1)), k2, stride=2)


patch = {"k1": k1.tolist(), "c1": c1.tolist(), "k2": k2.tolist(), "real": x_real.tolist(), "fake": x_fake.tolist(),
         "eps": eps_patch.tolist()}
for name, pen in (("r1", lambda: r1(patch_critic, x_real)), ("gp", lambda: gp(patch_critic, x_real, x_fake, eps_patch))):
    for p in (k1, c1, k2):
        p.grad = None
    val = pen()
    val.backward()
    patch[name] = {"penalty": float(val.detach()), "grad_k1": k1.grad.tolist(), "grad_c1": c1.grad.tolist(),
                   "grad_k2": k2.grad.tolist()}
out["patch"] = patch

# ---------------------------------------------------------------- optimizers on a fixed quadratic-plus-quartic
# loss(a, b) = sum(k * (a - c)^2) + sum(b^4) + sum(a[:2] * b[0])
A0 = [1.0, -2.0, 0.5]
B0 = [[0.3, -0.6], [1.2, 0.05]]
K = torch.tensor([1.0, 3.0, 0.5])
C = torch.tensor([0.2, 0.1, -0.4])


def objective(a, b):
    return (K * (a - C) ** 2).sum() + (b ** 4).sum() + (a[:2] * b[0]).sum()


cases = [
    ("adam", {"kind": "adam", "lr": 0.1}, lambda p: torch.optim.Adam(p, lr=0.1)),
    ("adam_wd_betas", {"kind": "adam", "lr": 0.05, "betas": [0.5, 0.9], "eps": 1e-6, "weight_decay": 0.1},
     lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.1)),
    ("rmsprop", {"kind": "rmsprop", "lr": 0.01}, lambda p: torch.optim.RMSprop(p, lr=0.01)),
    ("rmsprop_momentum", {"kind": "rmsprop", "lr": 0.01, "alpha": 0.9, "momentum": 0.8, "weight_decay": 0.05},
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.8, weight_decay=0.05)),
    ("sgd", {"kind": "sgd", "lr": 0.05}, lambda p: torch.optim.SGD(p, lr=0.05)),
    ("sgd_momentum", {"kind": "sgd", "lr": 0.05, "momentum": 0.9},
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    ("sgd_nesterov_wd", {"kind": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
]
optim_out = {"a0": A0, "b0": B0, "k": K.tolist(), "c": C.tolist(), "steps": 5, "cases": []}
for name, cfg, make in cases:
    a = torch.tensor(A0, requires_grad=True)
    b = torch.tensor(B0, requires_grad=True)
    opt = make([a, b])
    traj = []
    for _ in range(5):
        opt.zero_grad()
        objective(a, b).backward()
        opt.step()
        traj.append({"a": a.detach().tolist(), "b": b.detach().tolist()})
    optim_out["cases"].append({"name": name, "config": cfg, "trajectory": traj})
out["optim"] = optim_out

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", path)
