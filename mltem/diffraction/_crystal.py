"""Crystal phases: read from a CIF or a built-in name; reflections, zone axes, orientations.

A :class:`Phase` holds plain numpy arrays (lattice, sites, point-group rotations), so the
maths downstream needs only numpy; pymatgen is used once, to read and symmetrise a CIF.
Conventions: lengths in nm, reciprocal lengths in 1/nm (no 2 pi), zone axes [uvw] and
reflections (hkl) in the cell of the CIF (the conventional cell for the built-in phases).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mltem._errors import MltemError
from mltem.diffraction._scattering import electron_scattering_factor

__all__ = [
    "Phase",
    "Reflections",
    "ZoneAxis",
    "BUILTIN_PHASES",
    "load_phase",
    "phase_from_structure",
    "reflections",
    "zone_axes",
    "zone_rotation",
]

log = logging.getLogger(__name__)

PHASES_DIR = Path(__file__).resolve().parent / "phases"
_ALIASES = {"li_bcc": "Li", "lithium": "Li", "silicon": "Si", "copper": "Cu", "c": "graphite", "nmc": "NMC111",
            "lini1/3mn1/3co1/3o2": "NMC111", "lco": "LiCoO2", "lfp": "LiFePO4", "lto": "Li4Ti5O12"}


def _builtin_names() -> list[str]:
    return sorted(p.stem for p in PHASES_DIR.glob("*.cif"))


BUILTIN_PHASES: tuple[str, ...] = tuple(_builtin_names())


@dataclass
class Phase:
    """A crystal phase as numpy arrays.

    Attributes
    ----------
    name : str
    formula : str
    space_group : str
        Hermann-Mauguin symbol found by spglib.
    direct_matrix_nm : numpy.ndarray
        (3, 3): rows are the cell vectors a, b, c in Cartesian nm.
    site_species : list of dict
        Per site, element -> occupancy.
    frac_coords : numpy.ndarray
        (n_sites, 3) fractional coordinates.
    rotations : numpy.ndarray
        (k, 3, 3) integer matrices of the proper rotations of the Laue group acting on
        fractional coordinates and zone axes [uvw] (u' = W u).
    b_iso_nm2 : float
        Isotropic Debye-Waller B in nm^2 (0.005 nm^2 = 0.5 Å^2).
    source : str
        The CIF or built-in name it came from.
    """

    name: str
    formula: str
    space_group: str
    direct_matrix_nm: np.ndarray
    site_species: list
    frac_coords: np.ndarray
    rotations: np.ndarray
    b_iso_nm2: float = 0.005
    source: str = ""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def reciprocal_matrix_nm(self) -> np.ndarray:
        """(3, 3): rows are a*, b*, c* in Cartesian 1/nm (crystallographic, no 2 pi)."""
        return np.linalg.inv(self.direct_matrix_nm).T

    def zone_cartesian(self, zone) -> np.ndarray:
        """Cartesian direction (nm) of the direct-lattice vector [uvw]."""
        return np.asarray(zone, float) @ self.direct_matrix_nm

    def g_cartesian(self, hkl) -> np.ndarray:
        """Cartesian reciprocal vectors (1/nm) of reflections (hkl), shape (..., 3)."""
        return np.asarray(hkl, float) @ self.reciprocal_matrix_nm


def phase_from_structure(structure, *, name: str | None = None, source: str = "", symprec: float = 0.01) -> Phase:
    """Build a :class:`Phase` from a pymatgen ``Structure`` (ordered or with partial occupancy).

    Parameters
    ----------
    structure : pymatgen.core.Structure
    name : str, optional
        Defaults to the reduced formula.
    source : str
        Where it came from (recorded).
    symprec : float
        spglib tolerance in Å.

    Returns
    -------
    Phase
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        sg = sga.get_space_group_symbol()
        ops = sga.get_symmetry_operations(cartesian=False)
        rots = np.array([np.rint(op.rotation_matrix) for op in ops], dtype=int)
    except Exception as exc:  # spglib fails on odd inputs: fall back to P1 (identity only)
        log.warning("symmetry analysis failed (%s); treating the phase as triclinic P1", exc)
        sg, rots = "P1", np.eye(3, dtype=int)[None]
    # Kinematic patterns obey Friedel's law, so the Laue group is what matters: its proper
    # rotations are det(W) * W for every point-group operation W.
    proper = np.array([int(round(np.linalg.det(r))) * r for r in rots], dtype=int)
    proper = np.unique(proper.reshape(len(proper), 9), axis=0).reshape(-1, 3, 3)
    species = [{el.symbol: float(occ) for el, occ in site.species.items()} for site in structure]
    return Phase(
        name=name or structure.composition.reduced_formula,
        formula=structure.composition.reduced_formula,
        space_group=sg,
        direct_matrix_nm=np.asarray(structure.lattice.matrix, float) / 10.0,
        site_species=species,
        frac_coords=np.asarray(structure.frac_coords, float),
        rotations=proper,
        source=source,
    )


def load_phase(spec, *, name: str | None = None) -> Phase:
    """Read a phase from a CIF file or a built-in name.

    Parameters
    ----------
    spec : str or os.PathLike
        A CIF path, or one of :data:`BUILTIN_PHASES` (case-insensitive; aliases such as
        ``"nmc"``, ``"lfp"``, ``"lto"``, ``"lco"`` work).
    name : str, optional
        Name used in tables; defaults to the built-in name or the CIF's file stem.

    Returns
    -------
    Phase

    Raises
    ------
    MltemError
        No such file and no such built-in phase, or a CIF pymatgen cannot read.
    """
    text = os.fspath(spec)
    path = Path(text)
    if not path.is_file():
        key = text.strip()
        lower = {n.lower(): n for n in BUILTIN_PHASES}
        key = _ALIASES.get(key.lower(), key)
        if key.lower() not in lower:
            raise MltemError(
                f"'{text}' is neither a CIF file nor a built-in phase; built-in phases: {', '.join(BUILTIN_PHASES)}"
            )
        path = PHASES_DIR / f"{lower[key.lower()]}.cif"
        name = name or lower[key.lower()]
    if path.suffix.lower() not in (".cif", ".mcif"):
        raise MltemError("a phase must be a .cif file or a built-in name", path=path)
    import warnings

    from pymatgen.core import Structure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_file(str(path))
    except Exception as exc:
        raise MltemError(f"cannot read the CIF ({str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__})", path=path) from exc
    return phase_from_structure(structure, name=name or path.stem, source=str(spec))


@dataclass
class Reflections:
    """Reflections of a phase with non-zero kinematic structure factor.

    Attributes
    ----------
    hkl : numpy.ndarray
        (n, 3) int Miller indices.
    g_cart : numpy.ndarray
        (n, 3) Cartesian reciprocal vectors, 1/nm.
    g_len : numpy.ndarray
        (n,) |g| in 1/nm.
    structure_factor : numpy.ndarray
        (n,) complex F_hkl in Å (sum of occupancy * f_e * Debye-Waller * phase).
    intensity : numpy.ndarray
        (n,) |F|^2 in Å^2.
    """

    hkl: np.ndarray
    g_cart: np.ndarray
    g_len: np.ndarray
    structure_factor: np.ndarray
    intensity: np.ndarray


def reflections(phase: Phase, g_max_inv_nm: float, *, rel_threshold: float = 1e-5) -> Reflections:
    """All reflections with |g| <= ``g_max_inv_nm`` and non-vanishing |F|^2 (cached).

    Parameters
    ----------
    phase : Phase
    g_max_inv_nm : float
        Largest |g| in 1/nm.
    rel_threshold : float
        Reflections with |F|^2 below this fraction of the strongest are dropped
        (systematic absences).

    Returns
    -------
    Reflections
    """
    if not g_max_inv_nm > 0:
        raise ValueError(f"g_max_inv_nm must be positive, got {g_max_inv_nm}")
    key = ("refl", round(float(g_max_inv_nm), 6), rel_threshold)
    if key in phase._cache:
        return phase._cache[key]
    lengths = np.linalg.norm(phase.direct_matrix_nm, axis=1)
    nmax = np.ceil(g_max_inv_nm * lengths).astype(int)
    h, k, l = np.meshgrid(*(np.arange(-n, n + 1) for n in nmax), indexing="ij")
    hkl = np.stack([h.ravel(), k.ravel(), l.ravel()], 1)
    hkl = hkl[np.any(hkl != 0, axis=1)]
    g = phase.g_cartesian(hkl)
    glen = np.linalg.norm(g, axis=1)
    keep = glen <= g_max_inv_nm
    hkl, g, glen = hkl[keep], g[keep], glen[keep]
    F = np.zeros(len(hkl), complex)
    dw = np.exp(-phase.b_iso_nm2 * 100.0 * (glen / 20.0) ** 2)  # B in Å^2, s = g/2 in 1/Å
    fe_cache: dict[str, np.ndarray] = {}
    for species, xyz in zip(phase.site_species, phase.frac_coords):
        f = np.zeros(len(hkl))
        for el, occ in species.items():
            if el not in fe_cache:
                fe_cache[el] = electron_scattering_factor(el, glen)
            f += occ * fe_cache[el]
        F += f * np.exp(2j * np.pi * (hkl @ xyz))
    F *= dw
    inten = np.abs(F) ** 2
    keep = inten > rel_threshold * inten.max() if len(inten) else np.zeros(0, bool)
    out = Reflections(hkl[keep], g[keep], glen[keep], F[keep], inten[keep])
    phase._cache[key] = out
    return out


@dataclass
class ZoneAxis:
    """A symmetry-distinct zone axis of a phase.

    Attributes
    ----------
    uvw : tuple of int
        Representative [uvw] of the orbit under the point group's proper rotations.
    multiplicity : int
        Number of [uvw] in the orbit.
    symmetry_order : int
        Rotational symmetry of its kinematic zero-order pattern (with Friedel's law):
        in-plane angles are defined modulo 360 / symmetry_order degrees.
    ref_hkl : tuple of int
        Reference reflection: the in-plane angle is the angle from the detector +x axis
        towards +y to this reflection.
    n_spots : int
        Zero-order reflections with |g| <= the ``g_max`` used to select zones.
    """

    uvw: tuple
    multiplicity: int
    symmetry_order: int
    ref_hkl: tuple
    n_spots: int

    @property
    def label(self) -> str:
        return "[" + " ".join(str(int(v)) for v in self.uvw) + "]"


def _zone_key(u) -> tuple:
    u = tuple(int(v) for v in u)
    return (sum(v >= 0 for v in u), u)


def zone_axes(phase: Phase, *, max_index: int = 3, g_max_inv_nm: float = 9.0, min_spots: int = 6,
              max_zones: int = 10) -> list[ZoneAxis]:
    """Symmetry-distinct low-index zone axes of a phase, densest first (cached).

    Zones are grouped into orbits under the proper rotations of the point group
    (a zone and its reverse are distinct when no rotation relates them: their patterns
    are mirror images). A zone is kept if its zero-order Laue zone holds at least
    ``min_spots`` reflections with |g| <= ``g_max_inv_nm``, at least 4 of them off the
    densest systematic row.

    Parameters
    ----------
    phase : Phase
    max_index : int
        Largest |u|, |v|, |w|.
    g_max_inv_nm : float
        Radius of the pattern in 1/nm.
    min_spots : int
    max_zones : int
        Keep at most this many zones (the shortest [uvw], i.e. densest patterns).

    Returns
    -------
    list of ZoneAxis
    """
    key = ("zones", max_index, round(g_max_inv_nm, 6), min_spots, max_zones)
    if key in phase._cache:
        return phase._cache[key]
    refl = reflections(phase, g_max_inv_nm)
    rng = np.arange(-max_index, max_index + 1)
    cand = np.stack(np.meshgrid(rng, rng, rng, indexing="ij"), -1).reshape(-1, 3)
    cand = cand[np.any(cand != 0, 1)]
    cand = cand[np.gcd.reduce(np.abs(cand), axis=1) == 1]
    seen: set = set()
    zones = []
    rots = phase.rotations
    for u in cand[np.argsort(np.linalg.norm(phase.zone_cartesian(cand), axis=1), kind="stable")]:
        t = tuple(int(v) for v in u)
        if t in seen:
            continue
        orbit = {tuple(int(v) for v in (w @ u)) for w in rots}
        seen |= orbit
        rep = max(orbit, key=_zone_key)
        on = (refl.hkl @ np.asarray(rep)) == 0
        n_spots = int(on.sum())
        if n_spots < min_spots or _off_row(refl.g_cart[on]) < 4:
            continue
        stab = sum(1 for w in rots if tuple(int(v) for v in (w @ np.asarray(rep))) == rep)
        order = stab if stab % 2 == 0 else 2 * stab
        if order <= 2 and n_spots < min_spots + 2:
            continue  # sparse, low-symmetry zones are ambiguous (a few spots fit many cells)
        hk, gl, it = refl.hkl[on], refl.g_len[on], refl.intensity[on]
        strong = it >= 1e-3 * it.max()
        hk, gl = hk[strong], gl[strong]
        idx = sorted(range(len(hk)), key=lambda i: (round(gl[i], 5), tuple(-hk[i])))[0]
        zones.append(ZoneAxis(rep, len(orbit), order, tuple(int(v) for v in hk[idx]), n_spots))
        if len(zones) >= max_zones:
            break
    phase._cache[key] = zones
    return zones


def _off_row(g: np.ndarray) -> int:
    """Spots off the most populated line through the origin (a systematic row is not a zone)."""
    if len(g) < 2:
        return 0
    u = g / np.linalg.norm(g, axis=1, keepdims=True)
    coll = np.linalg.norm(np.cross(u[:, None, :], u[None, :, :]), axis=2) < 1e-6
    return int(len(g) - coll.sum(1).max())


def zone_rotation(phase: Phase, zone, inplane_rad: float = 0.0, *, ref_hkl=None, tilt_rad=(0.0, 0.0)) -> np.ndarray:
    """Rotation matrix taking crystal Cartesian vectors to the laboratory frame.

    Laboratory frame: x along detector columns, y along detector rows (downwards), z along
    the beam (into the detector). The zone axis [uvw] points against the beam (towards
    the gun) and the reference reflection lies at ``inplane_rad`` from +x towards +y.

    Parameters
    ----------
    phase : Phase
    zone : sequence of 3 int
        [uvw].
    inplane_rad : float
        In-plane angle in radians.
    ref_hkl : sequence of 3 int, optional
        Reference reflection (must be perpendicular to the zone); by default that of
        :func:`zone_axes`, or the shortest zero-order reflection.
    tilt_rad : (float, float)
        Small crystal tilts about the laboratory x and y axes (radians), applied last.

    Returns
    -------
    numpy.ndarray
        (3, 3) orthonormal matrix R with g_lab = R @ g_cart.
    """
    u = np.asarray(zone, float)
    if u.shape != (3,) or not np.any(u):
        raise ValueError(f"zone must be three integers, not all zero; got {zone}")
    if ref_hkl is None:
        ref_hkl = _default_ref(phase, u)
    g = phase.g_cartesian(ref_hkl)
    if abs(float(np.asarray(ref_hkl) @ u)) > 1e-9:
        raise ValueError(f"reference reflection {tuple(ref_hkl)} is not in zone {tuple(zone)}")
    x = g / np.linalg.norm(g)
    z = -phase.zone_cartesian(u)
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    r0 = np.stack([x, y, z])
    c, s = np.cos(inplane_rad), np.sin(inplane_rad)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    tx, ty = tilt_rad
    rx = np.array([[1, 0, 0], [0, np.cos(tx), -np.sin(tx)], [0, np.sin(tx), np.cos(tx)]])
    ry = np.array([[np.cos(ty), 0, np.sin(ty)], [0, 1, 0], [-np.sin(ty), 0, np.cos(ty)]])
    return rx @ ry @ rz @ r0


def _default_ref(phase: Phase, u: np.ndarray) -> tuple:
    t = tuple(int(v) for v in u)
    for key, zones in phase._cache.items():
        if isinstance(key, tuple) and key[0] == "zones":
            for z in zones:
                if z.uvw == t:
                    return z.ref_hkl
    refl = reflections(phase, 10.0)
    on = (refl.hkl @ u) == 0
    if not np.any(on):
        raise ValueError(f"zone {t} has no reflection with |g| <= 10 1/nm")
    hk, gl, it = refl.hkl[on], refl.g_len[on], refl.intensity[on]
    strong = it >= 1e-3 * it.max()
    hk, gl = hk[strong], gl[strong]
    idx = sorted(range(len(hk)), key=lambda i: (round(gl[i], 5), tuple(-hk[i])))[0]
    return tuple(int(v) for v in hk[idx])
