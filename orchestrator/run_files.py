"""What a run keeps on disk, as the run loop needs it: the run directory, the manifest,
job folders before an attempt, whether a job is up to date, and the benchmark step."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifacts import JobPaths, JobSpec, Manifest, RunPaths, read_json
from orchestrator.supervise import read_result, verify_result, with_project_on_path


class InputError(Exception):
    """A usage or input problem the user must fix (exit code 2)."""


def create_run_directory(run: RunPaths) -> None:
    try:
        run.root.mkdir(parents=True, exist_ok=True)
        probe = run.root / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise InputError(f"cannot use {run.root} as the run directory ({error.strerror or error}); "
                         "choose a writable place with --runs-dir DIR or --run NAME") from None


def load_manifest(run: RunPaths) -> Manifest:
    """The run's manifest; a corrupt one is moved aside (results on disk are the truth) and replaced."""
    try:
        return Manifest.load_or_new(run.manifest, run.name)
    except ValueError as error:
        aside = run.manifest.with_name(f"manifest.json.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(run.manifest, aside)
        print(f"warning: {error}. Moved it to {aside.name}; finished jobs are recognised from their "
              "result.json files and are not retrained.", file=sys.stderr)
        return Manifest(run=run.name)


@dataclass
class BenchmarkSummary:
    """What ``metrics.json`` says: metric records, failed detectors, the ones that succeeded."""

    records: list[dict]
    failures: list[dict]
    succeeded: list[str]


def attach_benchmark(report: Any, options: Any) -> None:
    """Build the benchmark when at least one detector succeeded; never fail the run for it.

    It is built by ``orchestrate report`` in a child process: the same code, but matplotlib
    and the metric arrays never enter the long-lived parent (which stays under 100 MB).
    """
    if not any(report.manifest.jobs[name].job_state.succeeded for name in report.selected):
        report.report_error = "no detector succeeded, so there is no benchmark to build"
        return
    command = [sys.executable, "-m", "orchestrator", "report", str(report.run.root),
               "--k-consecutive", str(options.k_consecutive)]
    result = subprocess.run(command, capture_output=True, text=True, env=with_project_on_path(dict(os.environ)))
    if result.returncode != 0:
        report.report_error = f"building the benchmark failed: {result.stderr.strip()[-2000:]}"
        return
    metrics = read_json(report.run.benchmark_file("metrics.json"))
    report.benchmark = BenchmarkSummary(metrics.get("records", []), metrics.get("failures", []),
                                        metrics.get("succeeded", []))


def is_up_to_date(spec: JobSpec) -> bool:
    """Done = result.json parses, says ok, matches the fingerprint and every checksum verifies."""
    record, _ = read_result(JobPaths(Path(spec.job_dir)))
    return record is not None and record.ok and verify_result(spec, record) is None


def prepare_job_folder(spec: JobSpec) -> None:
    """Remove what an earlier attempt wrote, so nothing stale is ever trusted; write job.json."""
    paths = JobPaths(Path(spec.job_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    for output in paths.outputs():
        if output.is_dir():
            shutil.rmtree(output)
        elif output.exists():
            output.unlink()
    spec.save(paths.job_json)
    for log in (paths.stdout, paths.stderr):   # keep the previous attempt's log; the tail is this attempt's
        if log.exists() and log.stat().st_size:
            os.replace(log, log.with_name(log.name + ".previous"))
