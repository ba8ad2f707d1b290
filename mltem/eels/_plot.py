"""Figures of valence results (matplotlib, Agg). Plotting only; no maths here."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_valence_spectrum", "plot_valence_maps"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_valence_spectrum(energy_ev, signal, result, index: int = 0, *, element: str, title: str = ""):
    """One background-subtracted spectrum with its Pearson double step and the network's answer.

    Parameters
    ----------
    energy_ev : numpy.ndarray
        (E,), eV.
    signal : numpy.ndarray
        (N, E) background-subtracted spectra.
    result : ValenceResult
        Flattened per-spectrum results (leading shape (N,)).
    index : int
        Which spectrum.
    element : str
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from mltem.eels._whiteline import double_step

    plt = _plt()
    s = signal[index]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(energy_ev, s, lw=1, color="k", label="background-subtracted")
    l3 = float(result.l3_peak_ev.reshape(-1)[index])
    l2 = float(result.l2_peak_ev.reshape(-1)[index])
    if np.isfinite(l3) and np.isfinite(l2):
        cw = (energy_ev >= l2 + 12) & (energy_ev <= l2 + 22)
        h = float(s[cw].mean()) if cw.any() else 0.0
        ax.plot(energy_ev, double_step(energy_ev, l3, l2, h), color="tab:orange", lw=1, label="double-step continuum")
        for x in (l3, l2):
            ax.axvline(x, color="tab:gray", lw=0.5, ls=":")
    on = float(result.l3_onset_ev.reshape(-1)[index])
    if np.isfinite(on):
        ax.axvline(on, color="tab:green", lw=0.8, ls="--", label=f"L3 onset {on:.1f} eV")
    fr = result.fractions.reshape(-1, len(result.valences))[index]
    txt = f"valence {float(result.valence.reshape(-1)[index]):.2f}\n" + "\n".join(
        f"{el}{v}+: {f:.2f}" for el, v, f in zip([element] * len(fr), result.valences, fr)
    ) + f"\nL3/L2 {float(result.l3_l2_ratio.reshape(-1)[index]):.2f}\nreliability {float(result.reliability.reshape(-1)[index]):.2f}"
    ax.text(0.98, 0.95, txt, transform=ax.transAxes, ha="right", va="top", fontsize=8, family="monospace",
            bbox=dict(boxstyle="round", fc="white", ec="0.7"))
    ax.set_xlabel("energy loss (eV)")
    ax.set_ylabel("intensity")
    ax.set_title(title or f"{element} L2,3")
    ax.legend(loc="upper left", fontsize=7)
    lo = on - 15 if np.isfinite(on) else energy_ev[0]
    ax.set_xlim(max(energy_ev[0], lo), min(energy_ev[-1], (l2 if np.isfinite(l2) else lo + 40) + 25))
    return fig


def plot_valence_maps(maps: dict, *, extent=None, units: str = "px", title: str = ""):
    """Side-by-side maps (valence, L3/L2 ratio, onset, reliability) of a spectrum image.

    Parameters
    ----------
    maps : dict of str -> numpy.ndarray
        (ny, nx) maps by name.
    extent : list, optional
        imshow extent in ``units``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    names = list(maps)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        m = np.atleast_2d(maps[name])
        im = ax.imshow(m, cmap="viridis" if name != "valence" else "coolwarm", extent=extent, aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(units)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
