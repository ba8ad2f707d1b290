"""Geometric phase analysis of one image or of a stack with one shared reference.

The maths (Hytch, Snoeck & Kilaas 1998): for a reflection ``g`` the Bragg-filtered image
is ``H_g(r) = A_g exp(2 pi i g.r + i P_g(r))`` with the geometric phase
``P_g = -2 pi g.u``. Two non-collinear reflections give the displacement gradient
``D = -(1/2 pi) [a1 a2] [grad P1; grad P2]`` with ``a_i`` the reference lattice vectors
(``g_i . a_j = delta_ij``), and from it strain and rotation (:mod:`._strain`).

How it is computed here (see :class:`GPAPlan`):

- only the spectrum windows under the two masks are computed (:class:`._spectrum.Spectrum`),
  with the image's edge discontinuity removed (periodic-plus-smooth decomposition);
- each masked window is moved so that the integer frequency nearest ``g`` sits at the
  origin, so the inverse FFT gives ``Z_g = H_g exp(-2 pi i g_int.r)`` directly; the
  inverse FFT along y runs only over the window's columns, the one along x row block by
  row block, and everything after it (phase, derivatives, strain) is done on the same
  cache-sized row block, so memory stays at the image plus the four output maps;
- phase derivatives are wrap-safe: ``dP/dx = wrap(P(x+1) - P(x-1)) / 2`` on the phase of
  the complex field, exact for a linear phase ramp; the residual ``g - g_int`` and the
  reference refinement are constant offsets of these derivatives and cost nothing.
"""
from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft

from mltem._errors import MltemError
from mltem.gpa._spectrum import (
    MASKS,
    Spectrum,
    _workers,
    default_mask_size,
    find_spots,
    mask_support,
    mask_weights,
    mask_width_px,
    shortest_lattice_distance,
)
from mltem.gpa._strain import DEFINITIONS, rotate_strain, strain_from_distortion

__all__ = ["GPAPlan", "GPAResult", "gpa", "make_plan", "REFERENCES"]

log = logging.getLogger(__name__)

#: Reference choices: "auto" (median of the local lattice over the interior: the
#: majority lattice is unstrained), "mean" (mean over the interior), "none" (use the
#: g vectors as given or found), or a region (y0, y1, x0, x1) in px.
REFERENCES = ("auto", "mean", "none")

TWO_PI = 2 * np.pi


@dataclass
class _Window:
    kys: np.ndarray  # signed row frequencies of the window
    kxs: np.ndarray  # signed column frequencies
    weights: np.ndarray  # mask values on the window (ny, nx)
    k_int: tuple[int, int]  # integer frequency moved to the origin
    rows: np.ndarray = field(init=False)  # (kys - ky0) mod M
    cols: np.ndarray = field(init=False)  # (kxs - kx0) mod N


@dataclass
class GPAResult:
    """Strain maps and the parameters that produced them.

    Attributes
    ----------
    strain : numpy.ndarray
        Shape (4, y, x) for an image or (frame, 4, y, x) for a stack: exx, eyy, exy
        (dimensionless) and rotation (rad, positive turns +x towards +y).
    g_vectors : numpy.ndarray
        Shape (2, 2): reference reciprocal vectors, rows ``(g_y, g_x)`` in 1/px.
    g_mask : numpy.ndarray
        Shape (2, 2): mask centres, rows ``(g_y, g_x)`` in 1/px.
    mask : str
        ``"gaussian"`` or ``"cosine"``.
    mask_size : float
        Gaussian sigma or cosine radius, 1/px.
    width_px : float
        Real-space width of the mask (px): strain is averaged over about this length and
        is unreliable within two widths of the edges.
    reference : str or tuple
        How ``g_vectors`` were refined.
    definition : str
        ``"lattice"`` or ``"linear"``.
    angle_deg : float
        Direction of the x axis of the strain maps (degrees from image x towards y).
    phases : numpy.ndarray or None
        Shape (2, y, x): geometric phases (rad, wrapped) relative to ``g_vectors``.
    amplitudes : numpy.ndarray or None
        Shape (2, y, x): amplitudes of the Bragg-filtered images.
    drift_px : numpy.ndarray or None
        Shape (frame, 2): registered drift ``(dy, dx)`` of each frame in px.
    """

    strain: np.ndarray
    g_vectors: np.ndarray
    g_mask: np.ndarray
    mask: str
    mask_size: float
    width_px: float
    reference: object
    definition: str
    angle_deg: float
    phases: np.ndarray | None = None
    amplitudes: np.ndarray | None = None
    drift_px: np.ndarray | None = None

    @property
    def margin_px(self) -> int:
        """Distance from the edges (px) beyond which the maps are reliable (2 widths)."""
        return int(math.ceil(2 * self.width_px))

    def interior(self) -> tuple[slice, slice]:
        """Index of the reliable interior ``(rows, cols)``; may be empty on tiny images."""
        m = self.margin_px
        return slice(m, -m if m else None), slice(m, -m if m else None)


def _check_image(image, name: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"{name} must be 2D (y, x), got shape {image.shape}")
    if image.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be real numbers, got dtype {image.dtype}")
    if min(image.shape) < 16:
        raise MltemError(f"{name} of shape {image.shape} is too small for GPA (need at least 16 x 16 px)")
    if not np.isfinite(image).all():
        raise MltemError(f"{name} holds NaN or infinite values; replace them (e.g. by the mean) before GPA")
    return image


def _real_dtype(image) -> np.dtype:
    return np.dtype(np.float64) if np.asarray(image).dtype == np.float64 else np.dtype(np.float32)


class GPAPlan:
    """A fixed GPA set-up (reflections, masks, reference) applied to any number of frames.

    Build it with :func:`make_plan` from a reference image; then :meth:`strain` gives the
    maps of any frame of the same shape with the same reference, so values are comparable
    frame to frame.

    Parameters
    ----------
    shape : tuple of int
        Image shape (y, x).
    g_mask : array_like
        Shape (2, 2): mask centres, rows ``(g_y, g_x)`` in 1/px.
    g_reference : array_like
        Shape (2, 2): reference reciprocal vectors in 1/px (the lattice of zero strain).
    mask : {"gaussian", "cosine"}
    mask_size : float
        Gaussian sigma or cosine radius in 1/px.
    definition : {"lattice", "linear"}
        See :func:`mltem.gpa.strain_from_distortion`.
    angle_deg : float
        Direction of the strain maps' x axis (degrees from image x towards image y).
    dtype : numpy dtype
        float32 (default) or float64 for the computation and the output.
    periodic : bool
        Remove the edge discontinuity (periodic-plus-smooth decomposition).
    workers : int, optional
        Threads (default: all cores).
    """

    def __init__(
        self,
        shape,
        g_mask,
        g_reference,
        *,
        mask: str = "gaussian",
        mask_size: float,
        definition: str = "lattice",
        angle_deg: float = 0.0,
        dtype=np.float32,
        periodic: bool = True,
        workers: int | None = None,
    ):
        if mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
        if definition not in DEFINITIONS:
            raise ValueError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
        self.shape = tuple(int(s) for s in shape)
        self.g_mask = np.asarray(g_mask, dtype=float).reshape(2, 2)
        self.g_reference = np.asarray(g_reference, dtype=float).reshape(2, 2)
        self.mask = mask
        self.mask_size = float(mask_size)
        self.definition = definition
        self.angle_deg = float(angle_deg)
        self.dtype = np.dtype(dtype)
        self.cdtype = np.dtype(np.complex128 if self.dtype == np.float64 else np.complex64)
        self.periodic = periodic
        self.workers = _workers(workers)
        _check_g(self.g_mask, self.shape)
        _check_g(self.g_reference, self.shape)
        if not 0 < self.mask_size < 0.5:
            raise ValueError(f"mask_size must be in (0, 0.5) 1/px, got {self.mask_size}")
        self.windows = [self._window(g) for g in self.g_mask]
        self._set_reference(self.g_reference)
        self.width_px = mask_width_px(self.mask_size, self.mask)
        self.reference = "none"
        self._cache = None  # (image, columns) of the last reference image
        self._reg_ref = None  # low-frequency spectrum of the registration reference

    # -- set-up -------------------------------------------------------------------
    def _window(self, g) -> _Window:
        m, n = self.shape
        rad = mask_support(self.mask_size, self.mask)
        ky0, kx0 = int(round(g[0] * m)), int(round(g[1] * n))
        ry, rx = int(math.ceil(rad * m)) + 1, int(math.ceil(rad * n)) + 1
        ry, rx = min(ry, (m - 1) // 2), min(rx, (n - 1) // 2)
        kys = np.arange(ky0 - ry, ky0 + ry + 1)
        kxs = np.arange(kx0 - rx, kx0 + rx + 1)
        w = mask_weights(kys[:, None] / m, kxs[None, :] / n, g, self.mask_size, self.mask)
        win = _Window(kys, kxs, w.astype(self.dtype), (ky0, kx0))
        win.rows = np.mod(kys - ky0, m)
        win.cols = np.mod(kxs - kx0, n)
        return win

    def _set_reference(self, g_reference) -> None:
        m, n = self.shape
        self.g_reference = np.asarray(g_reference, dtype=float).reshape(2, 2)
        # A = G^-1 with G rows (g_x, g_y): columns are a1, a2 as (x, y).
        a = np.linalg.inv(self.g_reference[:, ::-1])
        # D_ij = -(1/2pi) sum_k A_ik dP_k/dx_j, dP_k/dx_j = d_jk / 2 - 2 pi (g_ref - g_int)_j
        self._coef = -a / TWO_PI * 0.5  # multiplies the raw central differences d
        off = np.empty((2, 2))  # off[k, j]: constant part of dP_k/dx_j, j = (x, y)
        for k, win in enumerate(self.windows):
            ky0, kx0 = win.k_int
            off[k, 0] = -TWO_PI * (self.g_reference[k, 1] - kx0 / n)
            off[k, 1] = -TWO_PI * (self.g_reference[k, 0] - ky0 / m)
        # constant part of D_ij: -(1/2pi) sum_k A_ik off[k, j]
        self._dconst = -(a @ off) / TWO_PI

    # -- per frame ----------------------------------------------------------------
    def _columns(self, image, shift=None) -> list[np.ndarray]:
        """Masked windows, inverse-transformed along y: one (M, nx) array per reflection."""
        m, n = self.shape
        cache = getattr(self, "_cache", None)
        if shift is None and cache is not None and cache[0] is image:
            return cache[1]  # the reference frame, just used to refine g
        spec = Spectrum(image, periodic=self.periodic, workers=self.workers)
        out = []
        for win in self.windows:
            w = spec.window(win.kys, win.kxs)
            w *= win.weights
            if shift is not None:
                dy, dx = shift
                w *= np.exp(TWO_PI * 1j * (win.kys[:, None] * dy / m + win.kxs[None, :] * dx / n)).astype(w.dtype)
            t = np.zeros((m, len(win.kxs)), dtype=self.cdtype)
            t[win.rows, :] = w
            out.append(sfft.ifft(t, axis=0, workers=self.workers, overwrite_x=True))
        self._cache = (image, out) if shift is None else None
        return out

    def _rows_field(self, t: np.ndarray, win: _Window, rows: np.ndarray) -> np.ndarray:
        """``Z_g`` on the given rows (any integers; taken modulo M)."""
        n = self.shape[1]
        z = np.zeros((len(rows), n), dtype=self.cdtype)
        z[:, win.cols] = t[np.mod(rows, self.shape[0])]
        return sfft.ifft(z, axis=1, workers=1, overwrite_x=True)

    def _raw_gradients(self, cols, rows: np.ndarray):
        """Central differences of the phases of Z_1, Z_2 at ``rows``: (2 refl, 2 dirs (x, y), rows, N)."""
        r = np.asarray(rows)
        halo = np.concatenate([r - 1, r, r + 1])
        n = self.shape[1]
        out = np.empty((2, 2, len(r), n), dtype=self.dtype)
        k = len(r)
        for i, (t, win) in enumerate(zip(cols, self.windows)):
            z = self._rows_field(t, win, halo)
            ph = np.arctan2(z.imag, z.real).astype(self.dtype, copy=False)
            c = ph[k : 2 * k]
            _wrap_diff(np.roll(c, -1, axis=1), np.roll(c, 1, axis=1), out[i, 0])
            _wrap_diff(ph[2 * k :], ph[:k], out[i, 1])
        return out

    def strain(self, image, *, shift=None, out=None, return_phases: bool = False):
        """Strain maps of one frame.

        Parameters
        ----------
        image : numpy.ndarray
            Frame of the plan's shape (y, x).
        shift : tuple of float, optional
            Drift ``(dy, dx)`` in px of this frame relative to the reference frame; the
            maps are returned in the reference frame's coordinates (pixels whose content
            lay outside this frame are NaN).
        out : numpy.ndarray, optional
            Array (4, y, x) of the plan's dtype to write into.
        return_phases : bool
            Also return the geometric phases and amplitudes, each (2, y, x).

        Returns
        -------
        numpy.ndarray or tuple
            The (4, y, x) maps exx, eyy, exy, rotation; with ``return_phases`` the tuple
            ``(strain, phases, amplitudes)``.
        """
        image = _check_image(image)
        if image.shape != self.shape:
            raise ValueError(f"frame shape {image.shape} differs from the plan's {self.shape}")
        m, n = self.shape
        if out is None:
            out = np.empty((4, m, n), dtype=self.dtype)
        elif out.shape != (4, m, n):
            raise ValueError(f"out must have shape {(4, m, n)}, got {out.shape}")
        cols = self._columns(image.astype(self.dtype, copy=False), shift=shift)
        self._cache = None
        phases = amps = None
        if return_phases:
            phases = np.empty((2, m, n), dtype=self.dtype)
            amps = np.empty((2, m, n), dtype=self.dtype)
        itemsize = np.dtype(self.cdtype).itemsize
        nb = int(np.clip(2**18 // (n * itemsize), 4, 256))
        blocks = [(r0, min(r0 + nb, m)) for r0 in range(0, m, nb)]

        def work(block):
            self._block(cols, block, out, phases, amps)

        if self.workers > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(self.workers) as ex:
                list(ex.map(work, blocks))
        else:
            for b in blocks:
                work(b)
        if shift is not None:
            _blank_outside(out, shift)
        if return_phases:
            return out, phases, amps
        return out

    def _block(self, cols, block, out, phases, amps) -> None:
        r0, r1 = block
        rows = np.arange(r0 - 1, r1 + 1)
        k = r1 - r0
        n = self.shape[1]
        grads = []
        for i, (t, win) in enumerate(zip(cols, self.windows)):
            z = self._rows_field(t, win, rows)
            ph = np.arctan2(z.imag, z.real).astype(self.dtype, copy=False)
            c = ph[1:-1]
            gx = np.empty((k, n), dtype=self.dtype)
            _wrap_diff(c[:, 2:], c[:, :-2], gx[:, 1:-1])
            _wrap_diff(c[:, :1], c[:, -2:-1], gx[:, -1:])
            _wrap_diff(c[:, 1:2], c[:, -1:], gx[:, :1])
            gy = np.empty((k, n), dtype=self.dtype)
            _wrap_diff(ph[2:], ph[:-2], gy)
            grads.append((gx, gy))
            if phases is not None:
                m_, n_ = self.shape
                ky0, kx0 = win.k_int
                dgy = self.g_reference[i, 0] - ky0 / m_
                dgx = self.g_reference[i, 1] - kx0 / n_
                ramp = TWO_PI * (dgy * np.arange(r0, r1)[:, None] + dgx * np.arange(n)[None, :])
                phases[i, r0:r1] = np.angle(np.exp(1j * (c - ramp)))
                amps[i, r0:r1] = np.abs(z[1:-1])
        cf, dc = self._coef, self._dconst
        # D_ij = cf[i,0] d1_j + cf[i,1] d2_j + dc[i,j]; j = 0 (x), 1 (y)
        d = {}
        for i, name_i in enumerate("xy"):
            for j, name_j in enumerate("xy"):
                v = grads[0][j] * self.dtype.type(cf[i, 0])
                v += grads[1][j] * self.dtype.type(cf[i, 1])
                v += self.dtype.type(dc[i, j])
                d[name_i + name_j] = v
        o = out[:, r0:r1]
        strain_from_distortion(d["xx"], d["xy"], d["yx"], d["yy"], definition=self.definition, out=o)
        if self.angle_deg:
            o[...] = rotate_strain(o, self.angle_deg, axis=0)

    # -- reference refinement -------------------------------------------------------
    def refine_reference(self, image, reference="auto", *, max_rows: int = 256) -> np.ndarray:
        """Refine the reference g vectors from a region of ``image`` (in place).

        Parameters
        ----------
        image : numpy.ndarray
            The reference frame (y, x).
        reference : {"auto", "mean", "none"} or tuple (y0, y1, x0, x1)
            ``"auto"``: median local lattice over the interior (two mask widths from the
            edges); ``"mean"``: mean over the interior; a tuple: mean over that region
            (px, half-open, numpy order; the part within two mask widths of the edges is
            left out when enough remains); ``"none"``: keep the current vectors.
        max_rows : int
            At most this many rows are sampled (the phases are smooth on the scale of the
            mask, so sampling loses nothing measurable).

        Returns
        -------
        numpy.ndarray
            The new reference vectors, (2, 2) rows ``(g_y, g_x)`` in 1/px.
        """
        m, n = self.shape
        if isinstance(reference, str):
            if reference not in REFERENCES:
                raise ValueError(f"reference must be one of {REFERENCES} or (y0, y1, x0, x1), got {reference!r}")
            if reference == "none":
                return self.g_reference
            mg = int(min(math.ceil(2 * self.width_px), m // 4, n // 4))
            y0, y1, x0, x1 = mg, m - mg, mg, n - mg
            stat = np.median if reference == "auto" else np.mean
        else:
            y0, y1, x0, x1 = _check_region(reference, self.shape)
            stat = np.mean
            # keep the part of the region away from the edges, where the phases are valid
            mg = int(min(math.ceil(2 * self.width_px), m // 4, n // 4))
            cy0, cy1, cx0, cx1 = max(y0, mg), min(y1, m - mg), max(x0, mg), min(x1, n - mg)
            if cy1 - cy0 >= 4 and cx1 - cx0 >= 4:
                y0, y1, x0, x1 = cy0, cy1, cx0, cx1
            else:
                log.warning("the reference region lies within %d px of the edges, where GPA is unreliable", mg)
        image = _check_image(image)
        cols = self._columns(image.astype(self.dtype, copy=False))
        step = max(1, (y1 - y0) // max_rows)
        rows = np.arange(y0, y1, step)
        g = self._raw_gradients(cols, rows)[:, :, :, x0:x1].astype(np.float64)
        new = np.empty((2, 2))
        for k, win in enumerate(self.windows):
            ky0, kx0 = win.k_int
            new[k, 1] = kx0 / n + stat(g[k, 0]) / 2 / TWO_PI
            new[k, 0] = ky0 / m + stat(g[k, 1]) / 2 / TWO_PI
        _check_g(new, self.shape)
        self._set_reference(new)
        return new

    # -- registration ---------------------------------------------------------------
    def result(self, strain, **extra) -> "GPAResult":
        """Wrap maps made with this plan in a :class:`GPAResult` carrying its settings."""
        return GPAResult(
            strain=strain,
            g_vectors=self.g_reference.copy(),
            g_mask=self.g_mask.copy(),
            mask=self.mask,
            mask_size=self.mask_size,
            width_px=self.width_px,
            reference=self.reference,
            definition=self.definition,
            angle_deg=self.angle_deg,
            **extra,
        )

    def set_registration_reference(self, image) -> None:
        """Keep the low-frequency spectrum of ``image`` to register later frames to it."""
        from mltem.gpa._register import LowPassWindow

        self._reg_ref = LowPassWindow(image, self.g_reference, workers=self.workers)

    def drift(self, image) -> np.ndarray:
        """Drift ``(dy, dx)`` (px) of ``image`` relative to the registration reference."""
        if self._reg_ref is None:
            raise ValueError("call set_registration_reference(reference_image) first")
        return self._reg_ref.drift(image)


def _wrap_diff(a, b, out) -> None:
    """``out = wrap(a - b)`` into (-pi, pi]."""
    np.subtract(a, b, out=out)
    t = np.multiply(out, 1 / TWO_PI)
    np.rint(t, out=t)
    t *= TWO_PI
    out -= t


def _blank_outside(out, shift) -> None:
    """NaN where a registered map has no data (content shifted in from outside)."""
    m, n = out.shape[-2:]
    dy, dx = shift
    iy, ix = int(math.ceil(abs(dy))), int(math.ceil(abs(dx)))
    if iy:
        if dy > 0:
            out[..., m - iy :, :] = np.nan
        else:
            out[..., :iy, :] = np.nan
    if ix:
        if dx > 0:
            out[..., :, n - ix :] = np.nan
        else:
            out[..., :, :ix] = np.nan


def _check_g(g, shape) -> None:
    g = np.asarray(g, dtype=float)
    if g.shape != (2, 2) or not np.isfinite(g).all():
        raise ValueError(f"g vectors must be a finite (2, 2) array of rows (g_y, g_x), got {g!r}")
    norms = np.hypot(g[:, 0], g[:, 1])
    if (norms <= 0).any() or (np.abs(g) > 0.5).any():
        raise MltemError(
            f"g vectors {np.round(g, 4).tolist()} (1/px) must be non-zero and below the Nyquist "
            "frequency 0.5 1/px; check the spots and the pixel size"
        )
    m, n = shape
    if (norms * min(m, n) < 2).any():
        raise MltemError(
            f"a g vector of {norms.min():.4g} 1/px gives less than 2 fringes across the image; pick a larger spot"
        )
    s = abs(g[0, 0] * g[1, 1] - g[0, 1] * g[1, 0]) / (norms[0] * norms[1])
    if s < np.sin(np.deg2rad(5)):
        raise MltemError("the two g vectors are (nearly) collinear; GPA needs two non-parallel reflections")


def _check_region(region, shape) -> tuple[int, int, int, int]:
    try:
        y0, y1, x0, x1 = (int(round(float(v))) for v in region)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"reference region must be (y0, y1, x0, x1), got {region!r}") from exc
    m, n = shape
    if not (0 <= y0 < y1 <= m and 0 <= x0 < x1 <= n):
        raise MltemError(
            f"reference region (y0, y1, x0, x1) = {(y0, y1, x0, x1)} px is not inside the image "
            f"of {m} x {n} px (need 0 <= y0 < y1 <= {m}, 0 <= x0 < x1 <= {n})"
        )
    if (y1 - y0) < 4 or (x1 - x0) < 4:
        raise MltemError(f"reference region {(y0, y1, x0, x1)} px is too small (need at least 4 x 4 px)")
    return y0, y1, x0, x1


def make_plan(
    image,
    *,
    g_vectors=None,
    mask: str = "gaussian",
    mask_size: float | None = None,
    reference="auto",
    definition: str = "lattice",
    angle_deg: float = 0.0,
    register: bool = False,
    periodic: bool = True,
    dtype=None,
    workers: int | None = None,
) -> GPAPlan:
    """Choose reflections, masks and reference from one image; see :func:`gpa`.

    Returns
    -------
    GPAPlan
        Apply it to this and other frames of the same shape with ``plan.strain(frame)``.
    """
    image = _check_image(image)
    if dtype is None:
        dtype = _real_dtype(image)
    if g_vectors is None:
        g_mask = find_spots(image)
    else:
        g_mask = np.asarray(g_vectors, dtype=float)
        if g_mask.shape != (2, 2):
            raise ValueError(f"g_vectors must have shape (2, 2) as rows (g_y, g_x) in 1/px, got {g_mask.shape}")
    _check_g(g_mask, image.shape)
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    if mask_size is None:
        mask_size = default_mask_size(g_mask, mask)
    elif not mask_size > 0:
        raise ValueError(f"mask_size must be > 0 (1/px), got {mask_size}")
    d = shortest_lattice_distance(g_mask)
    if mask_size > (0.3 if mask == "gaussian" else 0.75) * d:
        log.warning(
            "mask size %.4g 1/px is large for spots %.4g 1/px apart: neighbouring reflections leak in", mask_size, d
        )
    plan = GPAPlan(
        image.shape,
        g_mask,
        g_mask,
        mask=mask,
        mask_size=mask_size,
        definition=definition,
        angle_deg=angle_deg,
        dtype=dtype,
        periodic=periodic,
        workers=workers,
    )
    plan.reference = reference if isinstance(reference, str) else tuple(reference)
    plan.refine_reference(image, reference)
    if register:
        plan.set_registration_reference(image)
    return plan


def gpa(
    image,
    *,
    g_vectors=None,
    mask: str = "gaussian",
    mask_size: float | None = None,
    reference="auto",
    definition: str = "lattice",
    angle_deg: float = 0.0,
    return_phases: bool = False,
    periodic: bool = True,
    dtype=None,
    workers: int | None = None,
) -> GPAResult:
    """Geometric phase analysis of one lattice image.

    Parameters
    ----------
    image : numpy.ndarray
        HRTEM or HAADF image, shape (y, x), square pixels.
    g_vectors : array_like, optional
        Shape (2, 2): two non-collinear reflections as rows ``(g_y, g_x)`` in 1/px
        (g in 1/nm times the pixel size in nm). Default: found
        automatically (:func:`find_spots`).
    mask : {"gaussian", "cosine"}
        Mask profile.
    mask_size : float, optional
        Gaussian sigma or cosine radius in 1/px. Default: :func:`default_mask_size`.
    reference : {"auto", "mean", "none"} or tuple (y0, y1, x0, x1)
        Where the lattice counts as unstrained; g is refined there, which removes the
        phase ramp. ``"auto"``: the median local lattice over the interior (the majority
        lattice); ``"mean"``: the mean over the interior; ``"none"``: ``g_vectors`` as
        given; a tuple: a region in px (half-open, numpy order).
    definition : {"lattice", "linear"}
        ``"lattice"``: local lattice vs reference, exact at large strain;
        ``"linear"``: Hytch's small-strain ``du_i/dx_j``.
    angle_deg : float
        Express the maps in axes whose x axis points ``angle_deg`` degrees from the image
        x axis towards the image y axis (e.g. along a crystal direction).
    return_phases : bool
        Also keep the geometric phases and amplitudes.
    periodic : bool
        Remove the image's edge discontinuity before filtering.
    dtype : numpy dtype, optional
        float32 or float64; default float64 for float64 images, else float32.
    workers : int, optional
        Threads (default: all cores).

    Returns
    -------
    GPAResult
        ``result.strain`` has shape (4, y, x): exx, eyy, exy, rotation (rad).

    References
    ----------
    M. J. Hytch, E. Snoeck, R. Kilaas, Ultramicroscopy 74, 131 (1998),
    :DOI:`10.1016/S0304-3991(98)00035-7`.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[0:128, 0:128]
    >>> img = np.cos(2 * np.pi * x / 8) + np.cos(2 * np.pi * y / 8)
    >>> res = gpa(img, reference="none", g_vectors=[[0, 1 / 8], [1 / 8, 0]])
    >>> bool(np.abs(res.strain[:, 40:88, 40:88]).max() < 1e-6)
    True
    """
    plan = make_plan(
        image,
        g_vectors=g_vectors,
        mask=mask,
        mask_size=mask_size,
        reference=reference,
        definition=definition,
        angle_deg=angle_deg,
        periodic=periodic,
        dtype=dtype,
        workers=workers,
    )
    res = plan.strain(image, return_phases=return_phases)
    strain, phases, amps = res if return_phases else (res, None, None)
    return plan.result(strain, phases=phases, amplitudes=amps)
