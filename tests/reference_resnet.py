"""A PyTorch rebuild of the reference CycleGAN ResNet generator (instance norm, no dropout), for
tests/export_cli.rs: loads a state_dict written by `ganzoo export --format reference` with
load_state_dict(strict=True) and runs it.

Usage: python reference_resnet.py WEIGHTS.safetensors IN.safetensors OUT.safetensors

The layout is the reference's nn.Sequential `model`: reflection pad 3, 7×7 conv, two stride-2 3×3 convs, the
residual blocks (`conv_block`: pad, conv, norm, ReLU, pad, conv, norm), two stride-2 transposed convs, reflection
pad 3, 7×7 conv, tanh; every conv has a bias (instance norm without affine). ngf, the channels and the number of
blocks are read from the weights' shapes. Every tensor of IN goes through it; outputs are saved under the same
names.
"""
import re
import sys

import torch
from torch import nn
from safetensors.torch import load_file, save_file


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        layers = []
        for last in (False, True):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), nn.InstanceNorm2d(dim)]
            if not last:
                layers.append(nn.ReLU(True))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def generator(state: dict) -> nn.Module:
    ngf, in_c = state["model.1.weight"].shape[:2]
    blocks = len({m.group(1) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    out_c = state[max((k for k in state if k.endswith(".weight")), key=lambda k: int(k.split(".")[1]))].shape[0]
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_c, ngf, 7, bias=True), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(2):
        c = ngf * 2**i
        layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=True), nn.InstanceNorm2d(2 * c), nn.ReLU(True)]
    layers += [ResnetBlock(ngf * 4) for _ in range(blocks)]
    for i in range(2):
        c = ngf * 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=True), nn.InstanceNorm2d(c // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_c, 7), nn.Tanh()]
    g = nn.Module()
    g.model = nn.Sequential(*layers)
    g.forward = g.model.forward
    return g


def main() -> None:
    weights, in_path, out_path = sys.argv[1:4]
    state = load_file(weights)
    g = generator(state)
    g.load_state_dict(state, strict=True)
    g.eval()
    with torch.no_grad():
        save_file({name: g(x).contiguous() for name, x in load_file(in_path).items()}, out_path)


if __name__ == "__main__":
    main()
