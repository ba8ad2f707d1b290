"""Physics-informed simulator of transition-metal L2,3 EELS edges (valence labels).

A spectrum is built as a physicist would describe it:

* **White lines.** For each oxidation state a few Gaussian multiplet lines around the
  L3 maximum and the L2 maximum (one spin-orbit splitting higher). The L3 line energy
  carries the chemical shift (about +1 to +1.5 eV per oxidation step); the L3/L2 area
  ratio and the multiplet shape come from the literature (sources below, per state).
  The total white-line area is proportional to the number of 3d holes (Pearson, Ahn &
  Fultz, Phys. Rev. B 47, 8471 (1993)), so mixture fractions are atom fractions.
* **Continuum.** The Pearson double step (heights 2:1 at the L3 and L2 maxima), slowly
  decaying as (E/E_L3)**-s after the edge; the same per atom for every valence.
* **Instrument.** Gaussian energy resolution, plural scattering by convolution with a
  low-loss spectrum of relative thickness t/lambda (Poisson series of a Drude plasmon),
  a power-law background A E**-r, dispersion (scale) and offset errors of the energy
  axis, and Poisson counting noise.

Sources of the white-line energies, L3/L2 ratios and shapes (values rounded; the shapes
are described by 1-4 lines per white line, fitted by eye to the published spectra):

* Ti: Stoyanov, Langenhorst & Steinle-Neumann, Am. Mineral. 92, 577 (2007)
  (Ti3+/Ti4+ L2,3, crystal-field split t2g/eg lines, about 2 eV chemical shift);
  de Groot et al., Phys. Rev. B 41, 928 (1990).
* V: Laffont et al., Micron 37, 459 (2006) (V3+/V4+/V5+ L3 at about 515.6/516.6/517.6 eV
  and L3/L2 rising as the valence drops); Chen et al., Phys. Rev. B 79, 104103 (2009).
* Cr: Daulton & Little, Ultramicroscopy 106, 561 (2006) (Cr3+ vs Cr6+ L3 shift about
  +2 eV, L3/L2 1.7 for Cr2O3 and close to 1 for chromates).
* Mn: Garvie & Craven, Phys. Chem. Minerals 21, 191 (1994); Riedl, Gemming & Wetzig,
  Ultramicroscopy 106, 284 (2006); Tan et al., Ultramicroscopy 116, 24 (2012)
  (L3 at about 640.2/641.6/642.8 eV and L3/L2 about 4.0/2.6/1.9 for Mn2+/3+/4+; Mn2+
  shows a split L2).
* Fe: van Aken & Liebscher, Phys. Chem. Minerals 29, 188 (2002) (Fe2+ L3 at 708.1 eV,
  Fe3+ at 709.6 eV with a pre-peak at 708 eV; L3/L2 about 4.6 and 5.4).
* Co: Wang, Bentley & Evans, Micron 31, 355 (2000) and Wang, Yin & Zhang, J. Phys. Chem.
  B 104, 11920 (2000) (CoO L3/L2 about 4.6, LiCoO2 (Co3+) about 2.8, chemical shift
  about +1.1 eV per step).
* Ni: Koyama et al., J. Power Sources 119, 550 (2003) and Kikkawa et al. for NMC cathodes;
  NiO multiplet after de Groot (1990) (Ni2+ L3 853.3 eV with a +1.8 eV satellite, L3/L2
  about 3.2, falling on oxidation).
* Cu: Leapman, Grunes & Fejes, Phys. Rev. B 26, 614 (1982) (Cu2+ sharp L3 at 931.2 eV;
  Cu+ (d10) almost no white line, onset near 933.5 eV).
* General trend of L3/L2 with d count (maximum at d5): Sparrow, Williams, Rao & Thomas,
  J. Am. Ceram. Soc. 67, C-103 (1984).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft

from mltem._errors import MltemError

__all__ = [
    "ValenceState",
    "ElementModel",
    "ELEMENT_MODELS",
    "element_model",
    "simulate_l23",
    "simulate_low_loss",
    "plural_kernel_ft",
    "random_l23_batch",
    "L23Params",
]

FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class ValenceState:
    """One oxidation state of an element.

    Attributes
    ----------
    valence : int
    l3_ev : float
        Energy of the L3 maximum, eV.
    ratio : float
        L3/L2 white-line area ratio.
    holes : float
        3d holes (sets the total white-line area).
    l3_lines, l2_lines : tuple of (offset_ev, height, fwhm_ev)
        Multiplet lines relative to the L3 (L2) maximum.
    """

    valence: int
    l3_ev: float
    ratio: float
    holes: float
    l3_lines: tuple
    l2_lines: tuple


@dataclass(frozen=True)
class ElementModel:
    """Simulator parameters of one element.

    Attributes
    ----------
    element : str
    spin_orbit_ev : float
        L2 - L3 white-line separation, eV.
    states : tuple of ValenceState
        In increasing valence.
    area_per_hole_ev : float
        White-line area per 3d hole in units of the continuum step height x eV.
    """

    element: str
    spin_orbit_ev: float
    states: tuple
    area_per_hole_ev: float = 3.5
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def valences(self) -> tuple:
        return tuple(s.valence for s in self.states)

    @property
    def class_names(self) -> tuple:
        return tuple(f"{self.element.lower()}{v}" for v in self.valences)


def _s(v, l3, ratio, holes, l3_lines, l2_lines):
    return ValenceState(v, l3, ratio, holes, tuple(l3_lines), tuple(l2_lines))


ELEMENT_MODELS: dict[str, ElementModel] = {
    "Ti": ElementModel("Ti", 5.4, (
        _s(3, 456.6, 0.90, 9, [(0.0, 0.8, 1.3), (1.8, 1.0, 1.9)], [(0.0, 0.8, 1.8), (2.0, 1.0, 2.4)]),
        _s(4, 457.9, 0.85, 10, [(0.0, 0.75, 0.7), (2.2, 1.0, 1.4)], [(0.0, 0.8, 1.2), (2.3, 1.0, 2.0)]),
    ), area_per_hole_ev=2.0),
    "V": ElementModel("V", 7.2, (
        _s(3, 515.6, 1.30, 8, [(0.0, 1.0, 1.8), (1.7, 0.35, 1.8)], [(0.0, 1.0, 3.0)]),
        _s(4, 516.6, 1.15, 9, [(-1.1, 0.35, 1.2), (0.0, 1.0, 1.6), (2.0, 0.25, 1.6)], [(0.0, 1.0, 2.6)]),
        _s(5, 517.6, 1.00, 10, [(-1.3, 0.5, 1.0), (0.0, 1.0, 1.4), (1.8, 0.3, 1.4)], [(0.0, 1.0, 2.2), (2.0, 0.3, 1.8)]),
    ), area_per_hole_ev=2.0),
    "Cr": ElementModel("Cr", 8.6, (
        _s(3, 577.3, 1.70, 7, [(-1.6, 0.35, 1.0), (0.0, 1.0, 1.3), (1.8, 0.25, 1.5)], [(0.0, 1.0, 2.0), (1.8, 0.4, 2.0)]),
        _s(6, 579.3, 1.05, 10, [(-1.6, 0.8, 1.0), (0.0, 1.0, 1.4)], [(0.0, 0.8, 1.6), (1.7, 1.0, 2.0)]),
    ), area_per_hole_ev=2.5),
    "Mn": ElementModel("Mn", 11.0, (
        _s(2, 640.2, 4.0, 5, [(-1.6, 0.25, 1.0), (0.0, 1.0, 0.9), (1.6, 0.45, 1.3), (3.2, 0.2, 1.6)], [(0.0, 0.9, 1.4), (1.6, 1.0, 1.6)]),
        _s(3, 641.6, 2.6, 6, [(-1.5, 0.45, 1.2), (0.0, 1.0, 1.5), (2.0, 0.3, 1.8)], [(0.0, 1.0, 2.2), (1.8, 0.5, 2.0)]),
        _s(4, 642.8, 1.9, 7, [(-2.1, 0.25, 1.3), (0.0, 1.0, 1.8), (2.3, 0.25, 2.0)], [(0.0, 1.0, 2.6)]),
    ), area_per_hole_ev=3.5),
    "Fe": ElementModel("Fe", 12.9, (
        _s(2, 708.1, 4.6, 4, [(-1.2, 0.15, 1.0), (0.0, 1.0, 1.2), (1.9, 0.35, 1.5)], [(0.0, 1.0, 2.0), (2.0, 0.6, 2.0)]),
        _s(3, 709.6, 5.4, 5, [(-1.6, 0.35, 1.0), (0.0, 1.0, 1.3), (2.0, 0.15, 1.5)], [(0.0, 0.8, 1.8), (1.4, 1.0, 2.0)]),
    ), area_per_hole_ev=3.5),
    "Co": ElementModel("Co", 15.1, (
        _s(2, 779.6, 4.6, 3, [(-1.1, 0.3, 1.0), (0.0, 1.0, 1.1), (1.3, 0.5, 1.3), (3.3, 0.15, 1.6)], [(0.0, 1.0, 1.8), (1.8, 0.6, 1.8)]),
        _s(3, 780.7, 2.8, 4, [(0.0, 1.0, 1.3), (2.2, 0.2, 2.0)], [(0.0, 1.0, 2.2)]),
        _s(4, 781.7, 2.3, 5, [(-1.5, 0.15, 1.5), (0.0, 1.0, 1.9), (2.3, 0.25, 2.2)], [(0.0, 1.0, 2.8)]),
    ), area_per_hole_ev=4.0),
    "Ni": ElementModel("Ni", 17.3, (
        _s(2, 853.3, 3.2, 2, [(0.0, 1.0, 1.1), (1.8, 0.35, 1.4)], [(0.0, 0.85, 1.6), (1.6, 1.0, 1.6)]),
        _s(3, 854.8, 2.7, 3, [(-1.5, 0.3, 1.3), (0.0, 1.0, 1.6), (2.0, 0.2, 2.0)], [(0.0, 1.0, 2.4), (1.8, 0.5, 2.2)]),
        _s(4, 856.0, 2.3, 4, [(-1.8, 0.2, 1.5), (0.0, 1.0, 2.0)], [(0.0, 1.0, 3.0)]),
    ), area_per_hole_ev=4.5),
    "Cu": ElementModel("Cu", 19.9, (
        _s(1, 933.6, 2.0, 0.4, [(0.0, 1.0, 2.0), (4.0, 0.6, 3.0)], [(0.0, 1.0, 3.0)]),
        _s(2, 931.2, 2.7, 1, [(0.0, 1.0, 1.2)], [(0.0, 1.0, 1.6)]),
    ), area_per_hole_ev=6.0),
}


def element_model(element: str) -> ElementModel:
    """The simulator model of an element.

    Raises
    ------
    MltemError
        For an element without a model (see :data:`ELEMENT_MODELS`).
    """
    key = str(element).strip().capitalize()
    if key not in ELEMENT_MODELS:
        raise MltemError(f"no L2,3 valence model for element '{element}'; known: {', '.join(ELEMENT_MODELS)}")
    return ELEMENT_MODELS[key]


def _gauss(x, fwhm):
    s = fwhm / FWHM
    return np.exp(-0.5 * (x / s) ** 2) / (s * np.sqrt(2 * np.pi))


def _line_max(lines, resolution_ev: float = 0.5) -> float:
    """Offset of the maximum of a set of lines (where Pearson puts the continuum step), eV."""
    x = np.arange(-6.0, 6.0, 0.01)
    h = np.array([ln[1] for ln in lines])
    w = np.array([ln[2] for ln in lines])
    a = h * w / (h * w).sum()
    prof = sum(ai * _gauss(x - off, np.hypot(fw, resolution_ev)) for (off, _, fw), ai in zip(lines, a))
    return float(x[np.argmax(prof)])


def _line_set(e_true, centre, lines, area, res):
    """Sum of unit-height-normalised lines scaled to a total area. e_true (N, C)."""
    h = np.array([ln[1] for ln in lines])
    w = np.array([ln[2] for ln in lines])
    weights = h * w / (h * w).sum()  # area share of each line
    out = 0.0
    for (off, _, fw), a in zip(lines, weights):
        out = out + a * _gauss(e_true - (centre + off)[:, None], np.sqrt(fw**2 + res[:, None] ** 2))
    return area[:, None] * out


def plural_kernel_ft(size: int, scale_ev, t_lambda, *, plasmon_ev=22.0, plasmon_width_ev=6.0, zlp: bool = True):
    """Fourier transform of the plural-scattering kernel (rows: spectra).

    K = exp(-t) * sum_n t**n / n! * P**(*n) with P the unit-area single-plasmon (Drude)
    distribution, so FT(K) = exp(t (FT(P) - 1)) (Egerton 2011, eq. 4.8).

    Parameters
    ----------
    size : int
        FFT length (channels, zero-loss at channel 0).
    scale_ev, t_lambda, plasmon_ev, plasmon_width_ev : array_like
        (N,) channel width (eV), relative thickness, plasmon energy and width (eV).
    zlp : bool
        Unused; kept for clarity (the zero-loss term is exp(-t) * delta).

    Returns
    -------
    numpy.ndarray
        (N, size // 2 + 1) complex.
    """
    scale = np.atleast_1d(np.asarray(scale_ev, float))
    t = np.atleast_1d(np.asarray(t_lambda, float))
    ep = np.broadcast_to(np.asarray(plasmon_ev, float), t.shape)
    gw = np.broadcast_to(np.asarray(plasmon_width_ev, float), t.shape)
    e = np.arange(size)[None, :] * scale[:, None]
    p = e * gw[:, None] * ep[:, None] ** 2 / ((e**2 - ep[:, None] ** 2) ** 2 + (e * gw[:, None]) ** 2)
    p[:, e.shape[1] // 2 :] = 0.0  # causal, no wrap-around
    p /= p.sum(1, keepdims=True)
    return np.exp(t[:, None] * (rfft(p, axis=1) - 1.0))


@dataclass
class L23Params:
    """Per-spectrum nuisance parameters of :func:`simulate_l23` (arrays of shape (N,)).

    Attributes
    ----------
    offset_ev : energy-axis offset error (features appear this much higher), eV.
    dispersion : relative dispersion error (0.01: the true channel width is 1 % larger).
    resolution_ev : energy resolution FWHM, eV.
    t_lambda : relative thickness for plural scattering.
    plasmon_ev, plasmon_width_ev : Drude plasmon energy and width, eV.
    background_ratio : power-law background at the L3 edge / continuum step height.
    background_exponent : r of A E**-r.
    counts : continuum step height in counts per channel (Poisson noise; <= 0: no noise).
    wl_scale : multiplies the white-line areas (sample and cross-section variation).
    continuum_decay : exponent s of the post-edge decay (E/E_L3)**-s.
    shift_ev : extra chemical-environment shift of all lines, eV.
    """

    offset_ev: np.ndarray
    dispersion: np.ndarray
    resolution_ev: np.ndarray
    t_lambda: np.ndarray
    plasmon_ev: np.ndarray
    plasmon_width_ev: np.ndarray
    background_ratio: np.ndarray
    background_exponent: np.ndarray
    counts: np.ndarray
    wl_scale: np.ndarray
    continuum_decay: np.ndarray
    shift_ev: np.ndarray

    @classmethod
    def fixed(cls, n: int = 1, **kw) -> "L23Params":
        d = dict(offset_ev=0.0, dispersion=0.0, resolution_ev=0.5, t_lambda=0.0, plasmon_ev=22.0, plasmon_width_ev=6.0,
                 background_ratio=0.0, background_exponent=3.0, counts=0.0, wl_scale=1.0, continuum_decay=0.0, shift_ev=0.0)
        unknown = set(kw) - set(d)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(d)}")
        d.update(kw)
        return cls(**{k: np.broadcast_to(np.asarray(v, float), (n,)).copy() for k, v in d.items()})


def simulate_l23(energy_ev, element, fractions, params: L23Params | None = None, *, rng=None, model: ElementModel | None = None) -> np.ndarray:
    """Simulate L2,3 core-loss spectra of mixed oxidation states.

    Parameters
    ----------
    energy_ev : array_like
        Reported energy axis (E,), eV, uniform (what the spectrometer writes).
    element : str
        Element symbol (see :data:`ELEMENT_MODELS`).
    fractions : array_like
        (N, K) or (K,) atom fractions of the element's oxidation states (rows sum to 1),
        in the order of ``element_model(element).valences``.
    params : L23Params, optional
        Nuisance parameters per spectrum; default :meth:`L23Params.fixed` (no noise,
        no background, 0.5 eV resolution).
    rng : numpy.random.Generator, optional
        For the Poisson noise (needed when ``params.counts > 0``).
    model : ElementModel, optional
        Use this model instead of the table (new chemistries).

    Returns
    -------
    numpy.ndarray
        (N, E) or (E,) float64 counts.

    Examples
    --------
    >>> e = 620 + 0.1 * np.arange(600)
    >>> s = simulate_l23(e, "Mn", [1, 0, 0])
    >>> 639.5 < e[np.argmax(s)] < 641.0
    True
    """
    m = model or element_model(element)
    e = np.asarray(energy_ev, dtype=float)
    if e.ndim != 1 or e.size < 8:
        raise ValueError(f"energy_ev must be 1D with >= 8 channels, got shape {e.shape}")
    f = np.asarray(fractions, dtype=float)
    single = f.ndim == 1
    f = np.atleast_2d(f)
    k = len(m.states)
    if f.shape[-1] != k:
        raise ValueError(f"{m.element} has {k} oxidation states {m.valences}; fractions has {f.shape[-1]} columns")
    if np.any(f < -1e-9) or not np.allclose(f.sum(-1), 1.0, atol=1e-6):
        raise ValueError("fractions must be non-negative and sum to 1 in every row")
    n = f.shape[0]
    p = params or L23Params.fixed(n)
    de = float(e[1] - e[0])
    e0 = e[0]
    # true energy of each reported channel
    scale_true = de * (1.0 + p.dispersion)
    e_true = e0 + (e - e0)[None, :] * (1.0 + p.dispersion[:, None]) - p.offset_ev[:, None]
    res = p.resolution_ev
    l3_ref = m.states[0].l3_ev
    ssd = np.zeros((n, e.size))
    for j, st in enumerate(m.states):
        wl = p.wl_scale * m.area_per_hole_ev * st.holes * f[:, j]
        a3 = wl * st.ratio / (1.0 + st.ratio)
        a2 = wl / (1.0 + st.ratio)
        c3 = np.full(n, st.l3_ev) + p.shift_ev
        c2 = c3 + m.spin_orbit_ev
        ssd += _line_set(e_true, c3, st.l3_lines, a3, res)
        ssd += _line_set(e_true, c2, st.l2_lines, a2, res)
        # continuum (per atom): double step at this state's white-line maxima, heights 2:1
        s3 = c3 + _line_max(st.l3_lines)
        s2 = c2 + _line_max(st.l2_lines)
        wstep = np.sqrt(0.8**2 + res**2)[:, None] / 2
        step = 2 / 3 * (0.5 + np.arctan((e_true - s3[:, None]) / wstep) / np.pi) + 1 / 3 * (0.5 + np.arctan((e_true - s2[:, None]) / wstep) / np.pi)
        decay = np.where(e_true > l3_ref, (np.clip(e_true, l3_ref, None) / l3_ref) ** (-p.continuum_decay[:, None]), 1.0)
        ssd += f[:, j : j + 1] * step * decay
    if np.any(p.t_lambda > 0):
        pad = int(np.ceil(160.0 / de))
        size = next_fast_len(e.size + pad, real=True)
        kft = plural_kernel_ft(size, scale_true, p.t_lambda, plasmon_ev=p.plasmon_ev, plasmon_width_ev=p.plasmon_width_ev)
        ssd = irfft(rfft(ssd, n=size, axis=1) * kft, n=size, axis=1)[:, : e.size]
    bg = p.background_ratio[:, None] * (np.clip(e_true, 1.0, None) / l3_ref) ** (-p.background_exponent[:, None])
    spec = ssd + bg
    counts = np.where(p.counts > 0, p.counts, 1.0)[:, None]
    spec = spec * counts
    if np.any(p.counts > 0):
        if rng is None:
            raise ValueError("Poisson noise (counts > 0) needs an rng")
        noisy = rng.poisson(np.clip(spec, 0, None)).astype(float)
        spec = np.where(p.counts[:, None] > 0, noisy, spec)
    return spec[0] if single else spec


def simulate_low_loss(energy_ev, t_lambda, *, resolution_ev: float = 0.8, plasmon_ev: float = 22.0, plasmon_width_ev: float = 6.0, counts: float = 0.0, rng=None, zlp_ev: float = 0.0) -> np.ndarray:
    """Simulate low-loss spectra: a Gaussian zero-loss peak and Poisson-distributed plasmons.

    Parameters
    ----------
    energy_ev : array_like
        (E,), eV, uniform, including the zero-loss peak.
    t_lambda : array_like
        (N,) or scalar relative thickness.
    resolution_ev : float
        Zero-loss FWHM, eV.
    plasmon_ev, plasmon_width_ev : float
        Drude plasmon energy and width, eV.
    counts : float
        Total counts per spectrum (Poisson noise if > 0).
    rng : numpy.random.Generator, optional
    zlp_ev : float
        Position of the zero-loss peak, eV.

    Returns
    -------
    numpy.ndarray
        (N, E) or (E,); unit total area without noise.
    """
    e = np.asarray(energy_ev, dtype=float)
    t = np.atleast_1d(np.asarray(t_lambda, float))
    de = float(e[1] - e[0])
    z = _gauss(e - zlp_ev, resolution_ev) * de
    size = next_fast_len(2 * e.size, real=True)
    kft = plural_kernel_ft(size, np.full(t.shape, de), t, plasmon_ev=plasmon_ev, plasmon_width_ev=plasmon_width_ev)
    out = irfft(rfft(z, n=size)[None, :] * kft, n=size, axis=1)[:, : e.size]
    out = np.clip(out, 0, None)
    if counts > 0:
        if rng is None:
            raise ValueError("Poisson noise (counts > 0) needs an rng")
        out = rng.poisson(out * counts).astype(float)
    return out[0] if np.ndim(t_lambda) == 0 else out


def random_l23_batch(element, n: int, rng, *, energy_ev=None, pure_fraction: float = 0.4, ranges: dict | None = None, model: ElementModel | None = None):
    """Random labelled spectra for training: pure states and mixtures, realistic nuisances.

    Parameters
    ----------
    element : str
    n : int
        Number of spectra.
    rng : numpy.random.Generator
    energy_ev : array_like, optional
        Reported energy axis; default: L3 - 45 eV to L3 + spin-orbit + 40 eV at 0.1 eV.
    pure_fraction : float
        Share of spectra that hold a single oxidation state; the rest are Dirichlet
        mixtures of two or more states.
    ranges : dict, optional
        Override of the uniform ranges (low, high) of the nuisance parameters:
        ``offset_ev`` (-5, 5), ``dispersion`` (-0.03, 0.03), ``resolution_ev`` (0.3, 1.5),
        ``t_lambda`` (0.05, 1.0), ``plasmon_ev`` (18, 28), ``background_ratio`` (0, 20),
        ``background_exponent`` (2, 5), ``log10_counts`` (2.0, 4.0), ``wl_scale``
        (0.6, 1.6), ``continuum_decay`` (0, 4), ``shift_ev`` (-0.4, 0.4).
    model : ElementModel, optional

    Returns
    -------
    energy_ev : numpy.ndarray
        (E,).
    spectra : numpy.ndarray
        (n, E) counts.
    fractions : numpy.ndarray
        (n, K) atom fractions.
    """
    m = model or element_model(element)
    k = len(m.states)
    r = {"offset_ev": (-5, 5), "dispersion": (-0.03, 0.03), "resolution_ev": (0.3, 1.5), "t_lambda": (0.05, 1.0),
         "plasmon_ev": (18, 28), "background_ratio": (0, 20), "background_exponent": (2, 5), "log10_counts": (2.0, 4.0),
         "wl_scale": (0.6, 1.6), "continuum_decay": (0, 4), "shift_ev": (-0.4, 0.4)}
    if ranges:
        unknown = set(ranges) - set(r)
        if unknown:
            raise ValueError(f"unknown range(s) {sorted(unknown)}; known: {sorted(r)}")
        r.update(ranges)
    if energy_ev is None:
        l3 = m.states[0].l3_ev
        energy_ev = np.arange(l3 - 45.0, l3 + m.spin_orbit_ev + 40.0, 0.1)
    e = np.asarray(energy_ev, float)
    f = rng.dirichlet(np.full(k, 0.7), size=n)
    if k > 1:
        n_two = int(0.5 * (1 - pure_fraction) * n)
        # some binary mixtures (the common case: two neighbouring valences)
        idx = rng.permutation(n)
        pure = idx[: int(pure_fraction * n)]
        two = idx[int(pure_fraction * n) : int(pure_fraction * n) + n_two]
        f[pure] = np.eye(k)[rng.integers(0, k, len(pure))]
        a = rng.integers(0, k - 1, len(two))
        x = rng.uniform(0, 1, len(two))
        f[two] = 0
        f[two, a] = x
        f[two, a + 1] = 1 - x
    else:
        f[:] = 1.0

    def u(key):
        lo, hi = r[key]
        return rng.uniform(lo, hi, n)

    p = L23Params(
        offset_ev=u("offset_ev"), dispersion=u("dispersion"), resolution_ev=u("resolution_ev"), t_lambda=u("t_lambda"),
        plasmon_ev=u("plasmon_ev"), plasmon_width_ev=rng.uniform(4, 9, n), background_ratio=u("background_ratio"),
        background_exponent=u("background_exponent"), counts=10 ** u("log10_counts"), wl_scale=u("wl_scale"),
        continuum_decay=u("continuum_decay"), shift_ev=u("shift_ev"),
    )
    return e, simulate_l23(e, m.element, f, p, rng=rng, model=m), f
