#!/usr/bin/env bash
# Peak resident memory (and step time) of CycleGAN, CUT, FastCUT and pix2pix training at 256×256 on the real facades,
# batch 1, 1 libtorch thread (issue #17: the CUT paper reports CUT at about 0.7× CycleGAN's memory): each method
# runs STEPS steps of its paper config (CycleGAN: configs/papers/cyclegan_facades.yaml; CUT / FastCUT: the
# horse2zebra configs with the facades as data; pix2pix: configs/papers/pix2pix_facades.yaml) in its own process,
# one after the other, under GNU time; the peak includes libtorch's code and the data loader (about the same for
# all), so the differences are what the methods need. Step time from the report's train_seconds.
#   bash bench/translation_memory.sh              # STEPS=3
# Needs /usr/bin/time, the facades (GANZOO_FACADES, else ../shared/datasets/facades) and the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${GANZOO:-target/debug/ganzoo}
steps=${STEPS:-3}
facades=${GANZOO_FACADES:-../shared/datasets/facades}
export GANZOO_CACHE=${GANZOO_CACHE:-$PWD/.ganzoo-cache}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cut_data=(--set data.layout=side_by_side --set data.swap=true)
echo "| method | parameters (all networks) | peak RSS MiB | s/step |"
echo "|---|---:|---:|---:|"
for m in cyclegan cut fastcut pix2pix; do
  case $m in
    cyclegan) cfg=configs/papers/cyclegan_facades.yaml; extra=() ;;
    cut|fastcut) cfg=configs/papers/${m}_horse2zebra.yaml; extra=("${cut_data[@]}") ;;
    pix2pix) cfg=configs/papers/pix2pix_facades.yaml; extra=() ;;
  esac
  /usr/bin/time -f "%M" -o "$work/$m.rss" "$bin" train "$cfg" --out "$work/$m" --quiet --set "data.root=$facades" "${extra[@]}" \
    --set threads=1 --set train.workers=1 --set "train.steps=$steps" --set "train.log_every=$steps" --set "train.sample_every=$steps" \
    --set "train.checkpoint_every=$steps" --set eval.samples=1 --set 'eval.metrics=[]' >/dev/null
  python3 - "$m" "$work/$m/report.json" "$(tail -1 "$work/$m.rss")" "$steps" <<'PY'
import json, sys
m, path, rss_kb, steps = sys.argv[1:]
r = json.load(open(path))
params = sum(v for k, v in r["parameters"].items())
print(f"| {m} | {params:,} | {int(rss_kb) / 1024:.0f} | {r['train_seconds'] / int(steps):.2f} |")
PY
done
