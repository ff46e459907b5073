"""Checks that every golden file is well-conditioned: regenerates it under other CPU kernels and thread counts
and compares with the committed file, output by output.

A golden value is only useful if a tolerance means something relative to it: the tests compare our outputs
with these files to 1e-4 (absolute, on values of order 1), and every x86-64 CPU must pass. This script copies
each `*_golden.py` / `make_golden.py` into a temporary folder, runs it there with
`ATEN_CPU_CAPABILITY=default` (libtorch's portable kernels) and one intra-op thread (how reductions are split
changes their rounding: the unconverged spectral-norm golden of StackGAN failed with one thread, not with the
portable kernels at two), and reports for every
float tensor (safetensors) or number (JSON) the largest magnitude and the largest difference to the committed
value. It fails (exit 1) when an output is large (> 1e3, where one float32 step exceeds 1e-4) or differs by
more than 1e-5 relative to max(1, |value|), i.e. when a file would pass only on the CPU that wrote it.

Run from the repo root:  .venv/bin/python models/golden/stability.py   (about a minute; MiniLM and Inception
need `ganzoo data get minilm` / `ganzoo data get inception` first and are skipped without them)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
SCRIPTS = ["make_golden.py", "cond_golden.py", "cyclegan_golden.py", "stackgan_golden.py", "unit_golden.py", "augment_golden.py",
           "vaegan_golden.py", "minilm_golden.py", "inception_golden.py", "metrics_golden.py"]
# Scripts that read pretrained files from the cache: skipped (and said so) when their folder is absent.
NEEDS_CACHE = {"minilm_golden.py": "minilm", "inception_golden.py": "inception"}
LARGE = 1e3
REL = 1e-5


def numbers(v, path=""):
    """(dotted path, value) of every number in a JSON document."""
    if isinstance(v, dict):
        for k, x in v.items():
            yield from numbers(x, f"{path}.{k}" if path else k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from numbers(x, f"{path}[{i}]")
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        yield path, float(v)


def compare(name, committed, fresh, problems):
    worst = (0.0, "")
    if name.endswith(".safetensors"):
        a, b = load_file(str(committed)), load_file(str(fresh))
        items = [(k, a[k].double(), b[k].double()) for k in a if a[k].is_floating_point() and k in b]
        for k, x, y in items:
            big = x.abs().max().item() if x.numel() else 0.0
            diff = (x - y).abs().max().item() if x.numel() else 0.0
            if big > LARGE:
                problems.append(f"{name}: {k} reaches {big:.3g}")
            if diff > REL * max(1.0, big):
                problems.append(f"{name}: {k} differs by {diff:.3g} under other kernels (max |value| {big:.3g})")
            worst = max(worst, (diff / max(1.0, big), k))
    else:
        a = dict(numbers(json.loads(Path(committed).read_text())))
        b = dict(numbers(json.loads(Path(fresh).read_text())))
        for k, x in a.items():
            y = b.get(k, float("nan"))
            if abs(x) > LARGE and float(x).is_integer():
                continue  # parameter counts and token ids are exact integers
            diff = abs(x - y)
            if abs(x) > LARGE:
                problems.append(f"{name}: {k} = {x:.3g}")
            if not diff <= REL * max(1.0, abs(x)):
                problems.append(f"{name}: {k} differs by {diff:.3g} under other kernels ({x})")
            worst = max(worst, (diff / max(1.0, abs(x)), k))
    return worst


def main():
    problems = []
    repo = HERE.parent.parent
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default", OMP_NUM_THREADS="1")
    env.setdefault("GANZOO_CACHE", str(repo / ".ganzoo-cache"))
    for script in SCRIPTS:
        folder = NEEDS_CACHE.get(script)
        if folder and not (Path(env["GANZOO_CACHE"]) / folder).exists():
            print(f"{script}: skipped (no {folder}/ in {env['GANZOO_CACHE']})")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp) / "golden"
            tmp.mkdir()
            for f in HERE.glob("*.py"):
                shutil.copy(f, tmp / f.name)
            before = {p.name for p in HERE.iterdir()}
            r = subprocess.run([sys.executable, str(tmp / script)], cwd=repo, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                problems.append(f"{script}: failed: {r.stderr[-500:]}")
                continue
            outputs = [p for p in tmp.iterdir() if p.suffix in (".json", ".safetensors") and p.name in before]
            for out in sorted(outputs):
                worst = compare(out.name, HERE / out.name, out, problems)
                print(f"{script} -> {out.name}: largest relative difference {worst[0]:.2e} ({worst[1] or '-'})")
    print(f"torch {torch.__version__}; {len(problems)} problem(s)")
    for p in problems:
        print("  " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
