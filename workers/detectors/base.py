"""The detector contract (scikit-learn / PyOD shaped), written once.

Convention: higher score = more anomalous. ``threshold_`` is set in exactly one
place (``Detector.fit``); ``predict`` is written once, here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import joblib
import numpy as np

MODEL_FILE = "model.joblib"


class NotFittedError(RuntimeError):
    """A detector was asked to score before ``fit``."""


class ParameterError(TypeError):
    """A parameter name the detector does not have (from a profile or the user's config)."""


class Detector:
    """Base class. Subclasses set ``defaults`` and implement ``_fit`` and ``_score``.

    ``__init__`` only stores keyword parameters (validated against ``defaults``);
    learning happens in ``fit``; learned attributes end in ``_``.
    """

    #: parameter -> default; every subclass extends this dict
    defaults: dict[str, Any] = {"threshold_percentile": 99.0, "random_state": 0}

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ParameterError(
                f"{type(self).__name__} has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters are: {', '.join(sorted(self.defaults))}"
            )
        for key, value in {**self.defaults, **params}.items():
            setattr(self, key, value)
        self._progress: Callable[..., None] | None = None

    # ---- parameters -------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.defaults}

    def set_progress_callback(self, callback: Callable[..., None] | None) -> None:
        """The worker passes a callback that turns progress into events (e.g. epochs)."""
        self._progress = callback

    def report_progress(self, **fields: Any) -> None:
        if self._progress is not None:
            self._progress(**fields)

    # ---- the contract -------------------------------------------------------------
    def fit(self, X, *, groups=None, X_valid=None, groups_valid=None) -> "Detector":
        """Learn from in-control rows ``X`` (n_rows, n_features); set ``threshold_``.

        ``groups`` (n_rows,) marks contiguous runs: sequence models never window
        across two. ``threshold_`` comes from the in-control validation scores at
        ``threshold_percentile`` (training scores if no validation data is given),
        unless the detector has a theoretical limit (``_theoretical_threshold``).
        """
        X = self._check_input(X, "X", fitting=True)
        self.n_features_in_ = X.shape[1]
        if X_valid is not None:
            X_valid = self._check_input(X_valid, "X_valid")
        self._fit(X, groups=groups, X_valid=X_valid, groups_valid=groups_valid)
        self.threshold_ = self._choose_threshold(X, groups, X_valid, groups_valid)
        return self

    def decision_function(self, X, *, groups=None) -> np.ndarray:
        """Anomaly score per row, ndarray of shape (n_rows,); higher = more anomalous."""
        X = self._check_scoring_input(X)
        return self._check_scores(self._score(X, groups=groups), X)

    def predict(self, X, *, groups=None) -> np.ndarray:
        """0/1 alarm per row, ndarray of shape (n_rows,) of int8."""
        return self.alarms_from_scores(self.decision_function(X, groups=groups))

    def alarms_from_scores(self, scores: np.ndarray) -> np.ndarray:
        """The one place a score becomes an alarm: above ``threshold_``."""
        return (np.asarray(scores) > self.threshold_).astype(np.int8)

    def statistics(self, X, *, groups=None) -> dict[str, np.ndarray]:
        """Extra per-row statistics worth saving (e.g. T2 and SPE), each ndarray of
        shape (n_rows,); none by default (a subclass implements ``_statistics``)."""
        return self._statistics(self._check_scoring_input(X), groups=groups)

    def score_with_statistics(self, X, *, groups=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(decision_function(X), statistics(X))`` — what a worker saves for the test rows.

        A detector whose score is computed from its statistics overrides
        ``_score_with_statistics``, so its model runs over the rows once instead of twice.
        """
        X = self._check_scoring_input(X)
        scores, statistics = self._score_with_statistics(X, groups=groups)
        return self._check_scores(scores, X), statistics

    # ---- persistence ----------------------------------------------------------------
    def save(self, directory: str | Path) -> list[str]:
        """Save into ``directory``; returns the file names written (relative)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, directory / MODEL_FILE)
        return [MODEL_FILE]

    @classmethod
    def load(cls, directory: str | Path) -> "Detector":
        model = joblib.load(Path(directory) / MODEL_FILE)
        if not isinstance(model, cls):
            raise TypeError(f"{directory} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_progress"] = None   # callbacks are process-local
        return state

    def __setstate__(self, state: dict) -> None:
        from workers.detectors.projection import upgrade_standardizer_state

        # parameters added since the model was saved take their defaults
        self.__dict__.update({**type(self).defaults, **upgrade_standardizer_state(state)})

    # ---- for subclasses -------------------------------------------------------------
    def _fit(self, X, *, groups, X_valid, groups_valid) -> None:
        raise NotImplementedError

    def _score(self, X, *, groups) -> np.ndarray:
        raise NotImplementedError

    def _statistics(self, X, *, groups) -> dict[str, np.ndarray]:
        return {}

    def _score_with_statistics(self, X, *, groups) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        # the public statistics(): a detector written before _statistics existed may override it
        return self._score(X, groups=groups), self.statistics(X, groups=groups)

    def _theoretical_threshold(self) -> float | None:
        """A limit from theory (F distribution, ...) instead of validation percentiles."""
        return None

    # ---- helpers ---------------------------------------------------------------------
    def _choose_threshold(self, X, groups, X_valid, groups_valid) -> float:
        theoretical = self._theoretical_threshold()
        if theoretical is not None:
            return float(theoretical)
        if X_valid is None:
            X_valid, groups_valid = X, groups
        scores = np.asarray(self._score(X_valid, groups=groups_valid), dtype=np.float64)
        return float(np.percentile(scores, self.threshold_percentile))

    def _check_scoring_input(self, X) -> np.ndarray:
        """``X`` as an array, after checking the detector is fitted and ``X`` fits it."""
        self._check_fitted()
        return self._check_input(X, "X")

    def _check_scores(self, scores, X: np.ndarray) -> np.ndarray:
        """``scores`` as float64 of shape (n_rows,), one per row of ``X``."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape[0] != X.shape[0]:
            raise RuntimeError(f"{type(self).__name__} returned {scores.shape[0]} scores for {X.shape[0]} rows")
        return scores

    def _check_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(X) before decision_function or predict."
            )

    def _check_input(self, X, what: str, fitting: bool = False) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{what} must be 2-D (n_rows, n_features); got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{what} has no rows")
        if not fitting and hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{what} has {X.shape[1]} features, but {type(self).__name__} was fitted with {self.n_features_in_}."
            )
        return X

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v != self.defaults.get(k))
        return f"{type(self).__name__}({args})"
