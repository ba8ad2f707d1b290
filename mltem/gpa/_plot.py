"""The strain figure: exx, eyy, exy and rotation with diverging colour maps.

The three strain maps share one symmetric colour scale (so their magnitudes compare at a
glance); the rotation has its own, in degrees. Scales come from robust percentiles of the
reliable interior, so edge artefacts do not wash the maps out. A scale bar gives nm.
"""
from __future__ import annotations

import numpy as np

__all__ = ["plot_strain", "nice_length"]


def nice_length(target: float) -> float:
    """The 1-2-5 number closest below ``target`` (for scale bars)."""
    if not target > 0:
        raise ValueError(f"target must be > 0, got {target}")
    e = 10 ** np.floor(np.log10(target))
    for f in (5, 2, 1):
        if f * e <= target:
            return float(f * e)
    return float(e)


def _limit(values, q: float = 99.0) -> float:
    v = np.abs(values[np.isfinite(values)])
    if v.size == 0:
        return 1e-3
    lim = float(np.percentile(v, q))
    return lim if lim > 0 else 1e-3


def plot_strain(strain, *, pixel_size_nm: float = 1.0, units: str = "nm", margin_px: int = 0, title: str = "", limit=None):
    """Four-panel figure of strain maps.

    Parameters
    ----------
    strain : numpy.ndarray
        (4, y, x): exx, eyy, exy (dimensionless), rotation (rad).
    pixel_size_nm : float
        Pixel size for the scale bar (nm; or ``units`` per px).
    units : str
        Length unit of the scale bar.
    margin_px : int
        Edge band (px) where the maps are unreliable: veiled and outlined; colour
        scales come from the region more than half of it from the edges.
    title : str
        Figure title.
    limit : float, optional
        Colour limit for the three strain maps (default: 99th percentile of |strain|
        in the interior).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    strain = np.asarray(strain, dtype=float)
    if strain.ndim != 3 or strain.shape[0] != 4:
        raise ValueError(f"strain must have shape (4, y, x), got {strain.shape}")
    m, n = strain.shape[1:]
    mg = int(margin_px) if 2 * int(margin_px) < min(m, n) else 0
    # colour scales from the region at least one mask width (half the margin) inside
    h = mg // 2
    inner = strain[:, h : m - h, h : n - h]
    lim = float(limit) if limit is not None else _limit(inner[:3])
    rot_deg = np.rad2deg(strain[3])
    rlim = _limit(np.rad2deg(inner[3]))
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.3), constrained_layout=True)
    names = [r"$\varepsilon_{xx}$ (%)", r"$\varepsilon_{yy}$ (%)", r"$\varepsilon_{xy}$ (%)", r"rotation $\omega$ (deg)"]
    for i, ax in enumerate(axes):
        if i < 3:
            im = ax.imshow(100 * strain[i], cmap="RdBu_r", vmin=-100 * lim, vmax=100 * lim, interpolation="nearest")
        else:
            im = ax.imshow(rot_deg, cmap="PuOr_r", vmin=-rlim, vmax=rlim, interpolation="nearest")
        ax.set_title(names[i])
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.85)
        if mg:  # veil the edge band where GPA is unreliable
            veil = np.ones((m, n, 4))
            veil[..., 3] = 0.45
            veil[mg : m - mg, mg : n - mg, 3] = 0.0
            ax.imshow(veil, interpolation="nearest")
            ax.add_patch(Rectangle((mg - 0.5, mg - 0.5), n - 2 * mg, m - 2 * mg, fill=False, ls="--", lw=0.8, ec="0.3"))
        # scale bar, bottom left
        length = nice_length(0.25 * n * pixel_size_nm)
        px = length / pixel_size_nm
        x0, y0 = 0.05 * n, 0.93 * m
        ax.plot([x0, x0 + px], [y0, y0], color="k", lw=4, solid_capstyle="butt")
        ax.plot([x0, x0 + px], [y0, y0], color="w", lw=2, solid_capstyle="butt")
        label = f"{length:g} {units}"
        ax.text(x0 + px / 2, y0 - 0.03 * m, label, ha="center", va="bottom", color="k", fontsize=9,
                bbox=dict(facecolor="w", alpha=0.7, lw=0, pad=1))
    if title:
        fig.suptitle(title)
    return fig
