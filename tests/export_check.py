"""Runs a TorchScript module exported by `ganzoo export` with PyTorch alone (no ganzoo), as a user would.

Usage: python export_check.py MODULE.pt IN.safetensors OUT.safetensors

Every tensor of IN.safetensors goes through the module once (evaluation mode, no gradients); its output is
saved in OUT.safetensors under the same name. tests/export_cli.rs compares the outputs with ganzoo's own.
"""
import sys

import torch
from safetensors.torch import load_file, save_file


def main() -> None:
    module_path, in_path, out_path = sys.argv[1:4]
    module = torch.jit.load(module_path, map_location="cpu")
    module.eval()
    with torch.no_grad():
        outputs = {name: module(x).contiguous() for name, x in load_file(in_path).items()}
    save_file(outputs, out_path)


if __name__ == "__main__":
    main()
