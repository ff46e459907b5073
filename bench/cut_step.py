#!/usr/bin/env python3
"""CUT / FastCUT training-step time in plain PyTorch: the reference side of `cargo bench --bench ganzoo_bench -- cut`.

The networks are models/golden/cut_golden.py's rebuild of the authors' code (taesungp/contrastive-unpaired-
translation: ResnetGenerator and NLayerDiscriminator with their default anti-aliasing, instance norm; PatchSampleF
with MLP heads), imported from there; parameter counts asserted equal to ganzoo's with --expect-g-params /
--expect-d-params. One step, as the authors' `CUTModel.optimize_parameters` and pipelines/src/families/cut:
  a, b (batch 1 of a CPU pool of 4 preprocessed real pairs, or noise);
  forward: real = cat(a, b) (CUT: nce_idt) or a (FastCUT, flipped left-right on a coin); fake = G(real);
  D: 0.5 · (MSE(D(fake_b.detach()), 0) + MSE(D(b), 1)); backward; Adam D;
  G and F (D frozen): MSE(D(fake_b), 1) + NCE(a, fake_b) [+ NCE(b, idt_b), averaged] with NCE the mean over the
  layers 0, 4, 8, 12, 16 of λ_NCE · the mean PatchNCE of 256 patches a layer (torch.randperm positions), τ 0.07;
  backward; Adam G and Adam F.  Adam 2e-4 (0.5, 0.999) for all three.
Prints `ms_per_step:` and `cpu_ms_per_step:` (and a `setup:` line).
"""
import argparse
import os
import random
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "golden"))
from cut_golden import LAYERS, CutNLayerDiscriminator, CutResnetGenerator, PatchSampleF, patch_nce  # noqa: E402
from step_common import Setup, add_common_args, time_steps  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["cut", "fastcut"], default="cut")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--n-blocks", type=int, default=9)
    ap.add_argument("--patches", type=int, default=256)
    ap.add_argument("--data", default=None, help="K (A, B) pairs as raw LE f32 (K, 2, 3, S, S)")
    add_common_args(ap, warmup=2, steps=5)
    args = ap.parse_args()
    setup = Setup(args)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    s, cut = args.size, args.mode == "cut"
    lambda_nce = 1.0 if cut else 10.0
    g = CutResnetGenerator(3, 3, n_blocks=args.n_blocks)
    d = CutNLayerDiscriminator(3)
    with torch.no_grad():
        chans = [t.shape[1] for t in g(torch.zeros(1, 3, s, s), LAYERS, encode_only=True)]
    f = PatchSampleF(chans, 256)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    if args.expect_g_params is not None:
        assert count(g) == args.expect_g_params, f"G has {count(g)} parameters, expected {args.expect_g_params}"
    if args.expect_d_params is not None:
        assert count(d) == args.expect_d_params, f"D has {count(d)} parameters, expected {args.expect_d_params}"
    g, d, f = (setup.model(m).train() for m in (g, d, f))
    opts = [torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (g, d, f)]
    opt_g, opt_d, opt_f = opts
    if args.data:
        raw = torch.from_file(args.data, dtype=torch.float32, size=os.path.getsize(args.data) // 4)
        pairs = raw.view(-1, 2, 3, s, s)
    else:
        pairs = torch.rand(4, 2, 3, s, s) * 2 - 1

    def nce(src, tgt, flipped):
        feat_q = g(tgt, LAYERS, encode_only=True)
        if flipped:
            feat_q = [t.flip(3) for t in feat_q]
        feat_k = g(src, LAYERS, encode_only=True)
        ids = [torch.randperm(t.shape[2] * t.shape[3])[:args.patches].to(t.device) for t in feat_k]
        fk, fq = f(feat_k, ids), f(feat_q, ids)
        return sum((patch_nce(q, k, src.shape[0]) * lambda_nce).mean() for q, k in zip(fq, fk)) / len(LAYERS)

    def step(i):
        pair = pairs[i % pairs.shape[0]]
        a, b = setup.input(pair[0:1]), setup.input(pair[1:2])
        real = torch.cat([a, b], 0) if cut else a
        flipped = (not cut) and random.random() < 0.5
        if flipped:
            real = real.flip(3)
        with setup.fwd():
            fake = g(real)
            fake_b = fake[:1]
            pred_fake = d(fake_b.detach())
            pred_real = d(b)
            loss_d = 0.5 * (F.mse_loss(pred_fake, torch.zeros_like(pred_fake)) + F.mse_loss(pred_real, torch.ones_like(pred_real)))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        for p in d.parameters():
            p.requires_grad_(False)
        with setup.fwd():
            pred = d(fake_b)
            loss_g = F.mse_loss(pred, torch.ones_like(pred))
            loss_nce = nce(a, fake_b, flipped)
            if cut:
                loss_nce = (loss_nce + nce(b, fake[1:], flipped)) * 0.5
            loss_g = loss_g + loss_nce
        opt_g.zero_grad()
        opt_f.zero_grad()
        loss_g.backward()
        opt_g.step()
        opt_f.step()
        for p in d.parameters():
            p.requires_grad_(True)
        return {"loss_D": loss_d.item(), "loss_G": loss_g.item()}

    last = time_steps(step, args.warmup, args.steps, args.profile, setup)
    print(f"mode {args.mode}; size {s}; blocks {args.n_blocks}; threads {torch.get_num_threads()}; torch {torch.__version__}; last losses {last}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
