"""The in-memory form of a loaded source, and the memmapped prepared dataset."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from artifacts import DatasetPaths, read_json

XMEAS = [f"XMEAS({i})" for i in range(1, 42)]
XMV = [f"XMV({i})" for i in range(1, 12)]
TEP_VARIABLES = XMEAS + XMV


@dataclass
class LoadedData:
    """A source after loading, before standardization.

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
    variables: list[str]
    onset: int
    sampling_minutes: float
    source: str
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedData:
    """``dataset/`` opened by memmap: six workers share one copy in the page cache."""

    train: np.ndarray
    train_groups: np.ndarray
    valid: np.ndarray
    valid_groups: np.ndarray
    test: np.ndarray
    test_groups: np.ndarray
    test_labels: np.ndarray
    test_meta: np.ndarray
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
