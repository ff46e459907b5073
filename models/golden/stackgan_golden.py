"""Golden data for the StackGAN networks (models/src/stackgan.rs; test in models/tests/stackgan.rs).

Rebuilds in PyTorch, with the parameter names of the Rust modules, the StackGAN networks as the authors'
TensorFlow code lays them out (hanzhanggit/StackGAN, stageII/model.py): conditioning augmentation (FC +
LeakyReLU(0.2) -> mu, log sigma; c = mu + exp(log sigma) * eps), Stage-I G (FC + BN1d to s/16 x s/16 x 8gf,
bottleneck residual, nearest upsampling + 3x3 conv + BN blocks, tanh), Stage-II G (3x3 / 4x4-stride-2 encoder,
text code replicated over the s/4 grid, joint 3x3 conv, residual blocks, four upsampling blocks), and the two
discriminators (4x4-stride-2 encoders, bottleneck residual, text FC + LeakyReLU replicated over the s/16 grid,
1x1 conv + BN + LeakyReLU, s/16 x s/16 conv to a logit; split design: also a conv on the image features
alone). Convs and linears followed by batch norm have no bias; 4x4 stride-2 convs pad 1. Writes:

- stackgan_golden.json: parameter counts at the authors' birds widths (z 100, text 1024, ef 128, gf 128,
  df 64, 4 residual blocks, 64 -> 256 px), D with the joint head and with the split head.
- stackgan_golden.safetensors: small networks (z 6, text 7, ef 5, gf 8, df 4, 2 residual blocks, Stage-I
  16 px, Stage-II 64 px) with torch.manual_seed(0) default weights and random BN affine parameters and
  running statistics: `G1.*`, `D1.*`, `G2.*`, `D2.*` (split heads); inputs `z` (3, 6), `text` (3, 7),
  `eps` (3, 5), `x1` (3, 3, 16, 16), `x2` (3, 3, 64, 64); outputs `G1_eval`, `G1_train`, `mu1`,
  `logsigma1`, `kl1`, `D1_{eval,train}_{matched,uncond}`, `G2_eval`, `G2_train` (from x1),
  `D2_{eval,train}_{matched,uncond}`; and D with `d_conditioning: projection`, no batch norm and spectral norm
  (`D1P.*`, `D2P.*`, split heads, torch.nn.utils.spectral_norm) with `D1P_{eval,train}_{matched,uncond}`,
  `D2P_…`; their parameter counts at the birds widths as `D1_projection_sn`, `D2_projection_sn`.

Stability: every saved output is of order 1 (|value| < 5). The spectral-norm D's u, v are run to convergence
before anything is saved (converge_spectral_norm): with torch's random initial u, v, sigma was underestimated
6x-300x per layer and eval outputs reached 1e9-1e13, where one float32 step exceeds any tolerance and the test
passed only on the CPU that wrote the file. models/golden/stability.py: 5e-6 relative with
ATEN_CPU_CAPABILITY=default and one thread.

Run from the repo root: .venv/bin/python models/golden/stackgan_golden.py   (torch 2.11.0, CPU, float32)
"""

import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def leaky(x):
    return F.leaky_relu(x, 0.2)


def conv(i, o, k, s, bias):
    return nn.Conv2d(i, o, k, s, 1 if k == 4 else k // 2, bias=bias)


class CA(nn.Module):
    def __init__(self, t, ef):
        super().__init__()
        self.fc, self.ef = nn.Linear(t, 2 * ef), ef

    def forward(self, text, eps):
        h = leaky(self.fc(text))
        mu, ls = h[:, : self.ef], h[:, self.ef :]
        return mu + ls.exp() * eps, mu, ls


def kl(mu, ls):
    return (-ls + 0.5 * (-1 + (2 * ls).exp() + mu * mu)).mean()


class Bottleneck(nn.Module):
    def __init__(self, c, mid, lk):
        super().__init__()
        self.conv1, self.bn1 = conv(c, mid, 1, 1, False), nn.BatchNorm2d(mid)
        self.conv2, self.bn2 = conv(mid, mid, 3, 1, False), nn.BatchNorm2d(mid)
        self.conv3, self.bn3 = conv(mid, c, 3, 1, False), nn.BatchNorm2d(c)
        self.act = leaky if lk else F.relu

    def forward(self, x):
        h = self.act(self.bn1(self.conv1(x)))
        h = self.act(self.bn2(self.conv2(h)))
        return self.act(x + self.bn3(self.conv3(h)))


class Up(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.conv, self.bn = conv(i, o, 3, 1, False), nn.BatchNorm2d(o)

    def pre(self, x):
        return self.bn(self.conv(F.interpolate(x, scale_factor=2, mode="nearest")))

    def forward(self, x):
        return F.relu(self.pre(x))


class G1(nn.Module):
    def __init__(self, z, t, ef, gf, s):
        super().__init__()
        self.gf, self.s16 = gf, s // 16
        n = self.s16 * self.s16 * gf * 8
        self.ca = CA(t, ef)
        self.fc, self.fc_bn = nn.Linear(ef + z, n, bias=False), nn.BatchNorm1d(n)
        self.res1 = Bottleneck(gf * 8, gf * 2, False)
        self.up1 = Up(gf * 8, gf * 4)
        self.res2 = Bottleneck(gf * 4, gf, False)
        self.up2, self.up3 = Up(gf * 4, gf * 2), Up(gf * 2, gf)
        self.out = conv(gf, 3, 3, 1, True)

    def forward(self, z, text, eps):
        c, mu, ls = self.ca(text, eps)
        h = self.fc_bn(self.fc(torch.cat([c, z], 1))).view(-1, self.gf * 8, self.s16, self.s16)
        h = self.res2(self.up1.pre(self.res1(h)))
        h = self.up3(self.up2(h))
        return torch.tanh(self.out(F.interpolate(h, scale_factor=2, mode="nearest"))), mu, ls


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = conv(c, c, 3, 1, False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = conv(c, c, 3, 1, False), nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class Enc2(nn.Module):
    def __init__(self, gf):
        super().__init__()
        self.conv1 = conv(3, gf, 3, 1, True)
        self.conv2, self.bn2 = conv(gf, gf * 2, 4, 2, False), nn.BatchNorm2d(gf * 2)
        self.conv3, self.bn3 = conv(gf * 2, gf * 4, 4, 2, False), nn.BatchNorm2d(gf * 4)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = F.relu(self.bn2(self.conv2(h)))
        return F.relu(self.bn3(self.conv3(h)))


class Joint(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.conv, self.bn = conv(i, o, 3, 1, False), nn.BatchNorm2d(o)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class G2(nn.Module):
    def __init__(self, t, ef, gf, r):
        super().__init__()
        self.ca = CA(t, ef)
        self.enc = Enc2(gf)
        self.joint = Joint(gf * 4 + ef, gf * 4)
        self.r = r
        for k in range(1, r + 1):
            setattr(self, f"res{k}", ResBlock(gf * 4))
        w = [gf * 4, gf * 2, gf, gf // 2, gf // 4]
        for k in range(4):
            setattr(self, f"up{k + 1}", Up(w[k], w[k + 1]))
        self.out = conv(gf // 4, 3, 3, 1, True)

    def forward(self, x, text, eps):
        c, mu, ls = self.ca(text, eps)
        h = self.enc(x)
        cc = c[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        h = self.joint(torch.cat([h, cc], 1))
        for k in range(1, self.r + 1):
            h = getattr(self, f"res{k}")(h)
        for k in range(1, 5):
            h = getattr(self, f"up{k}")(h)
        return torch.tanh(self.out(h)), mu, ls


class DEnc(nn.Module):
    def __init__(self, df, stage2, bn=True):
        super().__init__()
        self.conv1 = conv(3, df, 4, 2, True)
        spec = [(2, 4, 2, 1), (4, 4, 2, 1), (8, 4, 2, 1), (16, 4, 2, 1), (32, 4, 2, 1), (16, 1, 1, 1), (8, 1, 1, 0)] if stage2 else [(2, 4, 2, 1), (4, 4, 2, 0), (8, 4, 2, 0)]
        self.acts, c = [], df
        for j, (m, k, s, a) in enumerate(spec):
            setattr(self, f"conv{j + 2}", conv(c, df * m, k, s, not bn))
            if bn:
                setattr(self, f"bn{j + 2}", nn.BatchNorm2d(df * m))
            self.acts.append(a)
            c = df * m
        self.bn = bn
        self.res = Bottleneck(df * 8, df * 2, True) if bn else PlainBottleneck(df * 8, df * 2)

    def forward(self, x):
        h = leaky(self.conv1(x))
        for j, a in enumerate(self.acts):
            h = getattr(self, f"conv{j + 2}")(h)
            if self.bn:
                h = getattr(self, f"bn{j + 2}")(h)
            if a:
                h = leaky(h)
        return self.res(h)


class PlainBottleneck(nn.Module):
    """The D bottleneck without batch norm (convs with bias), for `d_batch_norm: false`."""

    def __init__(self, c, mid):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = conv(c, mid, 1, 1, True), conv(mid, mid, 3, 1, True), conv(mid, c, 3, 1, True)

    def forward(self, x):
        h = leaky(self.conv1(x))
        h = leaky(self.conv2(h))
        return leaky(x + self.conv3(h))


class Proj(nn.Module):
    def __init__(self, df, t):
        super().__init__()
        self.psi, self.embed = nn.Linear(df * 8, 1), nn.Linear(t, df * 8, bias=False)


class ProjD(nn.Module):
    """`d_conditioning: projection`, `d_batch_norm: false`, `loss.spectral_norm: true`, split heads:
    phi = features summed over the grid; matched = <V t, phi>, uncond = psi(phi)."""

    def __init__(self, t, df, stage2):
        super().__init__()
        self.enc = DEnc(df, stage2, bn=False)
        self.proj = Proj(df, t)
        for m in list(self.modules()):
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.utils.spectral_norm(m)

    def forward(self, x, text):
        phi = self.enc(x).sum((2, 3))
        return (self.proj.embed(text) * phi).sum(1), self.proj.psi(phi).view(-1)


class Context(nn.Module):
    def __init__(self, t, ef):
        super().__init__()
        self.fc = nn.Linear(t, ef)


class Head(nn.Module):
    def __init__(self, df, ef, b):
        super().__init__()
        self.conv1, self.bn = conv(df * 8 + ef, df * 8, 1, 1, False), nn.BatchNorm2d(df * 8)
        self.conv2 = nn.Conv2d(df * 8, 1, b)


class Uncond(nn.Module):
    def __init__(self, df, b):
        super().__init__()
        self.conv = nn.Conv2d(df * 8, 1, b)


class D(nn.Module):
    def __init__(self, t, ef, df, s, stage2, split):
        super().__init__()
        b = s // 16
        self.enc = DEnc(df, stage2)
        self.context = Context(t, ef)
        self.head = Head(df, ef, b)
        if split:
            self.uncond = Uncond(df, b)
        self.split = split

    def forward(self, x, text):
        h = self.enc(x)
        n, _, b, _ = h.shape
        t = leaky(self.context.fc(text))[:, :, None, None].expand(-1, -1, b, b)
        j = leaky(self.head.bn(self.head.conv1(torch.cat([h, t], 1))))
        m = self.head.conv2(j).view(n)
        u = self.uncond.conv(h).view(n) if self.split else None
        return m, u


def converge_spectral_norm(m, iters=50):
    """Runs the power iteration of every spectrally normalized weight of `m` to convergence (in place on its
    u, v buffers), as the product's `spectral::warm_up` does after initialization. torch's spectral_norm starts
    from random u, v: without this, sigma is underestimated 6x to 300x per layer and eval outputs reach 1e9-1e13,
    where one float32 step is larger than any tolerance and a test passes only on the CPU that wrote the file."""
    with torch.no_grad():
        for mod in m.modules():
            if hasattr(mod, "weight_orig"):
                w = mod.weight_orig.reshape(mod.weight_orig.shape[0], -1)
                for _ in range(iters):
                    mod.weight_v.copy_(F.normalize(w.t() @ mod.weight_u, dim=0, eps=1e-12))
                    mod.weight_u.copy_(F.normalize(w @ mod.weight_v, dim=0, eps=1e-12))


def count(m):
    return sum(p.numel() for p in m.parameters())


def randomize_bn(m, g):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = mod.num_features
            with torch.no_grad():
                mod.weight.copy_(1 + 0.2 * torch.randn(n, generator=g))
                mod.bias.copy_(0.2 * torch.randn(n, generator=g))
                mod.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=g))


def prefixed(prefix, sd):
    return {f"{prefix}{k}": v.detach().clone().contiguous() for k, v in sd.items() if not k.endswith("num_batches_tracked")}


def main():
    counts = {
        "G1": count(G1(100, 1024, 128, 128, 64)),
        "D1_joint": count(D(1024, 128, 64, 64, False, False)),
        "D1_split": count(D(1024, 128, 64, 64, False, True)),
        "G2": count(G2(1024, 128, 128, 4)),
        "D2_joint": count(D(1024, 128, 64, 64, True, False)),
        "D2_split": count(D(1024, 128, 64, 64, True, True)),
    }
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    nz, nt, ef, gf, df, r, s = 6, 7, 5, 8, 4, 2, 16
    g1, d1, g2, d2 = G1(nz, nt, ef, gf, s), D(nt, ef, df, s, False, True), G2(nt, ef, gf, r), D(nt, ef, df, s, True, True)
    for m in (g1, d1, g2, d2):
        randomize_bn(m, g)
    t = {}
    for name, m in (("G1.", g1), ("D1.", d1), ("G2.", g2), ("D2.", d2)):
        t.update(prefixed(name, m.state_dict()))
    z, text, eps = torch.randn(3, nz, generator=g), torch.randn(3, nt, generator=g), torch.randn(3, ef, generator=g)
    x1, x2 = torch.rand(3, 3, s, s, generator=g) * 2 - 1, torch.rand(3, 3, 4 * s, 4 * s, generator=g) * 2 - 1
    t.update(z=z, text=text, eps=eps, x1=x1, x2=x2)
    with torch.no_grad():
        for mode in ("eval", "train"):
            for m in (g1, d1, g2, d2):
                m.train(mode == "train")
            img, mu, ls = g1(z, text, eps)
            t[f"G1_{mode}"] = img
            if mode == "eval":
                t["mu1"], t["logsigma1"], t["kl1"] = mu, ls, kl(mu, ls).reshape(1)
            t[f"G2_{mode}"] = g2(x1, text, eps)[0]
            for name, d, x in (("D1", d1, x1), ("D2", d2, x2)):
                mm, u = d(x, text)
                t[f"{name}_{mode}_matched"], t[f"{name}_{mode}_uncond"] = mm, u
    # Projection D with spectral norm and no batch norm, built after everything above so those values keep
    # their seeds. Its spectral-norm vectors u, v start as torch's (normalized Gaussians) and are converged
    # before saving, so every output is O(1); train mode runs one more power iteration per weight, as ours.
    torch.manual_seed(2)
    d1p, d2p = ProjD(nt, df, False), ProjD(nt, df, True)
    for m in (d1p, d2p):
        converge_spectral_norm(m)
    for name, m in (("D1P.", d1p), ("D2P.", d2p)):
        t.update(prefixed(name, m.state_dict()))
    with torch.no_grad():
        for mode in ("eval", "train"):
            for name, d, x in (("D1P", d1p, x1), ("D2P", d2p, x2)):
                d.train(mode == "train")
                t[f"{name}_{mode}_matched"], t[f"{name}_{mode}_uncond"] = d(x, text)
    counts["D1_projection_sn"] = count(ProjD(1024, 64, False))
    counts["D2_projection_sn"] = count(ProjD(1024, 64, True))
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(HERE, "stackgan_golden.safetensors"))
    with open(os.path.join(HERE, "stackgan_golden.json"), "w") as f:
        json.dump({"counts": counts}, f, indent=1)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
