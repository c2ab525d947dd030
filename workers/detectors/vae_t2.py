"""VAE_T2: a dense variational autoencoder monitored by Hotelling T2 and reconstruction error.

Two statistics per row (standardized units, from the latent MEAN, no sampling):
  t2:  Hotelling T2 of the latent mean, with mean and covariance of the latent
       means of (up to ``HOTELLING_ROWS`` evenly spaced) training rows;
  spe: mean squared reconstruction error of the row.
Score = max(t2 / q99_t2, spe / q99_spe), q99 = 99th percentile on the in-control
validation rows (see ``CombinedStatisticsDetector``); ``threshold_`` is then the
``threshold_percentile`` of this score on the validation rows (base class).
A row-wise (static) model: ``groups`` is accepted and checked, no window is formed.
"""
from __future__ import annotations

import numpy as np

from workers.detectors.keras_support import CombinedStatisticsDetector, fit_hotelling, hotelling_t2

HOTELLING_ROWS = 100_000   # enough for a stable covariance of <= ~50 latent dims, bounded cost


class VAET2(CombinedStatisticsDetector):
    """Dense VAE: n_features -> hidden_units -> latent_dim -> hidden_units -> n_features."""

    defaults = {**CombinedStatisticsDetector.defaults, "latent_dim": 8, "hidden_units": 32}

    def _fit(self, X, *, groups, X_valid, groups_valid) -> None:
        self._fit_on_standardized_rows(X, groups, X_valid, groups_valid)
        step = max(1, X.shape[0] // HOTELLING_ROWS)
        latent = self._predict_statistics(X[::step], None, self.standardizer_)[1]
        self.latent_mean_, self.latent_inv_cov_ = fit_hotelling(latent)
        self._fit_scales(X, groups, X_valid, groups_valid)

    def _statistics(self, X, *, groups) -> dict[str, np.ndarray]:
        error, latent = self._predict_statistics(X, groups, self.standardizer_)
        return {"t2": hotelling_t2(latent, self.latent_mean_, self.latent_inv_cov_),
                "spe": error.astype(np.float64)}

    def _build_models(self, keras, n_features: int):
        """(training model: row -> reconstruction, scorer: row -> [error, latent mean])."""
        from workers.detectors.keras_parts import Sampling, SquaredError

        layers, hidden = keras.layers, int(self.hidden_units)
        row = keras.Input((n_features,), name="row")
        encoded = layers.Dense(hidden, activation="relu", name="encoder")(row)
        mean = layers.Dense(int(self.latent_dim), name="z_mean")(encoded)
        log_var = layers.Dense(int(self.latent_dim), name="z_log_var")(encoded)
        z = Sampling(kl_weight=1.0 / n_features, seed=int(self.random_state), name="z")([mean, log_var])
        decoded = layers.Dense(hidden, activation="relu", name="decoder")(z)
        reconstruction = layers.Dense(n_features, name="reconstruction")(decoded)
        error = SquaredError(name="row_error")([row, reconstruction])
        return keras.Model(row, reconstruction, name="vae_t2"), keras.Model(row, [error, mean], name="vae_t2_scorer")

    def _serving_outputs(self) -> list[str]:
        return ["per-row reconstruction error (spe)", "latent mean (T2 uses latent_mean_, latent_inv_cov_)"]
