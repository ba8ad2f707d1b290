"""Growth-law kinetics: fit ``x = x0 + k (t - t0)^n`` with confidence intervals."""
from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

__all__ = ["KineticsFit", "fit_growth_law", "growth_verdict", "MIN_POINTS_RELIABLE"]

log = logging.getLogger(__name__)

#: Below this many points the fit is made but flagged as poorly constrained.
MIN_POINTS_RELIABLE = 10


@dataclass
class KineticsFit:
    """Result of :func:`fit_growth_law` (lengths in the units of ``x``, times in s).

    Attributes
    ----------
    n, k, x0, t0 : float
        Exponent, rate (length / s^n), position at ``t0`` and start time (NaN if the fit
        failed).
    ci : dict
        name -> (low, high) confidence interval from the covariance (Student t).
    bootstrap_ci : dict
        name -> (low, high) percentile interval from a residual bootstrap (empty if off).
    fixed : dict
        Parameters held fixed.
    confidence : float
    residual_std : float
    n_points : int
    verdict : str
        See :func:`growth_verdict`.
    warnings : list of str
    autocorrelation : float
        Lag-1 autocorrelation of the residuals used by the AR(1) noise model (0: none).
    """

    n: float
    k: float
    x0: float
    t0: float
    ci: dict = field(default_factory=dict)
    bootstrap_ci: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)
    confidence: float = 0.95
    residual_std: float = float("nan")
    n_points: int = 0
    verdict: str = "undetermined"
    warnings: list = field(default_factory=list)
    autocorrelation: float = 0.0

    def predict(self, t) -> np.ndarray:
        """Fitted position at times ``t`` (s)."""
        return _model(np.asarray(t, float), self.x0, self.k, self.t0, self.n)

    def velocity(self, t) -> np.ndarray:
        """Fitted velocity ``k n (t - t0)^(n-1)`` at times ``t`` (NaN at and before ``t0``)."""
        dt = np.asarray(t, float) - self.t0
        with np.errstate(divide="ignore", invalid="ignore"):
            v = self.k * self.n * np.where(dt > 0, dt, np.nan) ** (self.n - 1)
        return v

    def to_dict(self) -> dict:
        def interval(name):
            return list(self.ci.get(name, (None, None)))

        return {
            "exponent": self.n, "n": self.n, "rate": self.k, "k": self.k, "x0": self.x0, "t0_s": self.t0,
            "confidence": self.confidence,
            "ci": {p: interval(p) for p in ("n", "k", "x0", "t0")},
            "bootstrap_ci": {p: list(v) for p, v in self.bootstrap_ci.items()},
            "fixed": self.fixed, "residual_std": self.residual_std, "autocorrelation": self.autocorrelation,
            "n_points": self.n_points,
            "verdict": self.verdict, "warning": "; ".join(self.warnings) if self.warnings else None,
        }


def _model(t, x0, k, t0, n):
    dt = np.clip(t - t0, 0.0, None)
    return x0 + k * dt**n


def growth_verdict(n_ci) -> str:
    """Name the growth law from the exponent's confidence interval.

    ``"diffusion-controlled"`` if the interval holds 0.5 but not 1, ``"reaction-controlled"``
    if it holds 1 but not 0.5, ``"mixed"`` if it lies between them, ``"sub-diffusive"``
    below 0.5, ``"accelerating"`` above 1, ``"undetermined"`` if it holds both (or is NaN).
    """
    lo, hi = (float(v) if v is not None else float("nan") for v in n_ci)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "undetermined"
    has_d, has_r = lo <= 0.5 <= hi, lo <= 1.0 <= hi
    if has_d and has_r:
        return "undetermined"
    if has_d:
        return "diffusion-controlled"
    if has_r:
        return "reaction-controlled"
    if hi < 0.5:
        return "sub-diffusive"
    if lo > 1.0:
        return "accelerating"
    return "mixed"


def fit_growth_law(
    time_s,
    x,
    *,
    sigma=None,
    t0="first",
    x0="fit",
    confidence: float = 0.95,
    residuals: str = "ar1",
    bootstrap: int = 200,
    seed: int = 0,
) -> KineticsFit:
    """Fit ``x = x0 + k (t - t0)^n`` to front positions.

    Parameters
    ----------
    time_s : array_like
        (frame,) times in s.
    x : array_like
        (frame,) positions (any length unit); NaN are dropped.
    sigma : array_like, optional
        (frame,) position uncertainties (weights).
    t0 : "first", "fit" or float
        Reaction start: the first time (default), a free parameter, or a fixed value in s.
        ``x0`` and ``t0`` are nearly degenerate: fix one of them when you can.
    x0 : "fit" or float
        Position at ``t0``: free (default) or fixed.
    confidence : float
        Level of the confidence intervals.
    residuals : {"ar1", "independent"}
        Noise model of the residuals. ``"ar1"`` (default): fronts fluctuate about the law with
        memory (stalls and catch-ups span several frames), so the lag-1 autocorrelation
        ``rho`` of the least-squares residuals is estimated and, if positive, the fit is
        redone on prewhitened residuals ``e[i] - rho e[i-1]`` (generalised least squares).
        That weights the law's shape over the fluctuations' and gives intervals that are
        not too narrow. ``"independent"``: ordinary (weighted) least squares.
    bootstrap : int
        Residual-bootstrap resamples for percentile intervals (0: none); with the AR(1)
        model the whitened innovations are resampled and re-coloured.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    KineticsFit
        Always returned; a failed or poorly constrained fit carries ``warnings``.
    """
    t = np.asarray(time_s, dtype=float)
    x = np.asarray(x, dtype=float)
    if t.ndim != 1 or t.shape != x.shape:
        raise ValueError(f"time_s and x must be 1D of the same length, got {t.shape} and {x.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if not (t0 in ("first", "fit") or isinstance(t0, (int, float))):
        raise ValueError(f"t0 must be 'first', 'fit' or a number, got {t0!r}")
    if not (x0 == "fit" or isinstance(x0, (int, float))):
        raise ValueError(f"x0 must be 'fit' or a number, got {x0!r}")
    if residuals not in ("ar1", "independent"):
        raise ValueError(f"residuals must be 'ar1' or 'independent', got {residuals!r}")
    ok = np.isfinite(t) & np.isfinite(x)
    w = None
    if sigma is not None:
        w = np.asarray(sigma, dtype=float)
        if w.shape != x.shape:
            raise ValueError(f"sigma must have the shape of x {x.shape}, got {w.shape}")
        ok &= np.isfinite(w) & (w > 0)
    order = np.argsort(t[ok], kind="stable")
    t, x = t[ok][order], x[ok][order]
    w = None if w is None else w[ok][order]
    warn = []
    nan = float("nan")
    fixed = {}
    if len(t) == 0:
        return KineticsFit(nan, nan, nan, nan, n_points=0, warnings=["no finite positions: nothing to fit"])
    t0v = float(t.min()) if t0 == "first" else (None if t0 == "fit" else float(t0))
    if t0v is not None:
        fixed["t0"] = t0v
    if x0 != "fit":
        fixed["x0"] = float(x0)
    free = [p for p in ("x0", "k", "t0", "n") if p not in fixed]
    npar = len(free)
    if len(t) <= npar:
        return KineticsFit(nan, nan, nan if "x0" not in fixed else fixed["x0"], nan if t0v is None else t0v,
                           fixed=fixed, n_points=len(t),
                           warnings=[f"only {len(t)} positions for {npar} free parameters: no fit"])
    if len(t) < MIN_POINTS_RELIABLE:
        warn.append(f"only {len(t)} positions: the exponent is poorly constrained (want >= {MIN_POINTS_RELIABLE})")

    def full(p):
        d = dict(fixed)
        d.update(zip(free, p))
        return d

    def f(tt, *p):
        d = full(p)
        return _model(tt, d["x0"], d["k"], d["t0"], d["n"])

    span = max(float(np.ptp(t)), 1e-9)
    lo_b = {"x0": -np.inf, "k": -np.inf, "t0": float(t.min()) - 10 * span, "n": 0.05}
    hi_b = {"x0": np.inf, "k": np.inf, "t0": float(t.min()) - 1e-9 * span, "n": 3.0}
    bounds = ([lo_b[p] for p in free], [hi_b[p] for p in free])
    best = None
    for n_start in (0.5, 1.0, 0.3, 1.5):
        tt0 = t0v if t0v is not None else float(t.min()) - 0.05 * span
        xx0 = fixed.get("x0", float(x[np.argmin(t)]))
        dtm = max(float(t.max() - tt0), 1e-9)
        k_start = (float(x[np.argmax(t)]) - xx0) / dtm**n_start
        start = {"x0": xx0, "k": k_start, "t0": tt0, "n": n_start}
        p0 = [float(np.clip(start[p], lo_b[p] + 1e-9 if np.isfinite(lo_b[p]) else -np.inf,
                            hi_b[p] - 1e-9 if np.isfinite(hi_b[p]) else np.inf)) for p in free]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, cov = optimize.curve_fit(f, t, x, p0=p0, sigma=w, bounds=bounds, maxfev=20000)
        except (RuntimeError, ValueError) as exc:
            log.debug("growth-law fit from n=%s failed: %s", n_start, exc)
            continue
        r = (x - f(t, *p)) / (1.0 if w is None else w)
        sse = float(r @ r)
        if best is None or sse < best[2]:
            best = (p, cov, sse)
    if best is None:
        return KineticsFit(nan, nan, fixed.get("x0", nan), nan if t0v is None else t0v, fixed=fixed,
                           n_points=len(t), warnings=warn + ["the least-squares fit did not converge"])
    p, cov, sse = best
    rho = 0.0
    if residuals == "ar1" and len(t) >= 2 * npar + 4:
        p, cov, rho = _refit_ar1(f, t, x, w, p, cov, bounds)
    d = full(p)
    dof = len(t) - npar
    tq = stats.t.ppf(0.5 + confidence / 2, dof)
    ci = {}
    perr = np.sqrt(np.clip(np.diag(cov), 0, None)) if np.all(np.isfinite(cov)) else np.full(npar, np.nan)
    for name, val, e in zip(free, p, perr):
        ci[name] = (float(val - tq * e), float(val + tq * e))
    for name, val in fixed.items():
        ci[name] = (val, val)
    if not np.all(np.isfinite(perr)):
        warn.append("the covariance could not be estimated (parameters are degenerate)")
    resid = x - f(t, *p)
    boot = {}
    if bootstrap > 0 and dof >= 2:
        rng = np.random.default_rng(seed)
        fitted = f(t, *p)
        scale = 1.0 if w is None else w
        innov = _whiten(resid / scale, rho)
        samples = []
        for _ in range(int(bootstrap)):
            eb = _colour(rng.choice(innov, size=len(innov), replace=True), rho) * scale
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pb = _least_squares(f, t, fitted + eb, w, p, bounds, rho)[0]
                samples.append(pb)
            except (RuntimeError, ValueError):
                continue
        if len(samples) >= 20:
            S = np.array(samples)
            a = 100 * (1 - confidence) / 2
            for j, name in enumerate(free):
                boot[name] = (float(np.percentile(S[:, j], a)), float(np.percentile(S[:, j], 100 - a)))
    n_ci = ci.get("n", (nan, nan))
    return KineticsFit(
        n=float(d["n"]), k=float(d["k"]), x0=float(d["x0"]), t0=float(d["t0"]), ci=ci, bootstrap_ci=boot,
        fixed=fixed, confidence=confidence, residual_std=float(np.std(resid, ddof=min(npar, len(t) - 1))),
        n_points=len(t), verdict=growth_verdict(n_ci), warnings=warn, autocorrelation=float(rho),
    )


def _whiten(e: np.ndarray, rho: float) -> np.ndarray:
    """AR(1) prewhitening (Prais-Winsten): first point scaled by sqrt(1 - rho^2)."""
    if rho == 0.0:
        return e
    return np.concatenate([e[:1] * math.sqrt(1.0 - rho**2), e[1:] - rho * e[:-1]])


def _colour(u: np.ndarray, rho: float) -> np.ndarray:
    """Inverse of :func:`_whiten`."""
    if rho == 0.0:
        return u
    e = np.empty_like(u)
    e[0] = u[0] / math.sqrt(1.0 - rho**2)
    for i in range(1, len(u)):
        e[i] = rho * e[i - 1] + u[i]
    return e


def _least_squares(f, t, x, w, p0, bounds, rho):
    """Fit ``f`` by least squares on AR(1)-whitened, weighted residuals; (p, cov, sse)."""
    scale = 1.0 if w is None else w
    lo, hi = (np.asarray(b, float) for b in bounds)
    with np.errstate(invalid="ignore"):
        inner_lo = np.where(np.isfinite(lo), lo + 1e-9 * (1 + np.abs(lo)), lo)
        inner_hi = np.where(np.isfinite(hi), hi - 1e-9 * (1 + np.abs(hi)), hi)
    p0 = np.clip(np.asarray(p0, float), inner_lo, inner_hi)

    def res(q):
        return _whiten((x - f(t, *q)) / scale, rho)

    sol = optimize.least_squares(res, p0, bounds=(lo, hi), x_scale="jac", max_nfev=5000)
    r = sol.fun
    dof = max(len(t) - len(p0), 1)
    J = sol.jac
    try:
        cov = np.linalg.pinv(J.T @ J) * float(r @ r) / dof
    except np.linalg.LinAlgError:
        cov = np.full((len(p0), len(p0)), np.nan)
    return sol.x, cov, float(r @ r)


def _refit_ar1(f, t, x, w, p, cov, bounds, iterations: int = 3):
    """Generalised least squares with AR(1) residuals, starting from the OLS fit ``p``.

    The lag-1 autocorrelation is estimated from the residuals (clipped to 0 .. 0.95) and the
    fit redone on whitened residuals, a few times. Returns (p, cov, rho); ``rho = 0`` leaves
    the OLS result unchanged.
    """
    scale = 1.0 if w is None else w
    rho = 0.0
    for _ in range(iterations):
        e = (x - f(t, *p)) / scale
        den = float(e[:-1] @ e[:-1])
        new = float(np.clip((e[1:] @ e[:-1]) / den, 0.0, 0.95)) if den > 0 else 0.0
        if new < 0.05 and rho == 0.0:
            return p, cov, 0.0
        if new < 0.05 or abs(new - rho) < 0.01:
            break
        rho = new
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, cov, _ = _least_squares(f, t, x, w, p, bounds, rho)
        except (RuntimeError, ValueError) as exc:
            log.debug("AR(1) refit failed: %s", exc)
            break
    return p, cov, rho
