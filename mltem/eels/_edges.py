"""Edge table: L2,3 (and O K) onset energies and the default pre-edge windows.

Onsets are the tabulated ionisation-edge energies of the EELS Atlas (C. C. Ahn and
O. L. Krivanek, *EELS Atlas*, Gatan/ASU 1983; the same values as Gatan's EELS table
and exspy's ``elements`` database). ``spin_orbit_ev`` is the L3-L2 splitting of the 2p
core level seen between the white lines of the oxides (Leapman, Grunes & Fejes,
Phys. Rev. B 26, 614 (1982), :doi:`10.1103/PhysRevB.26.614`).
"""
from __future__ import annotations

from dataclasses import dataclass

from mltem._errors import MltemError

__all__ = ["Edge", "EDGES", "get_edge", "background_window", "VALENCE_ELEMENTS"]


@dataclass(frozen=True)
class Edge:
    """One ionisation edge.

    Attributes
    ----------
    element : str
    name : str
        ``"L2,3"`` or ``"K"``.
    onset_ev : float
        Tabulated onset (L3 for L2,3 edges), eV.
    l2_onset_ev : float
        Tabulated L2 onset, eV (equal to ``onset_ev`` for K edges).
    pre_edge_ev : tuple of float
        Default pre-edge window (start, stop) for the power-law background, eV. It stops
        8 eV below the onset so that a calibration error of several eV does not put edge
        intensity into the window, and avoids neighbouring edges (Cr: the O K edge at
        532 eV and its near-edge structure).
    """

    element: str
    name: str
    onset_ev: float
    l2_onset_ev: float
    pre_edge_ev: tuple[float, float]

    @property
    def spin_orbit_ev(self) -> float:
        """L2 - L3 onset difference, eV."""
        return self.l2_onset_ev - self.onset_ev


def _l23(el: str, l3: float, l2: float, width: float = 32.0) -> Edge:
    return Edge(el, "L2,3", l3, l2, (l3 - width - 8.0, l3 - 8.0))


# EELS Atlas onsets (eV): Ti 456/462, V 513/521, Cr 575/584, Mn 640/651, Fe 708/721,
# Co 779/794, Ni 855/872, Cu 931/951, O K 532.
EDGES: dict[str, Edge] = {
    "Ti": _l23("Ti", 456.0, 462.0),
    "V": _l23("V", 513.0, 521.0),
    "Cr": _l23("Cr", 575.0, 584.0, width=14.0),  # stays above the O K near-edge structure
    "Mn": _l23("Mn", 640.0, 651.0),
    "Fe": _l23("Fe", 708.0, 721.0),
    "Co": _l23("Co", 779.0, 794.0),
    "Ni": _l23("Ni", 855.0, 872.0),
    "Cu": _l23("Cu", 931.0, 951.0),
    "O": Edge("O", "K", 532.0, 532.0, (492.0, 524.0)),
}

VALENCE_ELEMENTS = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu")


def get_edge(element: str) -> Edge:
    """The edge of ``element`` (case-insensitive symbol).

    Raises
    ------
    MltemError
        For an element that is not in the table.
    """
    key = str(element).strip().capitalize()
    if key not in EDGES:
        raise MltemError(f"no edge data for element '{element}'; known: {', '.join(EDGES)}")
    return EDGES[key]


def background_window(element: str, energy_ev=None, *, window_ev=None, min_width_ev: float = 4.0) -> tuple[float, float]:
    """The pre-edge window of ``element``, clipped to the recorded energy range.

    Parameters
    ----------
    element : str
    energy_ev : array_like, optional
        Energy axis, eV; the window is clipped to its range.
    window_ev : (float, float), optional
        User override (start, stop), eV.
    min_width_ev : float
        Narrowest acceptable window after clipping, eV.

    Returns
    -------
    (float, float)

    Raises
    ------
    MltemError
        If the (clipped) window is narrower than ``min_width_ev`` or reversed.
    """
    w = tuple(float(v) for v in (window_ev if window_ev is not None else get_edge(element).pre_edge_ev))
    if len(w) != 2 or w[1] <= w[0]:
        raise MltemError(f"background window must be two increasing energies E0 < E1 in eV, got {w}")
    if energy_ev is not None:
        import numpy as np

        e = np.asarray(energy_ev, dtype=float)
        w = (max(w[0], float(e.min())), min(w[1], float(e.max())))
    if w[1] - w[0] < min_width_ev:
        raise MltemError(
            f"the pre-edge background window {w[0]:.1f}-{w[1]:.1f} eV is narrower than {min_width_ev} eV inside the "
            f"recorded range; record more energy below the {element} edge or pass --background-window E0 E1"
        )
    return w
