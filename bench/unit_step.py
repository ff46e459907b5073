#!/usr/bin/env python3
"""UNIT training-step time in plain PyTorch: the reference side of `cargo bench --bench ganzoo_bench -- unit`.

The networks are models/golden/unit_golden.py's rebuild of the authors' layout with the paper's weight sharing
(imported from there), at the sizes of configs/quickstart/unit_shapes.yaml by default (32×32, gen dim 16,
n_downsample 2, n_res 3 with one shared block each way; D dim 16, n_layer 3, 2 scales; parameter counts
asserted equal to ganzoo's with --expect-g-params / --expect-d-params). One step, as the authors' trainer.py
and pipelines/src/unit.rs (`Unit::unit_step`):
  a, b (a batch each of a CPU pool of random images in [-1, 1]);
  D: mu_a, mu_b = EN_A(a), EN_B(b) without gradients; fakes DE_A(mu_b + n), DE_B(mu_a + n);
     loss = Σ_scales mean(D(fake)²) + mean((D(real) − 1)²) for D_A and D_B; backward; Adam on both Ds;
  G (D frozen, fresh noise): reconstructions, translations, re-encodings, cycle decodes; loss = gan + 10·recon L1
     + 0.01·mean μ² + 10·cycle L1 + 0.01·mean μ'²; backward; Adam on the generators (one optimizer, as gen_opt).
  Adam lr 1e-4, betas (0.5, 0.999), weight decay 1e-4 (the authors' config).
Prints `ms_per_step:` and `cpu_ms_per_step:` (and a `setup:` line).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "golden"))
from unit_golden import MsImageDis, UnitGenerators  # noqa: E402
from step_common import OursAdam, Setup, add_common_args, time_steps  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--n-res", type=int, default=3)
    ap.add_argument("--d-dim", type=int, default=16)
    ap.add_argument("--d-layers", type=int, default=3)
    ap.add_argument("--d-scales", type=int, default=2)
    add_common_args(ap, warmup=5, steps=30)
    args = ap.parse_args()
    setup = Setup(args)
    dev = setup.dev
    torch.manual_seed(args.seed)
    n, s, pool = args.batch, args.size, 4
    g = UnitGenerators(c=3, dim=args.dim, nd=2, n_res=args.n_res, shared_enc=1, shared_dec=1)
    d_a = MsImageDis(3, args.d_dim, args.d_layers, args.d_scales)
    d_b = MsImageDis(3, args.d_dim, args.d_layers, args.d_scales)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    if args.expect_g_params is not None:
        assert count(g) == args.expect_g_params, f"G has {count(g)} parameters, expected {args.expect_g_params}"
    if args.expect_d_params is not None:
        assert count(d_a) == args.expect_d_params, f"D has {count(d_a)} parameters, expected {args.expect_d_params}"
    g, d_a, d_b = (setup.model(m).train() for m in (g, d_a, d_b))
    if args.adam == "ours":
        # OursAdam has no weight decay; the ours variant is for op-by-op comparisons only.
        opt_g = OursAdam(g.parameters(), 1e-4, (0.5, 0.999))
        opt_d = OursAdam(list(d_a.parameters()) + list(d_b.parameters()), 1e-4, (0.5, 0.999))
    else:
        opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
        opt_d = torch.optim.Adam(list(d_a.parameters()) + list(d_b.parameters()), lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
    images = torch.rand(2 * pool * n, 3, s, s) * 2 - 1
    enc_a, dec_a, enc_b, dec_b = g.gen_a.enc, g.gen_a.dec, g.gen_b.enc, g.gen_b.dec
    d_params = list(d_a.parameters()) + list(d_b.parameters())
    l1 = lambda x, y: (x - y).abs().mean()  # noqa: E731
    kl = lambda mu: mu.pow(2).mean()  # noqa: E731

    def d_loss(d, fake, real):
        return sum((f ** 2).mean() + ((r - 1) ** 2).mean() for f, r in zip(d(fake), d(real)))

    def g_loss(d, fake):
        return sum(((f - 1) ** 2).mean() for f in d(fake))

    def step(i):
        k = i % pool
        a = setup.input(images[2 * k * n:(2 * k + 1) * n])
        b = setup.input(images[(2 * k + 1) * n:(2 * k + 2) * n])
        with torch.no_grad():
            mu_a, mu_b = enc_a(a), enc_b(b)
            fake_a = dec_a(mu_b + torch.randn_like(mu_b))
            fake_b = dec_b(mu_a + torch.randn_like(mu_a))
        loss_d = d_loss(d_a, fake_a, a) + d_loss(d_b, fake_b, b)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        for p in d_params:
            p.requires_grad_(False)
        mu_a, mu_b = enc_a(a), enc_b(b)
        z_a, z_b = mu_a + torch.randn_like(mu_a), mu_b + torch.randn_like(mu_b)
        rec_a, rec_b, ba, ab = dec_a(z_a), dec_b(z_b), dec_a(z_b), dec_b(z_a)
        mu_b_rec, mu_a_rec = enc_a(ba), enc_b(ab)
        aba = dec_a(mu_a_rec + torch.randn_like(mu_a_rec))
        bab = dec_b(mu_b_rec + torch.randn_like(mu_b_rec))
        loss_g = (g_loss(d_a, ba) + g_loss(d_b, ab) + 10 * (l1(rec_a, a) + l1(rec_b, b)) + 0.01 * (kl(mu_a) + kl(mu_b))
                  + 10 * (l1(aba, a) + l1(bab, b)) + 0.01 * (kl(mu_a_rec) + kl(mu_b_rec)))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        for p in d_params:
            p.requires_grad_(True)
        return {"loss_D": loss_d.item(), "loss_G": loss_g.item()}

    last = time_steps(step, args.warmup, args.steps, args.profile, setup)
    print(f"batch {n}; size {s}; threads {torch.get_num_threads()}; torch {torch.__version__}; last losses {last}", file=sys.stderr)


if __name__ == "__main__":
    main()
