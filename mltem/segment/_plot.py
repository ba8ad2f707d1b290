"""Figures for segmentation results (matplotlib, Agg) and the overlay movie (imageio)."""
from __future__ import annotations

import numpy as np

from mltem.segment._preprocess import evenly_spaced

__all__ = ["CLASS_COLOURS", "overlay_rgb", "contact_sheet", "metrics_figure", "write_overlay_movie"]

# electrolyte (none), electrode, SEI, lithium, bubble
CLASS_COLOURS = np.array([[0, 0, 0], [60, 110, 255], [255, 170, 0], [230, 30, 60], [40, 220, 220]], np.float32) / 255
_NAMES = ("electrolyte", "electrode", "SEI", "lithium", "bubble")


def overlay_rgb(frame: np.ndarray, mask: np.ndarray, *, alpha: float = 0.4) -> np.ndarray:
    """A grey frame (1st-99th percentile stretch) with the classes tinted, (y, x, 3) in [0, 1]."""
    f = np.asarray(frame, np.float32)
    lo, hi = np.percentile(f[:: max(1, f.shape[0] // 256), :: max(1, f.shape[1] // 256)], [1, 99])
    g = np.clip((f - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat(g[..., None], 3, -1)
    m = np.asarray(mask)
    a = np.where(m > 0, alpha, 0.0)[..., None].astype(np.float32)
    out = rgb * (1 - a) + CLASS_COLOURS[np.clip(m, 0, 4)] * a
    return np.clip(out, 0.0, 1.0, out=out)  # rounding gave 1 + 3e-8, which matplotlib warns about


def contact_sheet(frames, masks, *, time_s, pixel_size_nm: float, max_frames: int = 12):
    """Evenly spaced frames with their masks overlaid, with time stamps and a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    idx = evenly_spaced(len(frames), max_frames)
    cols = min(4, len(idx))
    rows = -(-len(idx) // cols)
    h, w = frames.shape[1:]
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows * h / w + 0.4), squeeze=False)
    ext = [0, w * pixel_size_nm, h * pixel_size_nm, 0]
    for ax in axes.ravel():
        ax.axis("off")
    for ax, t in zip(axes.ravel(), idx):
        ax.imshow(overlay_rgb(frames[t], masks[t]), extent=ext)
        ax.set_title(f"frame {t}, t = {time_s[t]:.3g} s", fontsize=8)
    axes[0, 0].axis("on")
    axes[0, 0].set_xlabel("nm", fontsize=7)
    axes[0, 0].tick_params(labelsize=6)
    handles = [Patch(color=CLASS_COLOURS[c], label=_NAMES[c]) for c in range(1, 5)]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def metrics_figure(rows):
    """SEI thickness (mean with its 90 % error bound where refined, and the 10-90 % band
    along the electrode), lithium area, dendrites vs time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([r["time_s"] for r in rows], float)

    def col(k):
        return np.array([r[k] for r in rows], float)

    fig, ax = plt.subplots(1, 3, figsize=(12, 3.2))
    err = col("sei_thickness_err_nm") if rows and "sei_thickness_err_nm" in rows[0] else np.full(len(rows), np.nan)
    if np.isfinite(err).any():
        ax[0].errorbar(t, col("sei_thickness_nm"), yerr=err, fmt="o-", ms=3, capsize=2, elinewidth=0.8,
                       label="mean (90 % error bound)")
    else:
        ax[0].plot(t, col("sei_thickness_nm"), "o-", ms=3, label="mean")
    if rows and "sei_thickness_smoothed_nm" in rows[0]:
        ax[0].plot(t, col("sei_thickness_smoothed_nm"), "-", lw=1, color="k", alpha=0.6, label="3-frame median")
    ax[0].fill_between(t, col("sei_thickness_p10_nm"), col("sei_thickness_p90_nm"), alpha=0.25, label="10-90 %")
    ax[0].set_ylabel("SEI thickness (nm)")
    ax[0].legend(fontsize=7)
    ax[1].plot(t, col("lithium_area_nm2") / 1e3, "o-", ms=3, color="C3")
    ax[1].set_ylabel("lithium area (10$^3$ nm$^2$)")
    ax[2].plot(t, col("longest_dendrite_nm"), "o-", ms=3, color="C2", label="longest dendrite")
    ax[2].plot(t, col("dendrite_skeleton_nm"), "s--", ms=3, color="C4", label="total skeleton")
    ax[2].set_ylabel("length (nm)")
    ax2 = ax[2].twinx()
    ax2.step(t, col("dendrite_count"), where="mid", color="k", alpha=0.5, label="count")
    ax2.set_ylabel("dendrites")
    ax[2].legend(fontsize=7, loc="upper left")
    for a in ax:
        a.set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def write_overlay_movie(path, frames, masks, *, frame_time_s: float, max_side: int = 256, max_frames: int = 200) -> bool:
    """Write an animated GIF of the overlays (downsampled to ``max_side``); False if skipped.

    Skipped (returns False) when the movie has more than ``max_frames`` frames, to keep
    it cheap; the contact sheet is always written.
    """
    import imageio.v3 as iio

    if len(frames) > max_frames:
        return False
    step = max(1, int(np.ceil(max(frames.shape[1:]) / max_side)))
    imgs = [(overlay_rgb(f[::step, ::step], m[::step, ::step]) * 255).astype(np.uint8) for f, m in zip(frames, masks)]
    iio.imwrite(path, np.stack(imgs), duration=max(20, int(1000 * frame_time_s)), loop=0)
    return True
