"""How many lines of pipelines/src outside a family's own module name that family (its ModelConfig variant, its
module path or its model-section type), at one or more git revisions: how much a new family must touch elsewhere.

Run from the repo root:  python3 bench/family_places.py d93ebeb HEAD
"""
import re
import subprocess
import sys

FAMILIES = {"gan": ("Gan", "GanModelConfig"), "cond": ("Cgan|GanCls", "CondModelConfig"),
            "stackgan": ("Stackgan", "StackGanModelConfig"), "cyclegan": ("Cyclegan", "CycleganModelConfig"),
            "unit": ("Unit", "UnitModelConfig"), "vaegan": ("Vaegan", "VaeganModelConfig")}


def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def main():
    for rev in sys.argv[1:] or ["HEAD"]:
        files = [f for f in git("ls-tree", "-r", "--name-only", rev, "pipelines/src").split() if f.endswith(".rs")]
        texts = {f: git("show", f"{rev}:{f}").splitlines() for f in files}
        counts = {}
        for fam, (variant, ty) in FAMILIES.items():
            pat = re.compile(rf"ModelConfig::({variant})\b|crate::{fam}\b|families::{fam}\b|\b{ty}\b|\b{fam}_problems")
            own = (f"pipelines/src/{fam}.rs", f"pipelines/src/families/{fam}/")
            hits = [f"{f}:{i + 1}" for f, lines in texts.items() if not f.startswith(own)
                    for i, line in enumerate(lines) if pat.search(line)]
            counts[fam] = hits
        print(rev, {k: len(v) for k, v in counts.items()})
        for k, v in counts.items():
            print("   ", k, ", ".join(v))


if __name__ == "__main__":
    main()
