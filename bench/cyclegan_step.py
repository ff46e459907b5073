#!/usr/bin/env python3
"""CycleGAN training-step time in plain PyTorch: the reference side of `cargo bench --bench ganzoo_bench -- cyclegan`.

It replicates what one `ganzoo_pipelines::cyclegan::CycleGan::train_step` does for
configs/papers/cyclegan_facades.yaml (read from pipelines/src/cyclegan.rs, models/src/cyclegan.rs,
models/src/losses.rs, models/src/optim.rs), i.e. the reference code's (junyanz/pytorch-CycleGAN-and-pix2pix)
`CycleGANModel.optimize_parameters` with its default options:

  G (ResnetGenerator, instance norm without affine / running stats, reflection padding, no dropout):
      ReflectionPad2d(3), Conv2d(3, 64, 7) + IN + ReLU
      2 × [Conv2d(c, 2c, 3, stride 2, padding 1) + IN + ReLU]                       -> (N, 256, H/4, W/4)
      n_blocks × ResnetBlock(256): x + [ReflPad(1), Conv 3×3, IN, ReLU, ReflPad(1), Conv 3×3, IN](x)
      2 × [ConvTranspose2d(c, c/2, 3, stride 2, padding 1, output_padding 1) + IN + ReLU]
      ReflectionPad2d(3), Conv2d(64, 3, 7), Tanh
      (convs before instance norm are biased; 11,378,179 parameters with 9 blocks, 7,837,699 with 6)
  D (NLayerDiscriminator, n_layers 3, 70×70 PatchGAN): Conv2d(3, 64, 4, 2, 1) + LeakyReLU(0.2);
      Conv(64, 128, 4, 2, 1) + IN + LReLU; Conv(128, 256, 4, 2, 1) + IN + LReLU; Conv(256, 512, 4, 1, 1) + IN +
      LReLU; Conv(512, 1, 4, 1, 1)  (2,764,737 parameters; 30×30 patches at 256)
  init: N(0, 0.02) on every weight, zero biases (init_normal, std 0.02); instance norm has no parameters.

  one step (batch 1): real_A, real_B;
    D_A, D_B requires_grad False;
    fake_B = G_A(A); rec_A = G_B(fake_B); fake_A = G_B(B); rec_B = G_A(fake_A);
    loss_G = MSE(D_A(fake_B), 1) + MSE(D_B(fake_A), 1) + 10·L1(rec_A, A) + 10·L1(rec_B, B)
             + 10·0.5·L1(G_A(B), B) + 10·0.5·L1(G_B(A), A);   (cycle_A, cycle_B, idt read as Python floats)
    zero_grad G_A, G_B (zeroed, not None, as tch); backward; Adam step G_A, G_B; D_A, D_B requires_grad True;
    pooled_B = pool_B.query(fake_B.detach()); pooled_A = pool_A.query(fake_A.detach())   (ImagePool, size 50)
    loss_D_A = 0.5·(MSE(D_A(B), 1) + MSE(D_A(pooled_B), 0)); loss_D_B = 0.5·(MSE(D_B(A), 1) + MSE(D_B(pooled_A), 0))
    zero_grad D_A, D_B; (loss_D_A + loss_D_B).backward(); Adam step D_A, D_B; losses read as floats.
  One Adam per network, lr 2e-4, betas (0.5, 0.999), eps 1e-8 (torch.optim.Adam; single-tensor on CPU).

Device options (step_common.py): --device cuda (cudnn.benchmark on; each pair is copied from the CPU to the device
per step, as ganzoo's feed does), --channels-last (models and inputs), --amp bf16 with --amp-scope forward|step.

Inputs: --data FILE holds K (A, B) pairs as raw little-endian f32 of shape (K, 2, 3, S, S) in [-1, 1] (the bench
writes real, preprocessed facades there); step i uses pair i mod K. Without --data: uniform noise in [-1, 1].

Prints `ms_per_step: X` (wall-clock mean over the timed steps), `cpu_ms_per_step: Y` (process CPU time, all threads)
and, with --profile, the profiler's top ops over the timed steps.
Variant flags reproduce choices of our implementation inside PyTorch, to measure what each one costs:
  --leaky factor    LeakyReLU as h·([h > 0]·0.8 + 0.2) (what models/src/base.rs does); --leaky prelu: as prelu with a
                    constant 1-element weight (an earlier form of ours)
  --adam ours       Adam written op by op as models/src/optim.rs does (unfused temporaries)
"""
import argparse
import random
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from step_common import LeakyFactor, OursAdam, Setup, add_common_args, time_steps


class LeakyPrelu(nn.Module):
    """LeakyReLU(0.2) as `x.prelu(full([1], 0.2))` (an earlier form of models/src/base.rs leaky_relu): a new weight
    tensor per call."""

    def forward(self, h):
        return F.prelu(h, torch.full((1,), 0.2, dtype=h.dtype, device=h.device))


def leaky(kind):
    return {"prelu": LeakyPrelu, "factor": LeakyFactor}.get(kind, lambda: nn.LeakyReLU(0.2, True))()


def norm(c):
    return nn.InstanceNorm2d(c, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=True), norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=True), norm(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_c=3, out_c=3, ngf=64, n_blocks=9):
        super().__init__()
        model = [nn.ReflectionPad2d(3), nn.Conv2d(in_c, ngf, 7, padding=0, bias=True), norm(ngf), nn.ReLU(True)]
        for i in range(2):
            m = 2 ** i
            model += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=True), norm(ngf * m * 2), nn.ReLU(True)]
        for _ in range(n_blocks):
            model += [ResnetBlock(ngf * 4)]
        for i in range(2):
            m = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=True),
                      norm(ngf * m // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_c, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, in_c=3, ndf=64, n_layers=3, act="fused"):
        super().__init__()
        seq = [nn.Conv2d(in_c, ndf, 4, 2, 1), leaky(act)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=True), norm(ndf * mult), leaky(act)]
        seq += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


def init_normal(m, std=0.02):
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, std)


class ImagePool:
    """The reference's util/image_pool.py ImagePool."""

    def __init__(self, size):
        self.size, self.images = size, []

    def query(self, images):
        if self.size == 0:
            return images
        out = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                j = random.randint(0, self.size - 1)
                tmp = self.images[j].clone()
                self.images[j] = image
                out.append(tmp)
            else:
                out.append(image)
        return torch.cat(out, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="raw f32 (K, 2, 3, S, S) pairs in [-1, 1]; default: noise")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--n-blocks", type=int, default=9)
    ap.add_argument("--pool", type=int, default=50)
    ap.add_argument("--leaky", choices=["fused", "prelu", "factor"], default="fused")
    add_common_args(ap, warmup=2, steps=5)
    args = ap.parse_args()

    setup = Setup(args)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    s = args.size

    if args.data:
        with open(args.data, "rb") as f:
            raw = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)  # little-endian f32 (x86, aarch64)
        per = 2 * 3 * s * s
        assert raw.numel() % per == 0 and raw.numel() > 0, f"{args.data}: {raw.numel()} floats is not a multiple of 2·3·{s}·{s}"
        pairs = raw.reshape(-1, 2, 3, s, s).clone()
    else:
        pairs = torch.rand(8, 2, 3, s, s) * 2 - 1

    G_A, G_B = ResnetGenerator(n_blocks=args.n_blocks), ResnetGenerator(n_blocks=args.n_blocks)
    D_A, D_B = NLayerDiscriminator(act=args.leaky), NLayerDiscriminator(act=args.leaky)
    for m in (G_A, G_B, D_A, D_B):
        init_normal(m)
        m.train()
    G_A, G_B, D_A, D_B = (setup.model(m) for m in (G_A, G_B, D_A, D_B))
    g_params = sum(p.numel() for p in G_A.parameters())
    d_params = sum(p.numel() for p in D_A.parameters())
    if args.expect_g_params is not None:
        assert g_params == args.expect_g_params, f"G has {g_params} parameters, ganzoo's G {args.expect_g_params}"
    if args.expect_d_params is not None:
        assert d_params == args.expect_d_params, f"D has {d_params} parameters, ganzoo's D {args.expect_d_params}"

    if args.adam == "ours":
        opts = [OursAdam(m.parameters(), 2e-4, (0.5, 0.999)) for m in (G_A, G_B, D_A, D_B)]
        zero = [o.zero_grad for o in opts]
    else:
        opts = [torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G_A, G_B, D_A, D_B)]
        zero = [(lambda o=o: o.zero_grad(set_to_none=False)) for o in opts]  # tch zeroes, never sets None
    pool_A, pool_B = ImagePool(args.pool), ImagePool(args.pool)
    d_list = list(D_A.parameters()) + list(D_B.parameters())
    la = lb = 10.0
    li = 0.5

    def mse(x, target):
        return F.mse_loss(x, torch.ones_like(x) if target else torch.zeros_like(x))

    def l1(a, b):
        return (a - b).abs().mean()

    def step(i):
        pair = pairs[i % pairs.shape[0]]
        real_A, real_B = setup.input(pair[0:1].clone()), setup.input(pair[1:2].clone())  # (1, 3, S, S) each
        out = {}
        for p in d_list:
            p.requires_grad_(False)
        with setup.fwd():
            fake_B = G_A(real_A)
            rec_A = G_B(fake_B)
            fake_A = G_B(real_B)
            rec_B = G_A(fake_A)
            loss_g = mse(D_A(fake_B), True) + mse(D_B(fake_A), True)
            cycle = l1(rec_A, real_A) * la + l1(rec_B, real_B) * lb
            out["cycle_A"] = l1(rec_A, real_A).item()
            out["cycle_B"] = l1(rec_B, real_B).item()
            loss_g = loss_g + cycle
            idt = l1(G_A(real_B), real_B) * (lb * li) + l1(G_B(real_A), real_A) * (la * li)
            out["idt"] = idt.item()
            loss_g = loss_g + idt
        zero[0]()
        zero[1]()
        loss_g.backward()
        opts[0].step()
        opts[1].step()
        for p in d_list:
            p.requires_grad_(True)
        pooled_B = pool_B.query(fake_B.detach())
        pooled_A = pool_A.query(fake_A.detach())
        with setup.fwd():
            loss_d_a = (mse(D_A(real_B), True) + mse(D_A(pooled_B), False)) * 0.5
            loss_d_b = (mse(D_B(real_A), True) + mse(D_B(pooled_A), False)) * 0.5
        zero[2]()
        zero[3]()
        (loss_d_a + loss_d_b).backward()
        opts[2].step()
        opts[3].step()
        out["loss_G"] = loss_g.item()
        out["loss_D_A"] = loss_d_a.item()
        out["loss_D_B"] = loss_d_b.item()
        return out

    last = time_steps(step, args.warmup, args.steps, args.profile, setup)
    print(f"params: G {g_params} D {d_params}; size {s}; blocks {args.n_blocks}; threads {torch.get_num_threads()}; "
          f"torch {torch.__version__}; leaky {args.leaky}; adam {args.adam}; inputs {'data' if args.data else 'noise'}; "
          f"last losses {last}", file=sys.stderr)


if __name__ == "__main__":
    main()
