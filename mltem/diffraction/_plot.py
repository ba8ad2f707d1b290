"""Figures of indexed patterns (matplotlib, Agg): overlays and the run summary."""
from __future__ import annotations

import numpy as np

__all__ = ["overlay_figure", "summary_figure"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def overlay_figure(image, result, phase=None, *, pixel_size_inv_nm: float, title: str = "", max_labels: int = 14,
                   energy_ev: float = 200e3):
    """The pattern (log scale) with the indexed spots circled and labelled (hkl).

    Parameters
    ----------
    image : numpy.ndarray
        (y, x) counts.
    result : IndexResult
    phase : Phase, optional
        The matched phase (None for an unmatched pattern).
    pixel_size_inv_nm : float
        Calibration from the file; the refined one is ``pixel_size_inv_nm * result.scale``.
    title : str
    max_labels : int
        Label at most this many of the strongest spots.
    energy_ev : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    from mltem.diffraction._kinematic import simulate_spots

    plt = _plt()
    img = np.asarray(image, float)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(np.log1p(np.clip(img - np.percentile(img, 1), 0, None)), cmap="gray")
    cy, cx = result.centre_yx
    ax.plot(cx, cy, "+", color="cyan", ms=10)
    if phase is not None and result.phase != "none":
        px = pixel_size_inv_nm * result.scale
        gmax = px * np.hypot(*img.shape) / 2
        sp = simulate_spots(phase, result.zone, np.radians(result.inplane_deg), g_max_inv_nm=gmax, thickness_nm=15.0,
                            energy_ev=energy_ev)
        xy = sp.xy_inv_nm / px + [cx, cy]
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < img.shape[1]) & (xy[:, 1] >= 0) & (xy[:, 1] < img.shape[0])
        xy, hkl, inten = xy[inside], sp.hkl[inside], sp.intensity[inside]
        ax.scatter(xy[:, 0], xy[:, 1], s=60, facecolors="none", edgecolors="orange", linewidths=0.8)
        order = np.argsort(np.hypot(xy[:, 0] - cx, xy[:, 1] - cy) - 1e-3 * inten / max(inten.max(), 1e-12))
        for i in order[:max_labels]:
            h, k, l = (int(v) for v in hkl[i])
            ax.annotate(f"({h} {k} {l})", xy[i], xytext=(3, 3),
                        textcoords="offset points", color="yellow", fontsize=6)
        label = f"{result.phase} [{' '.join(str(v) for v in result.zone)}]  {result.inplane_deg:.1f}\u00b0"
    else:
        label = "no match"
    ax.set_title(f"{title}\n{label}  score {result.score:.2f}  rel. {result.reliability:.2f}", fontsize=8)
    ax.set_axis_off()
    return fig


def summary_figure(rows):
    """Counts per phase and zone, and score against reliability, for a table of results.

    Parameters
    ----------
    rows : list of dict
        Rows of ``index.csv``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    labels = [f"{r['phase']} [{r['zone_u']} {r['zone_v']} {r['zone_w']}]" if r["phase"] != "none" else "none" for r in rows]
    uniq, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts)[:20]
    a1.barh([uniq[i] for i in order][::-1], counts[order][::-1], color="tab:blue")
    a1.set_xlabel("patterns")
    a1.set_title("phase and zone axis", fontsize=9)
    sc = np.array([r["score"] for r in rows], float)
    rel = np.array([r["reliability"] for r in rows], float)
    none = np.array([r["phase"] == "none" for r in rows])
    a2.scatter(sc[~none], rel[~none], s=12, label="indexed")
    a2.scatter(sc[none], rel[none], s=12, c="tab:red", label="no match")
    a2.set_xlabel("score")
    a2.set_ylabel("reliability")
    a2.legend(fontsize=8)
    a2.set_title(f"{len(rows)} patterns", fontsize=9)
    fig.tight_layout()
    return fig
