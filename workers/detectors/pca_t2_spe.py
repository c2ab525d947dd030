"""PCA_T2_SPE: the classical PCA monitoring baseline of every TEP paper.

PCA on standardized in-control data keeps ``n_components`` principal
components. Two statistics per row:

* Hotelling T2 in the principal subspace, limit from the F distribution
  (Jackson 1991): a (n-1)(n+1) / (n (n-a)) * F_conf(a, n-a);
* SPE (Q) in the residual subspace, limit from Jackson & Mudholkar (1979);
  when one left-out eigenvalue dominates, their h0 turns <= 0 and the formula
  breaks down, so the limit falls back to Box's (1954) g * chi2(h)
  approximation (``spe_limit_method_`` says which was used).

Score = max(T2 / T2_limit, SPE / SPE_limit), so the theoretical threshold is
1.0: an alarm when either statistic exceeds its limit. ``statistics`` returns
both, for reports that show them separately.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from workers.detectors.base import Detector
from workers.detectors.projection import (
    CHUNK_ROWS, Standardizer, check_n_components, check_open_unit, count_components, fit_pca,
)


def hotelling_t2_limit(n_components: int, n_rows: int, confidence: float) -> float:
    """Upper control limit of T2 for a new observation (F distribution)."""
    a, n = n_components, n_rows
    f = stats.f.ppf(confidence, a, n - a)
    return float(a * (n - 1) * (n + 1) / (n * (n - a)) * f)


def spe_limit(residual_eigvals: np.ndarray, confidence: float) -> tuple[float, str]:
    """Upper control limit of SPE/Q from the eigenvalues left out of the model,
    and the name of the approximation used."""
    theta1, theta2, theta3 = (np.sum(residual_eigvals ** power) for power in (1, 2, 3))
    h0 = 1.0 - 2.0 * theta1 * theta3 / (3.0 * theta2 ** 2)
    if h0 <= 0.0:
        return box_limit(theta1, theta2, confidence), "box"
    return jackson_mudholkar_limit(theta1, theta2, h0, confidence), "jackson_mudholkar"


def box_limit(theta1: float, theta2: float, confidence: float) -> float:
    """SPE ~ g chi2(h) with g = theta2/theta1, h = theta1^2/theta2 (Box 1954)."""
    return float(theta2 / theta1 * stats.chi2.ppf(confidence, theta1 ** 2 / theta2))


def jackson_mudholkar_limit(theta1: float, theta2: float, h0: float, confidence: float) -> float:
    """Jackson & Mudholkar (1979); valid for h0 > 0."""
    c_alpha = stats.norm.ppf(confidence)
    inner = c_alpha * np.sqrt(2.0 * theta2 * h0 ** 2) / theta1 + 1.0 + theta2 * h0 * (h0 - 1.0) / theta1 ** 2
    return float(theta1 * inner ** (1.0 / h0))


class PCAT2SPE(Detector):
    """PCA Hotelling T2 + SPE with theoretical limits; alarm if either exceeds."""

    defaults = {**Detector.defaults, "n_components": 0.90, "confidence": 0.99}

    def _fit(self, X, *, groups, X_valid, groups_valid) -> None:
        name = type(self).__name__
        n_components = check_n_components(name, self.n_components, X.shape[1])
        confidence = check_open_unit(name, "confidence", self.confidence)
        if X.shape[0] <= X.shape[1]:
            raise ValueError(f"{name}: needs more training rows than features to estimate the covariance; "
                             f"got {X.shape[0]} rows of {X.shape[1]} features.")
        self.standardizer_ = Standardizer.fit(X)
        eigvals, eigvecs = fit_pca(X, self.standardizer_)
        # keep at least one residual direction, or SPE (and its limit) is undefined
        k = count_components(eigvals, n_components, keep_residual=True)
        self.n_components_ = k
        self.explained_variance_ = eigvals
        self.components_ = eigvecs[:, :k].T                      # (k, n_features)
        self.t2_limit_ = hotelling_t2_limit(k, X.shape[0], confidence)
        residual = eigvals[k:][eigvals[k:] > 1e-12 * eigvals[0]]
        if residual.size == 0:
            raise ValueError(f"{name}: the data has no variance outside {k} components, so SPE is undefined; "
                             f"use a smaller n_components.")
        self.spe_limit_, self.spe_limit_method_ = spe_limit(residual, confidence)
        self._build_projection(eigvals[:k], eigvecs[:, :k])

    def _build_projection(self, eigvals: np.ndarray, loadings: np.ndarray) -> None:
        """One (n_features, k + n_features) float32 matrix: the first k columns
        give T2 (whitened scores), the rest the residual z (I - P P^T), so one
        matmul per block yields both statistics."""
        whitened = loadings / np.sqrt(np.maximum(eigvals, 1e-12))
        residual = np.eye(loadings.shape[0]) - loadings @ loadings.T
        self.projection_ = np.hstack([whitened, residual]).astype(np.float32)

    def _statistics_blocks(self, X):
        k = self.n_components_
        for start in range(0, X.shape[0], CHUNK_ROWS):
            z = self.standardizer_(X[start:start + CHUNK_ROWS])
            projected = z @ self.projection_
            np.square(projected, out=projected)
            yield projected[:, :k].sum(axis=1), projected[:, k:].sum(axis=1)

    def _statistics(self, X, *, groups) -> dict[str, np.ndarray]:
        """Hotelling T2 and SPE per row, each ndarray of shape (n_rows,)."""
        return self._score_with_statistics(X, groups=groups)[1]

    def _score(self, X, *, groups) -> np.ndarray:
        return self._score_with_statistics(X, groups=groups)[0]

    def _score_with_statistics(self, X, *, groups) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Score, T2 and SPE from one pass over the rows."""
        scores = np.empty(X.shape[0], dtype=np.float64)
        t2_parts, spe_parts = [], []
        start = 0
        for t2, spe in self._statistics_blocks(X):
            scores[start:start + len(t2)] = np.maximum(t2 / self.t2_limit_, spe / self.spe_limit_)
            start += len(t2)
            t2_parts.append(t2)
            spe_parts.append(spe)
        return scores, {"t2": np.concatenate(t2_parts).astype(np.float64),
                        "spe": np.concatenate(spe_parts).astype(np.float64)}

    def _theoretical_threshold(self) -> float:
        return 1.0
