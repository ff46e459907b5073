"""Golden data for CUT (models/src/cut.rs, models/src/blur.rs, the anti-aliased options of models/src/cyclegan.rs;
models/tests/cut.rs).

Rebuilds from their published structure the parts of taesungp/contrastive-unpaired-translation
(models/networks.py: Downsample, Upsample, ResnetGenerator and NLayerDiscriminator with their default
anti-aliasing, PatchSampleF with netF mlp_sample, Normalize; models/patchnce.py: PatchNCELoss; models/cut_model.py:
calculate_NCE_loss, compute_G_loss, compute_D_loss), then writes:

- cut_golden.json: state_dict key names and shapes, and parameter counts, at full size (ngf = ndf = 64,
  3 -> 3 channels, netF_nc 256 on the layers 0, 4, 8, 12, 16): G (resnet_9blocks, instance norm, anti-aliased
  down and up), D (basic PatchGAN, instance norm, anti-aliased), F. The blur filters are buffers (`filt`).
- cut_golden.safetensors: a small G (resnet_6blocks, ngf 8), D (ndf 8, n_layers 3) and F (nc 16) with
  torch.manual_seed(0) default weights (prefixes `G.`, `D.`, `F.`); inputs `A`, `B` (2, 3, 32, 32); fixed patch
  ids `ids_{l}` (float-coded integers) for the five layers (64 per layer, fewer where a layer has fewer positions);
  and the reference values: `G_out` = G(A), `feat_{l}` = the five encoder features of A, `F_{l}` = F's rows for
  them, `D_out` = D(A), `nce_A` = the NCE loss of (A, G(A)) and `nce_B` of (B, G(B)) (τ 0.07, λ_NCE 1,
  negatives from the same image, mean over layers of the mean patch loss), `loss_G` = LSGAN(D(G(A)), 1) +
  (nce_A + nce_B) / 2 (CUT with nce_idt), `loss_D` = (LSGAN(D(G(A)).detach, 0) + LSGAN(D(B), 1)) / 2, and the
  gradients of loss_G w.r.t. G's first conv weight (`grad_G_first`) and F's first head's first weight
  (`grad_F_first`), computed in float64 from the same weights (see `main`).

Stability: instance-normalized networks on inputs in [-1, 1]; features are O(1), F's rows unit vectors, the NCE
loss about log(1 + P) ~ 4; tolerances are relative to the largest value (checked also with
ATEN_CPU_CAPABILITY=default).

Run from the repo root: .venv/bin/python models/golden/cut_golden.py   (torch 2.11.0, CPU, float32)
"""

import copy
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cyclegan_golden import ResnetBlock, check_moderate, describe, norm_layer, use_bias, write_safetensors  # noqa: E402


def binomial(taps):
    a = torch.tensor({3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0]}[taps])
    f = a[:, None] * a[None, :]
    return f / f.sum()


class Downsample(nn.Module):
    """Reflection pad 1, per-channel 3-tap binomial blur, stride 2."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", binomial(3)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    """Replication pad 1, per-channel transposed conv with the 4-tap binomial filter × 4, stride 2, padding 2;
    then [1:, 1:] and, the filter being even, [:-1, :-1]."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("filt", (binomial(4) * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x):
        y = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.filt, stride=2, padding=2,
                               groups=x.shape[1])
        return y[:, :, 1:, 1:][:, :, :-1, :-1]


class CutResnetGenerator(nn.Module):
    def __init__(self, cin, cout, ngf=64, norm="instance", n_blocks=9):
        super().__init__()
        b = use_bias(norm)
        m = [nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7, padding=0, bias=b), norm_layer(norm, ngf), nn.ReLU(True)]
        for i in range(2):
            c = ngf * 2 ** i
            m += [nn.Conv2d(c, 2 * c, 3, stride=1, padding=1, bias=b), norm_layer(norm, 2 * c), nn.ReLU(True),
                  Downsample(2 * c)]
        for _ in range(n_blocks):
            m.append(ResnetBlock(ngf * 4, "reflect", norm, False))
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            m += [Upsample(c), nn.Conv2d(c, c // 2, 3, stride=1, padding=1, bias=b), norm_layer(norm, c // 2),
                  nn.ReLU(True)]
        m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*m)

    def forward(self, x, layers=(), encode_only=False):
        if not layers:
            return self.model(x)
        feats, feat = [], x
        for i, layer in enumerate(self.model):
            feat = layer(feat)
            if i in layers:
                feats.append(feat)
            if i == layers[-1] and encode_only:
                return feats
        return feat, feats


class CutNLayerDiscriminator(nn.Module):
    def __init__(self, cin, ndf=64, n_layers=3, norm="instance"):
        super().__init__()
        b = use_bias(norm)
        s = [nn.Conv2d(cin, ndf, 4, stride=1, padding=1), nn.LeakyReLU(0.2, True), Downsample(ndf)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            s += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=b), norm_layer(norm, ndf * mult),
                  nn.LeakyReLU(0.2, True), Downsample(ndf * mult)]
        prev, mult = mult, min(2 ** n_layers, 8)
        s += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=b), norm_layer(norm, ndf * mult),
              nn.LeakyReLU(0.2, True)]
        s.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*s)

    def forward(self, x):
        return self.model(x)


def l2norm(x):
    return x / (x.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7)


class PatchSampleF(nn.Module):
    """netF mlp_sample with its heads built up front for the given channels (the reference builds them at the
    first forward from the same channels)."""

    def __init__(self, channels, nc):
        super().__init__()
        for i, c in enumerate(channels):
            setattr(self, f"mlp_{i}", nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)))

    def forward(self, feats, ids):
        out = []
        for i, (f, pid) in enumerate(zip(feats, ids)):
            x = f.permute(0, 2, 3, 1).flatten(1, 2)[:, pid, :].flatten(0, 1)
            out.append(l2norm(getattr(self, f"mlp_{i}")(x)))
        return out


def patch_nce(q, k, batch, tau=0.07):
    k = k.detach()
    n, dim = q.shape
    l_pos = torch.bmm(q.view(n, 1, -1), k.view(n, -1, 1)).view(n, 1)
    qb, kb = q.view(batch, -1, dim), k.view(batch, -1, dim)
    p = qb.size(1)
    l_neg = torch.bmm(qb, kb.transpose(2, 1))
    l_neg.masked_fill_(torch.eye(p, dtype=torch.bool)[None], -10.0)
    out = torch.cat((l_pos, l_neg.view(-1, p)), dim=1) / tau
    return F.cross_entropy(out, torch.zeros(n, dtype=torch.long), reduction="none")


LAYERS = [0, 4, 8, 12, 16]


def nce_loss(g, f, src, tgt, ids, batch):
    feat_q = g(tgt, LAYERS, encode_only=True)
    feat_k = g(src, LAYERS, encode_only=True)
    fk = f(feat_k, ids)
    fq = f(feat_q, ids)
    return sum(patch_nce(q, k, batch).mean() for q, k in zip(fq, fk)) / len(LAYERS)


def main():
    full_g = CutResnetGenerator(3, 3)
    chans = [3, 128, 256, 256, 256]
    layouts = {
        "g_cut_9blocks": full_g,
        "d_cut_basic": CutNLayerDiscriminator(3),
        "f_mlp_sample": PatchSampleF(chans, 256),
    }
    summary = {k: describe(v) for k, v in layouts.items()}
    with torch.no_grad():
        x = torch.zeros(1, 3, 256, 256)
        summary["g_cut_9blocks"]["feature_shapes_256"] = [list(t.shape) for t in full_g(x, LAYERS, encode_only=True)]
        summary["d_cut_basic"]["output_shape_256"] = list(layouts["d_cut_basic"](x).shape)
    with open(os.path.join(HERE, "cut_golden.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
        fh.write("\n")
    for k, v in summary.items():
        print(k, v["parameters"])

    torch.manual_seed(0)
    g = CutResnetGenerator(3, 3, ngf=8, n_blocks=6)
    d = CutNLayerDiscriminator(3, ndf=8, n_layers=3)
    f = PatchSampleF([3, 16, 32, 32, 32], 16)
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1
    b = torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1
    tensors = {"G." + k: v.clone() for k, v in g.state_dict().items()}
    tensors.update({"D." + k: v.clone() for k, v in d.state_dict().items()})
    tensors.update({"F." + k: v.clone() for k, v in f.state_dict().items()})
    tensors.update({"A": a, "B": b})
    with torch.no_grad():
        feats = g(a, LAYERS, encode_only=True)
    ids = []
    for i, t in enumerate(feats):
        pos = t.shape[2] * t.shape[3]
        pid = torch.randperm(pos, generator=gen)[: min(64, pos)]
        ids.append(pid)
        tensors[f"ids_{i}"] = pid.float()
        tensors[f"feat_{i}"] = t
    with torch.no_grad():
        for i, row in enumerate(f(feats, ids)):
            tensors[f"F_{i}"] = row
        tensors["D_out"] = d(a)
    def losses(g, d, f, a, b):
        fake = g(torch.cat([a, b], 0))
        fake_b, idt_b = fake[:2], fake[2:]
        loss_d = 0.5 * (F.mse_loss(d(fake_b.detach()), torch.zeros_like(d(fake_b.detach())))
                        + F.mse_loss(d(b), torch.ones_like(d(b))))
        for p in d.parameters():
            p.requires_grad_(False)
        pred = d(fake_b)
        nce_a = nce_loss(g, f, a, fake_b, ids, 2)
        nce_b = nce_loss(g, f, b, idt_b, ids, 2)
        loss_g = F.mse_loss(pred, torch.ones_like(pred)) + (nce_a + nce_b) * 0.5
        loss_g.backward()
        return fake_b, loss_d, nce_a, nce_b, loss_g

    # The gradients in float64 from the same (float32) weights: the one of G's first conv sums terms that
    # cancel, so in float32 it moves by 2e-3 relative between CPU kernels (PyTorch against itself); in float64
    # the rounding is far below the tolerance on any CPU.
    g64, d64, f64 = (copy.deepcopy(m).double() for m in (g, d, f))
    losses(g64, d64, f64, a.double(), b.double())
    tensors["grad_G_first"] = g64.model[1].weight.grad.clone()
    tensors["grad_F_first"] = f64.mlp_0[0].weight.grad.clone()
    fake_b, loss_d, nce_a, nce_b, loss_g = losses(g, d, f, a, b)
    tensors["G_out"] = fake_b.detach()
    tensors.update({"nce_A": nce_a.detach(), "nce_B": nce_b.detach(), "loss_G": loss_g.detach(), "loss_D": loss_d.detach()})
    for name in ["G_out", "D_out", "nce_A", "loss_G", "loss_D"] + [f"feat_{i}" for i in range(5)]:
        check_moderate(name, tensors[name])
    write_safetensors(os.path.join(HERE, "cut_golden.safetensors"), tensors)
    print("nce_A", float(nce_a), "nce_B", float(nce_b), "loss_G", float(loss_g), "loss_D", float(loss_d))


if __name__ == "__main__":
    main()
