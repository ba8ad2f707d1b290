"""Figures of a tracked front: kymograph with the front and the growth-law fit."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_kymograph"]


def plot_kymograph(track, fit=None, *, title: str = ""):
    """Kymograph (position along the axis vs time) with the measured front, the Kalman
    track (+-2 sigma), the fit ``x0 + k (t - t0)^n``, and the velocity vs time.

    Parameters
    ----------
    track : FrontTrack
    fit : KineticsFit, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = track.time_s
    px = track.pixel_size_nm
    K = track.kymograph
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1.4, 1]})
    dt = float(t[1] - t[0]) if len(t) > 1 else 1.0
    a0.imshow(K, aspect="auto", cmap="gray", origin="upper",
              extent=[-0.5 * px, (K.shape[1] - 0.5) * px, t[-1] + dt / 2, t[0] - dt / 2])
    a0.plot(track.measured_nm, t, ".", color="tab:orange", ms=3, label="measured")
    a0.plot(track.position_nm, t, "-", color="tab:cyan", lw=1, label="Kalman")
    if fit is not None and np.isfinite(fit.n):
        tt = np.linspace(t[0], t[-1], 200)
        a0.plot(fit.predict(tt), tt, "--", color="tab:red", lw=1.2, label=f"fit n={fit.n:.2f}")
    a0.set_xlabel("position along the axis (nm)" if track.axis.geometry != "core-shell" else "depth below the surface (nm)")
    a0.set_ylabel("time (s)")
    a0.legend(loc="lower right", fontsize=7)
    a0.set_title(title or f"kymograph ({track.method}, {track.mode})", fontsize=9)
    s = track.position_std_nm
    a1.fill_between(t, track.position_nm - 2 * s, track.position_nm + 2 * s, color="tab:cyan", alpha=0.3, label="Kalman +-2 sigma")
    a1.plot(t, track.measured_nm, ".", color="tab:orange", ms=3, label="measured")
    if fit is not None and np.isfinite(fit.n):
        lo, hi = fit.ci.get("n", (np.nan, np.nan))
        a1.plot(tt, fit.predict(tt), "--", color="tab:red",
                label=f"x0 + k (t-t0)^n, n = {fit.n:.2f} [{lo:.2f}, {hi:.2f}]\n{fit.verdict}")
    a1.set_xlabel("time (s)")
    a1.set_ylabel("front position (nm)")
    a1.legend(fontsize=7, loc="upper left")
    av = a1.twinx()
    av.plot(t, track.velocity_nm_s, "-", color="tab:green", lw=0.8)
    av.set_ylabel("velocity (nm/s)", color="tab:green")
    av.tick_params(axis="y", colors="tab:green")
    fig.tight_layout()
    return fig
