"""Writes golden.json: PyTorch reference numbers for ganzoo-models' losses, gradient penalty and optimizers.

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
