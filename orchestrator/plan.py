"""Which jobs to run: detector selection (--all/--only/--skip) and job specs with fingerprints."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from artifacts import JobSpec, RunPaths
from artifacts.fingerprint import fingerprint_of, job_fingerprint
from artifacts.records import PREPARE_JOB
from artifacts.registry import DetectorInfo
from artifacts.sources import DataSource
from orchestrator.config import Config


class PlanError(ValueError):
    """The selection of detectors is unusable (usage error, exit 2)."""


def select_detectors(registry: dict[str, DetectorInfo], *, select_all: bool, only: list[str],
                     skip: list[str]) -> list[DetectorInfo]:
    """Detectors in registry order; unknown names are an error listing the valid ones."""
    valid = ", ".join(registry)
    for name in [*only, *skip]:
        if name not in registry:
            raise PlanError(f"unknown detector {name!r}; valid detectors: {valid}")
    if select_all and only:
        raise PlanError("use either --all or --only, not both")
    if not select_all and not only:
        raise PlanError(f"say which detectors to run: --all, or --only NAME[,NAME...] (valid: {valid})")
    chosen = list(registry) if select_all else only
    selected = [registry[name] for name in registry if name in chosen and name not in skip]
    if not selected:
        raise PlanError("the selection is empty after --skip; nothing to run")
    return selected


@dataclass
class Plan:
    prepare: JobSpec
    detectors: list[JobSpec]
    frameworks: dict[str, str]     # job name -> numpy | sklearn | tensorflow
    memory_hints: dict[str, int]   # job name -> the user's peak-RSS estimate (config memory_mb)
    data_factors: dict[str, float] = field(default_factory=dict)   # job name -> the detector's size model

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.detectors]

    def spec(self, name: str) -> JobSpec:
        """The planned spec of a job (before any OOM shrink changed a copy of it)."""
        return next(spec for spec in [self.prepare, *self.detectors] if spec.name == name)


def dataset_fingerprint(source: DataSource, seed: int) -> str:
    return fingerprint_of({"source": source.fingerprint(), "seed": seed})


def build_plan(run: RunPaths, source: DataSource, config: Config, selected: list[DetectorInfo], *,
               profile: str, seed: int) -> Plan:
    data_fp = dataset_fingerprint(source, seed)
    prepare = _spec(run, PREPARE_JOB, "prepare", source.describe(),
                    {"kind": source.kind, "location": source.location, "options": source.options},
                    data_fp, seed, output_dir=str(run.dataset.root))
    specs, frameworks, hints, data_factors = [], {}, {}, {}
    for info in selected:
        params = config.params(info.name, profile)
        fingerprint = job_fingerprint(info.name, info.entry, params, data_fp, config.python_path, seed)
        spec = _spec(run, info.name, "detector", info.entry, params, fingerprint, seed,
                     output_dir=str(run.job(info.name).root))
        spec.python_path = list(config.python_path)
        specs.append(spec)
        frameworks[info.name] = info.framework
        if info.memory_hint_bytes:
            hints[info.name] = info.memory_hint_bytes
        if info.memory_per_data_byte:
            data_factors[info.name] = info.memory_per_data_byte
    return Plan(prepare, specs, frameworks, hints, data_factors)


def _spec(run: RunPaths, name: str, kind: str, entry: str, params: dict[str, Any], fingerprint: str,
          seed: int, output_dir: str) -> JobSpec:
    return JobSpec(name=name, kind=kind, entry=entry, params=params, run_dir=str(run.root),
                   job_dir=str(run.job(name).root), output_dir=output_dir, fingerprint=fingerprint,
                   seed=seed, parent_pid=os.getpid())
