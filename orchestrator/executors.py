"""Executors start a job and hand back something to poll, measure and kill.

* ``subprocess`` (default): a fresh interpreter per job, its own process group.
* ``inline``: the job runs in this process, one after another — the seed
  notebook's way; for debugging with pdb and as the benchmarks' baseline. It
  imports the workers (and so scikit-learn/TensorFlow) into the parent.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

from artifacts import JobSpec
from artifacts.records import KillReason
from orchestrator.supervise import signal_group, spawn_worker, tree_rss_bytes

EXECUTORS = ("subprocess", "inline", "ray")


class ExecutorUnavailable(ValueError):
    """The chosen executor cannot run here (Ray missing, run directory not shared): exit 2."""


class RunningJob:
    """A started job: ``poll()`` gives the exit status once it has ended."""

    def __init__(self, spec: JobSpec, pid: int) -> None:
        self.spec = spec
        self.pid = pid
        self.started = time.time()
        self.started_monotonic = time.monotonic()
        self.kill_reason: str | None = None
        self.kill_detail: str | None = None    # who killed it and why, when not our own watchdog
        self.peak_rss_bytes = 0
        self.last_rss_bytes = 0
        self.progress: dict = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started_monotonic

    def sample_rss(self) -> int:
        rss = self.current_rss()
        self.last_rss_bytes = rss
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        return rss

    def poll(self) -> int | None:
        raise NotImplementedError

    def current_rss(self) -> int:
        raise NotImplementedError

    def kill(self, reason: str) -> None:
        raise NotImplementedError

    def wait(self) -> int:
        raise NotImplementedError


#: seconds between SIGTERM and SIGKILL; short for memory, where every second counts
GRACE_S = {KillReason.MEMORY: 1.0, KillReason.TIMEOUT: 5.0, KillReason.INTERRUPT: 5.0}


class SubprocessJob(RunningJob):
    """A worker process in its own group. ``kill`` sends SIGTERM without blocking the
    supervision loop; ``poll`` escalates to SIGKILL once the grace period is over."""

    def __init__(self, spec: JobSpec, process: subprocess.Popen) -> None:
        super().__init__(spec, process.pid)
        self.process = process
        self.kill_deadline: float | None = None

    def poll(self) -> int | None:
        returncode = self.process.poll()
        if returncode is not None:
            signal_group(self.pid, signal.SIGKILL)   # leftovers of the group (helpers it spawned)
        elif self.kill_deadline is not None and time.monotonic() > self.kill_deadline:
            signal_group(self.pid, signal.SIGKILL)
        return returncode

    def current_rss(self) -> int:
        return tree_rss_bytes(self.pid)

    def kill(self, reason: str) -> None:
        if self.kill_deadline is not None:
            return
        self.kill_reason = self.kill_reason or reason
        self.kill_deadline = time.monotonic() + GRACE_S.get(reason, 5.0)
        signal_group(self.pid, signal.SIGTERM)

    def wait(self) -> int:
        """Block until the worker is gone, escalating to SIGKILL after the grace period."""
        while (returncode := self.poll()) is None:
            time.sleep(0.05)
        return returncode


class FinishedJob(RunningJob):
    """What the inline executor returns: the job already ran to its end."""

    def __init__(self, spec: JobSpec, returncode: int, peak_rss: int, started: float, seconds: float) -> None:
        super().__init__(spec, os.getpid())
        self.returncode = returncode
        self.peak_rss_bytes = peak_rss
        self.started = started
        self.started_monotonic -= seconds

    def poll(self) -> int | None:
        return self.returncode

    def current_rss(self) -> int:
        return 0

    def kill(self, reason: str) -> None:
        self.kill_reason = self.kill_reason or reason

    def wait(self) -> int:
        return self.returncode


class SubprocessExecutor:
    name = "subprocess"
    parallel = True
    isolated = True    # one job per process: its peak is the job's own, worth remembering

    def start(self, spec: JobSpec) -> RunningJob:
        return SubprocessJob(spec, spawn_worker(spec))

    def close(self) -> None:
        pass


class InlineExecutor:
    name = "inline"
    parallel = False   # one process, one job at a time, like the notebook
    isolated = False   # its RSS is the whole process's, not the job's: kept out of the history

    def start(self, spec: JobSpec) -> RunningJob:
        from workers.jobs import run_job   # deliberately lazy: only this executor imports workers

        import psutil

        started, clock = time.time(), time.monotonic()
        returncode = run_job(spec)
        return FinishedJob(spec, returncode, psutil.Process().memory_info().rss, started, time.monotonic() - clock)

    def close(self) -> None:
        pass


def make_executor(name: str, **options):
    if name == "subprocess":
        return SubprocessExecutor()
    if name == "inline":
        return InlineExecutor()
    if name == "ray":
        from orchestrator.ray_executor import RayExecutor   # optional extra, imported only when chosen

        return RayExecutor(**options)
    raise ValueError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
