"""Read what the benchmark is built from: manifest, prepared test labels, saved predictions.

Only files, never a worker's objects: ``scores.npy``/``alarms.npy`` are loaded with
``allow_pickle=False`` and checked against the number of test rows, so a stale or
truncated prediction becomes a missing row with its reason, not a wrong number.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artifacts import (ChecksumError, JobPaths, Manifest, ManifestEntry, ResultRecord, RunPaths, read_events,
                       read_json, verify_files)
from artifacts.records import PREPARE_JOB
from orchestrator.metrics import TestLayout, build_layout


class BenchmarkError(ValueError):
    """The benchmark cannot be built from this run directory (nothing to report, inputs missing)."""


class PredictionError(ValueError):
    """A detector's saved predictions are missing or do not fit the test split."""


@dataclass(frozen=True)
class Predictions:
    """One detector's saved output: arrays of shape (n_test_rows,) and its alarm threshold."""

    scores: np.ndarray
    alarms: np.ndarray
    threshold: float | None


@dataclass(frozen=True)
class RunInputs:
    paths: RunPaths
    manifest: Manifest
    meta: dict
    layout: TestLayout
    detectors: list[str]


def load_run_inputs(paths: RunPaths) -> RunInputs:
    """Manifest, dataset meta and test layout of one run; ``BenchmarkError`` says what is missing."""
    if not paths.manifest.is_file():
        raise BenchmarkError(
            f"no manifest.json in {paths.root}; this is not a run directory, or no run has started "
            "there yet. Run 'orchestrate run' first, or pass the right run directory.")
    manifest = Manifest.load(paths.manifest)
    meta = load_dataset_meta(paths)
    labels = _load_dataset_array(paths, "test_labels")
    test_meta = _load_dataset_array(paths, "test_meta")
    layout = build_layout(labels, test_meta, meta["onset"], meta.get("sampling_minutes", 1.0))
    return RunInputs(paths, manifest, meta, layout, list_detectors(manifest))


def load_dataset_meta(paths: RunPaths) -> dict:
    """``dataset/meta.json`` after checking that the test arrays it describes exist."""
    required = [paths.dataset.meta, paths.dataset.array("test_labels"), paths.dataset.array("test_meta")]
    missing = [str(p) for p in required if not p.is_file()]
    if missing:
        raise BenchmarkError(
            f"the prepared dataset of run {paths.name} is incomplete (missing: {', '.join(missing)}); "
            "rerun 'orchestrate run' so the prepare job writes it again.")
    meta = read_json(paths.dataset.meta)
    if "onset" not in meta:
        raise BenchmarkError(f"{paths.dataset.meta} has no 'onset'; re-prepare the dataset (orchestrate run --force).")
    return meta


def _load_dataset_array(paths: RunPaths, name: str) -> np.ndarray:
    path = paths.dataset.array(name)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise BenchmarkError(f"{path} cannot be read ({error}); it is truncated or corrupted. Delete "
                             f"{paths.dataset.root} and rerun 'orchestrate run' to prepare the data again.") from None


def list_detectors(manifest: Manifest) -> list[str]:
    """Detectors in the order the run's settings list them, then any other job of the manifest."""
    listed = [name for name in manifest.settings.get("detectors", []) if name != PREPARE_JOB]
    others = sorted(name for name in manifest.jobs if name != PREPARE_JOB and name not in listed)
    return listed + others


def manifest_entry(manifest: Manifest, name: str) -> ManifestEntry:
    """The detector's manifest line; one the run never reached reads as pending."""
    return manifest.jobs.get(name) or ManifestEntry(reason="no entry in manifest.json: the job never started")


def describe_failure(entry: ManifestEntry, job: JobPaths, paths: RunPaths) -> str:
    """Why a detector has no predictions, as the manifest recorded it, or where to look.

    The log path is relative to the run directory so the report does not change when the run moves.
    """
    if entry.reason:
        return entry.reason
    return f"state {entry.state}, no reason recorded; see {job.stderr.relative_to(paths.root)} in the run directory"


def load_predictions(job: JobPaths, n_rows: int, dataset_fingerprint: str | None = None) -> Predictions:
    """Scores, alarms and threshold of one finished job; ``PredictionError`` names the bad file.

    Predictions count only if their ``result.json`` was made on this dataset and their
    checksums verify: a detector left from a run on other data is a None row, never mixed in.
    """
    record = check_result_record(job, dataset_fingerprint)
    scores = _load_vector(job.scores, n_rows, job.name)
    alarms = _load_vector(job.alarms, n_rows, job.name)
    if not np.all(np.isfinite(scores)):
        bad = int(np.count_nonzero(~np.isfinite(scores)))
        raise PredictionError(f"{job.scores} has {bad} NaN/inf score(s); rerun {job.name} with --force")
    threshold = None if record.threshold is None else float(record.threshold)
    return Predictions(scores=scores, alarms=alarms.astype(bool), threshold=threshold)


def check_result_record(job: JobPaths, dataset_fingerprint: str | None) -> ResultRecord:
    """The job's ``result.json``, once it is known to be from this dataset with intact predictions."""
    try:
        record = ResultRecord.load(job.result)
    except (OSError, ValueError, TypeError) as error:
        raise PredictionError(f"{job.result} is missing or unreadable ({error}); rerun {job.name}") from None
    made_on = (record.extra or {}).get("dataset_fingerprint")
    if dataset_fingerprint is not None and made_on != dataset_fingerprint:
        raise PredictionError(
            f"stale: {job.name} was trained on another dataset (fingerprint {made_on}, this run's data is "
            f"{dataset_fingerprint}); include it in 'orchestrate run --only ...' to retrain it on this data")
    wanted = {name: digest for name, digest in record.files.items()
              if name in (job.scores.name, job.alarms.name)}
    try:
        verify_files(job.root, wanted)
    except ChecksumError as error:
        raise PredictionError(f"{error}; rerun {job.name} to recompute its predictions") from None
    return record


def _load_vector(path: Path, n_rows: int, name: str) -> np.ndarray:
    if not path.is_file():
        raise PredictionError(f"{path} is missing although {name} is marked done; rerun it with --force")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise PredictionError(f"{path} cannot be read ({error}); rerun {name} with --force") from error
    if array.shape != (n_rows,):
        raise PredictionError(
            f"{path} has shape {array.shape} but the test split has {n_rows} rows; it was made from "
            f"another dataset. Rerun {name} with --force.")
    return array


def load_memory_samples(paths: RunPaths) -> list[dict]:
    """Parent RSS samples ``{"ts", "job", "rss_bytes"}``; torn or partial lines are skipped."""
    samples, _ = read_events(paths.memory_samples)
    return [s for s in samples if isinstance(s, dict) and {"ts", "job", "rss_bytes"} <= s.keys()]


def succeeded(entry: ManifestEntry) -> bool:
    """Whether the manifest says the job's predictions are current (ok, or up to date)."""
    return entry.job_state.succeeded


__all__ = [
    "BenchmarkError", "PredictionError", "Predictions", "RunInputs",
    "load_run_inputs", "load_dataset_meta", "list_detectors", "manifest_entry", "describe_failure",
    "load_predictions", "load_memory_samples", "succeeded",
]
