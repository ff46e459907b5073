#!/usr/bin/env bash
# Data-parallel throughput (issue #15): training samples per second of the product's own `ganzoo train`, for
# 1 process × 1 thread, 1 process × 2 threads and 2 ranks × 1 thread (torchrun, Gloo on loopback), alternated
# over ROUNDS rounds, side by side in one run. Samples/s = steps × global batch / the report's train_seconds
# (the training loop only: no start-up, no evaluation).
#   bash bench/data_parallel.sh                 # CycleGAN shapes quickstart and DCGAN on MNIST
#   ROUNDS=3 CG_STEPS=100 DC_STEPS=30 bash bench/data_parallel.sh
# Needs the release binary (cargo build --release), .venv (torchrun) and the MNIST cache (bash .ci/dev test).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GANZOO:-target/release/ganzoo}
rounds=${ROUNDS:-2}
export GANZOO_CACHE=${GANZOO_CACHE:-$PWD/.ganzoo-cache}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# name | config | steps | global batch
cases=(
  "cyclegan_shapes|configs/quickstart/cyclegan_shapes.yaml|${CG_STEPS:-60}|4"
  "dcgan_mnist|configs/papers/dcgan_mnist.yaml|${DC_STEPS:-20}|128"
)
run() { # mode out config steps
  local mode=$1 out=$2 cfg=$3 steps=$4
  local sets=(--set "train.steps=$steps" --set "train.sample_every=$steps" --set "train.checkpoint_every=$steps" --set "eval.samples=64" --set "eval.metrics=[]")
  case $mode in
    1x1) "$bin" train "$cfg" --out "$out" --quiet "${sets[@]}" --set threads=1 >/dev/null ;;
    1x2) "$bin" train "$cfg" --out "$out" --quiet "${sets[@]}" --set threads=2 >/dev/null ;;
    2x1) .venv/bin/torchrun --no-python --nproc-per-node 2 --master-port "$((29500 + RANDOM % 1000))" \
           "$bin" train "$cfg" --out "$out" --quiet "${sets[@]}" --set threads=1 >/dev/null 2>"$out.torchrun.log" ;;
  esac
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['train_seconds'])" "$out/report.json"
}
echo "| case | round | mode | steps | samples/s |"
echo "|---|---:|---|---:|---:|"
declare -A sum
for round in $(seq 1 "$rounds"); do
  for c in "${cases[@]}"; do
    IFS='|' read -r name cfg steps batch <<<"$c"
    for mode in 1x1 1x2 2x1; do
      out="$work/$name-$mode-$round"
      secs=$(run "$mode" "$out" "$cfg" "$steps")
      sps=$(python3 -c "print(f'{$steps * $batch / $secs:.1f}')")
      echo "| $name | $round | $mode | $steps | $sps |"
      sum["$name $mode"]="${sum["$name $mode"]:-} $sps"
      rm -rf "$out"
    done
  done
done
echo
echo "| case | 1 process × 1 thread | 1 process × 2 threads | 2 ranks × 1 thread | 2 ranks / 1×1 | 2 ranks / 1×2 |"
echo "|---|---:|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
  IFS='|' read -r name _ _ _ <<<"$c"
  python3 - "$name" "${sum["$name 1x1"]}" "${sum["$name 1x2"]}" "${sum["$name 2x1"]}" <<'PY'
import statistics, sys
name, *cols = sys.argv[1:]
med = [statistics.median(float(x) for x in c.split()) for c in cols]
print(f"| {name} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | {med[2]/med[0]:.2f} | {med[2]/med[1]:.2f} |")
PY
done
