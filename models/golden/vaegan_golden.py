"""Golden data for the VAE-GAN networks (models/src/vaegan.rs, models/tests/vaegan.rs).

Rebuilds the authors' 64x64 VAE-GAN layout (andersbll/autoencoding_beyond_pixels, architectures.img64x64,
as described in models/src/vaegan.rs) in PyTorch at a tiny width, then writes vaegan_golden.safetensors:

- `E.*`, `Dec.*`, `Dis.*`: state_dicts of a tiny encoder, decoder and discriminator (torch.manual_seed(0)
  default init, then BN weights/biases and running stats perturbed so they matter);
- `x` (4, 3, 16, 16), `z` (4, 8), `eps` (4, 8): inputs;
- train-mode outputs `mu_train`, `logvar_train`, `dec_train`, `logits_train`, `feat_train`, eval-mode
  `mu_eval`, `logvar_eval`, `dec_eval`, `logits_eval`, `feat_eval`;
- `kl`, `llike`: the KL term on (mu_eval, logvar_eval) and the feature-space Gaussian NLL (sigma 1) between
  D's features of the reconstruction Dec(mu + exp(logvar/2) * eps) and of x (eval mode);
- `Dis.bns.0.running_mean_after`: the running mean after one train-mode D pass (momentum 0.1);
- `DisSN.*`: the tiny D again with `torch.nn.utils.spectral_norm` on every conv and linear (batch norms
  kept), built after everything above with torch.manual_seed(1) so the other values keep their seeds, and its
  outputs on x: `sn_logits_eval`, `sn_feat_eval`, then after one training-mode pass (one power iteration per
  weight, batch statistics) `sn_logits_train`, `sn_feat_train`. Stable: `spectral_norm_converged`
  (cyclegan_golden.py) runs torch's power iteration 50 times per weight before saving, so sigma is the top
  singular value, not an estimate from random vectors (eval outputs of 1e9-1e13 in an earlier golden file);
  the outputs are checked to be O(1) (|value| < 10) before writing.
It also writes vaegan_golden.json with the parameter counts of the full-size 64x64, 3-channel networks.

Stability: batch-normalized networks with perturbed statistics on inputs in [-1, 1]; every output is below 3
in magnitude (models/golden/stability.py: 9.2e-7 relative with ATEN_CPU_CAPABILITY=default and one thread).

Run from the repo root: .venv/bin/python models/golden/vaegan_golden.py   (torch 2.11.0, CPU, float32)
"""

import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cyclegan_golden import check_moderate, spectral_norm_converged, write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EPS_BN = 1e-6


def down(cin, cout):
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2, bias=False)


def down_stack(cin, widths):
    """Stride-2 convs and their batch norms (ModuleLists `convs`, `bns`); returns them and the last width."""
    convs, bns = nn.ModuleList(), nn.ModuleList()
    for w in widths:
        convs.append(down(cin, w))
        bns.append(nn.BatchNorm2d(w, eps=EPS_BN))
        cin = w
    return convs, bns, cin


def up(cin, cout):
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1, bias=False)


class Encoder(nn.Module):
    def __init__(self, c, size, widths, fc, z):
        super().__init__()
        self.convs, self.bns, cin = down_stack(c, widths)
        s = size >> len(widths)
        self.fc = nn.Linear(cin * s * s, fc, bias=False)
        self.fc_bn = nn.BatchNorm1d(fc, eps=EPS_BN)
        self.mu = nn.Linear(fc, z)
        self.logvar = nn.Linear(fc, z)

    def forward(self, x):
        h = x
        for conv, bn in zip(self.convs, self.bns):
            h = torch.relu(bn(conv(h)))
        h = torch.relu(self.fc_bn(self.fc(h.flatten(1))))
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    def __init__(self, c, size, c0, widths, z):
        super().__init__()
        self.c0, self.s0 = c0, size >> len(widths)
        self.fc = nn.Linear(z, c0 * self.s0 * self.s0, bias=False)
        self.fc_bn = nn.BatchNorm1d(c0 * self.s0 * self.s0, eps=EPS_BN)
        self.ups = nn.ModuleList()
        self.up_bns = nn.ModuleList()
        cin = c0
        for w in widths:
            self.ups.append(up(cin, w))
            self.up_bns.append(nn.BatchNorm2d(w, eps=EPS_BN))
            cin = w
        self.out = nn.Conv2d(cin, c, 5, padding=2)

    def forward(self, z):
        h = torch.relu(self.fc_bn(self.fc(z))).view(-1, self.c0, self.s0, self.s0)
        for conv, bn in zip(self.ups, self.up_bns):
            h = torch.relu(bn(conv(h)))
        return torch.tanh(self.out(h))


class Discriminator(nn.Module):
    def __init__(self, c, size, first, widths, fc, feature_conv):
        super().__init__()
        self.conv0 = nn.Conv2d(c, first, 5, padding=2)
        self.convs, self.bns, cin = down_stack(first, widths)
        s = size >> len(widths)
        self.fc = nn.Linear(cin * s * s, fc, bias=False)
        self.fc_bn = nn.BatchNorm1d(fc, eps=EPS_BN)
        self.out = nn.Linear(fc, 1)
        self.feature_conv = feature_conv

    def forward(self, x):
        n = x.shape[0]
        h = self.conv0(x)
        feat = h.reshape(n, -1)
        h = torch.relu(h)
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            c = conv(h)
            if self.feature_conv == i + 2:
                feat = c.reshape(n, -1)  # before the batch norm
            h = torch.relu(bn(c))
        h = torch.relu(self.fc_bn(self.fc(h.flatten(1))))
        return self.out(h).reshape(n), feat


def perturb_bn(net, g):
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(1 + 0.2 * torch.rand(m.running_var.shape, generator=g))


def count(net):
    return sum(p.numel() for p in net.parameters())


def main():
    full = {
        "E": count(Encoder(3, 64, [64, 128, 256], 1024, 128)),
        "Dec": count(Decoder(3, 64, 256, [256, 128, 32], 128)),
        "Dis": count(Discriminator(3, 64, 32, [128, 256, 256], 512, 4)),
    }
    with open(os.path.join(HERE, "vaegan_golden.json"), "w") as f:
        json.dump({"parameters_64x64_rgb": full}, f, indent=1)
        f.write("\n")
    print("full-size parameter counts", full)

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    enc = Encoder(3, 16, [4, 6], 10, 8)
    dec = Decoder(3, 16, 6, [6, 4], 8)
    dis = Discriminator(3, 16, 3, [5, 6], 7, 3)
    for net in (enc, dec, dis):
        perturb_bn(net, g)
    x = torch.rand(4, 3, 16, 16, generator=g) * 2 - 1
    z = torch.randn(4, 8, generator=g)
    eps = torch.randn(4, 8, generator=g)
    t = {"E." + k: v.clone() for k, v in enc.state_dict().items()}
    t.update({"Dec." + k: v.clone() for k, v in dec.state_dict().items()})
    t.update({"Dis." + k: v.clone() for k, v in dis.state_dict().items()})
    t = {k: v for k, v in t.items() if not k.endswith("num_batches_tracked")}
    t.update({"x": x, "z": z, "eps": eps})
    with torch.no_grad():
        for net in (enc, dec, dis):
            net.eval()
        mu, logvar = enc(x)
        t.update({"mu_eval": mu, "logvar_eval": logvar, "dec_eval": dec(z)})
        logits, feat = dis(x)
        t.update({"logits_eval": logits, "feat_eval": feat})
        x_rec = dec(mu + torch.exp(0.5 * logvar) * eps)
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
        llike = (0.5 * (dis(x_rec)[1] - feat).pow(2).sum(1)).mean()
        t.update({"kl": kl.reshape(1), "llike": llike.reshape(1)})
        for net in (enc, dec, dis):
            net.train()
        mu, logvar = enc(x)
        t.update({"mu_train": mu, "logvar_train": logvar, "dec_train": dec(z)})
        logits, feat = dis(x)
        t.update({"logits_train": logits, "feat_train": feat})
        t["Dis.bns.0.running_mean_after"] = dis.bns[0].running_mean.clone()

    torch.manual_seed(1)
    dis_sn = Discriminator(3, 16, 3, [5, 6], 7, 3)
    perturb_bn(dis_sn, torch.Generator().manual_seed(2))
    spectral_norm_converged(dis_sn).eval()
    t.update({"DisSN." + k: v.clone() for k, v in dis_sn.state_dict().items() if not k.endswith("num_batches_tracked")})
    with torch.no_grad():
        for mode in ("eval", "train"):
            dis_sn.train(mode == "train")
            logits_sn, feat_sn = dis_sn(x)
            check_moderate(f"sn_logits_{mode}", logits_sn)
            check_moderate(f"sn_feat_{mode}", feat_sn)
            t.update({f"sn_logits_{mode}": logits_sn, f"sn_feat_{mode}": feat_sn})
            print(f"sn_logits_{mode}", logits_sn.tolist(), "max |feat|", float(feat_sn.abs().max()))
    write_safetensors(os.path.join(HERE, "vaegan_golden.safetensors"), t)
    print("kl", float(kl), "llike", float(llike), "logits_train", logits.tolist())


if __name__ == "__main__":
    main()
