"""Figures of holography results: maps with colour bars and scale bars, profiles."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_maps", "plot_profile"]


def _scale_bar(ax, pixel_size_nm: float | None, width_px: int, color: str = "white") -> None:
    if not pixel_size_nm:
        return
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    target = width_px * pixel_size_nm / 5
    nice = [1, 2, 5]
    exp = 10 ** np.floor(np.log10(target))
    length = max(m * exp for m in nice if m * exp <= target) if target >= exp else exp
    label = f"{length:g} nm" if length < 1000 else f"{length / 1000:g} µm"
    bar = AnchoredSizeBar(ax.transData, length / pixel_size_nm, label, "lower right", pad=0.4, color=color,
                          frameon=False, size_vertical=max(1, width_px / 100))
    ax.add_artist(bar)


def plot_maps(maps, *, pixel_size_nm: float | None = None, title: str = "", profile=None):
    """Panels of maps, each with a colour bar and a scale bar.

    Parameters
    ----------
    maps : list of tuple
        (array (y, x), colour-bar label, colormap) per panel.
    pixel_size_nm : float, optional
        Pixel size for the scale bar (none drawn without it).
    title : str
        Figure title.
    profile : tuple, optional
        (y0, x0, y1, x1, width) in pixels: the profile rectangle drawn on every panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(maps)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.2), squeeze=False)
    for ax, (arr, label, cmap) in zip(axes[0], maps):
        a = np.asarray(arr, dtype=float)
        finite = a[np.isfinite(a)]
        lo, hi = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0, 1))
        if cmap == "RdBu_r":
            m = max(abs(lo), abs(hi)) or 1.0
            lo, hi = -m, m
        im = ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label=label)
        ax.set_xticks([])
        ax.set_yticks([])
        _scale_bar(ax, pixel_size_nm, a.shape[1], "black" if cmap == "RdBu_r" else "white")
        if profile is not None:
            y0, x0, y1, x1, w = profile
            d = np.array([y1 - y0, x1 - x0], float)
            nrm = np.array([-d[1], d[0]]) / (np.hypot(*d) or 1) * w / 2
            corners = np.array([[y0, x0], [y1, x1], [y1, x1], [y0, x0], [y0, x0]], float)
            corners += np.array([nrm, nrm, -nrm, -nrm, nrm])
            ax.plot(corners[:, 1], corners[:, 0], color="yellow", lw=1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_profile(distance_nm, columns, *, title: str = ""):
    """Profile plot: one axis per quantity against distance.

    Parameters
    ----------
    distance_nm : numpy.ndarray
        Distance along the profile, nm.
    columns : list of tuple
        (values, label) per quantity; values (n,) or (frames, n).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(columns), 1, figsize=(6, 2.4 * len(columns)), sharex=True, squeeze=False)
    for ax, (vals, label) in zip(axes[:, 0], columns):
        v = np.atleast_2d(vals)
        for i, row in enumerate(v):
            ax.plot(distance_nm, row, lw=1, label=f"frame {i}" if len(v) > 1 else None)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if 1 < len(v) <= 10:
            ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("distance (nm)")
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    return fig
