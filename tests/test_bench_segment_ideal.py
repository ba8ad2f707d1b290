"""The ideal-observer precision of benchmarks/bench_segment_ideal.py against analytic and Monte Carlo answers."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import least_squares
from scipy.special import erf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_segment_ideal as ideal  # noqa: E402

ANGLE = math.radians(17.0)
SIGMA = 1.3  # px, blur of both edges
T = 6.0  # px, layer thickness


def layer_image(shift_in=0.0, shift_out=0.0, size=64, dose=40.0):
    """Expected counts of a tilted straight electrode (dark) under a layer (darker), blurred.

    Returns the image, the true signed distance from the electrode surface and the labels.
    """
    yy, xx = np.mgrid[:size, :size].astype(float)
    d = (xx - size / 2) * math.cos(ANGLE) + (yy - size / 2) * math.sin(ANGLE)  # normal coordinate, px

    def step(x):
        return 0.5 * (1 + erf(x / (SIGMA * math.sqrt(2))))

    # transmission: electrode 0.3, layer 0.6, electrolyte 1.0
    tr = 0.3 + 0.3 * step(d - shift_in) + 0.4 * step(d - T - shift_out)
    labels = np.where(d < 0, 1, np.where(d < T, 2, 0)).astype(np.uint8)
    return dose * tr, d, labels


def analytic_information(img, d, use, split, h=1e-4):
    """Sum over the pixels of (d mu / d shift)^2 / mu, by central differences of the exact model."""
    f = []
    for which in (0, 1):
        kw = {"shift_in" if which == 0 else "shift_out": h}
        plus = layer_image(**kw)[0]
        kw = {k: -h for k in kw}
        minus = layer_image(**kw)[0]
        g = (plus - minus) / (2 * h)
        f.append(float((g ** 2 / img)[use].sum()))
    return f


@pytest.mark.parametrize("angle", [0.0, 17.0, 30.0, 45.0])
def test_boundary_information_matches_the_analytic_fisher_information(angle, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ANGLE", math.radians(angle))
    img, d, labels = layer_image()
    dist = ideal.signed_distance(labels == 1)  # from the pixel grid, as the benchmark reads the masks
    use = (dist > -8) & (dist < T + 8)
    use[:4] = use[-4:] = False
    use[:, :4] = use[:, -4:] = False
    a_in, a_out = analytic_information(img, d, use, T / 2)
    # on the exact distance the local fit smooths the edge a little (bandwidth 0.5 px)
    f_in, f_out = ideal.boundary_information(img, d, use, T / 2)
    assert f_in == pytest.approx(a_in, rel=0.12)
    assert f_out == pytest.approx(a_out, rel=0.12)
    # the distance from the masks is a staircase: the bound is good to some 15 %
    sd = ideal.frame_crb(img, labels, T)
    assert sd == pytest.approx(math.sqrt(1 / a_in + 1 / a_out), rel=0.15)


def poisson_deviance(counts, model):
    """Signed square roots of the Poisson deviance terms (their sum of squares is -2 log L + const)."""
    term = np.where(counts > 0, counts * np.log(np.maximum(counts, 1) / model), 0.0) - (counts - model)
    return np.sign(counts - model) * np.sqrt(2 * np.maximum(term, 0))


def test_the_maximum_likelihood_thickness_scatters_by_the_bound():
    """Thickness fitted by maximum likelihood to Poisson images of the known model."""
    img, d, labels = layer_image()
    band = (d > -8) & (d < T + 8)
    f_in, f_out = analytic_information(img, d, band, T / 2)
    sd = math.sqrt(1 / f_in + 1 / f_out)
    rng = np.random.default_rng(3)
    fits = []
    for _ in range(150):
        noisy = rng.poisson(img).astype(float)
        p = least_squares(lambda p: poisson_deviance(noisy, layer_image(p[0], p[1])[0])[band], [0.0, 0.0]).x
        fits.append(T + p[1] - p[0])
    fits = np.array(fits)
    assert abs(fits.mean() - T) < 4 * sd / math.sqrt(len(fits))
    assert 0.85 * sd < fits.std() < 1.15 * sd
    assert ideal.frame_crb(img, labels, T) == pytest.approx(sd, rel=0.15)


def test_texture_counts_as_noise_and_chance_follows_the_gaussian():
    img, _, labels = layer_image()
    rng = np.random.default_rng(0)
    textured = img + np.where(labels == 2, rng.normal(0, 6.0, img.shape), 0.0)
    assert ideal.frame_crb(textured, labels, T) > 1.1 * ideal.frame_crb(img, labels, T)
    assert ideal.within_chance(10.0, 1.0) == pytest.approx(math.erf(1 / math.sqrt(2)))  # +-1 sd: 68 %
    assert ideal.within_chance(10.0, float("inf")) == 0.0
    assert math.isnan(ideal.frame_crb(img, np.zeros_like(labels), T))
