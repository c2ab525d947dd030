"""Shared linear pieces of the classical detectors: parameter checks,
standardization and PCA by eigen-decomposition of the covariance.

Everything here is plain numpy so PCA_T2_SPE, PCA_SVM, KPCA_SVM and ICA_SVM
share one implementation (and one set of error messages).
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np

#: rows per block when a detector walks over a large array; 16k x 1000 float32
#: kernel columns is 64 MB, small next to the 1.5 GB worker budget
CHUNK_ROWS = 16_384


def check_open_unit(detector: str, name: str, value) -> float:
    """``value`` must be a number in (0, 1); returns it as float."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{detector}: {name}={value!r} must be a number strictly between 0 and 1 (e.g. 0.99).")
    return float(value)


def check_positive_int(detector: str, name: str, value, minimum: int = 1) -> int:
    """``value`` must be an int >= ``minimum``; returns it."""
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < minimum:
        raise ValueError(f"{detector}: {name}={value!r} must be an integer >= {minimum}.")
    return int(value)


def check_n_components(detector: str, value, n_features: int, allow_all: bool = False) -> int | float:
    """An int count in [1, n_features) (or <= n_features with ``allow_all``),
    or a float fraction of explained variance in (0, 1]."""
    upper = n_features if allow_all else n_features - 1
    if isinstance(value, bool):
        pass
    elif isinstance(value, Integral):
        if 1 <= int(value) <= upper:
            return int(value)
    elif isinstance(value, Real) and 0.0 < float(value) <= 1.0:
        return float(value)
    raise ValueError(
        f"{detector}: n_components={value!r} must be an int in [1, {upper}] (a fixed number of components) "
        f"or a float in (0, 1] (the fraction of variance to explain, e.g. 0.90)."
    )


def fit_standardizer(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and std (float64, shape (n_features,)); a constant column
    gets scale 1 so it standardizes to 0 instead of dividing by zero."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    scale = X.std(axis=0, ddof=1) if X.shape[0] > 1 else np.ones(X.shape[1])
    scale[~(scale > 1e-12)] = 1.0
    return mean, scale


def standardize(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, dtype=np.float32) -> np.ndarray:
    """(X - mean) / scale as ``dtype``. Float32 input is centred in float32:
    it holds no more digits than that, and skipping a float64 copy doubles the
    scoring speed; anything else is centred in float64."""
    X = np.asarray(X)
    work = np.float32 if X.dtype == np.float32 else np.float64
    centered = X - mean.astype(work)
    centered *= (1.0 / scale).astype(work)
    return centered.astype(dtype, copy=False)


def fit_pca(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, >= 0) and eigenvectors (columns) of the
    covariance of standardized ``Z`` (n_rows, n_features)."""
    Z = np.asarray(Z, dtype=np.float64)
    centered = Z - Z.mean(axis=0)
    covariance = centered.T @ centered / max(Z.shape[0] - 1, 1)
    eigvals, eigvecs = np.linalg.eigh(covariance)
    order = np.argsort(eigvals)[::-1]
    return np.clip(eigvals[order], 0.0, None), eigvecs[:, order]


def count_components(eigvals: np.ndarray, n_components: int | float) -> int:
    """Resolve ``n_components`` (int count or variance fraction) to a count."""
    if isinstance(n_components, int):
        return n_components
    explained = np.cumsum(eigvals) / max(eigvals.sum(), np.finfo(float).tiny)
    # the small tolerance keeps 0.90 from needing one more component for round-off
    return int(min(np.searchsorted(explained, n_components - 1e-12) + 1, len(eigvals)))
