#!/usr/bin/env python3
"""DCGAN training-step time in plain PyTorch: the reference side of `cargo bench --bench ganzoo_bench -- dcgan`.

It replicates what one `ganzoo_pipelines::gan::Gan::train_step` does for configs/papers/dcgan_mnist.yaml
(n_critic 1, non-saturating loss, batch norm on), read from pipelines/src/gan.rs, models/src/dcgan.rs,
models/src/losses.rs and models/src/optim.rs:

  G (28×28 layout, dcgan.rs): z (N, nz) -> view (N, nz, 1, 1)
      ConvTranspose2d(nz, 2·ngf, 7, 1, 0, bias=False) + BN + ReLU          -> (N, 128, 7, 7)
      ConvTranspose2d(2·ngf, ngf, 4, 2, 1, bias=False) + BN + ReLU         -> (N, 64, 14, 14)
      ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False) + tanh                  -> (N, 1, 28, 28)
  D: Conv2d(1, ndf, 4, 2, 1, bias=False) + LeakyReLU(0.2)                  -> (N, 64, 14, 14)
      Conv2d(ndf, 2·ndf, 4, 2, 1, bias=False) + BN + LeakyReLU(0.2)        -> (N, 128, 7, 7)
      Conv2d(2·ndf, 1, 7, 1, 0, bias=False) -> (N,)
  init N(0, 0.02) conv weights, BN weight N(1, 0.02), BN bias 0 (init.rs init_dcgan)

  one step: real batch (MNIST IDX scaled to [-1, 1], shuffled per epoch, drop_last); z ~ N(0, 1);
    fake = G(z) (with grad); D.zero_grad (grads zeroed, not set to None, as tch does);
    loss_D = BCEwithlogits(D(real), 1) + BCEwithlogits(D(fake.detach()), 0); backward; Adam step D;
    loss_D, mean D(real), mean D(fake) read as Python floats;
    D's parameters requires_grad=False; G.zero_grad; loss_G = BCEwithlogits(D(fake), 1); backward;
    D's parameters requires_grad=True; Adam step G; loss_G read.
  Adam lr 2e-4, betas (0.5, 0.999), eps 1e-8 (torch.optim.Adam; on CPU tensors it runs the
  single-tensor implementation, like ours, per parameter; on CUDA its default is foreach, as PyTorch users get it).

Device options (step_common.py): --device cuda (cudnn.benchmark on; the data stays on the CPU and each batch is
copied to the device, as ganzoo's feed does), --channels-last (model and inputs), --amp bf16 with --amp-scope
forward|step (torch.autocast around the forward passes and losses, or around the whole step).

Prints `ms_per_step: X` (wall-clock mean over the timed steps), `cpu_ms_per_step: Y` (process CPU time, all threads) and, with --profile, the top ops of the profiler.
Variant flags reproduce choices of our implementation inside PyTorch, to measure what each one costs:
  --leaky factor    LeakyReLU as h·([h > 0]·0.8 + 0.2) (what models/src/base.rs does) instead of F.leaky_relu;
  --leaky max       as maximum(h, 0.2·h) (an earlier form of ours)
  --adam ours       Adam written op by op as models/src/optim.rs does (unfused temporaries)
"""
import argparse
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from step_common import LeakyFactor, OursAdam, Setup, add_common_args, time_steps


def read_idx_images(path):
    """(N, 1, rows, cols) uint8 from an IDX image file."""
    with open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    assert magic == 2051, f"{path}: not an IDX image file (magic {magic})"
    px = torch.frombuffer(bytearray(data[16:16 + n * rows * cols]), dtype=torch.uint8)
    return px.reshape(n, 1, rows, cols)


class LeakyMax(nn.Module):
    def forward(self, h):
        return torch.maximum(h, h * 0.2)


def generator(nz, ngf, channels):
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 2, 7, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def discriminator(ndf, channels, leaky):
    act = {"max": LeakyMax, "factor": LeakyFactor}.get(leaky, lambda: nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(
        nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
        act(),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        act(),
        nn.Conv2d(ndf * 2, 1, 7, 1, 0, bias=False),
    )


def init_dcgan(m):
    for name, p in m.named_parameters():
        with torch.no_grad():
            if p.dim() > 1:
                p.normal_(0.0, 0.02)
            elif name.endswith("weight"):
                p.normal_(1.0, 0.02)
            else:
                p.zero_()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", required=True, help="IDX image file (images-idx3-ubyte)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--nz", type=int, default=100)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--leaky", choices=["fused", "max", "factor"], default="fused")
    add_common_args(ap, warmup=5, steps=20)
    args = ap.parse_args()

    setup = Setup(args)
    dev = setup.dev
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    px = read_idx_images(args.mnist)
    n, channels, rows, cols = px.shape
    assert rows == cols == 28, f"expected 28×28 digits, got {rows}×{cols}"
    data = px.float() / 127.5 - 1.0  # [-1, 1], as data/src/mnist.rs; stays on the CPU
    per_epoch = n // args.batch

    G = generator(args.nz, args.ngf, channels)
    D = discriminator(args.ndf, channels, args.leaky)
    init_dcgan(G)
    init_dcgan(D)
    G, D = setup.model(G), setup.model(D)
    g_params = sum(p.numel() for p in G.parameters())
    d_params = sum(p.numel() for p in D.parameters())
    if args.expect_g_params is not None:
        assert g_params == args.expect_g_params, f"G has {g_params} parameters, ganzoo's G {args.expect_g_params}"
    if args.expect_d_params is not None:
        assert d_params == args.expect_d_params, f"D has {d_params} parameters, ganzoo's D {args.expect_d_params}"
    G.train()
    D.train()

    if args.adam == "ours":
        opt_g = OursAdam(G.parameters(), 2e-4, (0.5, 0.999))
        opt_d = OursAdam(D.parameters(), 2e-4, (0.5, 0.999))
        zero_g, zero_d = opt_g.zero_grad, opt_d.zero_grad
    else:
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        zero_g = lambda: opt_g.zero_grad(set_to_none=False)  # noqa: E731  (tch zeroes, never sets None)
        zero_d = lambda: opt_d.zero_grad(set_to_none=False)  # noqa: E731

    state = {"perm": torch.randperm(n, generator=gen), "k": 0}

    def next_real():
        if state["k"] == per_epoch:
            state["perm"], state["k"] = torch.randperm(n, generator=gen), 0
        k = state["k"]
        idx = state["perm"][k * args.batch:(k + 1) * args.batch]
        state["k"] += 1
        return setup.input(data.index_select(0, idx))

    d_params_list = list(D.parameters())
    bce = F.binary_cross_entropy_with_logits

    def step():
        real = next_real()
        z = setup.input(torch.randn(args.batch, args.nz, device=dev).view(args.batch, args.nz, 1, 1))
        with setup.fwd():
            fake = G(z)
        zero_d()
        with setup.fwd():
            d_real = D(real).view(-1)
            d_fake = D(fake.detach()).view(-1)
            loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        loss_d.backward()
        opt_d.step()
        out = {"loss_D": loss_d.item(), "D_real": d_real.mean().item(), "D_fake": d_fake.mean().item()}
        for p in d_params_list:
            p.requires_grad_(False)
        zero_g()
        with setup.fwd():
            s = D(fake).view(-1)
            loss_g = bce(s, torch.ones_like(s))
        loss_g.backward()
        for p in d_params_list:
            p.requires_grad_(True)
        opt_g.step()
        out["loss_G"] = loss_g.item()
        return out

    last = time_steps(lambda i: step(), args.warmup, args.steps, args.profile, setup)
    print(f"params: G {g_params} D {d_params}; threads {torch.get_num_threads()}; torch {torch.__version__}; "
          f"leaky {args.leaky}; adam {args.adam}; last losses {last}", file=sys.stderr)


if __name__ == "__main__":
    main()
