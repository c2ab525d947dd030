"""Shared linear pieces of the detectors: parameter checks, standardization and
PCA by eigen-decomposition of the covariance, both fitted block by block so a
memmapped training array is never copied whole.

Everything here is plain numpy (no TensorFlow) so the classical detectors
(PCA_T2_SPE, PCA_SVM, KPCA_SVM, ICA_SVM) and the Keras ones (LSTM_VAE, VAE_T2,
PCA_AE) share one implementation (and one set of error messages).
"""
from __future__ import annotations

from numbers import Integral, Real
from typing import Callable

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


class Standardizer:
    """Per-column centring and scaling learnt from training rows, applied per batch
    (picklable, numpy only): the one standardizer of the classical and Keras detectors.

    ``mean`` and ``scale`` are float64, shape (n_features,). Why ddof=1 (the
    sample std): the covariance ``fit_pca`` computes of standardized rows (with
    n - 1, as the T2 limit assumes) is then exactly their correlation matrix,
    and the classical detectors, whose KPCA_SVM moves a lot with a tiny change
    of scale, keep their results. The Keras detectors used ddof=0 until they
    shared this class: their inputs shrank by a factor sqrt((n - 1) / n) and
    their squared errors by a relative 1/n (3e-4 at 3,000 training rows, 4e-6
    at 250,000). On the synthetic data that changed no alarm of LSTM_VAE or
    PCA_AE and under 0.05% of VAE_T2's, whose training moves as much from
    float rounding alone.
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.mean, self.scale = mean, scale

    @classmethod
    def fit(cls, X: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> "Standardizer":
        """Column mean and std of ``X`` (n_rows, n_features), read in blocks so a
        memmapped X is never copied whole; a constant column gets scale 1 so it
        standardizes to 0 instead of dividing by zero."""
        count, mean, squares = accumulate_moments(X, chunk_rows=chunk_rows)
        scale = np.sqrt(squares / (count - 1)) if count > 1 else np.ones_like(mean)
        scale[~(scale > 1e-12)] = 1.0
        return cls(mean, scale)

    def __call__(self, batch: np.ndarray, dtype=np.float32) -> np.ndarray:
        """(batch - mean) / scale as ``dtype``, same shape as ``batch`` (features last).

        Float32 input is centred in float32: it holds no more digits than that,
        and skipping a float64 copy doubles the scoring speed; anything else is
        centred in float64."""
        batch = np.asarray(batch)
        work = np.float32 if batch.dtype == np.float32 else np.float64
        centered = batch - self.mean.astype(work)
        centered *= (1.0 / self.scale).astype(work)
        return centered.astype(dtype, copy=False)


def upgrade_standardizer_state(state: dict, mean: str = "mean_", scale: str = "scale_",
                               standardizer: str = "standardizer_") -> dict:
    """``state`` of a model pickled before the shared ``Standardizer`` existed, when it kept
    the two arrays as attributes of their own: rebuilt so that such a ``model.joblib`` still scores."""
    if mean in state and scale in state and standardizer not in state:
        state[standardizer] = Standardizer(state.pop(mean), state.pop(scale))
    return state


def accumulate_moments(X: np.ndarray, transform: Callable[[np.ndarray], np.ndarray] | None = None, *,
                       cross: bool = False, chunk_rows: int = CHUNK_ROWS) -> tuple[int, np.ndarray, np.ndarray]:
    """Row count, column mean (n_features,) and summed squared deviations of the
    rows of ``transform(X)`` (the identity if None), in float64 over blocks of
    ``chunk_rows`` rows: ``X`` may be a memmap and is never copied whole.

    The squared deviations are per column, shape (n_features,), or with ``cross``
    the co-moment matrix, shape (n_features, n_features). Blocks are merged
    pairwise (Chan et al.), which keeps the precision of a two-pass computation.
    """
    count, mean, squares = 0, 0.0, 0.0
    for start in range(0, X.shape[0], chunk_rows):
        block = np.asarray(X[start:start + chunk_rows])
        block = np.asarray(block if transform is None else transform(block), dtype=np.float64)
        block_mean = block.mean(axis=0)
        centered = block - block_mean
        block_squares = centered.T @ centered if cross else np.einsum("ij,ij->j", centered, centered)
        delta = block_mean - mean
        total = count + len(block)
        correction = np.outer(delta, delta) if cross else delta ** 2
        mean = mean + delta * (len(block) / total)
        squares = squares + block_squares + correction * (count * len(block) / total)
        count = total
    return count, mean, squares


def fit_pca(X: np.ndarray, standardizer: Standardizer | None = None,
            chunk_rows: int = CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, >= 0) and eigenvectors (columns) of the covariance
    (ddof=1) of the rows of ``X`` (n_rows, n_features), each block standardized
    with ``standardizer`` first if one is given; a memmapped X is never copied whole."""
    transform = None if standardizer is None else (lambda block: standardizer(block, np.float64))
    count, _, comoment = accumulate_moments(X, transform, cross=True, chunk_rows=chunk_rows)
    eigvals, eigvecs = np.linalg.eigh(comoment / max(count - 1, 1))
    order = np.argsort(eigvals)[::-1]
    return np.clip(eigvals[order], 0.0, None), eigvecs[:, order]


def count_components(eigvals: np.ndarray, n_components: int | float, keep_residual: bool = False) -> int:
    """Resolve ``n_components`` (int count or variance fraction, see
    ``check_n_components``) to a count; with ``keep_residual`` at most
    n_features - 1, so SPE keeps a residual direction."""
    if isinstance(n_components, int):
        count = n_components
    else:
        explained = np.cumsum(eigvals) / max(eigvals.sum(), np.finfo(float).tiny)
        # the small tolerance keeps 0.90 from needing one more component for round-off
        count = int(min(np.searchsorted(explained, n_components - 1e-12) + 1, len(eigvals)))
    return min(count, len(eigvals) - 1) if keep_residual else count
