"""FID reference-statistics archives written by NumPy, good and bad (data/src/fid_stats.rs; test in
data/tests/fid_stats.rs).

pytorch-fid saves statistics with `np.savez(path, mu=mu, sigma=sigma)`: a zip of `mu.npy` (F,) and
`sigma.npy` (F, F), float64, stored uncompressed (NumPy writes zip64 local headers). The values are exact
formulas the test recomputes: mu[i] = i / 8 - 0.5, sigma[i, j] = 1 / (1 + i + j), F = 5.

Good: `savez.npz` (pytorch-fid's layout), `compressed.npz` (np.savez_compressed), `f32.npz` (float32 arrays),
`extra.npz` (an extra member `n`, ignored).
Bad: `no_mu.npz`, `no_sigma.npz`, `mu_2d.npz` (mu (1, 5)), `sigma_rect.npz` (sigma (5, 4)), `sigma_mismatch.npz`
(sigma (4, 4) for mu (5,)), `int.npz` (int64 mu), `nan.npz` (a NaN in sigma), `object.npz` (a pickled object
array), `fortran.npz` (sigma in Fortran order), `huge.npz` (a header claiming mu of 100000 values, no data),
`short.npz` (sigma's data cut short), `not_zip.npz` (an .npy file), `truncated.npz` (the first half of
savez.npz).

Run from the repo root: .venv/bin/python data/golden/npz_golden.py   (numpy 2.4.6)
"""

import io
import os
import zipfile

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "npz")
F = 5


def stats(dtype=np.float64):
    i = np.arange(F)
    mu = i / 8 - 0.5
    sigma = 1.0 / (1.0 + i[:, None] + i[None, :])
    return mu.astype(dtype), sigma.astype(dtype)


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def raw_zip(path, members):
    """A zip of the given member bytes, stored, as np.savez lays it out."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def main():
    os.makedirs(OUT, exist_ok=True)
    p = lambda name: os.path.join(OUT, name)
    mu, sigma = stats()
    np.savez(p("savez.npz"), mu=mu, sigma=sigma)
    np.savez_compressed(p("compressed.npz"), mu=mu, sigma=sigma)
    np.savez(p("f32.npz"), mu=mu.astype(np.float32), sigma=sigma.astype(np.float32))
    np.savez(p("extra.npz"), mu=mu, sigma=sigma, n=np.array(50000))

    np.savez(p("no_mu.npz"), sigma=sigma)
    np.savez(p("no_sigma.npz"), mu=mu)
    np.savez(p("mu_2d.npz"), mu=mu[None, :], sigma=sigma)
    np.savez(p("sigma_rect.npz"), mu=mu, sigma=sigma[:, :4])
    np.savez(p("sigma_mismatch.npz"), mu=mu, sigma=sigma[:4, :4])
    np.savez(p("int.npz"), mu=np.arange(F), sigma=sigma)
    bad = sigma.copy()
    bad[2, 3] = np.nan
    np.savez(p("nan.npz"), mu=mu, sigma=bad)
    np.savez(p("object.npz"), mu=np.array([None, 1.0], dtype=object), sigma=sigma)
    np.savez(p("fortran.npz"), mu=mu, sigma=np.asfortranarray(sigma + np.triu(sigma, 1)))

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (100000,)})
    raw_zip(p("huge.npz"), {"mu.npy": header.getvalue(), "sigma.npy": npy_bytes(sigma)})
    raw_zip(p("short.npz"), {"mu.npy": npy_bytes(mu), "sigma.npy": npy_bytes(sigma)[:-8]})
    with open(p("not_zip.npz"), "wb") as fh:
        fh.write(npy_bytes(mu))
    data = open(p("savez.npz"), "rb").read()
    with open(p("truncated.npz"), "wb") as fh:
        fh.write(data[: len(data) // 2])

    # The good archives read back as written.
    for name in ["savez.npz", "compressed.npz", "extra.npz"]:
        with np.load(p(name)) as z:
            assert np.array_equal(z["mu"], mu) and np.array_equal(z["sigma"], sigma)
    with zipfile.ZipFile(p("savez.npz")) as z:
        assert [i.compress_type for i in z.infolist()] == [zipfile.ZIP_STORED] * 2
    print(f"{len(os.listdir(OUT))} archives in {OUT}")


if __name__ == "__main__":
    main()
