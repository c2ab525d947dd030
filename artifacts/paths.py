"""The one place that knows where every file of a run lives.

No other code joins run-directory paths by hand (submitit's ``JobPaths``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetPaths:
    """Files of ``runs/<run>/dataset/``, written by the prepare job, read by memmap."""

    root: Path

    @property
    def meta(self) -> Path:
        return self.root / "meta.json"

    def array(self, name: str) -> Path:
        """Path of one prepared array, e.g. ``array("train_groups")``."""
        if name not in self.ARRAYS:
            raise KeyError(f"unknown dataset array {name!r}; known: {', '.join(self.ARRAYS)}")
        return self.root / f"{name}.npy"

    ARRAYS = (
        "train", "valid", "test",
        "train_groups", "valid_groups", "test_groups",
        "test_labels", "test_meta",
    )

    def all_arrays(self) -> dict[str, Path]:
        return {name: self.array(name) for name in self.ARRAYS}


@dataclass(frozen=True)
class JobPaths:
    """Files of one job folder ``runs/<run>/jobs/<name>/``."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def job_json(self) -> Path:
        return self.root / "job.json"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def scores(self) -> Path:
        return self.root / "scores.npy"

    @property
    def alarms(self) -> Path:
        return self.root / "alarms.npy"

    def statistic(self, name: str) -> Path:
        """Extra per-row statistic a detector saves (e.g. ``t2``, ``spe``)."""
        return self.root / f"stat_{name}.npy"

    @property
    def stdout(self) -> Path:
        return self.root / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.root / "stderr.log"

    def outputs(self) -> list[Path]:
        """Everything a worker writes, removed before a new attempt so nothing stale is trusted."""
        stats = sorted(self.root.glob("stat_*.npy")) if self.root.exists() else []
        return [self.result, self.scores, self.alarms, self.model_dir, *stats]


@dataclass(frozen=True)
class RunPaths:
    """Files of one run directory ``runs/<run>/``."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike) -> "RunPaths":
        return cls(Path(root).resolve())

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def lock(self) -> Path:
        return self.root / "lock"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def memory_samples(self) -> Path:
        return self.root / "memory.jsonl"

    @property
    def dataset(self) -> DatasetPaths:
        return DatasetPaths(self.root / "dataset")

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    def job(self, name: str) -> JobPaths:
        return JobPaths(self.jobs_dir / name)

    @property
    def benchmark_dir(self) -> Path:
        return self.root / "benchmark"

    @property
    def figures_dir(self) -> Path:
        return self.benchmark_dir / "figures"

    def benchmark_file(self, name: str) -> Path:
        return self.benchmark_dir / name
