"""Does a movie's contrast match the detector it is segmented as?

In bright-field TEM the electrode (more mass-thickness) is darker than the electrolyte;
in annular dark-field STEM it is brighter. Each shipped network reads one contrast, and
run on the other it gives masks that look plausible but mean nothing. Two numbers read
the contrast from the movie:

- the **skew** of the (smoothed) intensities, Bowley's quartile skewness on the 10th,
  50th and 90th percentiles, ``(q90 + q10 - 2 q50) / (q90 - q10)``: the electrolyte
  fills most of the frame, so dense matter forms a dark tail in bright field (skew < 0)
  and a bright one in dark field (skew > 0);
- the **electrode contrast** of the masks: the median intensity over the pixels labelled
  electrode minus that over electrolyte, divided by the frame's 5-95 % range. A network
  finds its electrode where its own contrast puts one, so with the right detector this
  is large (beyond 0.6 either way on most simulated movies, at least 0.38), while with
  the wrong one the electrode is often not found or barely stands out.

The movie is flagged when no electrode was found, when the electrode is on the other
side of the electrolyte than the detector puts it, when the skew has the other
detector's sign beyond :data:`SKEW_LIMIT`, or when the electrode contrast is weaker than
:data:`CONTRAST_LIMIT` and the skew does not vouch for the detector
(:data:`SKEW_SUPPORT`). The limits were set on 200 simulated movies of each contrast,
segmented by both shipped networks. On 100 more scenes drawn afresh in each contrast
(liquid and open cells, a third of the liquid ones with a step electrode edge, 10-600
e/px, 3-7 nm/px, 12 frames of 256 x 256; ``benchmarks/README_segment.md``) it flagged 2
of the 200 runs with the right detector and 196 of the 200 with the wrong one. A frame
dominated by the electrode turns the skew around, so the result is a note for the user,
not an error.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from mltem._physics import DETECTOR_NAMES, DETECTORS, check_detector
from mltem.segment._preprocess import evenly_spaced

__all__ = ["CONTRAST_LIMIT", "SKEW_LIMIT", "SKEW_SUPPORT", "contrast_mismatch", "contrast_note", "contrast_statistics"]

#: Smallest electrode contrast (with the detector's sign) taken as that detector's.
CONTRAST_LIMIT = 0.4
#: Skew (with the detector's sign) below which the movie reads as the other detector's.
SKEW_LIMIT = -0.2
#: Skew (with the detector's sign) that vouches for a weak electrode contrast.
SKEW_SUPPORT = 0.2
#: Frames read, evenly spaced over the movie.
N_FRAMES = 8
#: Smallest share of a frame labelled electrode (and electrolyte) for its contrast to count.
MIN_SHARE = 0.005
_SIGN = {"bf": -1.0, "haadf": 1.0}  # the sign of dense matter's contrast


def contrast_statistics(frames: np.ndarray, masks: np.ndarray, *, among=None, sigma_px: float = 1.5):
    """(electrode contrast, skew) of a movie: medians over up to :data:`N_FRAMES`
    frames spaced evenly through it.

    Parameters
    ----------
    frames : numpy.ndarray
        (frame, y, x) or (y, x) raw intensities.
    masks : numpy.ndarray
        Classes of the same shape (1 electrode, 0 electrolyte).
    among : sequence of int, optional
        The frames that may be read (default all), e.g. those a long movie has loaded.
    sigma_px : float
        Gaussian smoothing of the frames first (shot noise), px.

    Returns
    -------
    tuple
        ``(contrast, skew)``; contrast is None where no frame has both an electrode and
        electrolyte (each at least :data:`MIN_SHARE` of it), skew None where every frame
        is flat.
    """
    f = np.asarray(frames)
    m = np.asarray(masks)
    if f.ndim == 2:
        f, m = f[None], m[None]
    if f.shape != m.shape:
        raise ValueError(f"frames and masks shapes differ: {f.shape} vs {m.shape}")
    among = np.arange(len(f)) if among is None else np.asarray(among)
    contrasts, skews = [], []
    for i in among[evenly_spaced(len(among), N_FRAMES)]:
        g = ndi.gaussian_filter(np.nan_to_num(f[i].astype(np.float32)), sigma_px)
        q5, q10, q50, q90, q95 = np.percentile(g, [5, 10, 50, 90, 95])
        if q90 > q10:
            skews.append((q90 + q10 - 2 * q50) / (q90 - q10))
        electrode, electrolyte = m[i] == 1, m[i] == 0
        if q95 > q5 and electrode.mean() >= MIN_SHARE and electrolyte.mean() >= MIN_SHARE:
            contrasts.append((np.median(g[electrode]) - np.median(g[electrolyte])) / (q95 - q5))
    return (float(np.median(contrasts)) if contrasts else None, float(np.median(skews)) if skews else None)


def contrast_note(contrast: float | None, skew: float | None, detector: str) -> str | None:
    """The note for :func:`contrast_statistics`' numbers where they look like the other
    detector's contrast (see the module's description), else None."""
    sign = _SIGN[check_detector(detector)]
    c = None if contrast is None else sign * contrast
    k = None if skew is None else sign * skew
    why = []
    if c is None:
        why.append("no electrode was found")
    elif c < 0:
        why.append(f"the electrode is {'brighter' if contrast > 0 else 'darker'} than the electrolyte")
    elif c < CONTRAST_LIMIT and (k is None or k < SKEW_SUPPORT):
        why.append(f"the electrode stands out from the electrolyte by only {c:.2f} of the intensity range")
    if k is not None and k < SKEW_LIMIT:
        why.append(f"the intensities are skewed towards {'bright' if skew > 0 else 'dark'} (skew {skew:+.2f})")
    if not why:
        return None
    other = next(d for d in DETECTORS if d != detector)
    return (f"the movie may not be {DETECTOR_NAMES[detector]} ({'; '.join(why)}): if it is "
            f"{DETECTOR_NAMES[other]}, segment it with --detector {other}")


def contrast_mismatch(frames: np.ndarray, masks: np.ndarray, detector: str, *, among=None) -> str | None:
    """A note for the user where the movie's contrast looks like the other detector's,
    else None: :func:`contrast_note` of :func:`contrast_statistics`."""
    check_detector(detector)
    return contrast_note(*contrast_statistics(frames, masks, among=among), detector)
