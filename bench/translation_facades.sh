#!/usr/bin/env bash
# Paired against unpaired translation on the real CMP facades at 128×128 (issue #17), labels → photos, at equal
# training time on one machine in one run: CycleGAN (bench/facades_128.yaml: the paper config at 128 px, 6
# residual blocks), CUT and FastCUT (bench/{cut,fastcut}_facades_128.yaml: the authors' settings at 128 px, 6
# residual blocks) and pix2pix (configs/quickstart/pix2pix_facades.yaml: the paper config at 128 px, unet_128),
# each on 1 libtorch thread, all at once (METHODS, default all four, share the cores equally). Each method's step
# time is measured first, all at once as they will train (CAL_STEPS steps, from the report's train_seconds), then
# it trains BUDGET_S seconds' worth of steps from scratch with the LR decaying linearly over the second half; `ganzoo eval` then reports on the 106 test pairs: L1 and PSNR of
# labels → photo against the true photos next to the identity baseline, and the FID of the 106 translations
# against the 106 test photos (clean-fid protocol, bench/README.md "Standard metrics").
#   bash bench/translation_facades.sh                  # BUDGET_S=900
#   BUDGET_S=300 METHODS="cyclegan pix2pix" bash bench/translation_facades.sh
#   DATA=shapes BUDGET_S=300 bash bench/translation_facades.sh   # the two-domain shapes (32 px, 200 test pairs)
# Needs the facades (GANZOO_FACADES, else ../shared/datasets/facades), the built binary (GANZOO, default
# target/debug/ganzoo: dependencies optimized; the time goes to libtorch) and the FID network (bash .ci/dev test).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GANZOO:-target/debug/ganzoo}
budget=${BUDGET_S:-900}
cal=${CAL_STEPS:-10}
facades=${GANZOO_FACADES:-../shared/datasets/facades}
export GANZOO_CACHE=${GANZOO_CACHE:-$PWD/.ganzoo-cache}
out=${OUT:-target/ganzoo-bench/translation_${DATA:-facades}}
common=(--set "data.root=$facades" --set threads=1 --set train.workers=1 --quiet)
rm -rf "$out" && mkdir -p "$out"
# name | config
if [ "${DATA:-facades}" = shapes ]; then
  # The two-domain shapes (32 px, hidden true pairs, no download): the quickstarts' data, batch and schedule.
  all=("cyclegan|configs/quickstart/cyclegan_shapes.yaml" "cut|configs/quickstart/cut_shapes.yaml" "fastcut|bench/fastcut_shapes.yaml" "pix2pix|bench/pix2pix_shapes.yaml")
  common=(--set threads=1 --quiet)
  test_n=200
else
  all=("cyclegan|bench/facades_128.yaml" "cut|bench/cut_facades_128.yaml" "fastcut|bench/fastcut_facades_128.yaml" "pix2pix|configs/quickstart/pix2pix_facades.yaml")
  test_n=106
fi
methods=" ${METHODS:-cyclegan cut fastcut pix2pix} "
cases=()
for c in "${all[@]}"; do [[ $methods == *" ${c%%|*} "* ]] && cases+=("$c"); done

train() { # name config steps dir
  "$bin" train "$2" --out "$4" "${common[@]}" --set "train.steps=$3" --set "train.log_every=$(( $3 < 50 ? $3 : 50 ))" \
    --set "train.sample_every=$3" --set "train.checkpoint_every=$3" --set "eval.metrics=[]" --set eval.samples=8 >/dev/null
}
secs() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['train_seconds'])" "$1/report.json"; }
for c in "${cases[@]}"; do IFS='|' read -r name cfg <<<"$c"; train "$name" "$cfg" "$cal" "$out/cal-$name" & done; wait
declare -A steps
for c in "${cases[@]}"; do
  IFS='|' read -r name cfg <<<"$c"
  s=$(secs "$out/cal-$name")
  steps[$name]=$(python3 -c "print(max(2, int($budget / ($s / $cal))))")
  echo "$name: $(python3 -c "print(f'{$s / $cal:.2f}')") s a step (1 thread) → ${steps[$name]} steps in $budget s" >&2
done
for c in "${cases[@]}"; do IFS='|' read -r name cfg <<<"$c"; train "$name" "$cfg" "${steps[$name]}" "$out/$name" & done; wait
echo "| method | steps | train s | A→B L1 | A→B PSNR (dB) | identity L1 | identity PSNR | FID A→B | FID identity |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
  IFS='|' read -r name cfg <<<"$c"
  "$bin" eval "$out/$name" --json --quiet --set "eval.samples=$test_n" --set 'eval.metrics=[fid]' > "$out/$name.eval.json"
  python3 - "$name" "${steps[$name]}" "$(secs "$out/$name")" "$out/$name.eval.json" <<'PY'
import json, sys
name, steps, secs, path = sys.argv[1:]
e = json.load(open(path))
f, m = e["eval"], e.get("metrics", {})
fid = lambda k: f'{m[k]["fid"]:.1f}' if k in m else "n/a"
print(f'| {name} | {steps} | {float(secs):.0f} | {f["a2b_l1"]:.4f} | {f["a2b_psnr"]:.2f} | {f["identity_baseline_l1"]:.4f} | '
      f'{f["identity_baseline_psnr"]:.2f} | {fid("A→B")} | {fid("A as B (identity)")} |')
PY
done
echo "grids: $out/*/samples/" >&2
