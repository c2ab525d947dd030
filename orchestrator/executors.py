"""Executors start a job and hand back something to poll, measure and kill.

* ``subprocess`` (default): a fresh interpreter per job, its own process group.
* ``inline``: the job runs in this process, one after another — the seed
  notebook's way; for debugging with pdb and as the benchmarks' baseline. It
  imports the workers (and so scikit-learn/TensorFlow) into the parent.
"""
from __future__ import annotations

import os
import subprocess
import time

from artifacts import JobSpec
from orchestrator.supervise import spawn_worker, terminate_group, tree_rss_bytes

EXECUTORS = ("subprocess", "inline", "ray")


class RunningJob:
    """A started job: ``poll()`` gives the exit status once it has ended."""

    def __init__(self, spec: JobSpec, pid: int) -> None:
        self.spec = spec
        self.pid = pid
        self.started = time.time()
        self.started_monotonic = time.monotonic()
        self.kill_reason: str | None = None
        self.peak_rss_bytes = 0
        self.progress: dict = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started_monotonic

    def sample_rss(self) -> int:
        rss = self.current_rss()
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        return rss

    def poll(self) -> int | None:
        raise NotImplementedError

    def current_rss(self) -> int:
        raise NotImplementedError

    def kill(self, reason: str) -> None:
        raise NotImplementedError


class SubprocessJob(RunningJob):
    def __init__(self, spec: JobSpec, process: subprocess.Popen) -> None:
        super().__init__(spec, process.pid)
        self.process = process

    def poll(self) -> int | None:
        return self.process.poll()

    def current_rss(self) -> int:
        return tree_rss_bytes(self.pid)

    def kill(self, reason: str) -> None:
        self.kill_reason = self.kill_reason or reason
        terminate_group(self.process)


class FinishedJob(RunningJob):
    """What the inline executor returns: the job already ran to its end."""

    def __init__(self, spec: JobSpec, returncode: int, peak_rss: int) -> None:
        super().__init__(spec, os.getpid())
        self.returncode = returncode
        self.peak_rss_bytes = peak_rss

    def poll(self) -> int | None:
        return self.returncode

    def current_rss(self) -> int:
        return 0

    def kill(self, reason: str) -> None:
        self.kill_reason = self.kill_reason or reason


class SubprocessExecutor:
    name = "subprocess"
    parallel = True

    def start(self, spec: JobSpec) -> RunningJob:
        return SubprocessJob(spec, spawn_worker(spec))

    def close(self) -> None:
        pass


class InlineExecutor:
    name = "inline"
    parallel = False   # one process, one job at a time, like the notebook

    def start(self, spec: JobSpec) -> RunningJob:
        from workers.jobs import run_job   # deliberately lazy: only this executor imports workers

        import psutil

        returncode = run_job(spec)
        return FinishedJob(spec, returncode, psutil.Process().memory_info().rss)

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
