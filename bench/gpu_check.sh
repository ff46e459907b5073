#!/usr/bin/env bash
# ganzoo on a GPU machine, in one short run (≤ GPU_CHECK_BUDGET seconds, default 400): run from the repository
# root of a copy of the repo that carries the prebuilt release binaries and the data:
#
#   ./ganzoo-release          (copy of target/release/ganzoo; or target/gpu/ganzoo-release)
#   ./ganzoo_bench-release    (copy of target/release/deps/ganzoo_bench-<hash>, built by `cargo bench --no-run`;
#                              or target/gpu/ganzoo_bench-release)
#   .ganzoo-cache/mnist       (ganzoo data get mnist)       GANZOO_CACHE overrides .ganzoo-cache
#   .ganzoo-cache/facades     (train/ and test/ of the pix2pix facades)   GANZOO_FACADES overrides
#
#   OUT=/path/to/empty/dir bash bench/gpu_check.sh            # on CUDA, with python3's torch
#   OUT=/tmp/gpuout bash bench/gpu_check.sh --dry-cpu         # the same steps on the CPU with tiny counts
#
# Steps (each under `timeout`, each independent: a failure is logged and the next step runs; the ones that no
# longer fit the budget are skipped, most important first):
#   env        nvidia-smi -L, torch / CUDA / cuDNN versions, what the binaries link against
#   train      ganzoo train configs/papers/dcgan_mnist.yaml with device: auto, 200 steps; report.json's device
#   check      ganzoo_bench check: channels-last conversion (strides, same losses), the bf16 autocast binding
#   clgrad     bench/cl_grad_check.py: channels-last gradients op by op against float64
#   dcgan128, cyclegan, gan_cls, dcgan64:   side-by-side step times, fp32 / channels-last / bf16 autocast
# Everything goes to $OUT: gpu_check.log (all output), bench.txt (the benches), summary.txt, run_auto/ (the run's
# report, metrics and samples; checkpoints removed), sample PNG.
set -u

mode=cuda
case "${1:-}" in
  --dry-cpu) mode=cpu ;;
  "") ;;
  *) echo "usage: OUT=DIR bash bench/gpu_check.sh [--dry-cpu]" >&2; exit 2 ;;
esac
if [ -z "${OUT:-}" ]; then echo "set OUT to an empty folder" >&2; exit 2; fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
export GANZOO_ROOT="$ROOT"
export RUST_LIB_BACKTRACE=0  # anyhow errors without a backtrace (panics keep theirs)
BUDGET=${GPU_CHECK_BUDGET:-400}
T0=$SECONDS
exec > >(tee -a "$OUT/gpu_check.log") 2>&1

# ------------------------------------------------------------------------------------------- what runs where
first_executable() {  # the first argument that is an executable file; globs expanded by the caller, newest first
  local f
  for f in "$@"; do
    if [ -f "$f" ] && [ -x "$f" ]; then echo "$f"; return 0; fi
  done
  return 1
}
newest() { ls -t "$@" 2>/dev/null | grep -v '\.d$'; }

GANZOO=${GANZOO_BIN:-$(first_executable ./ganzoo-release target/gpu/ganzoo-release target/release/ganzoo target/debug/ganzoo)}
BENCH=${GANZOO_BENCH_BIN:-$(first_executable ./ganzoo_bench-release target/gpu/ganzoo_bench-release $(newest target/release/deps/ganzoo_bench-*) $(newest target/debug/deps/ganzoo_bench-*))}
if [ "$mode" = cuda ]; then
  PY=${GANZOO_PYTHON:-python3}
  DEV=cuda
else
  PY=${GANZOO_PYTHON:-.venv/bin/python}
  DEV=cpu
fi
export GANZOO_PYTHON="$PY"
export GANZOO_CACHE=${GANZOO_CACHE:-$ROOT/.ganzoo-cache}
FACADES=${GANZOO_FACADES:-$GANZOO_CACHE/facades}
if [ ! -d "$FACADES/train" ] && [ "$mode" = cpu ] && [ -d /work/shared/datasets/facades/train ]; then
  FACADES=/work/shared/datasets/facades
fi
TORCH_LIB=$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH="${TORCH_LIB}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# Counts: short on CUDA (each PyTorch measurement is a fresh process: ~5 s of start-up), tiny on the CPU.
if [ "$mode" = cuda ]; then
  THREADS=4
  DC="--warmup 10 --steps 50"; DC_R=3; DC_R2=2
  CG_SET=256:9; CG="--cg-warmup 3 --cg-steps 20"; CG_R=3; CG_R2=2
  GC="--warmup 5 --steps 30"; GC_R=3; GC_R2=2
  TRAIN_STEPS=200; B1=128; B2=64
  T2I_STEPS=${T2I_STEPS:-3000}; T2I_PRETRAIN=300
else
  THREADS=1
  DC="--warmup 1 --steps 2"; DC_R=1; DC_R2=1
  CG_SET=64:2; CG="--cg-warmup 1 --cg-steps 1"; CG_R=1; CG_R2=1
  GC="--warmup 1 --steps 1 --gc-batch 8"; GC_R=1; GC_R2=1
  TRAIN_STEPS=${DRY_TRAIN_STEPS:-20}; B1=16; B2=8
  T2I_STEPS=${T2I_STEPS:-4}; T2I_PRETRAIN=2
fi

export mode DEV PY GANZOO BENCH OUT TRAIN_STEPS GANZOO_CACHE FACADES T2I_STEPS T2I_PRETRAIN

SUMMARY=()
STEP_TEE=/dev/null
# run_step NAME LIMIT_S CMD...: runs CMD under timeout (capped by what is left of the budget), records the outcome.
run_step() {
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET - (SECONDS - T0)))
  if [ "$left" -lt 20 ]; then
    echo "== [$name] skipped: ${left} s of the ${BUDGET} s budget left"
    SUMMARY+=("SKIPPED  $name (budget)")
    return 0
  fi
  if [ "$limit" -gt $((left - 5)) ]; then limit=$((left - 5)); fi
  echo
  echo "== [$name] $(date +%T), limit ${limit} s: $*"
  local t=$SECONDS
  if declare -F "$1" >/dev/null; then
    # A function of this script: run it in a child bash (timeout needs a program); it sees the exported state.
    timeout -k 5 "$limit" bash -c "$(declare -f "$1"); $(printf '%q ' "$@")" 2>&1 | tee -a "$STEP_TEE"
  else
    timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$STEP_TEE"
  fi
  local rc=${PIPESTATUS[0]}
  local dt=$((SECONDS - t)) status=OK
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status=TIMEOUT; elif [ "$rc" -ne 0 ]; then status=FAILED; fi
  echo "== [$name] $status (exit $rc) in ${dt} s"
  SUMMARY+=("$(printf '%-8s %-22s exit %3s %4d s' "$status" "$name" "$rc" "$dt")")
  return 0
}

bench_step() {  # NAME LIMIT BENCH-ARGS...: a ganzoo_bench run, its output also in bench.txt
  local name=$1 limit=$2
  shift 2
  STEP_TEE="$OUT/bench.txt"
  echo "== [$name] ganzoo_bench $*" >>"$OUT/bench.txt"
  run_step "$name" "$limit" "$BENCH" "$@"
  STEP_TEE=/dev/null
}

echo "gpu_check: mode $mode, device $DEV, budget ${BUDGET} s, root $ROOT, OUT $OUT"
echo "  ganzoo:   ${GANZOO:-MISSING}"
echo "  bench:    ${BENCH:-MISSING}"
echo "  python:   $PY; torch lib: ${TORCH_LIB:-NOT FOUND}"
echo "  data:     GANZOO_CACHE=$GANZOO_CACHE (mnist: $([ -f "$GANZOO_CACHE/mnist/images-idx3-ubyte" ] && echo present || echo MISSING)); facades: $FACADES ($([ -d "$FACADES/train" ] && echo present || echo MISSING))"

# --------------------------------------------------------------------------------------------------- (a) env
env_info() {
  uptime
  nproc
  if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; else echo "nvidia-smi: not found"; fi
  "$PY" - <<'EOF'
import torch
print(f"torch {torch.__version__}; CUDA build {torch.version.cuda}; cuDNN {torch.backends.cudnn.version()}; "
      f"cuda available {torch.cuda.is_available()}; devices {torch.cuda.device_count()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device 0: {p.name}, {p.total_memory / 2**30:.1f} GiB, capability {p.major}.{p.minor}, bf16 supported {torch.cuda.is_bf16_supported()}")
EOF
  local b
  for b in "$GANZOO" "$BENCH"; do
    [ -n "$b" ] || continue
    echo "-- ldd $b (torch libraries, anything missing):"
    ldd "$b" | grep -E "torch|c10|not found" || true
  done
}
run_step env 40 env_info

# ------------------------------------------------------------------------------------- (b) ganzoo train, auto
train_auto() {
  [ -n "$GANZOO" ] || { echo "no ganzoo binary"; return 2; }
  local run="$OUT/run_auto"
  rm -rf "$run"
  "$GANZOO" train configs/papers/dcgan_mnist.yaml --out "$run" --quiet \
    --set device=auto --set "train.steps=$TRAIN_STEPS" --set "data.root=$GANZOO_CACHE/mnist" \
    --set "train.sample_every=$TRAIN_STEPS" --set "train.checkpoint_every=$TRAIN_STEPS" --set train.keep_checkpoints=1 \
    --set train.log_every=50
  local rc=$?
  rm -rf "$run/checkpoints"  # weights are not needed back
  cp "$run"/samples/*.png "$OUT/" 2>/dev/null && echo "samples copied: $(ls "$run"/samples/)"
  [ -f "$run/report.json" ] || { echo "no report.json (exit $rc)"; return 1; }
  EXPECT=$([ "$mode" = cuda ] && echo cuda:0 || echo cpu) "$PY" - "$run/report.json" <<'EOF'
import json, os, sys
r = json.load(open(sys.argv[1]))
want = os.environ["EXPECT"]
print(f"report.json: device {r.get('device')!r}; steps {r.get('steps')}; train_seconds {r.get('train_seconds')}; "
      f"{(r.get('train_seconds') or 0) / max(r.get('steps') or 1, 1) * 1000:.1f} ms/step incl. logging and sampling")
print(f"final losses {r.get('final_losses')}; parameters {r.get('parameters')}")
print(f"summary: {r.get('summary')}")
ok = r.get("device") == want
print(f"device {'is' if ok else 'is NOT'} {want}")
sys.exit(0 if ok else 1)
EOF
  local prc=$?
  grep -h '"device"' "$run/config.resolved.yaml" "$run/report.json" 2>/dev/null | head -3
  grep -n '^device' "$run/config.resolved.yaml" 2>/dev/null
  [ "$rc" -eq 0 ] && [ "$prc" -eq 0 ]
}
run_step train_auto 90 train_auto

# ------------------------------------------------------------------ (e) text-to-image benchmark at 64×64, on CUDA
# bench/text2img_shapes_64.yaml (GAN-CLS at the paper's widths, trainable text encoder): joint vs split D at
# equal steps; attribute accuracy judged by the classifier trained on real shapes (trained here, once).
t2i64() {
  local heads=$1 run="$OUT/t2i64_$1"
  rm -rf "$run"
  "$GANZOO" train bench/text2img_shapes_64.yaml --out "$run" --quiet --json --set device=auto \
    --set "model.heads=$heads" --set "train.steps=${T2I_STEPS}" --set "model.text.encoder.pretrain_steps=${T2I_PRETRAIN}" \
    --set "train.sample_every=${T2I_STEPS}" --set "train.checkpoint_every=${T2I_STEPS}" --set train.keep_checkpoints=1 > "$run.json"
  local rc=$?
  rm -rf "$run/checkpoints"
  "$PY" - "$run.json" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"device {r['device']}; {r['steps']} steps in {r['train_seconds']:.1f} s ({r['train_seconds'] / r['steps'] * 1000:.1f} ms/step incl. pretraining, logging, sampling)")
print("summary:", r["summary"])
print("attribute_accuracy:", json.dumps(r["eval"]["attribute_accuracy"]))
print("heads:", json.dumps(r["eval"]["heads"]))
EOF2
  return $rc
}

# ------------------------------------------------------------------------------------------- (c) the benches
# Most important first (the budget skips the tail): the GAN-CLS and DCGAN fp32 ratios, the 64×64 text-to-image
# runs, then channels-last and bf16, CycleGAN, and the batch-64 DCGAN rows.
DCB="dcgan --device $DEV --threads $THREADS"
CGB="cyclegan --device $DEV --facades $FACADES"
GCB="gan_cls --device $DEV --threads $THREADS"
bench_step gan_cls_fp32 75 $GCB $GC --rounds "$GC_R"
bench_step dcgan128_fp32 75 $DCB --batch "$B1" $DC --rounds "$DC_R"
run_step t2i64_joint 130 t2i64 joint
run_step t2i64_split 130 t2i64 split
bench_step gan_cls_cl 60 $GCB $GC --rounds "$GC_R2" --channels-last
bench_step gan_cls_bf16 90 $GCB $GC --rounds "$GC_R2" --bf16
bench_step check 120 check --device "$DEV" --threads "$THREADS" --facades "$FACADES"
run_step clgrad 60 "$PY" bench/cl_grad_check.py --device "$DEV"
bench_step dcgan128_cl 60 $DCB --batch "$B1" $DC --rounds "$DC_R2" --channels-last
bench_step dcgan128_bf16 90 $DCB --batch "$B1" $DC --rounds "$DC_R2" --bf16
bench_step cyclegan_fp32 75 $CGB --cg-settings "$CG_SET:$CG_R" $CG
bench_step cyclegan_cl 60 $CGB --cg-settings "$CG_SET:$CG_R2" $CG --channels-last
bench_step cyclegan_bf16 90 $CGB --cg-settings "$CG_SET:$CG_R2" $CG --bf16
bench_step dcgan64_fp32 60 $DCB --batch "$B2" $DC --rounds "$DC_R2"
bench_step dcgan64_cl 50 $DCB --batch "$B2" $DC --rounds "$DC_R2" --channels-last
bench_step dcgan64_bf16 75 $DCB --batch "$B2" $DC --rounds "$DC_R2" --bf16

# ----------------------------------------------------------------------------------------------- summary
{
  echo
  echo "== summary: mode $mode, $((SECONDS - T0)) s of ${BUDGET} s"
  for s in "${SUMMARY[@]}"; do echo "  $s"; done
  echo "  bench rows (medians; ratio = ours / PyTorch), from bench.txt:"
  grep -E "^== \[|^ *(threads|size) .*\|| *[0-9]+( +[0-9]+)* +\| .*load|^ +ours: |^ +torch setup:|FAIL|WRONG" "$OUT/bench.txt" 2>/dev/null | sed 's/^/    /' || true
} | tee "$OUT/summary.txt"
exit 0
