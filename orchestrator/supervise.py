"""Spawning, watching and classifying worker processes (the process supervision is ours).

Nothing here imports TensorFlow or scikit-learn: a worker is just a process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from artifacts import ChecksumError, JobPaths, JobSpec, JobState, ResultRecord, verify_files
from artifacts.records import KillReason

STDERR_TAIL_LINES = 15


def worker_environment(spec: JobSpec, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment, set in one place: threads, GPUs, quiet TensorFlow."""
    env = {**(os.environ if base is None else base), **thread_environment(spec.threads)}
    env["TF_CPP_MIN_LOG_LEVEL"] = env.get("TF_CPP_MIN_LOG_LEVEL", "2")   # log noise stays in stderr.log
    env["PYTHONFAULTHANDLER"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    if spec.cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = spec.cuda_visible_devices
    return with_project_on_path(env)


def thread_environment(threads: int) -> dict[str, str]:
    """Thread-pool sizes of BLAS/OpenMP and TensorFlow for a process given ``threads`` cores."""
    count = max(1, threads)
    env = {name: str(count) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                         "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "TF_NUM_INTRAOP_THREADS")}
    env["TF_NUM_INTEROP_THREADS"] = str(min(2, count))
    return env


def with_project_on_path(env: dict[str, str]) -> dict[str, str]:
    """A child must import our packages even when the parent runs from a checkout."""
    project_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH", "")) if p)
    return env


def spawn_worker(spec: JobSpec) -> subprocess.Popen:
    """Start ``python -m workers <job_dir>`` in its own process group, logs to the job folder."""
    paths = JobPaths(Path(spec.job_dir))
    with open(paths.stdout, "ab") as stdout, open(paths.stderr, "ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "workers", str(paths.root)],
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
            env=worker_environment(spec), cwd=str(paths.root),
            start_new_session=True,   # own process group: we kill the whole tree, Ctrl-C does not reach it
        )


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a worker's whole process group; a group that is already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (0 if it is gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def describe_exit_status(returncode: int) -> str:
    """``SIGKILL(-9)``, ``SIGSEGV(-11)`` or ``EXIT(3)``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "SIGNAL"
        return f"{name}({returncode})"
    return f"EXIT({returncode})"


def stderr_tail(paths: JobPaths, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        text = paths.stderr.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


FAILED_PREFIX = "failed: "
#: exception types a worker raises for the user's own input (data, parameters): exit code 2
INPUT_ERROR_TYPES = ("DataError", "SourceError", "ParameterError")


@dataclass
class Outcome:
    state: JobState
    reason: str | None = None
    record: ResultRecord | None = None


def classify_outcome(spec: JobSpec, returncode: int | None, kill_reason: str | None = None) -> Outcome:
    """Turn how a worker ended into a job state and a human reason.

    A result that parses, says ok, matches the fingerprint and verifies is ok, whatever
    else happened (a kill that came just after it was written, a crash at interpreter
    exit): resume would trust it anyway. Otherwise ``kill_reason`` (why *we* killed it:
    a ``KillReason``) decides, then the result and the exit status. A
    worker that died after writing predictions but before ``result.json`` is a crash,
    and its partial files are not used.
    """
    paths = JobPaths(Path(spec.job_dir))
    record, problem = read_result(paths)
    verdict = verify_result(spec, record) if record is not None and record.ok else None
    if record is not None and record.ok and verdict is None:
        return Outcome(JobState.OK, None, record)
    if kill_reason in KILL_OUTCOMES:
        return Outcome(*KILL_OUTCOMES[kill_reason])
    if record is not None and not record.ok:
        error = record.error or {}
        return Outcome(JobState.FAILED, f"{FAILED_PREFIX}{error.get('type', 'Error')}: {error.get('message', '')}", record)
    if record is not None and returncode == 0:
        return Outcome(JobState.CRASHED, f"crashed: {verdict}", record)
    return Outcome(JobState.CRASHED, describe_crash(paths, returncode, problem))


def input_error_message(reason: str | None) -> str | None:
    """The message of a job that failed on the user's own input (bad data, an unknown
    parameter: exit code 2), read from the reason ``classify_outcome`` wrote; else None."""
    for kind in INPUT_ERROR_TYPES:
        prefix = f"{FAILED_PREFIX}{kind}: "
        if reason and reason.startswith(prefix):
            return reason[len(prefix):]
    return None


KILL_OUTCOMES = {
    KillReason.TIMEOUT: (JobState.TIMED_OUT, "timed out: killed after the --timeout limit"),
    KillReason.MEMORY: (JobState.OOM_KILLED, "oom_killed: the watchdog killed it above its memory limit"),
    KillReason.INTERRUPT: (JobState.INTERRUPTED, "interrupted: the orchestrator was stopped (Ctrl-C/SIGTERM)"),
}


def kill_stale_worker_group(pgid: int) -> None:
    """SIGKILL what is left of a dead run's worker group (its helpers), if it is still ours."""
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getpgid(process.pid) == pgid and "workers" in " ".join(process.info["cmdline"] or []):
                signal_group(pgid, signal.SIGKILL)
                return
        except (ProcessLookupError, psutil.Error, OSError):
            continue


def describe_crash(paths: JobPaths, returncode: int | None, problem: str | None) -> str:
    status = describe_exit_status(returncode) if returncode is not None else "unknown exit"
    hint = " — likely out of memory (kernel OOM killer)" if returncode == -signal.SIGKILL else ""
    tail = stderr_tail(paths, 3).replace("\n", " | ")
    missing = problem or f"no {paths.result.name}"
    return f"crashed: {status}{hint}; {missing}; stderr: {tail or '(empty)'} [log: {paths.stderr}]"


def read_result(paths: JobPaths) -> tuple[ResultRecord | None, str | None]:
    if not paths.result.exists():
        return None, f"{paths.result} was never written"
    try:
        return ResultRecord.load(paths.result), None
    except (ValueError, TypeError, OSError) as error:
        return None, f"{paths.result} is unreadable ({error})"


def verify_result(spec: JobSpec, record: ResultRecord) -> str | None:
    """None if ``record`` is trustworthy for ``spec``; else why not."""
    if record.fingerprint != spec.fingerprint:
        return f"result.json is for fingerprint {record.fingerprint}, the plan wants {spec.fingerprint}"
    try:
        verify_files(spec.output_dir, record.files)
    except ChecksumError as error:
        return str(error)
    return None
