"""Golden data for the feature-space metrics (models/src/metrics.rs; test in models/tests/metrics.rs).

Two fixed, well-conditioned feature sets drawn here (NumPy's PCG64, seed 14), float64, values O(1):
- `wide`: real 200 x 64, fake 180 x 64 (n > d, full-rank covariances);
- `narrow`: real 40 x 64, fake 50 x 64 (n < d: both covariances are singular, so is their product).
Fake differs from real by a mean shift, a scaled and partly different mixing matrix, so every metric is far
from its degenerate value.

For each case:
- `gaussian_stats`: `np.mean(axis=0)`, `np.cov(rowvar=False)` (unbiased), stored for `wide`;
- FID as pytorch-fid computes it (`calculate_frechet_distance`: `scipy.linalg.sqrtm(sigma1 @ sigma2)` in
  float64, ε = 1e-6 on both diagonals when the root is not finite, real part), and for comparison the same
  trace through the symmetric route Tr((Σ₁^½ Σ₂ Σ₁^½)^½) in NumPy;
- KID (torch-fidelity's `kid_features_to_metric`, polynomial kernel (xᵀy / d + 1)³, unbiased MMD², mean and
  population std over subsets) on subset indices drawn here (`kid_subsets` pairs of `kid_subset_size` rows
  without replacement) that the test passes in;
- improved precision / recall (Kynkäänniemi et al. 2019, k = 3: a sample is in a set's manifold when it lies
  within the k-th nearest-neighbour distance, self excluded, of one of its samples, `<=` as NVlabs' code) and
  density / coverage (Naeem et al. 2020, k = 5, `<` as clovaai/generative-evaluation-prdc), from direct
  (x - y)² distances; stored as integer counts. `margin` is the smallest relative gap |d² - r²| / r² between
  any compared squared distance and its radius: a count can only change when rounding moves a distance past
  a radius, so the counts are exact on any CPU while the margin is far above 1e-12.

Writes metrics_golden.safetensors (features; mu and sigma of `wide`) and metrics_golden.json (the rest).
Run from the repo root: .venv/bin/python models/golden/metrics_golden.py   (numpy 2.4.6, scipy 1.17.1)
"""

import json
import os

import numpy as np
import scipy
import scipy.linalg
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
EPS = 1e-6


def features(rng, n_real, n_fake, d):
    a = rng.normal(size=(d, d)) / np.sqrt(d) + 0.5 * np.eye(d)
    b = rng.normal(size=(d, d)) / np.sqrt(d)
    real = rng.normal(size=(n_real, d)) @ a + 0.3
    fake = rng.normal(size=(n_fake, d)) @ (0.8 * a + 0.3 * b) + 0.3 + 0.15 * rng.normal(size=d)
    return real, fake


def stats(x):
    return np.mean(x, axis=0), np.cov(x, rowvar=False)


def fid_pytorch_fid(mu1, s1, mu2, s2):
    """pytorch-fid's calculate_frechet_distance, in float64."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    eps_used = False
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * EPS
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
        eps_used = True
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3), "imaginary component"
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)), eps_used


def fid_symmetric(mu1, s1, mu2, s2):
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = r @ s2 @ r
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(lam, 0, None)).sum())


def mmd2_unbiased(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.sum() / (m * n))


def sq_dists(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def kth_radius_sq(x, k):
    """Squared distance to the k-th nearest neighbour, self excluded (the (k+1)-th smallest, self included)."""
    return np.sort(sq_dists(x, x), axis=1)[:, k]


def margin(d, r):
    return float((np.abs(d - r) / r).min())


def prdc(real, fake, k_pr, k_dc):
    d_rf = sq_dists(real, fake)  # (n_real, n_fake)
    rr, rf = kth_radius_sq(real, k_pr), kth_radius_sq(fake, k_pr)
    precision = int((d_rf <= rr[:, None]).any(axis=0).sum())
    recall = int((d_rf <= rf[None, :]).any(axis=1).sum())
    rr5 = kth_radius_sq(real, k_dc)
    density = int((d_rf < rr5[:, None]).sum())
    coverage = int((d_rf.min(axis=1) < rr5).sum())
    m = min(margin(d_rf, rr[:, None]), margin(d_rf, rf[None, :]), margin(d_rf, rr5[:, None]))
    # The radii themselves come from real-real and fake-fake distances: their neighbours must be distinct too.
    for x, k in [(real, k_pr), (fake, k_pr), (real, k_dc)]:
        s = np.sort(sq_dists(x, x), axis=1)
        m = min(m, float(((s[:, k + 1] - s[:, k]) / s[:, k]).min()), float(((s[:, k] - s[:, k - 1]) / s[:, k]).min()))
    return {"k_pr": k_pr, "k_dc": k_dc, "precision_count": precision, "recall_count": recall,
            "density_count": density, "coverage_count": coverage, "margin": m}


def main():
    rng = np.random.default_rng(14)
    out, tensors = {"numpy": np.__version__, "scipy": scipy.__version__}, {}
    for name, n_real, n_fake, d, subsets, size in [("wide", 200, 180, 64, 10, 100), ("narrow", 40, 50, 64, 10, 30)]:
        real, fake = features(rng, n_real, n_fake, d)
        tensors[f"{name}.real"] = torch.from_numpy(real)
        tensors[f"{name}.fake"] = torch.from_numpy(fake)
        (mu1, s1), (mu2, s2) = stats(real), stats(fake)
        if name == "wide":
            tensors["wide.real_mu"], tensors["wide.real_sigma"] = torch.from_numpy(mu1), torch.from_numpy(s1)
            tensors["wide.fake_mu"], tensors["wide.fake_sigma"] = torch.from_numpy(mu2), torch.from_numpy(s2)
        fid, eps_used = fid_pytorch_fid(mu1, s1, mu2, s2)
        idx = [(sorted(rng.choice(n_real, size, replace=False).tolist()),
                sorted(rng.choice(n_fake, size, replace=False).tolist())) for _ in range(subsets)]
        mmds = np.array([mmd2_unbiased(real[i], fake[j]) for i, j in idx])
        case = {"fid": fid, "fid_eps_used": eps_used, "fid_symmetric": fid_symmetric(mu1, s1, mu2, s2),
                "kid_subsets": [{"real": i, "fake": j} for i, j in idx],
                "kid_mean": float(mmds.mean()), "kid_std": float(mmds.std())}
        case.update(prdc(real, fake, 3, 5))
        out[name] = case
        print(f"{name}: FID {fid:.6f} (symmetric route {case['fid_symmetric']:.6f}, eps {eps_used}), "
              f"KID {case['kid_mean']:.6f} ± {case['kid_std']:.6f}, P/R {case['precision_count']}/{n_fake} "
              f"{case['recall_count']}/{n_real}, D/C {case['density_count']} {case['coverage_count']}, "
              f"margin {case['margin']:.2e}, |value| max {max(np.abs(real).max(), np.abs(fake).max()):.2f}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(HERE, "metrics_golden.safetensors"))
    with open(os.path.join(HERE, "metrics_golden.json"), "w") as fh:
        json.dump(out, fh)
        fh.write("\n")


if __name__ == "__main__":
    main()
