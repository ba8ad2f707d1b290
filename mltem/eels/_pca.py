"""PCA denoising of spectrum images (scikit-learn)."""
from __future__ import annotations

import numpy as np

__all__ = ["pca_denoise"]


def pca_denoise(spectra, n_components: int, *, poisson: bool = True, random_state: int = 0) -> np.ndarray:
    """Keep the first ``n_components`` principal components of a set of spectra.

    Parameters
    ----------
    spectra : array_like
        (..., E) with at least ``n_components + 1`` spectra.
    n_components : int
        Components to keep (>= 1).
    poisson : bool
        Scale for Poisson noise before the decomposition (Keenan & Kotula,
        Surf. Interface Anal. 36, 203 (2004), :doi:`10.1002/sia.1657`).
    random_state : int
        Seed of the randomised SVD.

    Returns
    -------
    numpy.ndarray
        (..., E) denoised spectra, float64.
    """
    from sklearn.decomposition import PCA

    y = np.asarray(spectra, dtype=float)
    flat = y.reshape(-1, y.shape[-1])
    if n_components < 1 or n_components >= min(flat.shape):
        raise ValueError(f"n_components must lie in 1..{min(flat.shape) - 1} for {flat.shape[0]} spectra of {flat.shape[1]} channels, got {n_components}")
    if poisson:
        g = np.sqrt(np.clip(flat.mean(1, keepdims=True), 1e-12, None))
        h = np.sqrt(np.clip(flat.mean(0, keepdims=True), 1e-12, None))
        scaled = flat / (g * h)
    else:
        scaled = flat
    pca = PCA(n_components=n_components, svd_solver="auto", random_state=random_state)
    rec = pca.inverse_transform(pca.fit_transform(scaled))
    if poisson:
        rec = rec * g * h
    return rec.reshape(y.shape)
