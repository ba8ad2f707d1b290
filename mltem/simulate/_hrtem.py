"""Synthetic HRTEM/HAADF lattice images with known displacement and strain fields.

The specimen is a 2D crystal (one or two phases) deformed by a displacement field
``u(r)``; the image is ``I(r) = sum_g F_g exp(2 pi i g.(r - u(r)))`` over the reflections
``g`` of the reference lattice (Eulerian description, exactly the model GPA inverts).
Because every term is a product of powers of ``exp(2 pi i g1.(r - u))`` and
``exp(2 pi i g2.(r - u))``, the image stays continuous across the branch cut of a
dislocation whose Burgers vector is a lattice vector. The exact displacement gradient
``D_ij = du_i/dx_j`` of each field is analytic, so the returned strain maps are exact.

Fields (add any number; displacements add): :class:`UniformStrain`,
:class:`StrainGradient`, :class:`EdgeDislocation` (Volterra field, isotropic
elasticity), :class:`LithiatedRegion` (a disc with an expanded lattice, Eshelby-like
equal-moduli field) and :class:`Interface` (a coherent misfit interface between two
phases). Imperfections: contrast-transfer oscillations (sin chi on the lattice and
Thon rings on the background), an amorphous background, thickness variations, STEM scan
jitter and drift, and Poisson noise at a given dose.

Units: lengths in nm, reciprocal vectors in 1/nm as rows ``(g_y, g_x)``, positions
``(y, x)`` with the origin at the centre of the top-left pixel and y pointing down.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mltem._physics import electron_wavelength_nm

__all__ = [
    "Lattice",
    "UniformStrain",
    "StrainGradient",
    "EdgeDislocation",
    "LithiatedRegion",
    "Interface",
    "SyntheticLattice",
    "simulate_lattice",
    "simulate_lattice_movie",
]

_TWO_PI = 2 * np.pi


# ----------------------------------------------------------------------------------
# Lattice
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lattice:
    """A 2D lattice with a motif of Gaussian atoms.

    Parameters
    ----------
    a_nm, b_nm : float
        Lengths of the basis vectors a1 and a2 (nm).
    gamma_deg : float
        Angle from a1 to a2 (degrees, towards +y).
    angle_deg : float
        Direction of a1, degrees from the image x axis towards the image y axis.
    atoms : tuple of (f1, f2, weight)
        Motif: fractional coordinates along a1, a2 and scattering weight.
    atom_sigma_nm : float
        Gaussian width of an atom column (sets how fast the reflections fall off).
    g_max_per_nm : float
        Reflections up to this spatial frequency are summed (an aperture).
    """

    a_nm: float = 0.30
    b_nm: float = 0.25
    gamma_deg: float = 90.0
    angle_deg: float = 0.0
    atoms: tuple = ((0.0, 0.0, 1.0),)
    atom_sigma_nm: float = 0.05
    g_max_per_nm: float = 9.0

    def __post_init__(self):
        if not (self.a_nm > 0 and self.b_nm > 0):
            raise ValueError(f"lattice parameters must be > 0, got a={self.a_nm}, b={self.b_nm}")
        if abs(np.sin(np.deg2rad(self.gamma_deg))) < 0.1:
            raise ValueError(f"gamma_deg={self.gamma_deg} makes a1 and a2 (nearly) parallel")
        if not self.atoms:
            raise ValueError("the motif needs at least one atom")

    @property
    def vectors_nm(self) -> np.ndarray:
        """Shape (2, 2): a1, a2 as rows ``(y, x)`` in nm."""
        t1 = np.deg2rad(self.angle_deg)
        t2 = t1 + np.deg2rad(self.gamma_deg)
        return np.array([[self.a_nm * np.sin(t1), self.a_nm * np.cos(t1)], [self.b_nm * np.sin(t2), self.b_nm * np.cos(t2)]])

    @property
    def g_vectors(self) -> np.ndarray:
        """Shape (2, 2): reciprocal vectors g1, g2 (``g_i . a_j = delta_ij``), rows ``(g_y, g_x)`` in 1/nm."""
        a = self.vectors_nm
        return np.linalg.inv(a).T

    def reflections(self):
        """``(h, k, F_hk)`` for all non-zero reflections with ``|g| <= g_max_per_nm``."""
        g = self.g_vectors
        gmin = min(np.hypot(*g[0]), np.hypot(*g[1]))
        # |h g1 + k g2| <= gmax needs |h|, |k| <= gmax / (shortest height) -- bound generously
        area = abs(np.linalg.det(g))
        hmax = int(np.ceil(self.g_max_per_nm * max(np.hypot(*g[0]), np.hypot(*g[1])) / area)) + 1
        hmax = max(hmax, int(np.ceil(self.g_max_per_nm / gmin)) + 1)
        out = []
        for h in range(-hmax, hmax + 1):
            for k in range(-hmax, hmax + 1):
                if h == 0 and k == 0:
                    continue
                gv = h * g[0] + k * g[1]
                gl = float(np.hypot(*gv))
                if gl > self.g_max_per_nm:
                    continue
                sf = sum(w * np.exp(-2j * np.pi * (h * f1 + k * f2)) for f1, f2, w in self.atoms)
                f = sf * np.exp(-2 * np.pi**2 * self.atom_sigma_nm**2 * gl**2)
                if abs(f) > 1e-6:
                    out.append((h, k, complex(f), gl))
        return out


# ----------------------------------------------------------------------------------
# Displacement fields: each gives u (u_y, u_x) in nm and D = du/dx (dxx, dxy, dyx, dyy)
# ----------------------------------------------------------------------------------


class _Field:
    def displacement(self, y, x):  # pragma: no cover - interface
        raise NotImplementedError

    def distortion(self, y, x):  # pragma: no cover - interface
        raise NotImplementedError


def _rot(a_deg):
    a = np.deg2rad(a_deg)
    return np.cos(a), np.sin(a)


@dataclass
class UniformStrain(_Field):
    """A homogeneous deformation of the whole field of view.

    The parameters are the *lattice* strain and rotation that GPA should report
    (``definition="lattice"``): the deformation gradient is ``F = R(rotation) U`` with
    ``U = [[1 + exx, exy], [exy, 1 + eyy]]``; ``u = (1 - F^-1)(r - r0)``.

    Parameters
    ----------
    exx, eyy, exy : float
        Strain components (dimensionless).
    rotation : float
        Rigid rotation (rad, turning +x towards +y).
    center_nm : tuple, optional
        ``(y, x)`` where u = 0 (default: the image centre).
    """

    exx: float = 0.0
    eyy: float = 0.0
    exy: float = 0.0
    rotation: float = 0.0
    center_nm: tuple | None = None

    def _d(self):
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        r = np.array([[c, -s], [s, c]])  # (x, y) components
        u = np.array([[1 + self.exx, self.exy], [self.exy, 1 + self.eyy]])
        return np.eye(2) - np.linalg.inv(r @ u)

    def displacement(self, y, x):
        d = self._d()
        y0, x0 = self.center_nm
        ux = d[0, 0] * (x - x0) + d[0, 1] * (y - y0)
        uy = d[1, 0] * (x - x0) + d[1, 1] * (y - y0)
        return uy, ux

    def distortion(self, y, x):
        d = self._d()
        one = np.ones(np.broadcast_shapes(np.shape(y), np.shape(x)))
        return d[0, 0] * one, d[0, 1] * one, d[1, 0] * one, d[1, 1] * one


@dataclass
class StrainGradient(_Field):
    """Strain growing linearly across the image: ``du_x/dx = gx (x - x0)``, ``du_y/dy = gy (y - y0)``.

    Parameters
    ----------
    exx_per_nm, eyy_per_nm : float
        Gradients of ``du_x/dx`` along x and of ``du_y/dy`` along y (1/nm).
    center_nm : tuple, optional
        ``(y, x)`` where the gradient field is zero (default: the image centre).
    """

    exx_per_nm: float = 0.0
    eyy_per_nm: float = 0.0
    center_nm: tuple | None = None

    def displacement(self, y, x):
        y0, x0 = self.center_nm
        return 0.5 * self.eyy_per_nm * (y - y0) ** 2, 0.5 * self.exx_per_nm * (x - x0) ** 2

    def distortion(self, y, x):
        y0, x0 = self.center_nm
        z = np.zeros(np.broadcast_shapes(np.shape(y), np.shape(x)))
        return self.exx_per_nm * (x - x0) + z, z, z.copy(), self.eyy_per_nm * (y - y0) + z


@dataclass
class EdgeDislocation(_Field):
    """Edge dislocation along the beam: the isotropic Volterra field.

    Parameters
    ----------
    y_nm, x_nm : float
        Core position (nm).
    burgers_nm : tuple
        Burgers vector ``(b_y, b_x)`` in nm; use a lattice vector (``Lattice.vectors_nm[i]``)
        so that the image is continuous.
    poisson : float
        Poisson's ratio.

    Notes
    -----
    In axes with x' along b: ``u_x' = b/2pi [theta + x'y'/(2(1-nu) r^2)]``,
    ``u_y' = -b/2pi [(1-2nu)/(4(1-nu)) ln r^2 + (x'^2-y'^2)/(4(1-nu) r^2)]``
    (Hirth & Lothe, Theory of Dislocations, 1982, eq. 3-45).
    """

    y_nm: float = 0.0
    x_nm: float = 0.0
    burgers_nm: tuple = (0.0, 0.3)
    poisson: float = 0.3

    def _local(self, y, x):
        by, bx = self.burgers_nm
        b = float(np.hypot(by, bx))
        if b <= 0:
            raise ValueError("burgers_nm must be non-zero")
        c, s = bx / b, by / b
        dx, dy = x - self.x_nm, y - self.y_nm
        xp = c * dx + s * dy
        yp = -s * dx + c * dy
        r2 = xp**2 + yp**2
        r2 = np.where(r2 < 1e-12, 1e-12, r2)
        return b, c, s, xp, yp, r2

    def displacement(self, y, x):
        b, c, s, xp, yp, r2 = self._local(y, x)
        nu = self.poisson
        ux_ = b / _TWO_PI * (np.arctan2(yp, xp) + xp * yp / (2 * (1 - nu) * r2))
        uy_ = -b / _TWO_PI * ((1 - 2 * nu) / (4 * (1 - nu)) * np.log(r2) + (xp**2 - yp**2) / (4 * (1 - nu) * r2))
        return s * ux_ + c * uy_, c * ux_ - s * uy_

    def distortion(self, y, x):
        b, c, s, xp, yp, r2 = self._local(y, x)
        nu = self.poisson
        k = b / _TWO_PI
        cc = 1 / (2 * (1 - nu))
        kk = (1 - 2 * nu) / (4 * (1 - nu))
        r4 = r2 * r2
        dxx = k * (-yp / r2 + cc * yp * (yp**2 - xp**2) / r4)
        dxy = k * (xp / r2 + cc * xp * (xp**2 - yp**2) / r4)
        dyx = -k * (2 * kk * xp / r2 + cc * 2 * xp * yp**2 / r4)
        dyy = -k * (2 * kk * yp / r2 - cc * 2 * xp**2 * yp / r4)
        # D = R D' R^T with R = [[c, -s], [s, c]] in (x, y) components
        r = ((c, -s), (s, c))
        dp = ((dxx, dxy), (dyx, dyy))
        out = [[0, 0], [0, 0]]
        for i in range(2):
            for j in range(2):
                out[i][j] = sum(r[i][p] * dp[p][q] * r[j][q] for p in range(2) for q in range(2))
        return out[0][0], out[0][1], out[1][0], out[1][1]


@dataclass
class LithiatedRegion(_Field):
    """A disc whose lattice is expanded (e.g. lithiated), in an elastic matrix.

    The displacement is radial, ``u_r(r) = (1/r) int_0^r 2 s(t) t dt`` with the
    dilatation profile ``s(r) = s0 erfc((r - R)/w) / 2``: inside the disc ``u = s0 r``
    (uniform expansion), outside ``u_r = s0 R^2 / r`` (the equal-moduli Eshelby field, pure
    shear). ``s0 = 1 - 1/(1 + expansion)``, so the lattice strain inside is ``expansion``.

    Parameters
    ----------
    y_nm, x_nm : float
        Centre (nm).
    radius_nm : float
        Radius R (nm).
    expansion : float
        Lattice expansion inside (0.03 = 3 %).
    width_nm : float
        Width w of the boundary (nm).
    """

    y_nm: float = 0.0
    x_nm: float = 0.0
    radius_nm: float = 1.0
    expansion: float = 0.03
    width_nm: float = 0.3

    def _profile(self, r):
        from scipy.special import erfc

        if not (self.radius_nm > 0 and self.width_nm > 0):
            raise ValueError("radius_nm and width_nm must be > 0")
        s0 = 1 - 1 / (1 + self.expansion)
        rmax = float(np.max(r)) + 1.0
        t = np.linspace(0.0, rmax, 40001)
        st = 0.5 * s0 * erfc((t - self.radius_nm) / self.width_nm)
        f = 2 * st * t
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(t))])
        integral = np.interp(r, t, cum)
        s = 0.5 * s0 * erfc((r - self.radius_nm) / self.width_nm)
        safe = np.where(r < 1e-9, 1.0, r)
        ur = np.where(r < 1e-9, 0.0, integral / safe)
        ur_over_r = np.where(r < 1e-9, s, integral / safe**2)
        return ur, ur_over_r, s

    def displacement(self, y, x):
        dy, dx = y - self.y_nm, x - self.x_nm
        r = np.hypot(dy, dx)
        ur, ur_r, _ = self._profile(r)
        return ur_r * dy, ur_r * dx

    def distortion(self, y, x):
        dy, dx = y - self.y_nm, x - self.x_nm
        r = np.hypot(dy, dx)
        _, ur_r, s = self._profile(r)
        dur = 2 * s - ur_r  # d u_r / dr
        r2 = np.where(r < 1e-9, 1.0, r * r)
        nxx, nyy, nxy = dx * dx / r2, dy * dy / r2, dx * dy / r2
        nxx = np.where(r < 1e-9, 0.5, nxx)
        nyy = np.where(r < 1e-9, 0.5, nyy)
        # D = du_r/dr n n^T + (u_r/r)(1 - n n^T)
        return (dur * nxx + ur_r * (1 - nxx), (dur - ur_r) * nxy, (dur - ur_r) * nxy, dur * nyy + ur_r * (1 - nyy))


@dataclass
class Interface(_Field):
    """A coherent interface to a second phase whose lattice is expanded along the normal.

    Beyond the line the lattice spacing normal to the interface is larger by ``misfit``
    (a tetragonal distortion, as in a lithiated layer or an epitaxial film); the
    displacement is continuous (no misfit dislocations: add :class:`EdgeDislocation`
    for those). The second phase may also have its own motif (``motif``).

    Parameters
    ----------
    offset_nm : float
        Signed distance of the interface from the image centre along the normal (nm).
    angle_deg : float
        Direction of the normal (pointing into the second phase), degrees from x towards y.
    misfit : float
        Lattice strain of the second phase along the normal (0.04 = 4 %).
    width_nm : float
        Width of the transition (nm); small values give an abrupt interface.
    motif : tuple of (f1, f2, weight), optional
        Motif of the second phase (default: the first phase's).
    center_nm : tuple, optional
        Image centre ``(y, x)`` (set by :func:`simulate_lattice`).
    """

    offset_nm: float = 0.0
    angle_deg: float = 0.0
    misfit: float = 0.04
    width_nm: float = 0.1
    motif: tuple | None = None
    center_nm: tuple | None = None

    def _n(self, y, x):
        c, s = _rot(self.angle_deg)
        y0, x0 = self.center_nm
        return c, s, c * (x - x0) + s * (y - y0) - self.offset_nm

    def weight(self, y, x):
        """Fraction of the second phase at ``(y, x)`` (smooth step, 0..1)."""
        _, _, n = self._n(y, x)
        return 0.5 * (1 + np.tanh(n / self.width_nm))

    def displacement(self, y, x):
        c, s, n = self._n(y, x)
        s0 = 1 - 1 / (1 + self.misfit)
        w = self.width_nm
        z = n / w
        # int 0.5 (1 + tanh(n/w)) dn = n/2 + (w/2) ln cosh(n/w)
        un = s0 * (0.5 * n + 0.5 * w * (np.logaddexp(z, -z) - np.log(2.0)))
        return s * un, c * un

    def distortion(self, y, x):
        c, s, n = self._n(y, x)
        s0 = 1 - 1 / (1 + self.misfit)
        sn = s0 * 0.5 * (1 + np.tanh(n / self.width_nm))
        return sn * c * c, sn * c * s, sn * c * s, sn * s * s


# ----------------------------------------------------------------------------------
# Image formation
# ----------------------------------------------------------------------------------


@dataclass
class SyntheticLattice:
    """A synthetic lattice image and its exact fields.

    Attributes
    ----------
    image : numpy.ndarray
        (y, x) float32: counts with a dose, else intensity with mean about 1.
    strain : numpy.ndarray
        (4, y, x) float64: exact exx, eyy, exy, rotation (lattice definition, i.e. what
        ``mltem.gpa.gpa(..., definition="lattice")`` measures), relative to the reference
        lattice (phase A, unstrained).
    strain_linear : numpy.ndarray
        (4, y, x): the same in Hytch's small-strain definition.
    distortion : numpy.ndarray
        (4, y, x): ``du_x/dx, du_x/dy, du_y/dx, du_y/dy``.
    displacement : numpy.ndarray
        (2, y, x): ``(u_y, u_x)`` in nm.
    phase_map : numpy.ndarray
        (y, x) uint8: 0 for the first phase, 1 for the second.
    g_vectors : numpy.ndarray
        (2, 2): the reference lattice's g1, g2, rows ``(g_y, g_x)`` in 1/nm.
    pixel_size_nm : float
    dislocations : list of tuple
        Core positions ``(y, x)`` in nm (in the image frame).
    shift_nm : tuple
        Specimen shift ``(dy, dx)`` applied (nm).
    """

    image: np.ndarray
    strain: np.ndarray
    strain_linear: np.ndarray
    distortion: np.ndarray
    displacement: np.ndarray
    phase_map: np.ndarray
    g_vectors: np.ndarray
    pixel_size_nm: float
    dislocations: list = field(default_factory=list)
    shift_nm: tuple = (0.0, 0.0)

    @property
    def g_vectors_px(self) -> np.ndarray:
        """g1, g2 in 1/px (rows ``(g_y, g_x)``)."""
        return self.g_vectors * self.pixel_size_nm


def _chi(g, *, defocus_nm, voltage_kv, cs_mm):
    lam = electron_wavelength_nm(voltage_kv)
    cs = cs_mm * 1e6
    return np.pi * lam * defocus_nm * g**2 + 0.5 * np.pi * cs * lam**3 * g**4


def _motif_coeffs(lat: Lattice, motif):
    if motif is None:
        return lat.reflections()
    return Lattice(lat.a_nm, lat.b_nm, lat.gamma_deg, lat.angle_deg, tuple(motif), lat.atom_sigma_nm, lat.g_max_per_nm).reflections()


def _sum_reflections(e1, e2, refl, *, factor):
    """sum_{h,k} F_hk e1^h e2^k (real part, using F_-h-k = conj F_hk)."""
    powers1, powers2 = {0: 1.0}, {0: 1.0}

    def pw(cache, base, n):
        if n not in cache:
            if n > 0:
                cache[n] = pw(cache, base, n - 1) * base
            else:
                cache[n] = np.conj(pw(cache, base, -n))
        return cache[n]

    out = np.zeros(e1.shape)
    for h, k, f, gl in refl:
        # take each +-pair once: the half-plane (h > 0) or (h == 0 and k > 0)
        if h < 0 or (h == 0 and k < 0):
            continue
        term = pw(powers1, e1, h) * pw(powers2, e2, k)
        out += 2 * np.real(f * factor(gl) * term)
    return out


def _check_shape(shape):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        shape = (int(shape), int(shape))
    if len(shape) != 2 or min(shape) < 8:
        raise ValueError(f"shape must be (y, x) with both >= 8, got {shape}")
    return shape


def simulate_lattice(
    shape=(256, 256),
    *,
    pixel_size_nm: float = 0.02,
    lattice: Lattice | None = None,
    fields=(),
    mode: str = "hrtem",
    contrast: float = 0.3,
    defocus_nm: float | None = None,
    voltage_kv: float = 300.0,
    cs_mm: float = 1.0,
    amorphous: float = 0.0,
    thickness: float = 0.0,
    scan_jitter_px: float = 0.0,
    scan_drift: float = 0.0,
    dose_e_per_nm2: float | None = None,
    shift_nm=(0.0, 0.0),
    seed: int = 0,
) -> SyntheticLattice:
    """Make a lattice image with known displacement, strain and rotation fields.

    Parameters
    ----------
    shape : tuple of int
        Image shape (y, x) in px.
    pixel_size_nm : float
        Pixel size (nm).
    lattice : Lattice, optional
        The reference lattice (default: rectangular 0.30 x 0.25 nm, one atom).
    fields : sequence
        Displacement fields (:class:`UniformStrain`, :class:`StrainGradient`,
        :class:`EdgeDislocation`, :class:`LithiatedRegion`, :class:`Interface`); their
        displacements add. Fields with ``center_nm=None`` are centred on the image.
    mode : {"hrtem", "haadf"}
        ``"haadf"``: bright atom columns; ``"hrtem"``: dark columns and, with
        ``defocus_nm``, contrast transfer ``-sin chi(g)`` on every reflection.
    contrast : float
        Standard deviation of the lattice image relative to its mean.
    defocus_nm : float, optional
        Defocus (nm, negative = underfocus) for contrast-transfer oscillations.
    voltage_kv, cs_mm : float
        Beam energy (kV) and spherical aberration (mm) for the contrast transfer.
    amorphous : float
        Standard deviation of an amorphous background (relative to the mean), with
        Thon rings when ``defocus_nm`` is given.
    thickness : float
        Relative amplitude of slow thickness variations (multiplies the image).
    scan_jitter_px : float
        STEM: rms line-to-line jitter of the fast (x) scan position, px.
    scan_drift : float
        STEM: x drift per scan line (px per line), a shear of the image.
    dose_e_per_nm2 : float, optional
        Electron dose (e/nm^2; 1 e/A^2 = 100 e/nm^2): the image becomes Poisson counts
        with mean ``dose * pixel_size_nm**2``. Default: noise-free.
    shift_nm : tuple
        Translation ``(dy, dx)`` of the whole specimen (nm), to make drifting movies.
    seed : int
        Seed for the background, jitter and Poisson noise.

    Returns
    -------
    SyntheticLattice
        The image and the exact fields (in the image frame, without scan distortions).

    Examples
    --------
    >>> sim = simulate_lattice((128, 128), fields=[UniformStrain(exx=0.01)])
    >>> sim.image.shape, round(float(sim.strain[0].mean()), 6)
    ((128, 128), 0.01)
    """
    shape = _check_shape(shape)
    if not pixel_size_nm > 0:
        raise ValueError(f"pixel_size_nm must be > 0, got {pixel_size_nm}")
    if mode not in ("hrtem", "haadf"):
        raise ValueError(f"mode must be 'hrtem' or 'haadf', got {mode!r}")
    if dose_e_per_nm2 is not None and not dose_e_per_nm2 > 0:
        raise ValueError(f"dose_e_per_nm2 must be > 0, got {dose_e_per_nm2}")
    if contrast < 0 or amorphous < 0 or thickness < 0:
        raise ValueError("contrast, amorphous and thickness must be >= 0")
    lat = lattice or Lattice()
    rng = np.random.default_rng(seed)
    m, n = shape
    p = float(pixel_size_nm)
    centre = ((m - 1) * p / 2, (n - 1) * p / 2)
    import dataclasses

    placed = []
    for f in fields:
        if not isinstance(f, _Field):
            raise TypeError(f"fields must be displacement fields of mltem.simulate, got {type(f).__name__}")
        if hasattr(f, "center_nm") and f.center_nm is None:
            f = dataclasses.replace(f, center_nm=centre)  # the caller's object stays as it was
        placed.append(f)
    fields = placed
    y = np.arange(m)[:, None] * p - shift_nm[0]
    x = np.arange(n)[None, :] * p - shift_nm[1]
    y, x = np.broadcast_arrays(y, x)

    def total(fn, yy, xx, k):
        acc = [np.zeros(yy.shape) for _ in range(k)]
        for f in fields:
            for a, v in zip(acc, getattr(f, fn)(yy, xx)):
                a += v
        return acc

    uy, ux = total("displacement", y, x, 2)
    dxx, dxy, dyx, dyy = total("distortion", y, x, 4)
    # scan distortions: pixel (i, j) sees the specimen at x + jitter_i + drift * i
    ys, xs = y, x
    if scan_jitter_px or scan_drift:
        jit = rng.normal(0, scan_jitter_px, m) if scan_jitter_px else np.zeros(m)
        if scan_jitter_px:
            jit = np.convolve(jit, np.ones(3) / np.sqrt(3), mode="same")
        dxs = (jit + scan_drift * (np.arange(m) - m / 2)) * p
        xs = x + dxs[:, None]
        uys, uxs = total("displacement", ys, xs, 2)
    else:
        uys, uxs = uy, ux
    g = lat.g_vectors
    ry, rx = ys - uys, xs - uxs
    e1 = np.exp(_TWO_PI * 1j * (g[0, 0] * ry + g[0, 1] * rx))
    e2 = np.exp(_TWO_PI * 1j * (g[1, 0] * ry + g[1, 1] * rx))
    if mode == "hrtem" and defocus_nm is not None:

        def ctf(gl):
            return -np.sin(_chi(gl, defocus_nm=defocus_nm, voltage_kv=voltage_kv, cs_mm=cs_mm))

    else:

        def ctf(gl):
            return 1.0

    sign = -1.0 if mode == "hrtem" else 1.0
    lat_a = _sum_reflections(e1, e2, lat.reflections(), factor=ctf)
    phase_map = np.zeros(shape, np.uint8)
    img = lat_a
    interfaces = [f for f in fields if isinstance(f, Interface)]
    if interfaces:
        f = interfaces[0]
        w = f.weight(ys, xs)
        lat_b = lat_a if f.motif is None else _sum_reflections(e1, e2, _motif_coeffs(lat, f.motif), factor=ctf)
        img = (1 - w) * lat_a + w * lat_b
        phase_map = (f.weight(y, x) > 0.5).astype(np.uint8)
    sd = float(img.std()) or 1.0
    img = 1.0 + sign * contrast * img / sd
    if amorphous:
        img = img + amorphous * _amorphous(shape, p, rng, shift_nm, defocus_nm, voltage_kv, cs_mm)
    if thickness:
        img = img * (1 + thickness * _smooth_field(shape, p, rng, shift_nm))
    img = np.clip(img, 0, None)
    if dose_e_per_nm2 is not None:
        img = rng.poisson(img * dose_e_per_nm2 * p * p).astype(np.float64)
    from mltem.gpa._strain import strain_from_distortion

    strain = strain_from_distortion(dxx, dxy, dyx, dyy, definition="lattice")
    strain_lin = strain_from_distortion(dxx, dxy, dyx, dyy, definition="linear")
    cores = [
        (f.y_nm + shift_nm[0], f.x_nm + shift_nm[1]) for f in fields if isinstance(f, EdgeDislocation)
    ]
    return SyntheticLattice(
        image=img.astype(np.float32),
        strain=strain,
        strain_linear=strain_lin,
        distortion=np.stack([dxx, dxy, dyx, dyy]),
        displacement=np.stack([uy, ux]),
        phase_map=phase_map,
        g_vectors=g,
        pixel_size_nm=p,
        dislocations=cores,
        shift_nm=tuple(float(s) for s in shift_nm),
    )


def _shifted_noise(shape, rng, shift_px, filt):
    """Filtered white noise, translated by ``shift_px`` (periodic), unit std."""
    m, n = shape
    white = rng.standard_normal(shape)
    ky = np.fft.fftfreq(m)[:, None]
    kx = np.fft.fftfreq(n)[None, :]
    spec = np.fft.fft2(white) * filt(ky, kx)
    spec *= np.exp(-_TWO_PI * 1j * (ky * shift_px[0] + kx * shift_px[1]))
    out = np.real(np.fft.ifft2(spec))
    return out / (out.std() or 1.0)


def _amorphous(shape, p, rng, shift_nm, defocus_nm, voltage_kv, cs_mm):
    """Amorphous texture: a ring of spatial frequencies around 1/(0.35 nm), CTF-filtered."""

    def filt(ky, kx):
        g = np.hypot(ky, kx) / p  # 1/nm
        f = np.exp(-((g - 2.8) ** 2) / (2 * 1.5**2)) + 0.3 * np.exp(-(g**2) / (2 * 1.0**2))
        if defocus_nm is not None:
            f = f * np.sin(_chi(g, defocus_nm=defocus_nm, voltage_kv=voltage_kv, cs_mm=cs_mm))
        return f

    return _shifted_noise(shape, rng, (shift_nm[0] / p, shift_nm[1] / p), filt)


def _smooth_field(shape, p, rng, shift_nm):
    """Slow variations (thickness, bending): frequencies below 0.3 1/nm."""

    def filt(ky, kx):
        g = np.hypot(ky, kx) / p
        return np.exp(-(g**2) / (2 * 0.15**2))

    return _shifted_noise(shape, rng, (shift_nm[0] / p, shift_nm[1] / p), filt)


def simulate_lattice_movie(frames: int, shape=(256, 256), *, drift_nm_per_frame=(0.0, 0.0), seed: int = 0, **kwargs):
    """Frames of a drifting specimen: :func:`simulate_lattice` with a growing ``shift_nm``.

    The background (amorphous, thickness) is the same specimen in every frame (same
    seed) and moves with it; Poisson noise differs frame to frame.

    Parameters
    ----------
    frames : int
        Number of frames.
    shape : tuple of int
        Frame shape (y, x).
    drift_nm_per_frame : tuple
        Drift ``(dy, dx)`` per frame (nm).
    seed : int
        Seed; frame k's Poisson noise uses ``seed + k``.
    **kwargs
        Passed to :func:`simulate_lattice` (fields, noise, ...).

    Yields
    ------
    SyntheticLattice
        One per frame, generated when asked for (a generator: memory holds one frame).
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    dose = kwargs.pop("dose_e_per_nm2", None)
    for k in range(frames):
        shift = (k * drift_nm_per_frame[0], k * drift_nm_per_frame[1])
        sim = simulate_lattice(shape, shift_nm=shift, seed=seed, **kwargs)
        if dose is not None:
            rng = np.random.default_rng(seed + 1000 + k)
            p = sim.pixel_size_nm
            sim.image = rng.poisson(np.clip(sim.image, 0, None) * dose * p * p).astype(np.float32)
        yield sim
