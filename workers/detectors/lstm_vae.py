"""LSTM_VAE: a variational autoencoder over run-aware windows with an LSTM encoder/decoder.

Score of a row = mean squared reconstruction error (standardized units) of the
window of ``sequence_length`` rows ENDING at that row, reconstructed from the
latent mean (no sampling at scoring time, so scores are deterministic). The KL
term is NOT part of the score: it measures how unusual the latent code is, not
how badly the window is explained, and it would add noise to the score; it is
used only in the training loss.

Windows never cross a run boundary: the first ``sequence_length - 1`` rows of a
run get a window padded by repeating the run's first row (the model is trained
on such padded windows too, so the start of a run is not a false alarm). The
score is causal: it uses the row and the rows before it, never later ones.

Window length vs speed (benchmarks/deep_fit.py, production profile, 250,000
training rows, 211,200 test rows, 2 cores, lstm_units 32; measured with two
TensorFlow threads, before intra_op_threads defaulted to 1):

    sequence_length   ROC AUC   FDR at FAR ~0.01   scoring rows/s (free cores / loaded cores)
    10                0.804     0.378              135-155k / 40-70k
    5                 0.792     0.340              230-300k / 140-200k

The 10-row window detects better and is the production default; use 5 where
scoring speed under load matters more.
"""
from __future__ import annotations

from workers.detectors.keras_support import KerasDetector


class LSTMVAE(KerasDetector):
    """VAE over windows (sequence_length, n_features): LSTM encoder -> latent -> LSTM decoder."""

    defaults = {**KerasDetector.defaults, "sequence_length": 10, "latent_dim": 8, "lstm_units": 32}

    @property
    def window_length(self) -> int:
        return int(self.sequence_length)

    def _fit(self, X, *, groups, X_valid, groups_valid) -> None:
        if self.window_length < 1:
            raise ValueError(f"LSTMVAE sequence_length must be >= 1; got {self.sequence_length}")
        self._fit_on_standardized_rows(X, groups, X_valid, groups_valid)

    def _score(self, X, *, groups):
        return self._predict_statistics(X, groups, self.standardizer_)[0]

    def _build_models(self, keras, n_features: int):
        """(training model: window -> reconstruction, scorer: window -> its error)."""
        from workers.detectors.keras_parts import Sampling, SquaredError

        length, layers = self.window_length, keras.layers
        window = keras.Input((length, n_features), name="window")
        encoded = layers.LSTM(int(self.lstm_units), name="encoder")(window)
        mean = layers.Dense(int(self.latent_dim), name="z_mean")(encoded)
        log_var = layers.Dense(int(self.latent_dim), name="z_log_var")(encoded)
        z = Sampling(kl_weight=1.0 / (length * n_features), seed=int(self.random_state), name="z")([mean, log_var])
        decoded = layers.LSTM(int(self.lstm_units), return_sequences=True, name="decoder")(
            layers.RepeatVector(length)(z))
        reconstruction = layers.Dense(n_features, name="reconstruction")(decoded)
        error = SquaredError(name="window_error")([window, reconstruction])
        return keras.Model(window, reconstruction, name="lstm_vae"), keras.Model(window, error, name="lstm_vae_scorer")

    def _serving_input_transform(self) -> str:
        return ("windows (batch, sequence_length, n_features) of rows standardized with the Standardizer "
                "in state.joblib; pad the first rows of a run by repeating the run's first row")
