"""PCA_AE: the seed's PCA-autoencoder hybrid.

PCA (on standardized rows) keeps the components that explain ``n_components``
of the variance (a fraction < 1) or that many components (an int >= 1). An
autoencoder then learns the PCA RESIDUAL (standardized row minus its projection
on the principal subspace): it models the structure left outside the retained
components, which SPE alone treats as isotropic noise. ``ae_input = "scores"``
trains it on the whitened principal scores instead. Measured with
benchmarks/deep_fit.py (production profile, synthetic size full, 250,000
training rows, 211,200 test rows, 2 shared cores):

    ae_input   ROC AUC   FDR at FAR 0.010   fit
    residual   0.814     0.546              41 s
    scores     0.776     0.392              22 s

so the residual is the default.

Three statistics per row: t2 (Hotelling T2 of the scores = sum of squared
whitened scores), spe (squared norm of the residual) and ae (mean squared
autoencoder error). Score = max of each divided by its in-control 99th
percentile (``CombinedStatisticsDetector``). A row-wise (static) model.
"""
from __future__ import annotations

import numpy as np

from workers.detectors.keras_support import SCORING_BATCH_ROWS, CombinedStatisticsDetector
from workers.detectors.projection import Standardizer, check_n_components, count_components, fit_pca

AE_INPUTS = ("scores", "residual")


class PrincipalSubspace:
    """Principal axes of standardized rows; projects batches (picklable, numpy only)."""

    def __init__(self, X, standardizer: Standardizer, n_components: float | int, ae_input: str) -> None:
        """``n_components`` as ``check_n_components`` returns it; at least one residual direction is kept."""
        self.standardizer, self.ae_input = standardizer, ae_input
        eigenvalues, axes = fit_pca(X, standardizer)
        k = count_components(eigenvalues, n_components, keep_residual=True)
        self.axes, self.eigenvalues = axes[:, :k].astype(np.float32), np.maximum(eigenvalues[:k], 1e-12)

    def whitened_scores(self, batch: np.ndarray) -> np.ndarray:
        return (self.standardizer(batch) @ self.axes / np.sqrt(self.eigenvalues)).astype(np.float32)

    def residual(self, batch: np.ndarray) -> np.ndarray:
        standardized = self.standardizer(batch)
        return standardized - (standardized @ self.axes) @ self.axes.T

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The autoencoder's input for a batch of raw rows."""
        return self.whitened_scores(batch) if self.ae_input == "scores" else self.residual(batch)


class PCAAE(CombinedStatisticsDetector):
    """PCA, then an autoencoder (input -> hidden -> bottleneck -> hidden -> input) on scores or residual."""

    defaults = {**CombinedStatisticsDetector.defaults, "n_components": 0.90, "hidden_units": 16,
                "ae_input": "residual"}

    def _fit(self, X, *, groups, X_valid, groups_valid) -> None:
        if self.ae_input not in AE_INPUTS:
            raise ValueError(f"PCAAE ae_input must be one of {', '.join(AE_INPUTS)}; got {self.ae_input!r}")
        n_components = check_n_components(type(self).__name__, self.n_components, X.shape[1])
        keras = self._start_keras()
        self.subspace_ = PrincipalSubspace(X, Standardizer.fit(X), n_components, self.ae_input)
        self.n_components_ = self.subspace_.axes.shape[1]
        width = self.n_components_ if self.ae_input == "scores" else X.shape[1]
        self.model_, self.scorer_ = self._build_models(keras, width)
        self._train(X, groups, X_valid, groups_valid, self.subspace_)
        self._fit_scales(X, groups, X_valid, groups_valid)

    def _statistics(self, X, *, groups) -> dict[str, np.ndarray]:
        t2, spe = self._pca_statistics(X)
        return {"t2": t2, "spe": spe, "ae": self._predict_statistics(X, groups, self.subspace_)[0].astype(np.float64)}

    def _pca_statistics(self, X, chunk_rows: int = 8 * SCORING_BATCH_ROWS) -> tuple[np.ndarray, np.ndarray]:
        t2, spe = np.empty(X.shape[0]), np.empty(X.shape[0])
        for start in range(0, X.shape[0], chunk_rows):
            chunk = np.asarray(X[start:start + chunk_rows])
            t2[start:start + len(chunk)] = np.square(self.subspace_.whitened_scores(chunk)).sum(axis=1)
            spe[start:start + len(chunk)] = np.square(self.subspace_.residual(chunk)).sum(axis=1)
        return t2, spe

    def _build_models(self, keras, width: int):
        """(training model: input -> reconstruction, scorer: input -> its error)."""
        from workers.detectors.keras_parts import SquaredError

        layers, hidden = keras.layers, int(self.hidden_units)
        inputs = keras.Input((width,), name=self.ae_input)
        encoded = layers.Dense(hidden, activation="tanh", name="encoder")(inputs)
        # Half the narrower of input and hidden layer: a real bottleneck for both variants.
        bottleneck = layers.Dense(max(1, min(width, hidden) // 2), name="bottleneck")(encoded)
        decoded = layers.Dense(hidden, activation="tanh", name="decoder")(bottleneck)
        reconstruction = layers.Dense(width, name="reconstruction")(decoded)
        error = SquaredError(name="ae_error")([inputs, reconstruction])
        return keras.Model(inputs, reconstruction, name="pca_ae"), keras.Model(inputs, error, name="pca_ae_scorer")

    def _serving_input_transform(self) -> str:
        return f"PCA {self.ae_input} of standardized rows (PrincipalSubspace in state.joblib)"

    def _serving_outputs(self) -> list[str]:
        return ["per-row autoencoder error (ae); t2 and spe come from the PrincipalSubspace"]
