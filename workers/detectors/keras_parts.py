"""The Keras-side half of ``keras_support``: custom layers, the batch dataset, the epoch callback.

Imported only through ``keras_support.keras_api()``, which configures the
TensorFlow thread pools first. The layers are registered so that a saved
``model.keras`` reloads without ``custom_objects``.
"""
from __future__ import annotations

import math
from typing import Callable

import keras
import numpy as np

from workers.detectors.keras_support import window_rows

PACKAGE = "orchestrate"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(keras.layers.Layer):
    """VAE reparameterization ``z = mean + exp(log_var / 2) * eps`` while training.

    At inference it returns ``mean``: scores are deterministic, so a reloaded
    model gives identical scores. Keras evaluates validation data in inference
    mode too, so ``val_loss`` (what early stopping watches) is the
    reconstruction MSE from the latent mean -- the quantity the score uses --
    while ``loss`` also holds the KL term and the sampling noise. While training it adds the KL divergence to
    N(0, I), scaled by ``kl_weight`` (1 / elements per sample, so with the
    per-element MSE the loss is the ELBO per element for a Gaussian likelihood
    of variance 1/2).
    """

    def __init__(self, kl_weight: float = 1.0, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kl_weight = float(kl_weight)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, inputs, training=None):
        mean, log_var = inputs
        if not training:
            return mean
        kl = -0.5 * keras.ops.sum(1.0 + log_var - keras.ops.square(mean) - keras.ops.exp(log_var), axis=-1)
        self.add_loss(self.kl_weight * keras.ops.mean(kl))
        noise = keras.random.normal(keras.ops.shape(mean), seed=self.seed_generator)
        return mean + keras.ops.exp(0.5 * log_var) * noise

    def get_config(self) -> dict:
        return {**super().get_config(), "kl_weight": self.kl_weight, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SquaredError(keras.layers.Layer):
    """Mean squared difference of ``[x, reconstruction]`` per sample, shape (batch,).

    Reducing inside the model means ``predict`` returns one float per row, not a
    reconstruction of every window (10 x 52 floats per row).
    """

    def call(self, inputs):
        x, reconstruction = inputs
        squared = keras.ops.square(x - reconstruction)
        return keras.ops.mean(keras.ops.reshape(squared, (keras.ops.shape(squared)[0], -1)), axis=-1)


class RowBatches(keras.utils.PyDataset):
    """Batches of rows, or of run-aware windows ending at each row, read from ``X`` per batch.

    ``X`` may be a memmap: only the rows of one batch are read and transformed
    (standardized, projected), so memory does not grow with the number of rows.
    Yields ``(batch, batch)`` when ``targets`` (autoencoder training), else ``(batch,)``.
    """

    def __init__(self, X, transform: Callable[[np.ndarray], np.ndarray], *, length: int, run_starts: np.ndarray,
                 batch_size: int, targets: bool, shuffle_seed: int | None = None,
                 max_batches: int | None = None) -> None:
        super().__init__()
        self.X, self.transform, self.length, self.run_starts = X, transform, length, run_starts
        self.batch_size, self.targets = batch_size, targets
        self.rng = None if shuffle_seed is None else np.random.default_rng(shuffle_seed)
        self.order = np.arange(X.shape[0], dtype=np.int64)
        self.n_batches = math.ceil(X.shape[0] / batch_size)
        if max_batches:
            self.n_batches = min(self.n_batches, int(max_batches))
        self.on_epoch_end()

    def __len__(self) -> int:
        return self.n_batches

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        if self.length > 1:
            rows = window_rows(rows, self.run_starts, self.length)
        first, last = int(rows.min()), int(rows.max())
        if last - first < rows.size:
            # Scoring reads rows in order: transform the contiguous block once and
            # gather windows from it, instead of transforming every row `length` times.
            batch = self.transform(np.asarray(self.X[first:last + 1]))[rows - first]
        else:
            batch = self.transform(np.asarray(self.X[rows]))
        return (batch, batch) if self.targets else (batch,)

    def on_epoch_end(self) -> None:
        # A fresh permutation each epoch; with max_batches each epoch is a new random subset.
        if self.rng is not None:
            self.rng.shuffle(self.order)


class EpochProgress(keras.callbacks.Callback):
    """Turns each finished epoch into ``detector.report_progress(epoch=, epochs=, loss=, val_loss=)``."""

    def __init__(self, detector, epochs: int) -> None:
        super().__init__()
        self.detector, self.epochs = detector, epochs

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs = logs or {}
        self.detector.report_progress(
            epoch=epoch + 1, epochs=self.epochs, loss=float(logs.get("loss", math.nan)),
            val_loss=float(logs["val_loss"]) if "val_loss" in logs else None,
        )
