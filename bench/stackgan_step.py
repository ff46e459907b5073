#!/usr/bin/env python3
"""StackGAN training-step time in plain PyTorch: the reference side of `cargo bench --bench ganzoo_bench -- stackgan`.

The networks are models/src/stackgan.rs's, as models/golden/stackgan_golden.py rebuilds them with the same
parameter names (imported from there), at the authors' birds widths: z 100, text 1024 -> CA 128, GF_DIM 128,
DF_DIM 64, 4 residual blocks, Stage-I 64 px, Stage-II 256 px; joint D heads; DCGAN init.

  one step of stage 1: x (N, 3, 64, 64) and e (N, 1024) sliced from a CPU pool of 4 batches of random values and
    copied to the device; e_wrong = e rolled by one; z, eps ~ N(0, 1); fake, mu, log_sigma = G1(z, e, eps);
    D.zero_grad; h = D.enc(x); loss_D = BCE(head(h, e), 1) + 0.5·(BCE(head(h, e_wrong), 0) + BCE(D(fake.detach(), e), 0));
    backward; Adam D; D frozen (requires_grad False); G.zero_grad; loss_G = BCE(D(fake, e), 1) + 2·KL(mu, log_sigma);
    backward; D unfrozen; Adam G; both losses read.
  stage 2: the same with x at 256, fake = G2(G1(z, e, eps1) [eval mode, no grad, frozen], e, eps2) and D2.
  Adam lr 2e-4, betas (0.5, 0.999).

Prints `ms_per_step:`, `cpu_ms_per_step:` and `peak_rss_mb:` (this process's peak resident memory).
"""
import argparse
import os
import resource
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "golden"))
from stackgan_golden import D, G1, G2, kl, leaky  # noqa: E402
from step_common import OursAdam, Setup, add_common_args, time_steps  # noqa: E402


def init_dcgan(m):
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02)
            elif name.endswith("weight"):
                p.normal_(1.0, 0.02)
            else:
                p.zero_()


def heads(d, h, text):
    n, _, b, _ = h.shape
    t = leaky(d.context.fc(text))[:, :, None, None].expand(-1, -1, b, b)
    return d.head.conv2(leaky(d.head.bn(d.head.conv1(torch.cat([h, t], 1))))).view(n)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", type=int, choices=[1, 2], default=1)
    ap.add_argument("--batch", type=int, default=64)
    add_common_args(ap, warmup=2, steps=5)
    args = ap.parse_args()
    setup = Setup(args)
    dev = setup.dev
    torch.manual_seed(args.seed)
    n, nz, t, ef, pool = args.batch, 100, 1024, 128, 4
    stage2 = args.stage == 2
    g1 = G1(nz, t, ef, 128, 64)
    g = G2(t, ef, 128, 4) if stage2 else g1
    d = D(t, ef, 64, 64, stage2, False)
    for m in (g1, g, d):
        init_dcgan(m)
    g_params, d_params = sum(p.numel() for p in g.parameters()), sum(p.numel() for p in d.parameters())
    if args.expect_g_params is not None:
        assert g_params == args.expect_g_params, f"G has {g_params} parameters, ganzoo's {args.expect_g_params}"
    if args.expect_d_params is not None:
        assert d_params == args.expect_d_params, f"D has {d_params} parameters, ganzoo's {args.expect_d_params}"
    g1, g, d = setup.model(g1), setup.model(g), setup.model(d)
    g.train()
    d.train()
    if stage2:
        g1.eval()
        for p in g1.parameters():
            p.requires_grad_(False)
    if args.adam == "ours":
        opt_g, opt_d = OursAdam(g.parameters(), 2e-4, (0.5, 0.999)), OursAdam(d.parameters(), 2e-4, (0.5, 0.999))
        zero_g, zero_d = opt_g.zero_grad, opt_d.zero_grad
    else:
        opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        zero_g = lambda: opt_g.zero_grad(set_to_none=False)  # noqa: E731  (tch zeroes, never sets None)
        zero_d = lambda: opt_d.zero_grad(set_to_none=False)  # noqa: E731
    size = 256 if stage2 else 64
    images = torch.rand(pool * n, 3, size, size) * 2 - 1
    emb = torch.randn(pool * n, t)
    d_list = list(d.parameters())
    bce = F.binary_cross_entropy_with_logits

    def step(i):
        start = (i % pool) * n
        x = setup.input(images[start:start + n])
        e = emb[start:start + n].to(dev)
        e_wrong = e.roll(1, 0)
        z = torch.randn(n, nz, device=dev)
        if stage2:
            with torch.no_grad():
                x1 = g1(z, e, torch.randn(n, ef, device=dev))[0]
            fake, mu, ls = g(x1, e, torch.randn(n, ef, device=dev))
        else:
            fake, mu, ls = g(z, e, torch.randn(n, ef, device=dev))
        zero_d()
        h = d.enc(x)
        s_right, s_wrong = heads(d, h, e), heads(d, h, e_wrong)
        s_fake = heads(d, d.enc(fake.detach()), e)
        loss_d = bce(s_right, torch.ones_like(s_right)) + 0.5 * (
            bce(s_wrong, torch.zeros_like(s_wrong)) + bce(s_fake, torch.zeros_like(s_fake)))
        loss_d.backward()
        opt_d.step()
        for p in d_list:
            p.requires_grad_(False)
        zero_g()
        s = heads(d, d.enc(fake), e)
        loss_g = bce(s, torch.ones_like(s)) + 2.0 * kl(mu, ls)
        loss_g.backward()
        for p in d_list:
            p.requires_grad_(True)
        opt_g.step()
        return {"loss_D": loss_d.item(), "loss_G": loss_g.item()}

    last = time_steps(step, args.warmup, args.steps, args.profile, setup)
    print(f"peak_rss_mb: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
    print(f"stage {args.stage}: params G {g_params} D {d_params}; batch {n}; threads {torch.get_num_threads()}; "
          f"torch {torch.__version__}; adam {args.adam}; last losses {last}", file=sys.stderr)


if __name__ == "__main__":
    main()
