#!/usr/bin/env bash
# Text-to-image on captioned shapes at 64×64 (bench/text2img_shapes_64.yaml) on a GPU machine: several variants
# trained side by side on the one GPU (each process is far from filling an H200), each judged by the attribute
# classifier trained on real shapes. Run from the repo root with the release binary at target/gpu/ganzoo-release
# (or GANZOO_BIN) and python3's torch/lib:
#   OUT=DIR [T2I_STEPS=6000] bash bench/gpu_t2i.sh
# Writes DIR/<variant>.json (the report), DIR/<variant>.png (the last sample grid), DIR/<variant>.txt (its prompts).
set -u
: "${OUT:?set OUT to an empty folder}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
GANZOO=${GANZOO_BIN:-target/gpu/ganzoo-release}
PY=${GANZOO_PYTHON:-python3}
export LD_LIBRARY_PATH="$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export GANZOO_CACHE=${GANZOO_CACHE:-$ROOT/.ganzoo-cache}
STEPS=${T2I_STEPS:-6000}
LIMIT=${T2I_LIMIT:-300}
# The judge is trained once, before the variants start, so they do not all train it.
"$GANZOO" train bench/text2img_shapes_64.yaml --out "$OUT/.warm" --quiet --set device=auto --set train.steps=1 \
  --set model.text.encoder.pretrain_steps=1 --set eval.samples=114 >/dev/null || echo "warm-up run failed"
rm -rf "$OUT/.warm"
variant() {  # NAME --set ... : one training run, kept small: the report, the last grid and its prompts
  local name=$1
  shift
  local run="$OUT/run_$name"
  timeout -k 5 "$LIMIT" "$GANZOO" train bench/text2img_shapes_64.yaml --out "$run" --quiet --json --set device=auto \
    --set "train.steps=$STEPS" --set "train.sample_every=$STEPS" --set "train.checkpoint_every=$STEPS" \
    --set train.keep_checkpoints=1 "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"
  echo "$name: exit $?"
  cp "$run/samples/step_$(printf %08d "$STEPS").png" "$OUT/$name.png" 2>/dev/null
  cp "$run/samples/step_$(printf %08d "$STEPS").txt" "$OUT/$name.txt" 2>/dev/null
  rm -rf "$run"
}
# GAN-CLS as in the paper against the quickstart's recipe (projection D, hinge loss, spectral norm, mode seeking),
# both with the encoder pretrained 1500 steps.
variant gan_cls --set model.text.encoder.pretrain_steps=1500 &
variant projection --set model.text.encoder.pretrain_steps=1500 \
  --set 'model.discriminator={arch: projection, ndf: 64, batch_norm: false}' --set loss.adversarial=hinge \
  --set loss.spectral_norm=true --set "model.mode_seeking=${T2I_MS:-0.1}" &
wait
for f in "$OUT"/*.json; do
  "$PY" - "$f" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(sys.argv[1], "no report:", e); sys.exit(0)
a = r["eval"]["attribute_accuracy"]
s, u = a["seen_phrasing"], a["unseen_phrasing"]
print(f"{sys.argv[1].rsplit('/', 1)[-1]}: {r['device']}, {r['steps']} steps, {r['train_seconds']:.0f} s; seen: shape {s['shape']:.3f} colour {s['colour']:.3f} size {s['size']:.3f} background {s['background']:.3f} all {s['all_four']:.3f} diversity/real {s.get('diversity_vs_real', float('nan')):.2f}; unseen: shape {u['shape']:.3f} colour {u['colour']:.3f}")
PY
done
