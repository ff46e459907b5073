#!/usr/bin/env python3
"""Are channels-last gradients right? Op by op and for the CycleGAN generator, on --device, against float64.

Found on the CPU with torch 2.11.0: `F.instance_norm` (what nn.InstanceNorm2d calls) on a channels-last input of
batch 1 returns the right forward values but a wrong input gradient (relative error ~1.4, i.e. unrelated to the true
one; batch 2 is right), so a channels-last CycleGAN (batch 1, instance norm) trains on wrong gradients. ganzoo uses
the same kernels through libtorch, so it has the same problem (`ganzoo_bench check` shows it). This script says
whether a device has it: each row is the relative L2 error of the forward output and of the input gradient against
a float64 computation on the CPU, for NCHW and for channels-last inputs.

usage: python bench/cl_grad_check.py [--device cpu|cuda]
"""
import argparse
import copy
import sys

import torch
import torch.nn.functional as F


def rel(a, b):
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def op_rows(dev, tol):
    torch.manual_seed(0)
    w3 = torch.randn(64, 64, 3, 3, dtype=torch.float64) * 0.05
    wt = torch.randn(64, 32, 3, 3, dtype=torch.float64) * 0.05
    cases = [
        ("instance_norm, batch 1", lambda x: F.instance_norm(x), (1, 64, 32, 32)),
        ("instance_norm, batch 2", lambda x: F.instance_norm(x), (2, 64, 32, 32)),
        ("batch_norm (train), batch 1", lambda x: F.batch_norm(x, None, None, training=True), (1, 64, 32, 32)),
        ("reflection pad 1", lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect"), (1, 64, 32, 32)),
        ("conv 3×3", lambda x: F.conv2d(x, w3.to(x)), (1, 64, 32, 32)),
        ("conv_transpose 3×3 s2", lambda x: F.conv_transpose2d(x, wt.to(x), stride=2, padding=1, output_padding=1), (1, 64, 16, 16)),
        ("leaky_relu 0.2", lambda x: F.leaky_relu(x, 0.2), (1, 64, 32, 32)),
    ]
    bad = []
    print(f"{'op':30s} {'layout':14s} {'fwd rel err':>12s} {'grad rel err':>12s}")
    for name, f, shape in cases:
        x = torch.randn(*shape, dtype=torch.float64)
        xd = x.clone().requires_grad_()
        yd = f(xd)
        go = torch.randn_like(yd)
        yd.backward(go)
        for cl in (False, True):
            fmt = torch.channels_last if cl else torch.contiguous_format
            xi = x.float().to(dev).contiguous(memory_format=fmt).requires_grad_()
            y = f(xi)
            y.backward(go.float().to(dev).contiguous(memory_format=fmt))
            e_f, e_g = rel(y, yd), rel(xi.grad, xd.grad)
            flag = "" if e_f <= tol and e_g <= tol else "   <-- WRONG"
            if flag:
                bad.append(f"{name} ({'channels_last' if cl else 'NCHW'})")
            print(f"{name:30s} {'channels_last' if cl else 'NCHW':14s} {e_f:12.1e} {e_g:12.1e}{flag}")
    return bad


def cyclegan_rows(dev, tol):
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from cyclegan_step import NLayerDiscriminator, ResnetGenerator, init_normal

    torch.manual_seed(0)
    G, D = ResnetGenerator(n_blocks=2), NLayerDiscriminator()
    init_normal(G)
    init_normal(D)
    x = torch.rand(1, 3, 64, 64) * 2 - 1

    def grads(G, D, x):
        G.zero_grad()
        D.zero_grad()
        f = G(x)
        (((D(f) - 1) ** 2).mean() + (f - x).abs().mean() * 10).backward()
        return {n: p.grad.clone() for n, p in G.named_parameters() if n.endswith("weight")}

    ref = grads(copy.deepcopy(G).double(), copy.deepcopy(D).double(), x.double())
    bad = []
    print(f"CycleGAN G (2 blocks, 64×64, batch 1) weight gradients vs float64: worst relative error per layout")
    for cl in (False, True):
        fmt = torch.channels_last if cl else torch.contiguous_format
        g = grads(copy.deepcopy(G).to(dev).to(memory_format=fmt), copy.deepcopy(D).to(dev).to(memory_format=fmt),
                  x.to(dev).contiguous(memory_format=fmt))
        worst = max((rel(g[n], ref[n]), n) for n in ref)
        flag = "" if worst[0] <= tol * 10 else "   <-- WRONG"
        if flag:
            bad.append(f"CycleGAN G ({'channels_last' if cl else 'NCHW'})")
        print(f"   {'channels_last' if cl else 'NCHW':14s} {worst[0]:.1e} ({worst[1]}){flag}")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    # fp32 on CPU: ~1e-6; CUDA convolutions may use TF32 (10-bit mantissa): ~1e-3.
    tol = 1e-4 if dev.type == "cpu" else 2e-2
    print(f"torch {torch.__version__}, device {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "")
          + f", tolerance {tol:.0e} (ops) / {tol * 10:.0e} (network)")
    bad = op_rows(dev, tol) + cyclegan_rows(dev, tol)
    print("cl_grad_check: " + ("all right" if not bad else "WRONG: " + "; ".join(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
