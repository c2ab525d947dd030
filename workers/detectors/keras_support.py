"""Shared machinery of the TensorFlow/Keras detectors (LSTM_VAE, VAE_T2, PCA_AE).

Importing this module does NOT import TensorFlow: the registry imports a
detector module to check parameters or raise NotFittedError, and that must stay
cheap. Keras is imported once, by ``keras_api()``, right after the TensorFlow
thread pools are configured (they cannot be changed once TF has run an op).

Memory: training and scoring read batches straight from the (possibly
memmapped) input array through ``keras_parts.RowBatches``; a window tensor is
built per batch from an index array, so memory does not grow with the rows.

Runs: ``groups`` marks contiguous runs (a new run starts wherever the id
changes; ``None`` = one run). A window never reaches into an earlier run: the
first ``length - 1`` rows of a run get a window padded by repeating the run's
first row, so every row still gets a score.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import joblib
import numpy as np

from workers.detectors.base import Detector
# Standardizer was defined here until every detector shared one: state.joblib files saved
# before then name it workers.detectors.keras_support.Standardizer, so keep this import.
from workers.detectors.projection import Standardizer

KERAS_FILE = "model.keras"          # Keras native, reloaded for scoring
SAVEDMODEL_DIR = "savedmodel"       # SavedModel export, for serving (TF Serving, tf.saved_model.load)
STATE_FILE = "state.joblib"         # everything that is not the Keras model
SERVING_FILE = "serving.json"       # what the SavedModel expects and returns
SCORING_BATCH_ROWS = 8192           # rows per predict call: large batches amortize per-call overhead
SCALE_PERCENTILE = 99.0            # in-control percentile that puts combined statistics on one scale
#: intra_op_threads: TensorFlow threads per op, at most the worker's share of the cores (0 = the whole
#: share). One by default: an LSTM trained on two threads is a different model (its sums are split
#: differently, the error grows over 40 epochs: early stopping came at epoch 29 instead of 40), so the
#: model would depend on how many workers ran side by side; and one thread trains LSTM_VAE faster here
#: (8 epochs at full size: 35-37 s against 41-44 s), VAE_T2 and PCA_AE as fast (benchmarks/deep_fit.py).
KERAS_PARAMS = {"epochs": 10, "batch_size": 256, "patience": 2, "steps_per_epoch": None, "learning_rate": 1e-3,
                "intra_op_threads": 1}


# ---- runs and windows (numpy only) ------------------------------------------------------
def find_run_starts(groups, n_rows: int, what: str = "groups") -> np.ndarray:
    """First row of each contiguous run, ndarray of shape (n_runs,); ``None`` = one run."""
    if groups is None:
        return np.zeros(1, dtype=np.int64)
    groups = np.asarray(groups).reshape(-1)
    if groups.shape[0] != n_rows:
        raise ValueError(
            f"{what} has {groups.shape[0]} entries but X has {n_rows} rows; "
            f"pass one run id per row (or groups=None for a single run)"
        )
    changes = np.flatnonzero(groups[1:] != groups[:-1]) + 1
    return np.concatenate([[0], changes]).astype(np.int64)


def window_rows(rows: np.ndarray, run_starts: np.ndarray, length: int) -> np.ndarray:
    """Row indices of the window ending at each of ``rows``, shape (len(rows), length).

    Indices before the start of the row's run are clipped to that start, i.e.
    the run's first row is repeated: a window never crosses a run boundary.
    """
    starts = run_starts[np.searchsorted(run_starts, rows, side="right") - 1]
    offsets = np.arange(1 - length, 1, dtype=np.int64)
    return np.maximum(rows[:, None] + offsets[None, :], starts[:, None])


def pad_batch(batch: np.ndarray, rows: int) -> np.ndarray:
    """``batch`` with its last row repeated up to ``rows`` rows (one input shape for XLA)."""
    if len(batch) >= rows:
        return batch
    return np.concatenate([batch, np.repeat(batch[-1:], rows - len(batch), axis=0)])


# ---- statistics shared by VAE_T2 and PCA_AE ----------------------------------------------
def fit_hotelling(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (pseudo-)inverse covariance of ``Z`` (n_rows, n_dims) for Hotelling T2."""
    Z = np.asarray(Z, dtype=np.float64)
    ddof = 1 if len(Z) > 1 else 0   # a single row gives a zero covariance, not NaN
    return Z.mean(axis=0), np.linalg.pinv(np.atleast_2d(np.cov(Z, rowvar=False, ddof=ddof)))


def hotelling_t2(Z: np.ndarray, mean: np.ndarray, inv_cov: np.ndarray) -> np.ndarray:
    """T2 per row, ndarray of shape (n_rows,)."""
    centred = np.asarray(Z, dtype=np.float64) - mean
    return np.einsum("ij,jk,ik->i", centred, inv_cov, centred)


def fit_statistic_scales(statistics: dict[str, np.ndarray], percentile: float) -> dict[str, float]:
    """Each statistic's in-control ``percentile``: dividing by it puts them on one scale."""
    return {name: float(max(np.percentile(values, percentile), 1e-12)) for name, values in statistics.items()}


def combine_statistics(statistics: dict[str, np.ndarray], scales: dict[str, float]) -> np.ndarray:
    """Max of the normalized statistics: like "alarm if either exceeds its own limit"."""
    return np.max(np.stack([statistics[name] / scales[name] for name in scales]), axis=0)


# ---- Keras, imported lazily ---------------------------------------------------------------
def read_thread_count() -> int:
    """Threads the orchestrator gave this worker (its environment), else every core."""
    for name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return os.cpu_count() or 1


def keras_api(threads: int | None = None) -> SimpleNamespace:
    """Keras and the Keras-side parts. The first call in a process sets TensorFlow's thread pools
    to ``threads`` (default: the worker's share of the cores); later calls keep them."""
    configure_threads_once(threads or read_thread_count())
    return import_keras()


_THREADS_CONFIGURED: list[int] = []   # the count set in this process, once set


def configure_threads_once(threads: int) -> None:
    if _THREADS_CONFIGURED:
        return
    from workers.runtime import configure_tensorflow_threads

    _THREADS_CONFIGURED.append(threads)
    try:
        configure_tensorflow_threads(threads)
    except RuntimeError:
        pass   # TF already ran an op in this process (a notebook): keep its pools


@functools.cache
def import_keras() -> SimpleNamespace:
    import keras

    from workers.detectors import keras_parts   # importing it registers the custom layers

    return SimpleNamespace(keras=keras, parts=keras_parts)


class KerasDetector(Detector):
    """Base of the Keras detectors: training loop, batched scoring, save/load.

    Subclasses build ``model_`` (a Keras model used for training) and ``scorer_``
    (a Keras model sharing its layers whose outputs are per-row statistics) and
    set ``window_length`` (1 for row-wise models).
    """

    defaults = {**Detector.defaults, **KERAS_PARAMS}
    window_length = 1
    scoring_batch_rows = SCORING_BATCH_ROWS
    _keras_attributes = ("model_", "scorer_")

    # ---- training --------------------------------------------------------------------
    def _start_keras(self):
        """Keras, seeded: same ``random_state`` -> same initial weights and batches."""
        keras = keras_api(self._training_threads()).keras
        keras.utils.set_random_seed(int(self.random_state))
        return keras

    def _training_threads(self) -> int:
        """``intra_op_threads``, never more than the worker's share of the cores (0: the whole share)."""
        wanted = self.intra_op_threads
        if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 0:
            raise ValueError(f"{type(self).__name__}: intra_op_threads={wanted!r} must be an integer >= 0 "
                             "(TensorFlow threads per op; 0 = the worker's whole share of the cores).")
        share = read_thread_count()
        return share if wanted == 0 else min(wanted, share)

    def _fit_on_standardized_rows(self, X, groups, X_valid, groups_valid) -> None:
        """Fit ``standardizer_``, build the models and train them on standardized rows (or windows)."""
        keras = self._start_keras()
        self.standardizer_ = Standardizer.fit(X)
        self.model_, self.scorer_ = self._build_models(keras, X.shape[1])
        self._train(X, groups, X_valid, groups_valid, self.standardizer_)

    def _train(self, X, groups, X_valid, groups_valid, transform) -> None:
        """Fit ``self.model_`` on batches of ``transform(X rows or windows)``; early stopping."""
        api = keras_api()
        keras = api.keras
        train = self._batches(X, groups, transform, targets=True, shuffle_seed=int(self.random_state),
                              max_batches=self.steps_per_epoch)
        valid = None if X_valid is None else self._batches(X_valid, groups_valid, transform, targets=True,
                                                           batch_size=self.scoring_batch_rows)
        monitor = "loss" if valid is None else "val_loss"   # no validation rows: stop on training loss
        callbacks = [
            keras.callbacks.EarlyStopping(monitor=monitor, patience=int(self.patience), restore_best_weights=True),
            api.parts.EpochProgress(self, int(self.epochs)),
        ]
        self.model_.compile(optimizer=keras.optimizers.Adam(float(self.learning_rate)), loss="mse")
        history = self.model_.fit(train, validation_data=valid, epochs=int(self.epochs),
                                  callbacks=callbacks, verbose=0)
        self.epochs_trained_ = len(history.history.get("loss", []))

    def _batches(self, X, groups, transform, *, targets: bool, batch_size: int | None = None,
                 shuffle_seed: int | None = None, max_batches: int | None = None):
        return keras_api().parts.RowBatches(
            X, transform, length=self.window_length, run_starts=find_run_starts(groups, X.shape[0]),
            batch_size=int(batch_size or self.batch_size), targets=targets, shuffle_seed=shuffle_seed,
            max_batches=max_batches,
        )

    # ---- scoring --------------------------------------------------------------------
    def _predict_statistics(self, X, groups, transform) -> list[np.ndarray]:
        """``scorer_`` outputs for every row, predicted batch by batch; always a list of arrays.

        A plain loop over ``predict_on_batch`` (about 2x faster here than
        ``predict`` on a PyDataset, whose queue threads compete with TF's on a
        few cores). The last batch is padded to the full batch size so the
        XLA-compiled scorer sees one shape and compiles once.
        """
        if not self.scorer_.compiled:   # built by fit or loaded with compile=False
            self.scorer_.compile(jit_compile=True)   # XLA: ~1.5x faster LSTM scoring on CPU
        batches = self._batches(X, groups, transform, targets=False, batch_size=self.scoring_batch_rows)
        chunks = []
        for index in range(len(batches)):
            (batch,) = batches[index]
            outputs = self.scorer_.predict_on_batch(pad_batch(batch, self.scoring_batch_rows))
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            chunks.append([np.asarray(out)[:len(batch)] for out in outputs])
        return [np.concatenate(parts) for parts in zip(*chunks)]

    # ---- persistence ----------------------------------------------------------------
    def save(self, directory: str | Path) -> list[str]:
        """``model.keras`` (reloadable) + ``savedmodel/`` (serving) + ``state.joblib`` (the rest)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.scorer_.save(directory / KERAS_FILE)
        self.scorer_.export(str(directory / SAVEDMODEL_DIR), verbose=False)
        (directory / SERVING_FILE).write_text(json.dumps(self._serving_contract(), indent=2))
        joblib.dump({"class": type(self).__name__, "state": self.__getstate__()}, directory / STATE_FILE)
        return [KERAS_FILE, SAVEDMODEL_DIR, SERVING_FILE, STATE_FILE]

    @classmethod
    def load(cls, directory: str | Path) -> "KerasDetector":
        directory = Path(directory)
        missing = [name for name in (KERAS_FILE, STATE_FILE) if not (directory / name).exists()]
        if missing:
            raise FileNotFoundError(
                f"{directory} lacks {', '.join(missing)}; it is not a saved {cls.__name__} "
                f"(save writes {KERAS_FILE} and {STATE_FILE}); refit and save again"
            )
        saved = joblib.load(directory / STATE_FILE)
        if saved["class"] != cls.__name__:
            raise TypeError(f"{directory} holds a {saved['class']}, not a {cls.__name__}; "
                            f"load it with {saved['class']}.load")
        keras = keras_api().keras
        detector = cls.__new__(cls)
        detector.__dict__.update({**cls.defaults, **saved["state"]})   # parameters added since it was saved
        detector.scorer_ = keras.saving.load_model(directory / KERAS_FILE, compile=False)
        detector.model_ = None   # the training graph is not needed to score
        return detector

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        for name in self._keras_attributes:
            state.pop(name, None)   # Keras models are saved natively, never pickled
        return state

    def _serving_contract(self) -> dict[str, Any]:
        """Describes the SavedModel's input and outputs for whoever serves it."""
        return {
            "detector": type(self).__name__,
            "input": f"float32 batch of shape {self.scorer_.input_shape}, already transformed as 'input_transform' says",
            "input_transform": self._serving_input_transform(),
            "outputs": self._serving_outputs(),
            "note": "the combined score and threshold_ are computed outside the model; see state.joblib",
        }

    def _serving_input_transform(self) -> str:
        return "(x - mean) / scale with the Standardizer in state.joblib"

    def _serving_outputs(self) -> list[str]:
        return ["per-row reconstruction error"]


class CombinedStatisticsDetector(KerasDetector):
    """A Keras detector whose score combines several per-row statistics.

    Score = max over statistics of (statistic / its 99th percentile on the
    in-control validation rows, or the training rows without validation data).
    Each statistic then alarms at roughly the same in-control rate, and a fault
    that shows in only one of them is not diluted by the others (a sum would
    be). ``threshold_`` is then set by the base class on this combined score.
    """

    def _statistics(self, X, *, groups) -> dict[str, np.ndarray]:
        """The raw statistics per row (before scaling), each ndarray of shape (n_rows,)."""
        raise NotImplementedError

    def _fit_scales(self, X, groups, X_valid, groups_valid) -> None:
        reference, reference_groups = (X, groups) if X_valid is None else (X_valid, groups_valid)
        raw = self._statistics(reference, groups=reference_groups)
        self.scales_ = fit_statistic_scales(raw, SCALE_PERCENTILE)
        # fit() sets the threshold on these same rows next: keep their score instead of
        # running the model over them a second time.
        self._reference_scores = combine_statistics(raw, self.scales_)

    def _choose_threshold(self, X, groups, X_valid, groups_valid) -> float:
        scores = self.__dict__.pop("_reference_scores", None)
        if scores is None:
            return super()._choose_threshold(X, groups, X_valid, groups_valid)
        return float(np.percentile(np.asarray(scores, dtype=np.float64), self.threshold_percentile))

    def _score(self, X, *, groups) -> np.ndarray:
        return self._score_with_statistics(X, groups=groups)[0]

    def _score_with_statistics(self, X, *, groups) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Score and raw statistics from one pass of the Keras model over the rows."""
        raw = self._statistics(X, groups=groups)
        return combine_statistics(raw, self.scales_), raw
