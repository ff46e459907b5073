#!/usr/bin/env python3
"""GAN-CLS training-step time in plain PyTorch: the reference side of `cargo bench --bench ganzoo_bench -- gan_cls`.

The networks are models/src/cond.rs's GAN-CLS G and D (Reed et al. 2016, reedscot/icml2016 `main_cls_int.lua`),
as models/golden/cond_golden.py rebuilds them with the same parameter names:

  G: text e (N, 1024) -> Linear(1024, 128) + LeakyReLU(0.2), concatenated with z (N, 100) -> (N, 228, 1, 1)
     ConvTranspose(228, 1024, 4, 1, 0) + BN [+ extra layers] + ReLU                          -> (N, 1024, 4, 4)
     ConvTranspose(1024, 512, 4, 2, 1) + BN [+ extra layers] + ReLU                          -> (N, 512, 8, 8)
     ConvTranspose(512, 256, 4, 2, 1) + BN + ReLU; ConvTranspose(256, 128, 4, 2, 1) + BN + ReLU -> (N, 128, 32, 32)
     ConvTranspose(128, 3, 4, 2, 1) + tanh                                                   -> (N, 3, 64, 64)
     extra layers (c channels): x + BN(conv3×3(c/4 -> c)(ReLU(BN(conv3×3(ReLU(BN(conv1×1(c -> c/4)(x))))))))
  D features: Conv(3, 64, 4, 2, 1) + LReLU; Conv(64, 128) + BN + LReLU; Conv(128, 256) + BN + LReLU;
     Conv(256, 512) + BN + LReLU                                                             -> (N, 512, 4, 4)
  D head (joint): text -> Linear(1024, 128) + BatchNorm1d + LReLU, replicated to (N, 128, 4, 4); concatenated
     -> Conv1×1(640, 512) + BN + LReLU -> Conv4×4(512, 1) -> (N,)
  convs without bias (batch norm follows them); init N(0, 0.02) weights, BN weight N(1, 0.02), biases 0.

  one step: x, e (a pool of 4 batches of random images in [-1, 1] and random embeddings on the CPU; one batch
    sliced and copied to the device), e_wrong = e rolled by one in the batch; z ~ N(0, 1); fake = G(z, e);
    D.zero_grad (zeroed, not None, as tch); h = features(x);
    loss_D = BCE(head(h, e), 1) + 0.5·(BCE(head(h, e_wrong), 0) + BCE(D(fake.detach(), e), 0)); backward; Adam D;
    D's parameters requires_grad False; G.zero_grad; loss_G = BCE(D(fake, e), 1); backward; requires_grad True;
    Adam G; both losses read as Python floats.  Adam lr 2e-4, betas (0.5, 0.999).

Device options (step_common.py): --device, --channels-last, --amp bf16 --amp-scope forward|step.
Prints `ms_per_step:` and `cpu_ms_per_step:` (and a `setup:` line).
"""
import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from step_common import OursAdam, Setup, add_common_args, time_steps


def leaky(x):
    return F.leaky_relu(x, 0.2)


class ResBlock(nn.Module):
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


class Body(nn.Module):
    def __init__(self, c_in, ngf, nc):
        super().__init__()
        chans = [ngf * 8, ngf * 4, ngf * 2, ngf]
        for k, c in enumerate(chans, start=1):
            if k == 1:
                setattr(self, f"deconv{k}", nn.ConvTranspose2d(c_in, c, 4, 1, 0, bias=False))
            else:
                setattr(self, f"deconv{k}", nn.ConvTranspose2d(chans[k - 2], c, 4, 2, 1, bias=False))
            setattr(self, f"bn{k}", nn.BatchNorm2d(c))
            if k <= 2:
                setattr(self, f"res{k}", ResBlock(c, F.relu))
        self.out = nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False)

    def forward(self, h):
        for k in range(1, 5):
            h = getattr(self, f"bn{k}")(getattr(self, f"deconv{k}")(h))
            if k <= 2:
                h = getattr(self, f"res{k}")(h)
            h = F.relu(h)
        return torch.tanh(self.out(h))


class CondG(nn.Module):
    def __init__(self, nz=100, cond_dim=1024, proj=128, ngf=128, nc=3):
        super().__init__()
        self.cond_proj = nn.Linear(cond_dim, proj)
        self.body = Body(nz + proj, ngf, nc)

    def forward(self, z, c):
        h = torch.cat([z, leaky(self.cond_proj(c))], 1)
        return self.body(h[:, :, None, None])


class Trunk(nn.Module):
    def __init__(self, nc, ndf):
        super().__init__()
        c_in = nc
        for k in range(1, 5):
            c = ndf << (k - 1)
            setattr(self, f"conv{k}", nn.Conv2d(c_in, c, 4, 2, 1, bias=False))
            if k > 1:
                setattr(self, f"bn{k}", nn.BatchNorm2d(c))
            c_in = c

    def forward(self, x):
        h = x
        for k in range(1, 5):
            h = getattr(self, f"conv{k}")(h)
            if k > 1:
                h = getattr(self, f"bn{k}")(h)
            h = leaky(h)
        return h


class Head(nn.Module):
    def __init__(self, f, p):
        super().__init__()
        self.mix = nn.Conv2d(f + p, f, 1, bias=False)
        self.bn = nn.BatchNorm2d(f)
        self.conv = nn.Conv2d(f, 1, 4, bias=False)


class CondD(nn.Module):
    def __init__(self, cond_dim=1024, proj=128, ndf=64, nc=3):
        super().__init__()
        f = ndf * 8
        self.trunk = Trunk(nc, ndf)
        self.cond_proj = nn.Linear(cond_dim, proj)
        self.cond_bn = nn.BatchNorm1d(proj)
        self.head = Head(f, proj)

    def features(self, x):
        return self.trunk(x)  # (N, 512, 4, 4)

    def heads(self, h, c):
        t = leaky(self.cond_bn(self.cond_proj(c)))
        t = t[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        j = leaky(self.head.bn(self.head.mix(torch.cat([h, t], 1))))
        return self.head.conv(j).reshape(-1)  # (N,)

    def forward(self, x, c):
        return self.heads(self.features(x), c)


def init_dcgan(m):
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02)
            elif name.endswith("weight"):
                p.normal_(1.0, 0.02)
            else:
                p.zero_()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    add_common_args(ap, warmup=3, steps=10)
    args = ap.parse_args()
    setup = Setup(args)
    dev = setup.dev
    torch.manual_seed(args.seed)
    n, nz, emb_dim, pool = args.batch, 100, 1024, 4

    G, D = CondG(), CondD()
    init_dcgan(G)
    init_dcgan(D)
    g_params = sum(p.numel() for p in G.parameters())
    d_params = sum(p.numel() for p in D.parameters())
    if args.expect_g_params is not None:
        assert g_params == args.expect_g_params, f"G has {g_params} parameters, ganzoo's G {args.expect_g_params}"
    if args.expect_d_params is not None:
        assert d_params == args.expect_d_params, f"D has {d_params} parameters, ganzoo's D {args.expect_d_params}"
    G, D = setup.model(G), setup.model(D)
    G.train()
    D.train()
    if args.adam == "ours":
        opt_g, opt_d = OursAdam(G.parameters(), 2e-4, (0.5, 0.999)), OursAdam(D.parameters(), 2e-4, (0.5, 0.999))
        zero_g, zero_d = opt_g.zero_grad, opt_d.zero_grad
    else:
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        zero_g = lambda: opt_g.zero_grad(set_to_none=False)  # noqa: E731  (tch zeroes, never sets None)
        zero_d = lambda: opt_d.zero_grad(set_to_none=False)  # noqa: E731

    images = torch.rand(pool * n, 3, 64, 64) * 2 - 1  # CPU pool
    emb = torch.randn(pool * n, emb_dim)
    d_list = list(D.parameters())
    bce = F.binary_cross_entropy_with_logits

    def step(i):
        start = (i % pool) * n
        x = setup.input(images[start:start + n])
        e = emb[start:start + n].to(dev)
        e_wrong = e.roll(1, 0)
        z = torch.randn(n, nz, device=dev)
        with setup.fwd():
            fake = G(z, e)
        zero_d()
        with setup.fwd():
            h = D.features(x)
            s_right = D.heads(h, e)
            s_wrong = D.heads(h, e_wrong)
            s_fake = D(fake.detach(), e)
            loss_d = bce(s_right, torch.ones_like(s_right)) + 0.5 * (
                bce(s_wrong, torch.zeros_like(s_wrong)) + bce(s_fake, torch.zeros_like(s_fake)))
        loss_d.backward()
        opt_d.step()
        for p in d_list:
            p.requires_grad_(False)
        zero_g()
        with setup.fwd():
            s = D(fake, e)
            loss_g = bce(s, torch.ones_like(s))
        loss_g.backward()
        for p in d_list:
            p.requires_grad_(True)
        opt_g.step()
        return {"loss_D": loss_d.item(), "loss_G": loss_g.item()}

    last = time_steps(step, args.warmup, args.steps, args.profile, setup)
    print(f"params: G {g_params} D {d_params}; batch {n}; threads {torch.get_num_threads()}; torch {torch.__version__}; "
          f"adam {args.adam}; last losses {last}", file=sys.stderr)


if __name__ == "__main__":
    main()
