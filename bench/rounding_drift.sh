#!/usr/bin/env bash
# How far a training run parts from itself under rounding, next to how far 2 data-parallel ranks part from one
# process (issue #15, bench/README.md "Data parallel"): CONFIG is trained three times — one process, one process
# on libtorch's portable kernels (ATEN_CPU_CAPABILITY=default), and 2 ranks (`ganzoo train --nproc 2`) — with a
# checkpoint every step; for each step the largest |Δ| of any checkpoint tensor (weights and batch-norm
# statistics; optimizer state left out) against the first run.
#   bash bench/rounding_drift.sh CONFIG [STEPS]      (STEPS: 5 by default; the config's own widths and optimizer)
# Needs the debug or release binary (GANZOO, default target/debug/ganzoo), .venv (safetensors) and, for MNIST
# configs, the cache (bash .ci/dev test).
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=$1
steps=${2:-5}
bin=${GANZOO:-target/debug/ganzoo}
export GANZOO_CACHE=${GANZOO_CACHE:-$PWD/.ganzoo-cache}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sets=(--quiet --set "train.steps=$steps" --set train.checkpoint_every=1 --set "train.keep_checkpoints=$steps" --set "train.sample_every=$steps" --set eval.metrics=[] --set eval.samples=64)
"$bin" train "$cfg" --out "$work/one" "${sets[@]}" >/dev/null
ATEN_CPU_CAPABILITY=default "$bin" train "$cfg" --out "$work/portable" "${sets[@]}" >/dev/null
"$bin" train "$cfg" --out "$work/ranks" --nproc 2 "${sets[@]}" >/dev/null
.venv/bin/python - "$work" "$steps" <<'PY'
import sys
from safetensors.torch import load_file
work, steps = sys.argv[1], int(sys.argv[2])
def drift(a, b):
    a, b = load_file(a), load_file(b)
    return max(((a[k] - b[k]).abs().max().item(), k) for k in a if not k.startswith("opt_") and a[k].is_floating_point())
print("| step | portable kernels vs one process | 2 ranks vs one process |")
print("|---:|---|---|")
for s in range(1, steps + 1):
    f = f"checkpoints/step_{s:08d}.safetensors"
    (dp, kp), (dr, kr) = drift(f"{work}/one/{f}", f"{work}/portable/{f}"), drift(f"{work}/one/{f}", f"{work}/ranks/{f}")
    print(f"| {s} | {dp:.1e} ({kp}) | {dr:.1e} ({kr}) |")
PY
