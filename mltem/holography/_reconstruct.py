"""Reconstruction of off-axis holograms: sideband filtering, reference division,
amplitude and phase, unwrapping, offset/ramp removal, and series with drift."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as _fft
from scipy import ndimage

from mltem.holography._aperture import _check_aperture, _distance, _profile, _support, estimate_aperture_radius
from mltem.holography._sideband import Sideband, find_sideband
from mltem.holography._unwrap import remove_phase_ramp, unwrap_phase

__all__ = ["HologramReconstruction", "HologramReconstructor", "reconstruct_hologram", "reconstruct_series"]

log = logging.getLogger(__name__)


@dataclass
class HologramReconstruction:
    """Result of one reconstruction.

    Attributes
    ----------
    phase : numpy.ndarray
        (y, x) phase in rad (unwrapped unless asked otherwise), float32, relative to the
        reference wave; offset/ramp removed in the vacuum region if one was given, else
        the 2 pi multiple is chosen so that the median phase lies in (-pi, pi].
    amplitude : numpy.ndarray
        (y, x) amplitude relative to the reference wave (1 in vacuum), float32.
    sideband : tuple of float
        (ky, kx) used, Fourier pixels.
    aperture_radius : float
        Aperture radius used, Fourier pixels.
    aperture : str
        Aperture kind.
    ramp : numpy.ndarray or None
        Coefficients removed in the vacuum region (see :func:`remove_phase_ramp`).
    shift_px : tuple of float
        Specimen drift (dy, dx) in pixels corrected (series only; (0, 0) otherwise).
    """

    phase: np.ndarray
    amplitude: np.ndarray
    sideband: tuple
    aperture_radius: float
    aperture: str
    ramp: np.ndarray | None = None
    shift_px: tuple = (0.0, 0.0)
    extra: dict = field(default_factory=dict)


def _as_image(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or min(a.shape) < 16:
        raise ValueError(f"{name} must be a (y, x) image of at least 16 x 16 pixels, got shape {a.shape}")
    if np.iscomplexobj(a):
        raise ValueError(f"{name} must be a real intensity image, got complex data")
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


class HologramReconstructor:
    """Reconstructs holograms of one shape with fixed sideband, aperture and reference.

    The aperture and the reference wave are computed once, so each further hologram
    costs one forward FFT, one inverse FFT and the unwrapping. Only the sideband box is
    filtered and moved (by the integer part of the sideband position) to the origin.

    Parameters
    ----------
    shape : tuple of int
        (Ny, Nx) of the holograms.
    sideband : Sideband or tuple of float
        (ky, kx) in Fourier pixels.
    aperture_radius : float
        Radius in Fourier pixels.
    reference : numpy.ndarray, optional
        (y, x) vacuum reference hologram; the object wave is divided by its wave. Without
        it, the carrier is removed only to the nearest Fourier pixel (a residual ramp is
        left for :func:`remove_phase_ramp`), and detector/biprism distortions remain.
    aperture : {"hard", "soft", "butterworth"}
        See :func:`aperture_mask`.
    smoothness : float, optional
        Edge width of the soft aperture, Fourier pixels (default 10 % of the radius).
    order : int
        Butterworth order.
    workers : int
        Threads for scipy.fft (-1: all cores).
    """

    def __init__(self, shape, *, sideband, aperture_radius: float, reference=None, aperture: str = "soft",
                 smoothness: float | None = None, order: int = 8, workers: int = -1):
        ny, nx = (int(s) for s in shape)
        self.shape = (ny, nx)
        ky, kx = (float(c) for c in getattr(sideband, "position", sideband))
        self.sideband = (ky, kx)
        self.aperture = aperture
        self.aperture_radius = float(aperture_radius)
        self.smoothness = _check_aperture(aperture, self.aperture_radius, smoothness, order)
        self.order = int(order)
        self.workers = workers
        n = min(ny, nx)
        if np.hypot(ky * n / ny, kx * n / nx) < 2:
            raise ValueError(f"sideband {self.sideband} is at the centre band; give its position in Fourier pixels")
        sup = _support(aperture, self.aperture_radius, self.smoothness, self.order)
        hy = min(int(np.ceil(sup * ny / n)), ny // 2)
        hx = min(int(np.ceil(sup * nx / n)), nx // 2)
        iky, ikx = int(round(ky)), int(round(kx))
        oy = np.arange(-hy, hy + (1 if 2 * hy < ny else 0))
        ox = np.arange(-hx, hx + (1 if 2 * hx < nx else 0))
        self._src = np.ix_((iky + oy) % ny, (ikx + ox) % nx)
        self._dst = np.ix_(oy % ny, ox % nx)
        d = _distance(ny, nx, (ky, kx))[self._src]
        self._ap = _profile(d, aperture, self.aperture_radius, self.smoothness, self.order).astype(np.complex64)
        self._ref_wave = None
        if reference is not None:
            ref = _as_image(reference, "reference")
            if ref.shape != self.shape:
                raise ValueError(f"reference shape {ref.shape} differs from the holograms' {self.shape}")
            rw = self.sideband_wave(ref)
            mag = np.abs(rw)
            floor = 1e-6 * float(np.median(mag))
            self._ref_wave = np.where(mag > floor, rw, floor).astype(np.complex64)

    def sideband_wave(self, hologram) -> np.ndarray:
        """Complex wave of the filtered sideband (carrier removed to the nearest pixel)."""
        h = np.asarray(hologram, dtype=np.float32)
        if h.shape != self.shape:
            raise ValueError(f"hologram shape {h.shape} differs from the reconstructor's {self.shape}")
        spec = _fft.fft2(h, workers=self.workers)
        box = np.zeros(self.shape, dtype=np.complex64)
        box[self._dst] = spec[self._src] * self._ap
        return _fft.ifft2(box, workers=self.workers, overwrite_x=True)

    def wave(self, hologram) -> np.ndarray:
        """Object wave divided by the reference wave (complex64)."""
        w = self.sideband_wave(hologram)
        if self._ref_wave is not None:
            w /= self._ref_wave
        return w

    def __call__(self, hologram, *, unwrap: bool | str = True, vacuum=None, ramp: int = 1) -> HologramReconstruction:
        """Reconstruct one hologram.

        Parameters
        ----------
        hologram : numpy.ndarray
            (y, x) object hologram.
        unwrap : bool or {"exact", "fast"}
            Unwrap the phase (:func:`unwrap_phase`; True means "exact").
        vacuum : tuple or numpy.ndarray, optional
            (y0, y1, x0, x1) pixels or bool mask of a vacuum region where the phase is set
            to zero.
        ramp : {0, 1}
            In the vacuum region remove an offset (0) or a plane (1).

        Returns
        -------
        HologramReconstruction
        """
        w = self.wave(hologram)
        if unwrap:
            method = "exact" if unwrap is True else unwrap
            phase = unwrap_phase(w, method=method, coarsen=self._coarsen() if method == "fast" else None)
        else:
            phase = np.angle(w).astype(np.float32)
        coef = None
        if vacuum is not None:
            phase, coef = remove_phase_ramp(phase, region=vacuum, order=ramp)
        elif unwrap:
            med = float(np.median(phase))
            phase -= np.float32(2 * np.pi * np.round(med / (2 * np.pi)))
        return HologramReconstruction(phase=phase, amplitude=np.abs(w).astype(np.float32), sideband=self.sideband,
                                      aperture_radius=self.aperture_radius, aperture=self.aperture, ramp=coef)

    def _coarsen(self) -> int:
        # the wave is band-limited to the aperture: blocks of N / (2.5 r) keep it sampled
        n = min(self.shape)
        return int(np.clip(n // (2.5 * (self.aperture_radius + self.smoothness)), 1, 4))


def _prepare(hologram, reference, sideband, aperture_radius, aperture, smoothness, order, workers):
    obj = _as_image(hologram, "hologram")
    ref = None if reference is None else _as_image(reference, "reference")
    if ref is not None and ref.shape != obj.shape:
        raise ValueError(f"reference shape {ref.shape} differs from the hologram's {obj.shape}")
    if sideband is None:
        sb = find_sideband(ref if ref is not None else obj, workers=workers)
    elif isinstance(sideband, Sideband):
        sb = sideband
    else:
        s = tuple(float(c) for c in sideband)
        if len(s) != 2:
            raise ValueError(f"sideband must be (ky, kx) in Fourier pixels, got {sideband!r}")
        sb = Sideband(ky=s[0], kx=s[1])
    est = None
    if aperture_radius is None:
        est = estimate_aperture_radius(obj, sb, reference=ref, workers=workers)
        aperture_radius = est.radius
    rec = HologramReconstructor(obj.shape, sideband=sb, aperture_radius=aperture_radius, reference=ref,
                                aperture=aperture, smoothness=smoothness, order=order, workers=workers)
    return obj, rec, sb, est


def reconstruct_hologram(hologram, reference=None, *, sideband=None, aperture: str = "soft",
                         aperture_radius: float | None = None, smoothness: float | None = None, order: int = 8,
                         unwrap: bool | str = True, vacuum=None, ramp: int = 1, workers: int = -1) -> HologramReconstruction:
    """Reconstruct amplitude and phase from an off-axis hologram.

    Parameters
    ----------
    hologram : numpy.ndarray
        (y, x) object hologram (intensity).
    reference : numpy.ndarray, optional
        (y, x) vacuum reference hologram of the same shape (strongly recommended: it
        removes the carrier exactly and the distortions of lenses, detector and biprism).
    sideband : Sideband or tuple of float, optional
        (ky, kx) in Fourier pixels of the unshifted FFT; default :func:`find_sideband`
        on the reference (or the hologram). The twin (-ky, -kx) gives the opposite sign
        of phase.
    aperture : {"hard", "soft", "butterworth"}
        Aperture kind (see :func:`aperture_mask`).
    aperture_radius : float, optional
        Fourier pixels; default chosen from the measured noise
        (:func:`estimate_aperture_radius`).
    smoothness : float, optional
        Edge width of the soft aperture in Fourier pixels (default 10 % of the radius).
    order : int
        Butterworth order.
    unwrap : bool or {"exact", "fast"}
        Unwrap the phase (True: "exact", see :func:`unwrap_phase`).
    vacuum : tuple or numpy.ndarray, optional
        (y0, y1, x0, x1) pixels (half-open) or bool mask of a vacuum region set to zero
        phase.
    ramp : {0, 1}
        In the vacuum region remove an offset (0) or a plane (1).
    workers : int
        Threads for scipy.fft (-1: all cores).

    Returns
    -------
    HologramReconstruction
        ``extra`` holds the aperture estimate and the sideband detection details.

    Raises
    ------
    ValueError
        Inputs of the wrong shape, not finite, or a bad option.
    """
    obj, rec, sb, est = _prepare(hologram, reference, sideband, aperture_radius, aperture, smoothness, order, workers)
    out = rec(obj, unwrap=unwrap, vacuum=vacuum, ramp=ramp)
    out.extra = {"sideband": sb, "aperture_estimate": est}
    return out


def _drift(reference_img: np.ndarray, img: np.ndarray, win: np.ndarray) -> tuple[float, float]:
    """Shift (dy, dx) that registers ``img`` onto ``reference_img`` (0.1 px steps).

    Both are high-passed (minus a Gaussian blur of 1/16 of the field), so offsets, ramps
    and long-range fields do not pull the peak, and tapered by a flat-topped window.
    """
    from skimage.registration import phase_cross_correlation

    sigma = max(2.0, min(img.shape) / 16)

    def prep(a):
        a = a.astype(np.float64)
        return (a - ndimage.gaussian_filter(a, sigma, mode="nearest")) * win

    shift, _, _ = phase_cross_correlation(prep(reference_img), prep(img), upsample_factor=10, normalization=None)
    return float(shift[0]), float(shift[1])


def _window(shape) -> np.ndarray:
    from scipy.signal.windows import tukey

    return np.outer(tukey(shape[0], 0.3), tukey(shape[1], 0.3))


def reconstruct_series(frames: Iterable, reference=None, *, sideband=None, aperture: str = "soft",
                       aperture_radius: float | None = None, smoothness: float | None = None, order: int = 8,
                       vacuum=None, ramp: int = 1, align: bool = True, unwrap: str = "exact",
                       workers: int = -1) -> Iterator[HologramReconstruction]:
    """Reconstruct a hologram series against one reference, frame by frame.

    A generator: it holds only the reference wave, the first frame's phase (the drift
    reference) and the current frame, so memory stays flat however long the series.
    Sideband and aperture are fixed from the first frame (and the reference), so all
    frames are filtered alike.

    Drift is handled in two parts. Specimen drift: each frame's phase map is registered
    to the first frame's (cross-correlation of high-passed maps, 0.1 px precision) and shifted back (linear
    interpolation; the shift is reported in ``shift_px``). Fringe drift (biprism or
    beam): with a vacuum region, its offset or ramp is removed in every frame; without
    one, each frame's phase offset is aligned to the first frame by the median phase
    difference.

    Parameters
    ----------
    frames : iterable of numpy.ndarray
        (y, x) holograms, e.g. a (frame, y, x) array or a lazy per-frame reader.
    reference : numpy.ndarray, optional
        (y, x) vacuum reference hologram.
    sideband, aperture, aperture_radius, smoothness, order, vacuum, ramp, workers
        As in :func:`reconstruct_hologram`; ``vacuum`` is in the first frame's
        coordinates.
    align : bool
        Correct specimen drift.
    unwrap : {"exact", "fast"}
        Unwrapping method (:func:`unwrap_phase`).

    Yields
    ------
    HologramReconstruction
        One per frame, in order.
    """
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        raise ValueError("the series holds no frames") from None
    obj, rec, sb, est = _prepare(first, reference, sideband, aperture_radius, aperture, smoothness, order, workers)
    win = None
    ref_phase = None

    def process(frame, index):
        nonlocal win, ref_phase
        h = _as_image(frame, f"frame {index}")
        if h.shape != rec.shape:
            raise ValueError(f"frame {index} has shape {h.shape}, the series {rec.shape}")
        r = rec(h, unwrap=unwrap, vacuum=None)
        phase, amp = r.phase, r.amplitude
        shift = (0.0, 0.0)
        if index == 0:
            if align:
                win = _window(h.shape)
        elif align:
            shift = _drift(ref_phase, phase, win)
            if shift != (0.0, 0.0):
                phase = ndimage.shift(phase, shift, order=1, mode="nearest")
                amp = ndimage.shift(amp, shift, order=1, mode="nearest")
        coef = None
        if vacuum is not None:
            phase, coef = remove_phase_ramp(phase, region=vacuum, order=ramp)
        elif index > 0:
            d = float(np.median(phase - ref_phase))
            phase = phase - np.float32(d)
            coef = np.array([d])
        if index == 0:
            ref_phase = phase.copy()
        return HologramReconstruction(phase=phase.astype(np.float32), amplitude=amp.astype(np.float32),
                                      sideband=rec.sideband, aperture_radius=rec.aperture_radius,
                                      aperture=rec.aperture, ramp=coef, shift_px=shift,
                                      extra={"sideband": sb, "aperture_estimate": est} if index == 0 else {})

    yield process(obj, 0)
    for i, frame in enumerate(it, start=1):
        yield process(frame, i)
