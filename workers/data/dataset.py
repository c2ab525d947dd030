"""The in-memory form of a loaded source, the memmapped prepared dataset, and run bookkeeping
every loader shares (test metadata, labels, held-out validation, onsets)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from artifacts import DatasetPaths, read_json

XMEAS = [f"XMEAS({i})" for i in range(1, 42)]
XMV = [f"XMV({i})" for i in range(1, 12)]
TEP_VARIABLES = XMEAS + XMV
#: marks a run without a faulty row in ``first_faulty_samples`` (a sample index can be any int)
NO_FAULTY_ROW = np.iinfo(np.int64).max


@dataclass(kw_only=True)
class SplitArrays:
    """The arrays of a dataset, one row per sample; ``*_groups`` is the run id of each row.

    ``test_meta`` columns: fault id of the run, run id, sample index in the run.
    ``test_labels`` is the fault number per row, 0 for in-control rows
    (fault-free runs and the pre-onset rows of faulty runs).
    """

    train: np.ndarray
    train_groups: np.ndarray
    valid: np.ndarray
    valid_groups: np.ndarray
    test: np.ndarray
    test_groups: np.ndarray
    test_labels: np.ndarray
    test_meta: np.ndarray


@dataclass(kw_only=True)
class SourceDescription:
    """What ``meta.json`` tells about a source besides its arrays; every loader fills it in."""

    variables: list[str]
    onset: int
    sampling_minutes: float
    source: str
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class LoadedData(SplitArrays, SourceDescription):
    """A source after loading, before standardization (arrays in the file's units)."""


@dataclass(kw_only=True)
class PreparedData(SplitArrays):
    """``dataset/`` opened by memmap: six workers share one copy in the page cache."""

    meta: dict[str, Any]


def open_prepared(paths: DatasetPaths) -> PreparedData:
    """Open every prepared array read-only by memmap."""
    arrays = {name: np.load(path, mmap_mode="r") for name, path in paths.all_arrays().items()}
    return PreparedData(**arrays, meta=read_json(paths.meta))


def select_runs(X: np.ndarray, groups: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first ``fraction`` of whole runs (at least one), for OOM shrink retries."""
    if fraction >= 1.0:
        return X, groups
    run_ids = np.unique(groups)
    keep = run_ids[: max(1, int(round(len(run_ids) * fraction)))]
    if len(run_ids) == 1:   # a single long run: keep its first rows instead
        n = max(1, int(len(X) * fraction))
        return X[:n], groups[:n]
    mask = np.isin(groups, keep)
    return X[mask], groups[mask]


def build_test_meta(faults: np.ndarray, run_ids: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """``test_meta`` from its three columns (one entry per row each), shape (n_rows, 3) int32."""
    return np.column_stack([faults, run_ids, samples]).astype(np.int32)


def whole_runs_test_meta(faults: Sequence[int], run_ids: Sequence[int], lengths: Sequence[int]) -> np.ndarray:
    """``test_meta`` of whole runs laid end to end, each counted from sample 0, shape (sum(lengths), 3)."""
    return build_test_meta(np.repeat(faults, lengths), np.repeat(run_ids, lengths),
                           np.concatenate([np.arange(n) for n in lengths]))


def label_from_onset(test_meta: np.ndarray, onset: int | None) -> np.ndarray:
    """``test_labels``, shape (n_rows,) int16: the run's fault from sample ``onset`` on, 0 before it
    (the plant is still in control until the fault starts); all 0 when ``onset`` is None."""
    if onset is None:
        return np.zeros(len(test_meta), np.int16)
    return np.where(test_meta[:, 2] >= onset, test_meta[:, 0], 0).astype(np.int16)


def count_held_out(n_items: int, fraction: float) -> int:
    """How many of ``n_items`` (runs, or rows of a single run) form the last ``fraction`` that sets
    thresholds: at least one, because a threshold needs data the detector was not fitted on."""
    return max(1, int(round(n_items * fraction)))


def count_validation_runs(n_runs: int, fraction: float) -> int:
    """``count_held_out`` for whole runs, leaving at least one run to train on (needs ``n_runs`` >= 2)."""
    return min(n_runs - 1, count_held_out(n_runs, fraction))


def first_faulty_samples(run_index: np.ndarray, samples: np.ndarray, labels: np.ndarray, n_runs: int) -> np.ndarray:
    """Sample index of the first faulty row (label != 0) of each run ``0..n_runs-1``, shape (n_runs,);
    ``NO_FAULTY_ROW`` for runs without one. Where a fault shows first is the onset actually seen."""
    first = np.full(n_runs, NO_FAULTY_ROW)
    faulty = labels != 0
    np.minimum.at(first, run_index[faulty], samples[faulty])
    return first
