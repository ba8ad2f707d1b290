"""A constant-velocity Kalman filter and Rauch-Tung-Striebel smoother for front positions."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["KalmanTrack", "kalman_smooth", "measurement_noise"]


@dataclass
class KalmanTrack:
    """Smoothed front trajectory.

    Attributes
    ----------
    position, position_std : numpy.ndarray
        (frame,) smoothed position and its standard deviation (units of the input).
    velocity, velocity_std : numpy.ndarray
        (frame,) velocity and its standard deviation (input units per time unit).
    measurement_std : float
        Measurement noise used (given or estimated).
    process_noise : float
        Acceleration noise density ``q`` used (given or chosen by maximum likelihood).
    log_likelihood : float
        Innovation log-likelihood of the measurements under the model.
    """

    position: np.ndarray
    position_std: np.ndarray
    velocity: np.ndarray
    velocity_std: np.ndarray
    measurement_std: float
    process_noise: float
    log_likelihood: float


def measurement_noise(z) -> float:
    """Noise of a smooth trajectory's measurements from its second differences.

    ``z[i-1] - 2 z[i] + z[i+1]`` of independent noise of std sigma has variance
    ``6 sigma^2``; the median absolute value makes the estimate robust to jumps.

    Parameters
    ----------
    z : array_like
        (frame,) measurements; NaN are skipped.

    Returns
    -------
    float
        Estimated sigma (>= 1e-6).
    """
    z = np.asarray(z, dtype=float)
    z = z[np.isfinite(z)]
    if len(z) < 4:
        return 1.0
    d2 = z[:-2] - 2 * z[1:-1] + z[2:]
    return max(float(np.median(np.abs(d2)) / 0.6745 / math.sqrt(6)), 1e-6)


def _run(t, z, r2, q):
    """Forward filter and RTS smoother in plain floats (fast for short 2-state models)."""
    n = len(t)
    xf = np.zeros((n, 2))
    Pf = np.zeros((n, 2, 2))
    xp_all = np.zeros((n, 2))
    Pp_all = np.zeros((n, 2, 2))
    first = int(np.argmax(np.isfinite(z)))
    x0, x1 = z[first], 0.0
    p00, p01, p11 = r2, 0.0, 1e6 * (r2 + 1.0)
    ll = 0.0
    for i in range(n):
        if i > 0:
            dt = t[i] - t[i - 1]
            x0 = x0 + dt * x1
            q00, q01, q11 = q * dt**3 / 3, q * dt**2 / 2, q * dt
            p00, p01, p11 = p00 + 2 * dt * p01 + dt * dt * p11 + q00, p01 + dt * p11 + q01, p11 + q11
        xp_all[i] = x0, x1
        Pp_all[i] = [[p00, p01], [p01, p11]]
        zi = z[i]
        if np.isfinite(zi):
            s = p00 + r2
            innov = zi - x0
            k0, k1 = p00 / s, p01 / s
            x0, x1 = x0 + k0 * innov, x1 + k1 * innov
            p00, p01, p11 = (1 - k0) * p00, (1 - k0) * p01, p11 - k1 * p01
            if i > first:
                ll += -0.5 * (math.log(2 * math.pi * s) + innov * innov / s)
        xf[i] = x0, x1
        Pf[i] = [[p00, p01], [p01, p11]]
    xs, Ps = xf.copy(), Pf.copy()
    for i in range(n - 2, -1, -1):
        dt = t[i + 1] - t[i]
        F = np.array([[1.0, dt], [0.0, 1.0]])
        G = Pf[i] @ F.T @ np.linalg.inv(Pp_all[i + 1])
        xs[i] = xf[i] + G @ (xs[i + 1] - xp_all[i + 1])
        Ps[i] = Pf[i] + G @ (Ps[i + 1] - Pp_all[i + 1]) @ G.T
    return xs, Ps, ll


def kalman_smooth(time_s, z, *, measurement_std: float | None = None, process_noise: float | None = None) -> KalmanTrack:
    """Smooth measured front positions with a constant-velocity motion model.

    State ``(x, v)``; between frames ``x += v dt`` and the velocity takes white
    acceleration noise of density ``q`` (covariance ``q [[dt^3/3, dt^2/2], [dt^2/2, dt]]``).
    The forward Kalman filter is followed by a Rauch-Tung-Striebel smoother, so every
    frame uses all measurements; the reported std is the smoothed posterior's.

    Parameters
    ----------
    time_s : array_like
        (frame,) increasing times.
    z : array_like
        (frame,) measured positions; NaN marks a frame without a measurement.
    measurement_std : float, optional
        Measurement noise (position units). Default: :func:`measurement_noise`.
    process_noise : float, optional
        ``q`` in position^2 / time^3. Default: the maximum-likelihood value on a log grid.

    Returns
    -------
    KalmanTrack

    References
    ----------
    H. E. Rauch, F. Tung, C. T. Striebel, AIAA J. 3, 1445 (1965), :DOI:`10.2514/3.3166`.
    """
    t = np.asarray(time_s, dtype=float)
    z = np.asarray(z, dtype=float)
    if t.ndim != 1 or t.shape != z.shape:
        raise ValueError(f"time_s and z must be 1D of the same length, got {t.shape} and {z.shape}")
    if len(t) < 2 or np.any(np.diff(t) <= 0):
        raise ValueError("time_s must hold at least 2 strictly increasing times")
    if not np.isfinite(z).any():
        raise ValueError("z holds no finite measurement")
    sigma = measurement_noise(z) if measurement_std is None else float(measurement_std)
    if not sigma > 0:
        raise ValueError(f"measurement_std must be > 0, got {measurement_std}")
    r2 = sigma**2
    if process_noise is None:
        zf = z[np.isfinite(z)]
        span = max(float(t[-1] - t[0]), 1e-9)
        scale = max(float(np.ptp(zf)), sigma) / span**2  # typical acceleration
        best = None
        for q in scale**2 * span * np.logspace(-4, 4, 17):
            ll = _run(t, z, r2, q)[2]
            if best is None or ll > best[1]:
                best = (q, ll)
        q = best[0]
    else:
        q = float(process_noise)
        if not q > 0:
            raise ValueError(f"process_noise must be > 0, got {process_noise}")
    xs, Ps, ll = _run(t, z, r2, q)
    return KalmanTrack(
        position=xs[:, 0], position_std=np.sqrt(np.clip(Ps[:, 0, 0], 0, None)),
        velocity=xs[:, 1], velocity_std=np.sqrt(np.clip(Ps[:, 1, 1], 0, None)),
        measurement_std=sigma, process_noise=float(q), log_likelihood=float(ll),
    )
