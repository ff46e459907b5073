"""Golden data for the conditional networks and text encoders (models/src/cond.rs, models/src/text.rs;
tests in models/tests/cond.rs and models/tests/text.rs).

Rebuilds, in PyTorch and with the parameter names of the Rust modules, the GAN-CLS generator and
discriminator as reedscot/icml2016 `main_cls_int.lua` lays them out (text -> FC + LeakyReLU(0.2) concatenated
with z; residual-style extra layers after G's first two stages; D's DCGAN trunk, text FC + BN + LeakyReLU
replicated over the 4x4 grid, 1x1 conv + BN + LeakyReLU, 4x4 conv), convs without bias (the Torch code zeroes
its conv biases before every step), and writes:

- cond_golden.json: parameter counts of the full-size GAN-CLS networks (ngf 128, ndf 64, nz 100, text 1024 ->
  128, 64x64x3): G with extra layers; D with the joint and with the split head.
- cond_golden.safetensors:
  * `G.*`: a small G (64 px, ngf 8, nz 10, cond 12 -> 6, extra layers) with torch.manual_seed(0) default
    weights and random BN affine parameters and running statistics; inputs `z` (3, 10), `c` (3, 12);
    outputs `G_eval`, `G_train` (3, 3, 64, 64) (train: batch statistics).
  * `D.*`: a small split-head D (64 px, ndf 8, cond 12 -> 6, cond BN, extra layers); input `x`
    (3, 3, 64, 64) and `c`; outputs `D_eval_matched`, `D_eval_uncond`, `D_train_matched`, `D_train_uncond` (3,).
  * `gru.*`: a bidirectional 2-layer GRU text encoder (vocab 11, embed 6, hidden 5, out 4) run on packed
    sequences; `tr.*`: a pre-LN transformer text encoder (vocab 11, dim 8, 2 heads, 2 layers, max_len 9,
    GELU, final LayerNorm, out 4); inputs `ids` (3, 7) int64 with 0 padding at the end, `mask` (3, 7);
    outputs `gru_out`, `tr_out` (3, 4).

Stability: small networks with PyTorch's default init on N(0, 1) inputs; every saved output is of order 1
(|value| < 3), so the tests' 1e-4 tolerance is about 1e-4 relative, three orders above the differences other
CPU kernels give (models/golden/stability.py: 1.2e-6 relative with ATEN_CPU_CAPABILITY=default, one thread).

Run from the repo root: .venv/bin/python models/golden/cond_golden.py   (torch 2.11.0, CPU, float32)
"""

import copy
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


class ResBlock(nn.Module):
    """[1x1 conv c->c/4, BN, act, 3x3 conv c/4->c/4, BN, act, 3x3 conv c/4->c, BN] added to the input."""

    def __init__(self, c, act):
        super().__init__()
        m = max(c // 4, 1)
        self.conv1, self.bn1 = nn.Conv2d(c, m, 1, bias=False), nn.BatchNorm2d(m)
        self.conv2, self.bn2 = nn.Conv2d(m, m, 3, padding=1, bias=False), nn.BatchNorm2d(m)
        self.conv3, self.bn3 = nn.Conv2d(m, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.act = act

    def forward(self, x):
        h = self.act(self.bn1(self.conv1(x)))
        h = self.act(self.bn2(self.conv2(h)))
        return x + self.bn3(self.conv3(h))


relu = F.relu


def leaky(x):
    return F.leaky_relu(x, 0.2)


class Body(nn.Module):
    def __init__(self, c_in, ngf, nc, extra):
        super().__init__()
        chans = [ngf * 8, ngf * 4, ngf * 2, ngf]
        for k, c in enumerate(chans, start=1):
            if k == 1:
                setattr(self, f"deconv{k}", nn.ConvTranspose2d(c_in, c, 4, 1, 0, bias=False))
            else:
                setattr(self, f"deconv{k}", nn.ConvTranspose2d(chans[k - 2], c, 4, 2, 1, bias=False))
            setattr(self, f"bn{k}", nn.BatchNorm2d(c))
            if extra and k <= 2:
                setattr(self, f"res{k}", ResBlock(c, relu))
        self.out = nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False)
        self.extra = extra

    def forward(self, h):
        for k in range(1, 5):
            h = getattr(self, f"bn{k}")(getattr(self, f"deconv{k}")(h))
            if self.extra and k <= 2:
                h = getattr(self, f"res{k}")(h)
            h = relu(h)
        return torch.tanh(self.out(h))


class CondG(nn.Module):
    def __init__(self, nz, cond_dim, proj, ngf, nc=3, extra=True):
        super().__init__()
        self.cond_proj = nn.Linear(cond_dim, proj)
        self.body = Body(nz + proj, ngf, nc, extra)

    def forward(self, z, c):
        h = torch.cat([z, leaky(self.cond_proj(c))], 1)
        return self.body(h[:, :, None, None])


class Trunk(nn.Module):
    def __init__(self, nc, ndf, extra):
        super().__init__()
        c_in = nc
        for k in range(1, 5):
            c = ndf << (k - 1)
            setattr(self, f"conv{k}", nn.Conv2d(c_in, c, 4, 2, 1, bias=False))
            if k > 1:
                setattr(self, f"bn{k}", nn.BatchNorm2d(c))
            c_in = c
        if extra:
            self.res = ResBlock(c_in, leaky)
        self.extra = extra

    def forward(self, x):
        h = x
        for k in range(1, 5):
            h = getattr(self, f"conv{k}")(h)
            if k > 1:
                h = getattr(self, f"bn{k}")(h)
            if k == 4 and self.extra:
                h = self.res(h)
            h = leaky(h)
        return h


class Head(nn.Module):
    def __init__(self, f, p):
        super().__init__()
        self.mix = nn.Conv2d(f + p, f, 1, bias=False)
        self.bn = nn.BatchNorm2d(f)
        self.conv = nn.Conv2d(f, 1, 4, bias=False)


class Uncond(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.conv = nn.Conv2d(f, 1, 4, bias=False)


class CondD(nn.Module):
    def __init__(self, cond_dim, proj, ndf, nc=3, extra=False, split=False):
        super().__init__()
        f = ndf * 8
        self.trunk = Trunk(nc, ndf, extra)
        self.cond_proj = nn.Linear(cond_dim, proj)
        self.cond_bn = nn.BatchNorm1d(proj)
        self.head = Head(f, proj)
        if split:
            self.uncond = Uncond(f)
        self.split = split

    def forward(self, x, c):
        h = self.trunk(x)
        t = leaky(self.cond_bn(self.cond_proj(c)))
        t = t[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        j = leaky(self.head.bn(self.head.mix(torch.cat([h, t], 1))))
        matched = self.head.conv(j).reshape(-1)
        uncond = self.uncond.conv(h).reshape(-1) if self.split else None
        return matched, uncond


def masked_mean(out, mask):
    m = mask[:, :, None]
    return (out * m).sum(1) / m.sum(1).clamp_min(1.0)


class GruText(nn.Module):
    def __init__(self, vocab, embed, hidden, layers, out):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.gru = nn.GRU(embed, hidden, layers, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, out)

    def forward(self, ids, mask):
        lengths = mask.sum(1).long()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        return self.proj(masked_mean(out, mask))


class TransformerText(nn.Module):
    def __init__(self, vocab, dim, heads, layers, max_len, out):
        super().__init__()
        self.tok_embed = nn.Embedding(vocab, dim)
        self.pos_embed = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.proj = nn.Linear(dim, out)

    def forward(self, ids, mask):
        pos = torch.arange(ids.shape[1])
        h = self.tok_embed(ids) + self.pos_embed(pos)[None]
        h = self.encoder(h, src_key_padding_mask=mask == 0)
        return self.proj(masked_mean(h, mask))


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
        "gan_cls_g": count(CondG(100, 1024, 128, 128, extra=True)),
        "gan_cls_d_joint": count(CondD(1024, 128, 64, extra=False, split=False)),
        "gan_cls_d_split": count(CondD(1024, 128, 64, extra=False, split=True)),
        "gan_cls_d_extra_joint": count(CondD(1024, 128, 64, extra=True, split=False)),
    }

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    G = CondG(10, 12, 6, 8, extra=True)
    D = CondD(12, 6, 8, extra=True, split=True)
    randomize_bn(G, g)
    randomize_bn(D, g)
    z = torch.randn(3, 10, generator=g)
    c = torch.randn(3, 12, generator=g)
    x = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    t = prefixed("G.", G.state_dict())
    t.update(prefixed("D.", D.state_dict()))
    with torch.no_grad():
        G.eval(), D.eval()
        t["G_eval"] = G(z, c)
        t["D_eval_matched"], t["D_eval_uncond"] = D(x, c)
        Gt, Dt = copy.deepcopy(G).train(), copy.deepcopy(D).train()
        t["G_train"] = Gt(z, c)
        t["D_train_matched"], t["D_train_uncond"] = Dt(x, c)
    t.update(z=z, c=c, x=x)

    gru = GruText(11, 6, 5, 2, 4)
    tr = TransformerText(11, 8, 2, 2, 9, 4)
    ids = torch.tensor([[3, 5, 7, 2, 9, 10, 4], [1, 2, 3, 0, 0, 0, 0], [8, 6, 0, 0, 0, 0, 0]], dtype=torch.int64)
    mask = (ids != 0).float()
    with torch.no_grad():
        gru.eval(), tr.eval()
        t["gru_out"] = gru(ids, mask)
        t["tr_out"] = tr(ids, mask)
    t.update(prefixed("gru.", gru.state_dict()))
    t.update(prefixed("tr.", tr.state_dict()))
    t["ids"], t["mask"] = ids, mask
    t = {k: v.contiguous() for k, v in t.items()}
    save_file(t, os.path.join(HERE, "cond_golden.safetensors"))
    with open(os.path.join(HERE, "cond_golden.json"), "w") as f:
        json.dump({"counts": counts}, f, indent=1)
        f.write("\n")
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
