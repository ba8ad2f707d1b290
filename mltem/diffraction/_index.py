"""Classical indexing: template matching in log-polar coordinates.

Every (phase, zone axis) template is a list of kinematic spots at in-plane angle 0.
The pattern is centred, freed of its background and resampled on a log-polar grid
(rows ln|g|, columns azimuth). A rotation is then a circular shift along the columns and
a calibration error a shift along the rows, so for each template and each of a few
scale shifts the correlation over all in-plane angles is one inverse FFT:

    C(s, phi) = sum_j w_j E(rho_j + s, theta_j + phi) = irfft_m( sum_j w_j e^{i m theta_j} E^_m(rho_j + s) )

normalised by the template's norm over the visible part of the detector (beam stop and
edges masked), which makes it a cosine similarity. The best (template, scale, angle) is
refined to sub-grid precision; the reliability compares it with the best distinct answer.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from mltem.diffraction._crystal import Phase, ZoneAxis, zone_axes
from mltem.diffraction._kinematic import simulate_spots
from mltem.diffraction._preprocess import (_coarse_centre, _friedel_refine, _gaussian, _radial_background,
                                           _spots_in_smoothed, invalid_mask, polar_transform)

__all__ = ["IndexSettings", "TemplateBank", "build_templates", "Prepared", "prepare_pattern", "match_templates",
           "IndexResult", "index_pattern", "mark_unmatched"]

log = logging.getLogger(__name__)


@dataclass
class IndexSettings:
    """Settings shared by the template bank, the preprocessing and the network input.

    Attributes
    ----------
    g_min_inv_nm, g_max_inv_nm : float
        Radial range of the log-polar grid, 1/nm.
    n_r, n_theta : int
        Log-polar grid size (rows ln|g|, columns azimuth over 360 degrees).
    energy_ev : float
        Beam energy (eV) of the templates.
    thickness_nm : float
        Foil thickness of the templates' relrods.
    max_index, max_zones, min_spots : int
        Zone-axis selection per phase (see :func:`mltem.diffraction.zone_axes`).
    scale_range : float
        Calibration errors searched: +-scale_range (0.05 = 5 %).
    weight_gamma : float
        Template weights are (I / I_max) ** weight_gamma.
    min_score : float
        Best scores below this are reported as unmatched (phase "none").
    """

    g_min_inv_nm: float = 1.5
    g_max_inv_nm: float = 9.0
    n_r: int = 256
    n_theta: int = 360
    energy_ev: float = 200e3
    thickness_nm: float = 15.0
    max_index: int = 3
    max_zones: int = 8
    min_spots: int = 6
    scale_range: float = 0.035
    weight_gamma: float = 0.3
    min_score: float = 0.15

    @property
    def d_rho(self) -> float:
        return float(np.log(self.g_max_inv_nm / self.g_min_inv_nm) / (self.n_r - 1))


@dataclass
class TemplateBank:
    """Templates of several phases on one log-polar grid.

    Attributes
    ----------
    phases : list of Phase
    entries : list of (int, ZoneAxis)
        Phase index and zone of each template.
    rho_idx : numpy.ndarray
        (J,) fractional row of every template spot on the log-polar grid.
    theta : numpy.ndarray
        (J,) azimuth of every spot (radians).
    weight : numpy.ndarray
        (J,) template weights.
    hkl : numpy.ndarray
        (J, 3) Miller indices.
    g_len : numpy.ndarray
        (J,) |g| in 1/nm.
    start : numpy.ndarray
        (T + 1,) offsets of each template's spots.
    settings : IndexSettings
    """

    phases: list
    entries: list
    rho_idx: np.ndarray
    theta: np.ndarray
    weight: np.ndarray
    hkl: np.ndarray
    g_len: np.ndarray
    start: np.ndarray
    settings: IndexSettings
    _phase_cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def labels(self) -> list[str]:
        """``"phase [u v w]"`` for every template."""
        return [f"{self.phases[p].name} {z.label}" for p, z in self.entries]


def build_templates(phases, settings: IndexSettings | None = None) -> TemplateBank:
    """Kinematic templates of the low-index zone axes of each phase.

    Parameters
    ----------
    phases : sequence of Phase
    settings : IndexSettings, optional

    Returns
    -------
    TemplateBank
    """
    st = settings or IndexSettings()
    phases = list(phases)
    if not phases:
        raise ValueError("need at least one phase")
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names must be unique, got {names}")
    lo = st.g_min_inv_nm / (1 + st.scale_range) ** 1.2
    hi = st.g_max_inv_nm * (1 + st.scale_range) ** 1.2
    entries, rho, th, w, hk, gl, start = [], [], [], [], [], [], [0]
    for ip, ph in enumerate(phases):
        for z in zone_axes(ph, max_index=st.max_index, g_max_inv_nm=st.g_max_inv_nm, min_spots=st.min_spots,
                           max_zones=st.max_zones):
            sp = simulate_spots(ph, z.uvw, 0.0, g_max_inv_nm=hi, thickness_nm=st.thickness_nm, energy_ev=st.energy_ev)
            g = np.hypot(sp.xy_inv_nm[:, 0], sp.xy_inv_nm[:, 1])
            ok = (g >= lo) & (g <= hi)
            if ok.sum() < 2:
                continue
            inten = sp.intensity[ok]
            entries.append((ip, z))
            rho.append((np.log(g[ok]) - np.log(st.g_min_inv_nm)) / st.d_rho)
            th.append(np.arctan2(sp.xy_inv_nm[ok, 1], sp.xy_inv_nm[ok, 0]))
            w.append((inten / inten.max()) ** st.weight_gamma)
            hk.append(sp.hkl[ok])
            gl.append(g[ok])
            start.append(start[-1] + int(ok.sum()))
    if not entries:
        raise ValueError("no zone axis of these phases has reflections in the g range; widen g_min/g_max")
    return TemplateBank(phases, entries, np.concatenate(rho), np.concatenate(th), np.concatenate(w),
                        np.concatenate(hk), np.concatenate(gl), np.asarray(start), st)


@dataclass
class Prepared:
    """A pattern ready for matching.

    Attributes
    ----------
    centre_yx : (float, float)
        Direct-beam position, pixels.
    polar : numpy.ndarray
        (n_r, n_theta) float32 log-polar pattern (sqrt of background-free counts,
        smoothed, normalised to unit RMS over the visible part).
    valid : numpy.ndarray
        (n_r, n_theta) bool.
    pixel_size_inv_nm : float
    n_spots : int
        Spots detected (for the "none" decision).
    """

    centre_yx: tuple
    polar: np.ndarray
    valid: np.ndarray
    pixel_size_inv_nm: float
    n_spots: int = 0


def prepare_pattern(image, pixel_size_inv_nm: float, settings: IndexSettings | None = None, *, mask=None,
                    centre=None) -> Prepared:
    """Centre, remove the background and resample a pattern on the log-polar grid.

    Parameters
    ----------
    image : numpy.ndarray
        (y, x) counts.
    pixel_size_inv_nm : float
        Calibration from the file (1/nm per pixel); errors within
        ``settings.scale_range`` are absorbed by the matching.
    settings : IndexSettings, optional
    mask : numpy.ndarray, optional
        True for pixels to ignore; default :func:`mltem.diffraction.invalid_mask`.
    centre : (float, float), optional
        (y, x); found from the Friedel symmetry if omitted.

    Returns
    -------
    Prepared
    """
    st = settings or IndexSettings()
    a = np.asarray(image, np.float64)
    mask = invalid_mask(a) if mask is None else np.asarray(mask, bool)
    # One background and one spot search serve both the centre and the spot count: the
    # ring profile measured about the coarse (Friedel correlation) centre is rendered
    # again about the refined centre; the smoothed image shifts by that difference.
    c = _coarse_centre(a, mask) if centre is None else (float(centre[0]), float(centre[1]))
    background = _radial_background(a, c, mask=mask)
    bg = background(c)
    b = (a - bg).astype(np.float32)
    b[mask] = 0.0
    b = _gaussian(b, 1.0)
    spots = _spots_in_smoothed(b, b, mask=mask, threshold=6.0)
    if centre is None:
        strong = spots.snr >= 8.0
        c_new = _friedel_refine(spots.yx[strong], spots.intensity[strong], c)
        if c_new != c:
            b += np.where(mask, 0.0, bg - background(c_new))
            c = c_new
    e = np.sqrt(np.clip(b, 0, None))
    polar, valid = polar_transform(e, c, pixel_size_inv_nm, g_min_inv_nm=st.g_min_inv_nm, g_max_inv_nm=st.g_max_inv_nm,
                                   n_r=st.n_r, n_theta=st.n_theta, mask=mask)
    polar = _gaussian(polar, (1.0, 0.8), wrap_x=True) * valid
    r = np.exp(np.log(st.g_min_inv_nm) + st.d_rho * np.arange(st.n_r))[:, None] / st.g_max_inv_nm
    norm = np.sqrt(np.sum((polar * r) ** 2) / max(valid.sum(), 1))
    polar = polar / norm if norm > 0 else polar
    return Prepared(c, polar.astype(np.float32), valid, float(pixel_size_inv_nm), len(spots))


def _phase_factors(bank: TemplateBank, n_theta: int) -> np.ndarray:
    """(J, n_theta // 2 + 1) complex64 e^{i m theta_j} of every template spot (cached per bank and grid)."""
    key = ("ph", n_theta)
    ph = bank._phase_cache.get(key)
    if ph is None:
        m = np.arange(n_theta // 2 + 1)
        ph = np.exp(1j * np.outer(bank.theta, m)).astype(np.complex64)
        bank._phase_cache[key] = ph
    return ph


def _correlate(prep: Prepared, bank: TemplateBank, templates: np.ndarray, shifts: np.ndarray):
    """Cosine similarity (T, S, n_theta) of the chosen templates over (fractional) row shifts and angles.

    Single precision throughout (scores of order 0.1-1 from sums of ~100 spots: ~1e-6
    relative rounding), twice as fast as double."""
    from scipy import fft as sfft

    n_r, n_t = prep.polar.shape
    E = sfft.rfft(np.asarray(prep.polar, np.float32), axis=1)
    V = sfft.rfft(prep.valid.astype(np.float32), axis=1)
    sel = np.concatenate([np.arange(bank.start[t], bank.start[t + 1]) for t in templates])
    lens = np.array([bank.start[t + 1] - bank.start[t] for t in templates])
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
    ph = _phase_factors(bank, n_t)[sel]
    w = bank.weight[sel].astype(np.float32)
    pw, pw2 = ph * w[:, None], ph * (w**2)[:, None]
    rho = bank.rho_idx[sel]
    num = np.empty((len(templates), len(shifts), E.shape[1]), np.complex64)
    den = np.empty_like(num)
    for k, s in enumerate(shifts):
        pos = rho + float(s)
        r = np.floor(pos).astype(int)
        f = (pos - r).astype(np.float32)[:, None]
        inside = ((r >= 0) & (r + 1 < n_r))[:, None]
        rc = np.clip(r, 0, n_r - 2)
        e = (E[rc] * (1 - f) + E[rc + 1] * f) * inside
        v = (V[rc] * (1 - f) + V[rc + 1] * f) * inside
        num[:, k] = np.add.reduceat(pw * e, offs, axis=0)
        den[:, k] = np.add.reduceat(pw2 * v, offs, axis=0)
    cn = sfft.irfft(num, n=n_t, axis=2)
    cd = sfft.irfft(den, n=n_t, axis=2)
    # scaled so that a clean, fully matched pattern scores about 1 (measured on simulations)
    return (cn / np.sqrt(np.clip(cd, 1e-6, None)) / np.float32(np.sqrt(n_t) * 10)).astype(np.float64)


@dataclass
class IndexResult:
    """The answer for one pattern.

    Attributes
    ----------
    phase : str
        Phase name, or ``"none"`` when no template matches.
    zone : tuple of int
        [uvw] (zeros for "none").
    inplane_deg : float
        Angle from detector +x towards +y of the reference reflection ``ref_hkl``, degrees,
        in [0, 360 / symmetry_order).
    score : float
        Cosine similarity of the best template (0..1).
    reliability : float
        1 - second best / best, where the second best is the best distinct answer
        (another phase or zone, or the same zone rotated by more than 5 degrees).
    scale : float
        Calibration correction: true 1/nm per pixel = file value * scale.
    centre_yx : (float, float)
    template : int
        Index in the bank (-1 for "none").
    ref_hkl : tuple of int
    second : str
        Label of the runner-up.
    """

    phase: str
    zone: tuple
    inplane_deg: float
    score: float
    reliability: float
    scale: float
    centre_yx: tuple
    template: int
    ref_hkl: tuple = (0, 0, 0)
    second: str = ""


def _parabola(ym, y0, yp) -> float:
    den = ym - 2 * y0 + yp
    return 0.0 if den >= 0 else float(np.clip(0.5 * (ym - yp) / den, -0.5, 0.5))


def _scale_shifts(st: IndexSettings, scale: float | None, scale_window: float | None):
    """Row shifts searched and their spacing: +-scale_range in whole rows, or a narrow
    window of +-scale_window around a known calibration factor ``scale``."""
    if scale is None:
        smax = int(np.ceil(np.log(1 + st.scale_range) / st.d_rho))
        return np.arange(-smax, smax + 1).astype(float), 1.0
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    window = st.scale_range if scale_window is None else float(scale_window)
    if not 0 <= window < 0.5:
        raise ValueError(f"scale_window must lie in [0, 0.5), got {scale_window}")
    s0 = -np.log(scale) / st.d_rho
    w = np.log(1 + window) / st.d_rho
    m = int(np.ceil(w / 0.5))
    if m == 0:
        return np.array([s0]), 1.0
    step = w / m
    return s0 + step * np.arange(-m, m + 1), step


def match_templates(prep: Prepared, bank: TemplateBank, *, templates=None, min_sep_deg: float = 5.0,
                    scale: float | None = None, scale_window: float | None = None,
                    scale_sigma: float | None = None) -> IndexResult:
    """Best template, scale and in-plane angle for a prepared pattern.

    Parameters
    ----------
    prep : Prepared
    bank : TemplateBank
    templates : sequence of int, optional
        Restrict the search (e.g. to a network's top candidates).
    min_sep_deg : float
        Answers of the same template closer than this (modulo its symmetry) are not
        counted as the runner-up.
    scale : float, optional
        Known calibration factor (true 1/nm per pixel = file value * scale), e.g. the
        shared factor of a series (:func:`mltem.diffraction.shared_calibration`). The
        search is then restricted to ``scale * (1 +- scale_window)`` instead of
        ``1 +- settings.scale_range``.
    scale_window : float, optional
        Half-width of that window as a fraction (default ``settings.scale_range``).
    scale_sigma : float, optional
        With ``scale``: a Gaussian prior of this relative width on the calibration. The
        correlations are weighted by it before the best answer and the runner-up are
        chosen, so that of two templates that fit equally well (nets < 1 % apart) the
        one at the expected calibration wins. The reported score is unweighted.

    Returns
    -------
    IndexResult
    """
    st = bank.settings
    templates = np.arange(len(bank)) if templates is None else np.asarray(templates, int)
    shifts, step = _scale_shifts(st, scale, scale_window)
    raw = _correlate(prep, bank, templates, shifts)
    C = raw
    if scale is not None and scale_sigma is not None:
        if not scale_sigma > 0:
            raise ValueError(f"scale_sigma must be positive, got {scale_sigma}")
        dev = (shifts + np.log(scale) / st.d_rho) * st.d_rho  # ln(found / expected) of each shift
        C = raw * np.exp(-0.5 * (dev / scale_sigma) ** 2)[None, :, None]
    T, S, N = C.shape
    per_t = C.reshape(T, -1).max(1)
    order = np.argsort(-per_t)
    best_i = int(order[0])
    k, n = np.unravel_index(int(C[best_i].argmax()), (S, N))
    tb = int(templates[best_i])
    _, zone = bank.entries[tb]
    # runner-up: other templates, or the same one away from the best angle (mod symmetry)
    period = N // zone.symmetry_order
    dn = (np.arange(N) - n) % period
    dn = np.minimum(dn, period - dn)
    away = dn * 360.0 / N > min_sep_deg
    second_same = C[best_i][:, away].max() if away.any() else -np.inf
    second_other = per_t[order[1]] if T > 1 else -np.inf
    second = max(second_same, second_other)
    second_label = bank.labels[int(templates[order[1]])] if (T > 1 and second_other >= second_same) else f"{bank.labels[tb]} (rotated)"
    # sub-grid refinement (parabolas in angle and scale)
    c0 = C[best_i, k, n]
    dphi = _parabola(C[best_i, k, (n - 1) % N], c0, C[best_i, k, (n + 1) % N])
    ds = _parabola(C[best_i, k - 1, n], c0, C[best_i, k + 1, n]) if 0 < k < S - 1 else 0.0
    phi = (n + dphi) * 2 * np.pi / N
    found = float(np.exp((shifts[k] + ds * step) * st.d_rho))
    best = float(raw[best_i, k, n])
    rel = float(np.clip(1 - second / c0, 0, 1)) if c0 > 0 else 0.0
    p_i, _ = bank.entries[tb]
    # The template at angle phi matches the pattern rotated by phi; the spot of template
    # azimuth theta_j appears at theta_j + phi, so the reference reflection is at phi.
    inplane = float(np.degrees(phi) % (360.0 / zone.symmetry_order))
    # a spot at |g| in the template sits at row rho + s: the file's calibration is
    # too large by exp(s * d_rho), so the true calibration is file / scale
    return IndexResult(bank.phases[p_i].name, tuple(zone.uvw), inplane, best, rel, 1.0 / found, prep.centre_yx, tb,
                       tuple(zone.ref_hkl), second_label)


def mark_unmatched(res: IndexResult, prep: Prepared, settings: IndexSettings) -> IndexResult:
    """Turn ``res`` into a "none" answer (in place) when no crystal matched: a score below
    ``settings.min_score`` or fewer than 3 spots in the pattern. Returns ``res``."""
    if res.score < settings.min_score or prep.n_spots < 3:
        res.phase, res.zone, res.template = "none", (0, 0, 0), -1
    return res


def index_pattern(image, bank: TemplateBank, pixel_size_inv_nm: float, *, mask=None, centre=None,
                  templates=None, scale: float | None = None, scale_window: float | None = None) -> IndexResult:
    """Index one pattern against a template bank.

    Parameters
    ----------
    image : numpy.ndarray
        (y, x) counts.
    bank : TemplateBank
    pixel_size_inv_nm : float
        Calibration from the file, 1/nm per pixel.
    mask : numpy.ndarray, optional
        True for pixels to ignore (default: saturated pixels and the beam stop).
    centre : (float, float), optional
        Direct beam (y, x) if known.
    templates : sequence of int, optional
        Restrict to these templates.
    scale, scale_window : float, optional
        Known calibration factor and the window searched around it (see
        :func:`match_templates`).

    Returns
    -------
    IndexResult
        ``phase == "none"`` if the best score is below ``settings.min_score`` or fewer
        than 3 spots were found.
    """
    prep = prepare_pattern(image, pixel_size_inv_nm, bank.settings, mask=mask, centre=centre)
    res = match_templates(prep, bank, templates=templates, scale=scale, scale_window=scale_window)
    return mark_unmatched(res, prep, bank.settings)
