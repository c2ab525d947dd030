"""Run one job (prepare or detector) and write ``result.json`` last.

The same ``run_job`` serves the subprocess executor (``python -m workers``),
the inline executor (in the parent's process) and the Ray executor.
"""
from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from artifacts import (DatasetPaths, JobPaths, JobSpec, ResultRecord, RunPaths, append_event,
                       atomic_save_npy)
from artifacts.checksums import digest_tree
from artifacts.fingerprint import library_versions
from workers.runtime import own_peak_rss_bytes

#: rows scored per block, on run boundaries, so scoring memory stays flat
SCORE_BLOCK_ROWS = 200_000


class Timer:
    """Collects named durations for ``result.json``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 4)


def run_job(spec: JobSpec) -> int:
    """Run ``spec``; return the exit status (0 ok, 1 failed). Never raises for job errors."""
    paths = JobPaths(Path(spec.job_dir))
    events = RunPaths(Path(spec.run_dir)).events
    started = time.time()
    append_event(events, "worker_started", job=spec.name, pid=os.getpid(), attempt=spec.attempt)
    try:
        record = _run_kind(spec, paths, events, started)
    except Exception as error:  # the job failed; report it as data, not as a crash
        record = _failure_record(spec, started, error)
        record.save(paths.result)
        append_event(events, "worker_failed", job=spec.name, error=f"{type(error).__name__}: {error}")
        traceback.print_exc(file=sys.stderr)
        return 1
    record.save(paths.result)   # LAST: its presence means every file above is complete
    append_event(events, "worker_finished", job=spec.name, duration_s=round(record.ended - started, 3))
    return 0


def _run_kind(spec: JobSpec, paths: JobPaths, events: Path, started: float) -> ResultRecord:
    for folder in spec.python_path:
        if folder not in sys.path:
            sys.path.insert(0, folder)
    if spec.kind == "prepare":
        return _prepare(spec, started)
    if spec.kind == "detector":
        return _train_and_score(spec, paths, events, started)
    raise ValueError(f"job {spec.name}: unknown kind {spec.kind!r} (expected 'prepare' or 'detector')")


def _prepare(spec: JobSpec, started: float) -> ResultRecord:
    from workers.data.prepare import prepare_dataset

    out = DatasetPaths(Path(spec.output_dir))
    timer = Timer()
    with timer.measure("prepare"):
        meta = prepare_dataset(spec.params["kind"], spec.params.get("location"), spec.params.get("options", {}),
                               out, spec.fingerprint, seed=spec.seed)
    files = digest_tree(out.root, [p.name for p in out.all_arrays().values()] + [out.meta.name])
    rows = {split: shape[0] for split, shape in meta.get("shapes", {}).items()}
    record = _ok_record(spec, started, timer, files, rows)
    record.extra = {"source": meta.get("source"), "dropped_constant_variables": meta.get("dropped_constant_variables", [])}
    return record


def _train_and_score(spec: JobSpec, paths: JobPaths, events: Path, started: float) -> ResultRecord:
    from workers.data.dataset import open_prepared, select_runs
    from workers.detectors.loading import build_detector

    timer = Timer()
    data = open_prepared(RunPaths(Path(spec.run_dir)).dataset)
    train, train_groups = select_runs(data.train, data.train_groups, spec.train_fraction)
    detector = build_detector(spec.entry, spec.params, seed=spec.seed)
    detector.set_progress_callback(lambda **fields: append_event(events, "progress", job=spec.name, **fields))
    with timer.measure("fit"):
        detector.fit(train, groups=train_groups, X_valid=data.valid, groups_valid=data.valid_groups)
    with timer.measure("save"):
        written = detector.save(paths.model_dir)
    with timer.measure("score"):
        scores, statistics = score_in_blocks(detector, data.test, data.test_groups)
    check_scores(scores, spec.name)
    atomic_save_npy(paths.scores, scores.astype(np.float64))
    atomic_save_npy(paths.alarms, detector.alarms_from_scores(scores))
    for name, values in statistics.items():
        atomic_save_npy(paths.statistic(name), values)
    outputs = [f"model/{name}" for name in written] + [paths.scores.name, paths.alarms.name]
    outputs += [paths.statistic(name).name for name in statistics]
    files = digest_tree(paths.root, outputs)
    rows = {"train": int(len(train)), "valid": int(len(data.valid)), "test": int(len(data.test))}
    record = _ok_record(spec, started, timer, files, rows)
    record.threshold = float(detector.threshold_)
    record.extra = {"train_fraction": spec.train_fraction, "params": detector.get_params(),
                    "dataset_fingerprint": data.meta.get("fingerprint")}
    return record


def check_scores(scores: np.ndarray, name: str) -> None:
    """NaN/inf scores would be trusted forever by resume: fail the job instead."""
    bad = int(np.count_nonzero(~np.isfinite(scores)))
    if bad:
        raise ValueError(f"{name} returned {bad} NaN/inf score(s) out of {len(scores)}; the model diverged "
                         "or the data has values it cannot handle. Check its parameters and rerun.")


def score_in_blocks(detector, X, groups) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Score ``X`` block by block, cut on run boundaries so windows stay inside runs."""
    scores, statistics = [], {}
    for start, stop in block_bounds(groups, SCORE_BLOCK_ROWS):
        block, block_groups = np.asarray(X[start:stop]), np.asarray(groups[start:stop])
        block_scores, block_statistics = detector.score_with_statistics(block, groups=block_groups)
        scores.append(block_scores)
        for name, values in block_statistics.items():
            statistics.setdefault(name, []).append(np.asarray(values))
    return np.concatenate(scores), {name: np.concatenate(parts) for name, parts in statistics.items()}


def block_bounds(groups: np.ndarray, target_rows: int) -> list[tuple[int, int]]:
    """(start, stop) pairs of about ``target_rows`` rows each, cut only where the run id changes."""
    groups = np.asarray(groups)
    boundaries = np.flatnonzero(np.diff(groups) != 0) + 1
    cuts, last = [0], 0
    for boundary in boundaries:
        if boundary - last >= target_rows:
            cuts.append(int(boundary))
            last = boundary
    cuts.append(len(groups))
    return list(zip(cuts[:-1], cuts[1:]))


def _ok_record(spec: JobSpec, started: float, timer: Timer, files: dict, rows: dict) -> ResultRecord:
    return ResultRecord(
        name=spec.name, status="ok", fingerprint=spec.fingerprint, started=started, ended=time.time(),
        timings=timer.timings, rows=rows, versions=_versions(), files=files, peak_rss_bytes=own_peak_rss_bytes(),
    )


def _failure_record(spec: JobSpec, started: float, error: BaseException) -> ResultRecord:
    return ResultRecord(
        name=spec.name, status="failed", fingerprint=spec.fingerprint, started=started, ended=time.time(),
        error={"type": type(error).__name__, "message": str(error), "traceback": traceback.format_exc()},
        versions=_versions(), peak_rss_bytes=own_peak_rss_bytes(),
    )


def _versions() -> dict[str, str]:
    return {"python": platform.python_version(), **library_versions()}
