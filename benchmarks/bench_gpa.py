"""GPA: accuracy and speed of mltem vs kemstem's GPA vs a minimal textbook GPA.

Run: ``.venv/bin/python benchmarks/bench_gpa.py [--quick]`` (writes results/gpa.json and
README_gpa.md). kemstem is a benchmarks-only dependency (benchmarks/requirements.txt);
without it its rows are left out.

- Accuracy: synthetic 512 x 512 lattices (mltem.simulate, 0.02 nm/px, 0.30 x 0.25 nm
  cell) with exact strain fields; RMS error of exx, eyy, exy, rotation in the interior
  (two widths of the default mask from the edges; the same pixels for every method).
  "mltem (defaults)" finds spots and reference itself; kemstem and the textbook GPA are
  given the true g vectors (an advantage) and the textbook mask sigma = 0.1 |g|.
- Speed: the same images, and a 4096 x 4096 image whose GPA time is compared with one
  4096 x 4096 complex FFT (scipy.fft, all cores) measured in the same run.
- Memory: a 100-frame 1024 x 1024 movie generated frame by frame and streamed through
  ``iter_gpa`` (tracemalloc peak after 10 and after 100 frames).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.fft as sfft

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mltem.gpa import gpa, iter_gpa, make_plan, strain_from_distortion  # noqa: E402
from mltem.simulate import (  # noqa: E402
    EdgeDislocation,
    Lattice,
    LithiatedRegion,
    UniformStrain,
    simulate_lattice,
    simulate_lattice_movie,
)

PX = 0.02
DOSE = 1e5  # e/nm^2 = 1000 e/A^2


def textbook_gpa(image, g_px):
    """Minimal textbook GPA (Hytch 1998): full FFTs, Gaussian mask sigma = 0.1|g| per spot,
    wrap-safe derivatives via complex exponentials, g refined on the whole image (mean)."""
    m, n = image.shape
    f = np.fft.fft2(image)
    qy = np.fft.fftfreq(m)[:, None]
    qx = np.fft.fftfreq(n)[None, :]
    y, x = np.mgrid[0:m, 0:n]
    grads = []
    for g in g_px:
        s = 0.1 * np.hypot(*g)
        mask = np.exp(-((qy - g[0]) ** 2 + (qx - g[1]) ** 2) / (2 * s**2))
        h = np.fft.ifft2(f * mask)
        e = np.exp(1j * (np.angle(h) - 2 * np.pi * (g[0] * y + g[1] * x)))
        gy_, gx_ = np.gradient(e)
        dx = np.imag(np.conj(e) * gx_)
        dy = np.imag(np.conj(e) * gy_)
        grads.append((dx - dx.mean(), dy - dy.mean()))  # whole-image reference
    # g refined by the whole-image mean gradient
    a = np.linalg.inv(np.asarray(g_px)[:, ::-1])
    d = np.empty((2, 2, m, n))
    for i in range(2):
        for j in range(2):
            d[i, j] = -(a[i, 0] * grads[0][j] + a[i, 1] * grads[1][j]) / (2 * np.pi)
    return strain_from_distortion(d[0, 0], d[0, 1], d[1, 0], d[1, 1], definition="linear")


def kemstem_gpa(image, g_px):
    """kemstem's GPA (fourier_filter -> gpa -> calculate_strain_tensor), sigma = 0.1|g| in FFT px."""
    from kemstem.fourier import calculate_strain_tensor, fourier_filter
    from kemstem.fourier import gpa as kgpa

    m, n = image.shape
    pattern = np.fft.fftshift(np.fft.fft2(image))
    phases, ps = [], []
    for g in g_px:
        p = (m / 2 + g[0] * m, n / 2 + g[1] * n)
        sigma = 0.1 * np.hypot(g[0] * m, g[1] * n)
        filtered, _, _ = fourier_filter(pattern, p, sigma)
        phases.append(kgpa(filtered, p))
        ps.append(p)
    exx, eyy, exy, oxy = calculate_strain_tensor(phases[0], phases[1], ps[0], ps[1])
    # kemstem's oxy = (du_x/dy - du_y/dx)/2 = -(mltem's rotation)
    return np.stack([exx, eyy, exy, -oxy])


def _images():
    lat = Lattice()
    shape = (512, 512)
    return {
        "uniform 1 %, noise-free": simulate_lattice(shape, pixel_size_nm=PX, fields=[UniformStrain(exx=0.01, eyy=-0.004, exy=0.003, rotation=0.01)]),
        "uniform 1 %, 1000 e/A^2": simulate_lattice(shape, pixel_size_nm=PX, fields=[UniformStrain(exx=0.01, eyy=-0.004, exy=0.003, rotation=0.01)], dose_e_per_nm2=DOSE, seed=1),
        "lithiated disc 4 %, 1000 e/A^2": simulate_lattice(shape, pixel_size_nm=PX, fields=[LithiatedRegion(4.0, 6.0, radius_nm=1.5, expansion=0.04, width_nm=0.8)], dose_e_per_nm2=DOSE, seed=2),
        "expanded 6 % (large strain), noise-free": simulate_lattice(shape, pixel_size_nm=PX, fields=[UniformStrain(exx=0.06, eyy=0.06)]),
        "edge dislocation, 1000 e/A^2": simulate_lattice(shape, pixel_size_nm=PX, fields=[EdgeDislocation(5.0, 5.3, burgers_nm=tuple(lat.vectors_nm[0]))], dose_e_per_nm2=DOSE, seed=3),
    }


def _rms(est, truth, sl, exclude=None):
    e = np.asarray(est, dtype=float) - truth
    if exclude is not None:
        e = np.where(exclude, np.nan, e)
    e = e[(slice(None), *sl)]
    return [float(v) for v in np.sqrt(np.nanmean(e**2, axis=(1, 2)))]


def _best(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def accuracy(have_kemstem: bool):
    rows = []
    for name, sim in _images().items():
        g = sim.g_vectors_px
        ours = gpa(sim.image)
        sl = ours.interior()
        exclude = None
        if sim.dislocations:  # the core itself has no defined strain: leave out 1 nm around it
            yy, xx = np.mgrid[0 : sim.image.shape[0], 0 : sim.image.shape[1]] * PX
            cy, cx = sim.dislocations[0]
            exclude = np.hypot(yy - cy, xx - cx) < 1.0
        methods = {
            "mltem (defaults)": lambda: gpa(sim.image).strain,
            "mltem (true g, no refinement)": lambda: gpa(sim.image, g_vectors=g, reference="none").strain,
            "textbook GPA": lambda: textbook_gpa(sim.image.astype(np.float64), g),
        }
        if have_kemstem:
            methods["kemstem 0.0.6"] = lambda: kemstem_gpa(sim.image.astype(np.float64), g)
        # truth relative to the lattice the method treats as reference: mltem (defaults) and
        # the textbook GPA measure against a lattice they pick from the image itself
        for meth, fn in methods.items():
            t = _best(fn, 3)
            est = fn()
            truth = sim.strain if meth.startswith("mltem") else sim.strain_linear
            if name.startswith("uniform") and meth in ("mltem (defaults)", "textbook GPA"):
                truth = np.zeros_like(truth)  # a uniform image is its own reference
            if name.startswith("expanded") and meth in ("mltem (defaults)", "textbook GPA"):
                truth = np.zeros_like(truth)
            err = _rms(est, truth, sl, exclude)
            rows.append({"image": name, "method": meth, "rms": err, "rms_max": max(err), "time_s": t})
            print(f"{name:40s} {meth:32s} rms max {max(err):.2e}  {t * 1e3:7.1f} ms", flush=True)
        if name.startswith("expanded"):
            # the point of this image: the true lattice strain is 6 %; what does each method read?
            centre = (slice(None), slice(240, 272), slice(240, 272))
            for meth, fn in (("mltem (true g, no refinement)", lambda: gpa(sim.image, g_vectors=g, reference="none").strain),
                             ("kemstem 0.0.6", lambda: kemstem_gpa(sim.image.astype(np.float64), g))):
                if meth.startswith("kemstem") and not have_kemstem:
                    continue
                v = np.asarray(fn())[centre].mean(axis=(1, 2))
                rows.append({"image": name, "method": meth + " reads exx", "value": float(v[0]), "true": 0.06})
    return rows


def fft_ratio(n: int, repeat: int):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    img = (2 + np.cos(2 * np.pi * x / 15.3) + np.cos(2 * np.pi * (y + 0.2 * x) / 12.5)).astype(np.float32)
    img += rng.normal(0, 0.1, img.shape).astype(np.float32)
    c128 = img.astype(np.complex128)
    c64 = img.astype(np.complex64)
    g = [[0.0, 1 / 15.3], [1 / 12.5, 0.2 / 12.5]]
    t = {"fft_c128": [], "fft_c64": [], "gpa_auto": [], "gpa_given_g": []}
    for _ in range(repeat):  # interleaved, best of: the machine is shared
        for key, fn in (
            ("fft_c128", lambda: sfft.fft2(c128, workers=-1)),
            ("fft_c64", lambda: sfft.fft2(c64, workers=-1)),
            ("gpa_auto", lambda: gpa(img)),
            ("gpa_given_g", lambda: gpa(img, g_vectors=g, reference="none")),
        ):
            t0 = time.perf_counter()
            fn()
            t[key].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in t.items()}
    return {
        "n": n,
        "workers": os.cpu_count(),
        "best_s": best,
        "ratio_auto_vs_fft_c128": best["gpa_auto"] / best["fft_c128"],
        "ratio_auto_vs_fft_c64": best["gpa_auto"] / best["fft_c64"],
        "ratio_given_g_vs_fft_c128": best["gpa_given_g"] / best["fft_c128"],
        "ratio_given_g_vs_fft_c64": best["gpa_given_g"] / best["fft_c64"],
    }


def textbook_timing(n: int, have_kemstem: bool):
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    img = 2 + np.cos(2 * np.pi * x / 15.3) + np.cos(2 * np.pi * (y + 0.2 * x) / 12.5)
    g = np.array([[0.0, 1 / 15.3], [1 / 12.5, 0.2 / 12.5]])
    out = {"textbook_s": _best(lambda: textbook_gpa(img, g), 1)}
    if have_kemstem:
        out["kemstem_s"] = _best(lambda: kemstem_gpa(img, g), 1)
    out["mltem_s"] = _best(lambda: gpa(img.astype(np.float32)), 2)
    return out


def streaming_memory(frames: int, n: int):
    lat = Lattice(g_max_per_nm=5.0)
    gen = simulate_lattice_movie(frames, (n, n), pixel_size_nm=PX, lattice=lat, drift_nm_per_frame=(0.01, 0.02),
                                 fields=[UniformStrain(exx=0.01)], thickness=0.3)
    first = next(gen)
    plan = make_plan(first.image, g_vectors=first.g_vectors_px, reference="none", register=True)

    def frames_iter():
        yield first.image
        for s in gen:
            yield s.image

    tracemalloc.start()
    tracemalloc.reset_peak()
    peaks, means = [], []
    t0 = time.perf_counter()
    t_gpa = 0.0
    it = frames_iter()
    for k in range(frames):
        frame = next(it)
        t = time.perf_counter()
        s, d = next(iter_gpa([frame], plan))
        t_gpa += time.perf_counter() - t
        means.append(float(np.nanmean(s[0])))
        del s, frame
        if k in (9, frames - 1):
            peaks.append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    import resource

    return {
        "frames": frames,
        "shape": [n, n],
        "tracemalloc_peak_after_10_frames_MB": peaks[0] / 2**20,
        "tracemalloc_peak_after_all_frames_MB": peaks[-1] / 2**20,
        "one_output_frame_MB": 4 * n * n * 4 / 2**20,
        "whole_output_would_be_MB": frames * 4 * n * n * 4 / 2**20,
        "ru_maxrss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "gpa_time_per_frame_s": t_gpa / frames,
        "total_time_s": time.perf_counter() - t0,
        "mean_exx_first_last": [means[0], means[-1]],
    }


def markdown(res) -> str:
    acc = [r for r in res["accuracy"] if "rms" in r]
    methods = list(dict.fromkeys(r["method"] for r in acc))
    images = list(dict.fromkeys(r["image"] for r in acc))
    lines = ["# GPA benchmark (`benchmarks/bench_gpa.py`)", "",
             f"Machine: {res['machine']}. Generated by `.venv/bin/python benchmarks/bench_gpa.py`.", "",
             "## Accuracy and time on the same 512 x 512 images",
             "",
             "RMS error, max over exx, eyy, exy, rotation, in the interior (two default-mask widths from the edges); "
             "time per image (best of 3). kemstem and the textbook GPA get the true g vectors and sigma = 0.1|g|; "
             "'mltem (defaults)' finds spots and reference itself.",
             "",
             "| image | " + " | ".join(methods) + " |",
             "|---|" + "---|" * len(methods)]
    for im in images:
        cells = []
        for me in methods:
            r = next((r for r in acc if r["image"] == im and r["method"] == me), None)
            cells.append("" if r is None else f"{r['rms_max']:.1e} ({r['time_s'] * 1e3:.0f} ms)")
        lines.append(f"| {im} | " + " | ".join(cells) + " |")
    reads = [r for r in res["accuracy"] if "value" in r]
    if reads:
        lines += ["", "Large strain (true lattice expansion 0.06): " + "; ".join(f"{r['method']} {r['value']:.4f}" for r in reads) + "."]
    f = res["fft_ratio"]
    b = f["best_s"]
    lines += ["", f"## Speed: {f['n']} x {f['n']} image vs one complex FFT ({f['workers']} cores)", "",
              "| what | time (s) | / complex128 FFT | / complex64 FFT |", "|---|---|---|---|",
              f"| one complex128 FFT (scipy.fft.fft2) | {b['fft_c128']:.3f} | 1 | |",
              f"| one complex64 FFT | {b['fft_c64']:.3f} | | 1 |",
              f"| mltem GPA, automatic spots + reference | {b['gpa_auto']:.3f} | {f['ratio_auto_vs_fft_c128']:.2f} | {f['ratio_auto_vs_fft_c64']:.2f} |",
              f"| mltem GPA, given g | {b['gpa_given_g']:.3f} | {f['ratio_given_g_vs_fft_c128']:.2f} | {f['ratio_given_g_vs_fft_c64']:.2f} |"]
    if "peer_timing" in res:
        p = res["peer_timing"]
        lines += ["", f"Same {p['n']} x {p['n']} image, one run: textbook {p['textbook_s']:.2f} s"
                  + (f", kemstem {p['kemstem_s']:.2f} s" if "kemstem_s" in p else "") + f", mltem {p['mltem_s']:.2f} s."]
    s = res["streaming"]
    lines += ["", f"## Streaming memory: {s['frames']} frames of {s['shape'][0]} x {s['shape'][1]}", "",
              f"tracemalloc peak after 10 frames {s['tracemalloc_peak_after_10_frames_MB']:.0f} MB, after "
              f"{s['frames']} frames {s['tracemalloc_peak_after_all_frames_MB']:.0f} MB (one output frame "
              f"{s['one_output_frame_MB']:.0f} MB; the whole output would be {s['whole_output_would_be_MB']:.0f} MB); "
              f"GPA {s['gpa_time_per_frame_s'] * 1e3:.0f} ms per frame with registration.", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    a = ap.parse_args()
    try:
        import kemstem  # noqa: F401

        have_kemstem = True
    except ImportError:
        print("kemstem is not installed (pip install -r benchmarks/requirements.txt): its rows are left out")
        have_kemstem = False
    import platform

    res = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    res["accuracy"] = accuracy(have_kemstem)
    res["fft_ratio"] = fft_ratio(1024 if a.quick else 4096, 3 if a.quick else 5)
    print(json.dumps(res["fft_ratio"], indent=1), flush=True)
    res["peer_timing"] = dict(n=1024 if a.quick else 2048, **textbook_timing(1024 if a.quick else 2048, have_kemstem))
    res["streaming"] = streaming_memory(10 if a.quick else 100, 256 if a.quick else 1024)
    print(json.dumps(res["streaming"], indent=1), flush=True)
    if not a.quick:
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "gpa.json").write_text(json.dumps(res, indent=2) + "\n")
        (HERE / "README_gpa.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
