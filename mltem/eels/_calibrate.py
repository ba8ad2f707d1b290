"""Energy-axis calibration from the zero-loss peak or from a known edge."""
from __future__ import annotations

import numpy as np

from mltem.eels._deconv import zlp_centre
from mltem.eels._whiteline import find_l3

__all__ = ["shift_from_zlp", "shift_from_edge", "shift_spectra"]


def shift_from_zlp(low_loss, energy_ev) -> np.ndarray:
    """Energy correction (eV) that puts each zero-loss peak at 0 eV.

    Parameters
    ----------
    low_loss : array_like
        (..., E) low-loss spectra.
    energy_ev : array_like
        (E,), eV.

    Returns
    -------
    numpy.ndarray
        (...) shift to ADD to the energy axis (``-zlp_centre``), eV.
    """
    return -zlp_centre(low_loss, energy_ev)


def shift_from_edge(signal, energy_ev, *, element: str, reference_ev: float, kind: str = "onset", **kwargs) -> np.ndarray:
    """Energy correction (eV) that puts a measured L3 onset or peak at a known energy.

    Parameters
    ----------
    signal : array_like
        (..., E) background-subtracted spectra.
    energy_ev : array_like
        (E,), eV.
    element : str
    reference_ev : float
        Where the feature must sit (e.g. the onset of a reference compound), eV.
    kind : {"onset", "peak"}
    **kwargs
        Passed to :func:`mltem.eels.find_l3`.

    Returns
    -------
    numpy.ndarray
        (...) shift to add to the energy axis, eV.
    """
    if kind not in ("onset", "peak"):
        raise ValueError(f"kind must be 'onset' or 'peak', got {kind!r}")
    pos = find_l3(signal, energy_ev, element=element, **kwargs)
    measured = pos.onset_ev if kind == "onset" else pos.peak_ev
    return reference_ev - measured


def shift_spectra(spectra, energy_ev, shift_ev) -> np.ndarray:
    """Resample spectra so that their energy axis moves by ``shift_ev`` (linear interpolation).

    The output is on the same channels ``energy_ev``; channel i of the output holds the
    input at energy ``energy_ev[i] - shift_ev`` (outside the range: edge values).

    Parameters
    ----------
    spectra : array_like
        (..., E).
    energy_ev : array_like
        (E,), eV, uniform.
    shift_ev : float or array_like
        (...) shifts, eV.

    Returns
    -------
    numpy.ndarray
        (..., E) float64.
    """
    y = np.asarray(spectra, dtype=float)
    e = np.asarray(energy_ev, dtype=float)
    de = e[1] - e[0]
    s = np.broadcast_to(np.asarray(shift_ev, float), y.shape[:-1])[..., None]
    x = (e - s - e[0]) / de
    x = np.clip(x, 0, e.size - 1)
    i0 = np.clip(np.floor(x).astype(int), 0, e.size - 2)
    t = x - i0
    return np.take_along_axis(y, i0, -1) * (1 - t) + np.take_along_axis(y, i0 + 1, -1) * t
