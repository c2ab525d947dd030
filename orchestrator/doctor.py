"""``orchestrate doctor``: what this machine can run, and the ``orchestrate run`` flags that fit it.

The parent never imports TensorFlow or scikit-learn, so whether they import
(and how long that takes) is asked of a fresh probe interpreter, the same
``sys.executable`` a worker would use. GPUs come from ``nvidia-smi``.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import psutil

from orchestrator.memory import DEFAULT_BUDGET_FRACTION, detect_gpus, size_model_bytes

GIB = 2**30
#: the full TEP training set of the design: 250,000 in-control rows x 52 variables, float32
FULL_TRAIN_ROWS, TEP_FEATURES = 250_000, 52
#: a TensorFlow import can take a minute on a cold network file system; past this it is broken
IMPORT_TIMEOUT_S = {"tensorflow": 180.0, "sklearn": 60.0}
#: below these the production profile (10,000-row SVMs, 30-50 epochs) runs for many hours
PRODUCTION_MIN_RAM_BYTES, PRODUCTION_MIN_CPUS = 16 * GIB, 4
#: under this much RAM an estimate that is off by a worker's size already means an OOM kill
SHRINK_BELOW_RAM_BYTES = 16 * GIB
#: a full benchmark writes models, scores and figures: a few hundred MB; warn well before that
LOW_DISK_BYTES = 2 * GIB


@dataclass
class ImportProbe:
    """Outcome of ``python -c "import <module>"`` in a fresh interpreter."""

    module: str
    ok: bool
    seconds: float
    version: str | None = None
    error: str | None = None


@dataclass
class Advice:
    """One recommendation: the flag, its value, why, and the exact command line."""

    topic: str
    value: str
    reason: str
    command: str


@dataclass
class Diagnosis:
    """Everything ``orchestrate doctor`` found; sizes in bytes, times in seconds."""

    python: str
    executable: str
    total_ram_bytes: int
    available_ram_bytes: int
    swap_total_bytes: int
    swap_free_bytes: int
    disk_path: str
    disk_free_bytes: int
    disk_total_bytes: int
    cpu_count: int
    gpus: list[str]
    tensorflow: ImportProbe
    sklearn: ImportProbe
    budget_bytes: int = 0
    worker_bytes: int = 0
    max_workers: int = 1
    profile: str = "fast"
    on_oom: str = "fail"
    advice: list[Advice] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when detectors can run here; 1 when not even scikit-learn imports."""
        return 0 if self.sklearn.ok else 1

    def to_dict(self) -> dict:
        return {**asdict(self), "exit_code": self.exit_code}


# ---- measuring ---------------------------------------------------------------------------
def nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its closest existing parent (where it would be created)."""
    candidate = Path(os.path.abspath(path))
    while not candidate.exists() and candidate != candidate.parent:
        candidate = candidate.parent
    return candidate


def probe_import(module: str, timeout_s: float = 60.0) -> ImportProbe:
    """Import ``module`` in a fresh ``sys.executable`` and time it, never in this process."""
    code = f"import {module} as m; print(getattr(m, '__version__', ''))"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}   # TensorFlow's banner is not an error
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout_s, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return ImportProbe(module, False, round(time.perf_counter() - start, 3),
                           error=f"'import {module}' did not finish within {timeout_s:g} s")
    seconds = round(time.perf_counter() - start, 3)
    if done.returncode != 0:
        return ImportProbe(module, False, seconds, error=last_line(done.stderr) or f"exit status {done.returncode}")
    return ImportProbe(module, True, seconds, version=last_line(done.stdout) or None)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def diagnose(run_dir: Path) -> Diagnosis:
    """Measure this machine for a run in ``run_dir`` (which need not exist yet) and recommend flags."""
    memory, swap = psutil.virtual_memory(), psutil.swap_memory()
    disk_path = nearest_existing(Path(run_dir))
    disk = shutil.disk_usage(disk_path)
    diagnosis = Diagnosis(
        python=platform.python_version(), executable=sys.executable,
        total_ram_bytes=int(memory.total), available_ram_bytes=int(memory.available),
        swap_total_bytes=int(swap.total), swap_free_bytes=int(swap.free),
        disk_path=str(disk_path), disk_free_bytes=int(disk.free), disk_total_bytes=int(disk.total),
        cpu_count=os.cpu_count() or 1, gpus=detect_gpus(),
        tensorflow=probe_import("tensorflow", IMPORT_TIMEOUT_S["tensorflow"]),
        sklearn=probe_import("sklearn", IMPORT_TIMEOUT_S["sklearn"]),
    )
    recommend(diagnosis)
    return diagnosis


# ---- recommending ------------------------------------------------------------------------
def full_size_worker_bytes(framework: str) -> int:
    """The scheduler's size model (orchestrator.memory) for one worker on the full training set."""
    return size_model_bytes(framework, FULL_TRAIN_ROWS, TEP_FEATURES)


def round_down_gb(value: int) -> int:
    """Whole GB (10**9, as ``--memory-budget 4GB`` reads it), at least 1."""
    return max(1, value // 10**9) * 10**9


def recommend(d: Diagnosis) -> Diagnosis:
    """Fill budget, workers, profile and OOM policy of ``d`` from its measurements; returns ``d``."""
    heaviest = "tensorflow" if d.tensorflow.ok else "sklearn"
    d.budget_bytes = round_down_gb(int(d.available_ram_bytes * DEFAULT_BUDGET_FRACTION))
    d.worker_bytes = full_size_worker_bytes(heaviest)
    d.max_workers = max(1, min(d.cpu_count, d.budget_bytes // d.worker_bytes))
    big_enough = d.total_ram_bytes >= PRODUCTION_MIN_RAM_BYTES and d.cpu_count >= PRODUCTION_MIN_CPUS
    d.profile = "production" if big_enough else "fast"
    tight = d.total_ram_bytes < SHRINK_BELOW_RAM_BYTES or d.budget_bytes < 2 * d.worker_bytes
    d.on_oom = "shrink" if tight else "fail"
    d.advice = [advise_budget(d), advise_workers(d, heaviest), advise_profile(d), advise_on_oom(d), advise_all(d)]
    d.warnings = collect_warnings(d)
    return d


def advise_budget(d: Diagnosis) -> Advice:
    fraction = f"{DEFAULT_BUDGET_FRACTION:.0%}"
    return Advice("memory budget", gb(d.budget_bytes),
                  f"{fraction} of the {gb(d.available_ram_bytes)} available now; writing it down keeps an "
                  "overnight run from sizing itself on whatever else happens to be running at start",
                  f"orchestrate run --all --memory-budget {d.budget_bytes // 10**9}GB")


def advise_workers(d: Diagnosis, heaviest: str) -> Advice:
    fits = d.budget_bytes // d.worker_bytes
    limit = "the CPU count" if d.cpu_count <= fits else "the memory budget"
    return Advice("workers", str(d.max_workers),
                  f"{d.cpu_count} CPUs; {fits} {heaviest} workers of ~{gib(d.worker_bytes)} each (full data) "
                  f"fit the budget; limited by {limit}",
                  f"orchestrate run --all --max-workers {d.max_workers}")


def advise_profile(d: Diagnosis) -> Advice:
    if d.profile == "production":
        reason = (f"{gib(d.total_ram_bytes)} RAM and {d.cpu_count} CPUs carry the production parameters "
                  "(larger SVM subsamples, more epochs)")
    else:
        reason = (f"production wants >= {gib(PRODUCTION_MIN_RAM_BYTES)} RAM and >= {PRODUCTION_MIN_CPUS} CPUs "
                  f"(here {gib(d.total_ram_bytes)}, {d.cpu_count}); fast gives a first benchmark in minutes")
    return Advice("profile", d.profile, reason, f"orchestrate run --all --profile {d.profile}")


def advise_on_oom(d: Diagnosis) -> Advice:
    if d.on_oom == "shrink":
        reason = ("memory is tight: an out-of-memory kill is retried on half the training rows "
                  "(down to 1/16) instead of leaving the detector without a result")
    else:
        reason = "the budget holds several full-size workers; an OOM kill would be a bug worth seeing, not hiding"
    return Advice("on OOM", d.on_oom, reason, f"orchestrate run --all --on-oom {d.on_oom}")


def advise_all(d: Diagnosis) -> Advice:
    return Advice("all together", "", "every recommendation above in one command",
                  f"orchestrate run --all --profile {d.profile} --max-workers {d.max_workers} "
                  f"--memory-budget {d.budget_bytes // 10**9}GB --on-oom {d.on_oom}")


def collect_warnings(d: Diagnosis) -> list[str]:
    warnings = []
    if not d.sklearn.ok:
        warnings.append(f"scikit-learn does not import ({d.sklearn.error}): no detector can run; "
                        f"reinstall with: {d.executable} -m pip install 'scikit-learn>=1.4'")
    if not d.tensorflow.ok:
        warnings.append(f"TensorFlow does not import ({d.tensorflow.error}): LSTM_VAE, VAE_T2 and PCA_AE will "
                        "fail; install it with: pip install -e '.[tf]' (in the orchestrate checkout), or leave them out with "
                        "--skip LSTM_VAE,VAE_T2,PCA_AE")
    if d.disk_free_bytes < LOW_DISK_BYTES:
        warnings.append(f"only {gib(d.disk_free_bytes)} free on {d.disk_path}: a full benchmark needs a few "
                        "hundred MB; choose another folder with --runs-dir")
    if d.gpus and not d.tensorflow.ok:
        warnings.append(f"{len(d.gpus)} GPU(s) found but TensorFlow does not import: install the [gpu] extra: pip install -e '.[gpu]'")
    return warnings


def gib(value: int) -> str:
    return f"{value / GIB:,.1f} GiB"


def gb(value: int) -> str:
    return f"{value / 10**9:,.0f} GB"


# ---- rendering ---------------------------------------------------------------------------
def describe_probe(probe: ImportProbe) -> tuple[str, str]:
    if probe.ok:
        return f"imports, version {probe.version}", f"import takes {probe.seconds:.1f} s per worker"
    return "does NOT import", probe.error or ""


def machine_rows(d: Diagnosis) -> list[tuple[str, str, str]]:
    gpus = ", ".join(d.gpus) if d.gpus else "none"
    return [
        ("Python", d.python, d.executable),
        ("RAM", f"{gib(d.available_ram_bytes)} available of {gib(d.total_ram_bytes)}", ""),
        ("swap", f"{gib(d.swap_free_bytes)} free of {gib(d.swap_total_bytes)}",
         "" if d.swap_total_bytes else "no swap: going over the memory means an immediate OOM kill"),
        ("disk", f"{gib(d.disk_free_bytes)} free of {gib(d.disk_total_bytes)}", f"on {d.disk_path}"),
        ("CPUs", str(d.cpu_count), ""),
        ("GPUs", gpus, "nvidia-smi / CUDA_VISIBLE_DEVICES; TensorFlow jobs get one each" if d.gpus else ""),
        ("TensorFlow", *describe_probe(d.tensorflow)),
        ("scikit-learn", *describe_probe(d.sklearn)),
    ]


def render_diagnosis(d: Diagnosis) -> None:
    """Print the machine table, the recommendations and warnings with rich."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    machine = Table(title="this machine")
    for column in ("check", "found", "note"):
        machine.add_column(column, overflow="fold")
    for row in machine_rows(d):
        machine.add_row(*row)
    console.print(machine)
    advice = Table(title="recommended for orchestrate run")
    for column in ("what", "use", "why"):
        advice.add_column(column, overflow="fold")
    for item in d.advice[:-1]:
        advice.add_row(item.topic, item.value, item.reason)
    console.print(advice)
    for item in d.advice:
        # Commands go out unwrapped, so they can be copied as they are.
        console.print(f"  {item.topic + ':':<15} {item.command}", soft_wrap=True, highlight=False)
    for warning in d.warnings:
        console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True, highlight=False)


# ---- command -----------------------------------------------------------------------------
@click.command("doctor")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"),
              show_default=True, help="Folder that will hold run directories (its free disk space is checked).")
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON (sizes in bytes, times in s).")
def doctor_command(runs_dir, as_json) -> None:
    """Check this machine (RAM, swap, disk, CPUs, GPUs, whether TensorFlow and
    scikit-learn import and how long that takes) and recommend the memory
    budget, profile, number of workers and OOM policy for 'orchestrate run',
    each as a command line to copy.

    \b
    Exit codes: 0 detectors can run here; 1 scikit-learn does not import.

    \b
    Examples:
      orchestrate doctor
      orchestrate doctor --runs-dir /scratch/runs
      orchestrate doctor --json > machine.json
    """
    diagnosis = diagnose(runs_dir)
    if as_json:
        click.echo(json.dumps(diagnosis.to_dict(), indent=2))
    else:
        render_diagnosis(diagnosis)
    sys.exit(diagnosis.exit_code)
