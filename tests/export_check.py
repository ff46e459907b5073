"""Runs a TorchScript module exported by `ganzoo export` with PyTorch alone (no ganzoo), as a user would.

Usage: python export_check.py MODULE.pt IN.safetensors OUT.safetensors

Each input set of IN.safetensors goes through the module once (evaluation mode, no gradients): a tensor named
NAME is a set of one input, tensors NAME:0, NAME:1, ... the inputs of one call in that order. The output is saved
in OUT.safetensors under NAME. tests/export_cli.rs compares the outputs with ganzoo's own.
"""
import sys

import torch
from safetensors.torch import load_file, save_file


def main() -> None:
    module_path, in_path, out_path = sys.argv[1:4]
    module = torch.jit.load(module_path, map_location="cpu")
    module.eval()
    calls: dict[str, list[tuple[int, torch.Tensor]]] = {}
    for key, x in load_file(in_path).items():
        name, _, index = key.partition(":")
        calls.setdefault(name, []).append((int(index or 0), x))
    with torch.no_grad():
        outputs = {name: module(*[x for _, x in sorted(args, key=lambda a: a[0])]).contiguous() for name, args in calls.items()}
    save_file(outputs, out_path)


if __name__ == "__main__":
    main()
