#!/usr/bin/env python3
"""VAE-GAN training-step time in plain PyTorch: the reference side of `cargo bench --bench ganzoo_bench -- vaegan`.

The networks are models/golden/vaegan_golden.py's rebuild of the authors' img64x64 layout (imported from there),
at full size: E 18,071,360, Dec 4,693,155, Dis 10,953,857 parameters (asserted). One step, as
pipelines/src/vaegan.rs (`VaeGan::vaegan_step`) with d_sees_reconstructions and no equilibrium band:
  x (a batch of a CPU pool of random images in [-1, 1]); mu, logvar = E(x); z = mu + exp(logvar/2)·eps;
  gen = Dec(cat(z.detach(), z_p)), z_p ~ N(0, I);
  D: logits = Dis(cat(x, gen.detach())); loss_D = BCE(real, 1) + BCE(recon, 0) + BCE(prior, 0); backward; RMSProp;
  Dis frozen (requires_grad False); x_rec = Dec(z); f = Dis features (4th conv, before BN) of cat(x_rec, x);
  L_llike = mean ½‖f_rec − f_x‖²; KL; (KL + L_llike).backward(); Dec grads × γ (1e-5);
  loss_Dec = −BCE(Dis(gen)[recon], 0) − BCE(Dis(gen)[prior], 0) (minimax); backward; RMSProp on E and Dec.
  RMSProp lr 3.125e-4, alpha 0.99, eps 1e-8, weight decay 1e-5 (configs/papers/vaegan_celeba.yaml).
Prints `ms_per_step:` and `cpu_ms_per_step:` (and a `setup:` line).
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "golden"))
from vaegan_golden import Decoder, Discriminator, Encoder  # noqa: E402
from step_common import Setup, add_common_args, time_steps  # noqa: E402

EXPECT = {"E": 18071360, "Dec": 4693155, "Dis": 10953857}


def features(dis, x):
    """Dis up to its feature conv (the 4th), before that conv's batch norm, as ganzoo's `features_t`."""
    h = dis.conv0(x)
    for i, (conv, bn) in enumerate(zip(dis.convs, dis.bns)):
        h = conv(torch.relu(h))
        if i + 2 == dis.feature_conv:
            return h.flatten(1)
        h = bn(h)
    raise ValueError("feature_conv out of range")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    add_common_args(ap, warmup=2, steps=5)
    args = ap.parse_args()
    setup = Setup(args)
    dev = setup.dev
    torch.manual_seed(args.seed)
    n, zd, pool, gamma = args.batch, 128, 4, 1e-5
    nets = {"E": Encoder(3, 64, [64, 128, 256], 1024, zd), "Dec": Decoder(3, 64, 256, [256, 128, 32], zd),
            "Dis": Discriminator(3, 64, 32, [128, 256, 256], 512, 4)}
    for k, m in nets.items():
        got = sum(p.numel() for p in m.parameters())
        assert got == EXPECT[k], f"{k} has {got} parameters, expected {EXPECT[k]}"
    E, Dec, Dis = (setup.model(nets[k]).train() for k in ("E", "Dec", "Dis"))
    opt = {k: torch.optim.RMSprop(m.parameters(), lr=3.125e-4, alpha=0.99, eps=1e-8, weight_decay=1e-5)
           for k, m in (("E", E), ("Dec", Dec), ("Dis", Dis))}
    images = torch.rand(pool * n, 3, 64, 64) * 2 - 1
    bce = F.binary_cross_entropy_with_logits
    dis_params = list(Dis.parameters())

    def step(i):
        x = setup.input(images[(i % pool) * n:(i % pool + 1) * n])
        mu, logvar = E(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(n, zd, device=dev)
        gen = Dec(torch.cat([z.detach(), torch.randn(n, zd, device=dev)]))
        logits = Dis(torch.cat([x, gen.detach()]))[0]
        real, rec, prior = logits[:n], logits[n:2 * n], logits[2 * n:]
        loss_d = bce(real, torch.ones_like(real)) + bce(rec, torch.zeros_like(rec)) + bce(prior, torch.zeros_like(prior))
        opt["Dis"].zero_grad(set_to_none=False)
        loss_d.backward()
        opt["Dis"].step()
        for p in dis_params:
            p.requires_grad_(False)
        f = features(Dis, torch.cat([Dec(z), x]))
        llike = (0.5 * (f[:n] - f[n:]).pow(2).sum(1)).mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
        opt["E"].zero_grad(set_to_none=False)
        opt["Dec"].zero_grad(set_to_none=False)
        (kl + llike).backward()
        with torch.no_grad():
            for p in Dec.parameters():
                if p.grad is not None:
                    p.grad.mul_(gamma)
        s = Dis(gen)[0]
        loss_dec = -bce(s[:n], torch.zeros_like(s[:n])) - bce(s[n:], torch.zeros_like(s[n:]))
        loss_dec.backward()
        for p in dis_params:
            p.requires_grad_(True)
        opt["E"].step()
        opt["Dec"].step()
        return {"loss_D": loss_d.item(), "kl": kl.item(), "llike": llike.item(), "loss_Dec": loss_dec.item()}

    last = time_steps(step, args.warmup, args.steps, args.profile, setup)
    print(f"batch {n}; threads {torch.get_num_threads()}; torch {torch.__version__}; last losses {last}", file=sys.stderr)


if __name__ == "__main__":
    main()
