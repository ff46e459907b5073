"""Golden data for the pix2pix networks (models/src/pix2pix.rs, models/tests/pix2pix.rs).

Rebuilds the U-Net generator of junyanz/pytorch-CycleGAN-and-pix2pix (models/networks.py: UnetGenerator,
UnetSkipConnectionBlock) from its published structure — including the in-place LeakyReLU of the reference,
which makes its skip connections carry LeakyReLU(x) — and reuses the PatchGAN of cyclegan_golden.py, then writes:

- pix2pix_golden.json: state_dict key names and shapes, and parameter counts, of the full-size configurations
  (ngf = ndf = 64, 3 -> 3 channels): unet_256 and unet_128 with batch norm (pix2pix's), unet_256 with instance
  norm, and pix2pix's D (NLayerDiscriminator on 3 + 3 channels, n_layers 3, batch norm).
- pix2pix_golden.safetensors: a small G (num_downs 6, ngf 8, batch norm, dropout on: one dropout level) and D
  (6 channels, ndf 8, n_layers 3, batch norm), torch.manual_seed(0) default weights with the batch norms'
  weights, biases and running statistics drawn at random (so evaluation mode is not the identity); a fixed
  input pair `A`, `B` (4, 3, 64, 64); and
  - `G_eval`: G in eval mode (running statistics, no dropout);
  - `G_train`: G in training mode with dropout off (the same weights in a copy built with use_dropout=False),
    `G_running_mean_after`: the first batch norm's running mean after that forward;
  - `D_real`, `D_fake`: D (training mode) on cat(A, B) and cat(A, G_train);
  - `loss_G` = BCE-with-logits(D(cat(A, G(A))), 1) + 100 · L1(G(A), B), `loss_D` = 0.5 · (BCE(D(cat(A, B)), 1) +
    BCE(D(cat(A, G(A).detach())), 0)) — the reference's backward_G / backward_D with gan_mode vanilla — and
    `grad_G_first` / `grad_D_first`: the gradient of loss_G w.r.t. G's first conv weight and of loss_D w.r.t.
    D's first conv weight. D's forward in backward_G runs after its forward in backward_D (batch-norm running
    statistics updated twice, as in the reference's optimize_parameters without an optimizer step).

Stability: batch 4 keeps at least 16 values per channel in every batch norm of training mode; running variances
are drawn from [0.5, 1.5]; outputs are tanh values and BCE/L1 losses of order 1, so 1e-4 relative is a tolerance
relative to the values (checked also with ATEN_CPU_CAPABILITY=default).

Run from the repo root: .venv/bin/python models/golden/pix2pix_golden.py   (torch 2.11.0, CPU, float32)
"""

import copy
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cyclegan_golden import NLayerDiscriminator, check_moderate, describe, norm_layer, use_bias, write_safetensors  # noqa: E402


class UnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm="batch", use_dropout=False):
        super().__init__()
        self.outermost = outermost
        b = use_bias(norm)
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=b)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(norm, inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(norm, outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=b)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=b)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm="batch", use_dropout=False):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm=norm)

    def forward(self, x):
        return self.model(x)


def randomize_norms(net, gen):
    """Batch norms with random affine parameters and running statistics, so no layer is an identity."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 0.4 - 0.2)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def main():
    layouts = {
        "g_unet_256": UnetGenerator(3, 3, 8, use_dropout=True),
        "g_unet_128": UnetGenerator(3, 3, 7, use_dropout=True),
        "g_unet_256_instance": UnetGenerator(3, 3, 8, norm="instance", use_dropout=True),
        "d_pix2pix": NLayerDiscriminator(6, n_layers=3, norm="batch"),
    }
    summary = {k: describe(v) for k, v in layouts.items()}
    with open(os.path.join(HERE, "pix2pix_golden.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    for k, v in summary.items():
        print(k, v["parameters"])

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    g = UnetGenerator(3, 3, 6, ngf=8, use_dropout=True)
    d = NLayerDiscriminator(6, ndf=8, n_layers=3, norm="batch")
    randomize_norms(g, gen)
    randomize_norms(d, gen)
    tensors = {"G." + k: v.clone() for k, v in g.state_dict().items()}
    tensors.update({"D." + k: v.clone() for k, v in d.state_dict().items()})
    a = torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1
    b = torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1
    tensors.update({"A": a, "B": b})

    with torch.no_grad():
        tensors["G_eval"] = copy.deepcopy(g).eval()(a)
    g_train = UnetGenerator(3, 3, 6, ngf=8, use_dropout=False)
    g_train.load_state_dict(g.state_dict())
    g_train.train()
    d.train()
    fake = g_train(a)
    tensors["G_train"] = fake.detach()
    tensors["G_running_mean_after"] = g_train.model.model[1].model[2].running_mean.clone()
    # backward_D, then backward_G (the reference's order), no optimizer step in between.
    pred_fake = d(torch.cat([a, fake.detach()], 1))
    pred_real = d(torch.cat([a, b], 1))
    loss_d = 0.5 * (F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
                    + F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real)))
    loss_d.backward()
    tensors["grad_D_first"] = d.model[0].weight.grad.clone()
    tensors["D_real"], tensors["D_fake"] = pred_real.detach(), pred_fake.detach()
    for p in d.parameters():
        p.requires_grad_(False)
    pred = d(torch.cat([a, fake], 1))
    loss_g = F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred)) + 100.0 * F.l1_loss(fake, b)
    loss_g.backward()
    tensors["grad_G_first"] = g_train.model.model[0].weight.grad.clone()
    tensors["loss_G"], tensors["loss_D"] = loss_g.detach(), loss_d.detach()
    for name in ("G_eval", "G_train", "D_real", "D_fake", "loss_D"):
        check_moderate(name, tensors[name])
    check_moderate("loss_G", tensors["loss_G"], 200.0)
    write_safetensors(os.path.join(HERE, "pix2pix_golden.safetensors"), tensors)
    print("loss_G", float(loss_g), "loss_D", float(loss_d), "G_eval mean |.|", float(tensors["G_eval"].abs().mean()))


if __name__ == "__main__":
    main()
