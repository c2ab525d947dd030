"""``from orchestrator import run``: the CLI's ``run`` for notebooks."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def run(detectors: str | list[str] = "all", *, skip: list[str] | None = None, data: str = "synthetic",
        size: str | None = None, data_options: dict[str, Any] | None = None, profile: str = "fast",
        run_dir: str | Path = "runs/default", progress: str = "plain", **options: Any):
    """Run detectors in worker processes and return the benchmark's metric records.

    ``detectors`` is ``"all"`` or a list of names. Other keyword options are those of
    ``orchestrate run`` (``force``, ``timeout_s``, ``retries``, ``executor``,
    ``max_workers``, ``memory_budget_bytes``, ``on_oom``, ``seed``, ``config``,
    ``k_consecutive``). Returns a ``RunResult`` with ``records`` (list of dicts),
    ``dataframe`` (pandas, when installed), ``exit_code`` and ``manifest``.
    """
    from orchestrator.runner import RunOptions, execute_run

    data_options = dict(data_options or {})
    if size is not None:
        data_options["size"] = size
    select_all = detectors == "all"
    only = [] if select_all else ([detectors] if isinstance(detectors, str) else list(detectors))
    report = execute_run(RunOptions(run_dir=Path(run_dir), data=data, data_options=data_options, profile=profile,
                                    select_all=select_all, only=only, skip=list(skip or []), progress=progress,
                                    **options))
    return RunResult.from_report(report)


class RunResult:
    """What ``run`` returns: metric records, an optional DataFrame, and the run's facts."""

    def __init__(self, records: list[dict], exit_code: int, manifest, run_dir: Path, report_error: str | None):
        self.records = records
        self.exit_code = exit_code
        self.manifest = manifest
        self.run_dir = run_dir
        self.report_error = report_error

    @classmethod
    def from_report(cls, report) -> "RunResult":
        records = list(getattr(report.benchmark, "records", []) or [])
        return cls(records, report.exit_code, report.manifest, report.run.root, report.report_error)

    @property
    def dataframe(self):
        try:
            import pandas
        except ImportError:
            return None
        return pandas.DataFrame(self.records)

    def __repr__(self) -> str:
        return f"RunResult(exit_code={self.exit_code}, records={len(self.records)}, run_dir='{self.run_dir}')"
