"""Golden data for the UNIT networks (models/src/unit.rs, models/tests/unit.rs).

Rebuilds the authors' UNIT layout (mingyuliutw/UNIT, networks.py: Conv2dBlock, ResBlock(s), LayerNorm,
ContentEncoder, Decoder, MsImageDis; as described in models/src/unit.rs) in PyTorch, with the weight sharing
of the paper: the last `shared_enc` residual blocks of the two encoders and the first `shared_dec` of the two
decoders are the same module objects (kept under `shared.enc.{i}` / `shared.dec.{i}`).

Writes unit_golden.safetensors:
- `G.*`: the state_dict of a tiny generator pair (dim 4, n_downsample 2, n_res 3, 2 shared encoder blocks,
  1 shared decoder block, reflect padding), `D.*`: a tiny D (dim 3, n_layer 2, 2 scales, norm none); weights
  drawn with torch.manual_seed(0) (the reference's kaiming init for G, N(0, 0.02) for D, layer-norm gamma
  U(0, 1)), biases and betas then perturbed so they matter;
- inputs `x_a`, `x_b` (2, 3, 16, 16) and `noise` (2, 16, 4, 4);
- outputs `mu_a` = EN_A(x_a), `mu_b`, `ab` = DE_B(mu_a + noise), `ba` = DE_A(mu_b), `aa` = DE_A(mu_a),
  `d_0`, `d_1`: D's score maps of x_a per scale, `kl_a` = mean(mu_a^2);
- `DSN.*`: the same tiny D with `torch.nn.utils.spectral_norm` on every conv (the 1x1 output convs too;
  reflection padding stays a separate layer before the normalized conv), built after everything above with
  torch.manual_seed(1) so the other values keep their seeds; `dsn_eval_{0,1}`: its score maps of x_a in eval
  mode, `dsn_train_{0,1}` after one training-mode forward (one power iteration per weight).
  These are stable: `spectral_norm_converged` (cyclegan_golden.py) runs torch's power iteration 50 times on
  every weight before saving, so sigma is the top singular value rather than an estimate from random vectors
  (which made eval outputs 1e9-1e13 in an earlier golden file, matched only on the CPU that wrote it); the
  maps are O(1), checked (|value| < 10) before writing.
And unit_golden.json: parameter counts of the full-size networks at the authors' settings (dim 64,
n_downsample 2, n_res 4, D dim 64, n_layer 4, 3 scales, RGB) with 1/1 shared blocks and with none (the
authors' current code), each parameter counted once.

Stability: layer- and instance-normalized networks on inputs in [-1, 1]; encodings below 7, images below 1,
so 1e-4 is about 1e-5 relative or more (models/golden/stability.py: 5.1e-6 relative with
ATEN_CPU_CAPABILITY=default and one thread).

Run from the repo root: .venv/bin/python models/golden/unit_golden.py   (torch 2.11.0, CPU, float32)
"""

import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cyclegan_golden import check_moderate, spectral_norm_converged, write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class LayerNorm(nn.Module):
    """Per-sample normalization over C*H*W with the unbiased std and eps added to it; per-channel affine."""

    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.Tensor(c).uniform_())
        self.beta = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        n = x.size(0)
        mean = x.view(n, -1).mean(1).view(n, 1, 1, 1)
        std = x.view(n, -1).std(1).view(n, 1, 1, 1)
        x = (x - mean) / (std + self.eps)
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class Conv2dBlock(nn.Module):
    def __init__(self, cin, cout, k, stride, pad, norm="none", act="none", pad_type="reflect"):
        super().__init__()
        self.pad = nn.ReflectionPad2d(pad) if pad_type == "reflect" else nn.ZeroPad2d(pad)
        self.conv = nn.Conv2d(cin, cout, k, stride, bias=True)
        self.norm = {"in": nn.InstanceNorm2d(cout), "ln": LayerNorm(cout), "none": None}[norm]
        self.act = {"relu": nn.ReLU(), "lrelu": nn.LeakyReLU(0.2), "tanh": nn.Tanh(), "none": None}[act]

    def forward(self, x):
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x)
        if self.act is not None:
            x = self.act(x)
        return x


class ResBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.model = nn.Sequential(Conv2dBlock(dim, dim, 3, 1, 1, "in", "relu"), Conv2dBlock(dim, dim, 3, 1, 1, "in", "none"))

    def forward(self, x):
        return x + self.model(x)


class ResBlocks(nn.Module):
    """A residual-block list whose entries keep their index in the full list (ModuleDict keyed by index)."""

    def __init__(self, indices, dim):
        super().__init__()
        self.model = nn.ModuleDict({str(i): ResBlock(dim) for i in indices})

    def forward(self, x):
        for b in self.model.values():
            x = b(x)
        return x


class Encoder(nn.Module):
    def __init__(self, c, dim, nd, n_res, n_shared, shared):
        super().__init__()
        layers = [Conv2dBlock(c, dim, 7, 1, 3, "in", "relu")]
        for _ in range(nd):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, "in", "relu"))
            dim *= 2
        layers.append(ResBlocks(range(n_res - n_shared), dim))
        self.model = nn.Sequential(*layers)
        self._shared = [shared]  # a plain list: the shared blocks are registered once, under `shared`

    def forward(self, x):
        return self._shared[0](self.model(x))


class Decoder(nn.Module):
    def __init__(self, c, dim, nd, n_res, n_shared, shared):
        super().__init__()
        layers = [ResBlocks(range(n_shared, n_res), dim)]
        for _ in range(nd):
            layers += [nn.Upsample(scale_factor=2), Conv2dBlock(dim, dim // 2, 5, 1, 2, "ln", "relu")]
            dim //= 2
        layers.append(Conv2dBlock(dim, c, 7, 1, 3, "none", "tanh"))
        self.model = nn.Sequential(*layers)
        self._shared = [shared]

    def forward(self, z):
        return self.model(self._shared[0](z))


class Gen(nn.Module):
    def __init__(self, enc, dec):
        super().__init__()
        self.enc = enc
        self.dec = dec


class Shared(nn.Module):
    def __init__(self, dim, n_enc, n_dec):
        super().__init__()
        self.enc = nn.Sequential(*[ResBlock(dim) for _ in range(n_enc)])
        self.dec = nn.Sequential(*[ResBlock(dim) for _ in range(n_dec)])


class UnitGenerators(nn.Module):
    def __init__(self, c=3, dim=64, nd=2, n_res=4, shared_enc=1, shared_dec=1):
        super().__init__()
        latent = dim << nd
        self.shared = Shared(latent, shared_enc, shared_dec)
        self.gen_a = Gen(Encoder(c, dim, nd, n_res, shared_enc, self.shared.enc), Decoder(c, latent, nd, n_res, shared_dec, self.shared.dec))
        self.gen_b = Gen(Encoder(c, dim, nd, n_res, shared_enc, self.shared.enc), Decoder(c, latent, nd, n_res, shared_dec, self.shared.dec))


class MsImageDis(nn.Module):
    def __init__(self, c=3, dim=64, n_layer=4, num_scales=3, norm="none"):
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)
        self.cnns = nn.ModuleList()
        for _ in range(num_scales):
            d = dim
            layers = [Conv2dBlock(c, d, 4, 2, 1, "none", "lrelu")]
            for _ in range(n_layer - 1):
                layers.append(Conv2dBlock(d, 2 * d, 4, 2, 1, norm, "lrelu"))
                d *= 2
            layers.append(nn.Conv2d(d, 1, 1, 1, 0))
            self.cnns.append(nn.Sequential(*layers))

    def forward(self, x):
        out = []
        for m in self.cnns:
            out.append(m(x))
            x = self.downsample(x)
        return out


def init(module, kind):
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.constant_(m.bias, 0.0)


def count(m):
    return sum(p.numel() for p in m.parameters())  # each shared parameter once


def main():
    torch.manual_seed(0)
    g = UnitGenerators(c=3, dim=4, nd=2, n_res=3, shared_enc=2, shared_dec=1)
    d = MsImageDis(c=3, dim=3, n_layer=2, num_scales=2)
    init(g, "kaiming")
    init(d, "gaussian")
    with torch.no_grad():
        for name, p in list(g.named_parameters()) + list(d.named_parameters()):
            if name.endswith("bias") or name.endswith("beta"):
                p.uniform_(-0.1, 0.1)
    x_a = torch.rand(2, 3, 16, 16) * 2 - 1
    x_b = torch.rand(2, 3, 16, 16) * 2 - 1
    noise = torch.randn(2, 16, 4, 4)
    with torch.no_grad():
        mu_a = g.gen_a.enc(x_a)
        mu_b = g.gen_b.enc(x_b)
        out = {
            "x_a": x_a,
            "x_b": x_b,
            "noise": noise,
            "mu_a": mu_a,
            "mu_b": mu_b,
            "ab": g.gen_b.dec(mu_a + noise),
            "ba": g.gen_a.dec(mu_b),
            "aa": g.gen_a.dec(mu_a),
            "kl_a": (mu_a ** 2).mean().reshape(1),
        }
        for i, s in enumerate(d(x_a)):
            out[f"d_{i}"] = s
    tensors = {f"G.{k}": v for k, v in g.state_dict().items()}
    tensors.update({f"D.{k}": v for k, v in d.state_dict().items()})
    tensors.update(out)

    torch.manual_seed(1)
    dsn = MsImageDis(c=3, dim=3, n_layer=2, num_scales=2)
    init(dsn, "gaussian")
    with torch.no_grad():
        for name, p in dsn.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.1, 0.1)
    spectral_norm_converged(dsn).eval()
    tensors.update({f"DSN.{k}": v.clone() for k, v in dsn.state_dict().items()})
    with torch.no_grad():
        for mode in ("eval", "train"):
            dsn.train(mode == "train")
            for i, s in enumerate(dsn(x_a)):
                check_moderate(f"dsn_{mode}_{i}", s)
                tensors[f"dsn_{mode}_{i}"] = s
                print(f"dsn_{mode}_{i}", tuple(s.shape), float(s.abs().max()))
    write_safetensors(os.path.join(HERE, "unit_golden.safetensors"), tensors)
    counts = {
        "shared_1_1": {"G": count(UnitGenerators()), "D": count(MsImageDis())},
        "shared_0_0": {"G": count(UnitGenerators(shared_enc=0, shared_dec=0)), "D": count(MsImageDis())},
        "tiny": {"G": count(g), "D": count(d)},
    }
    with open(os.path.join(HERE, "unit_golden.json"), "w") as f:
        json.dump(counts, f, indent=1)
        f.write("\n")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
