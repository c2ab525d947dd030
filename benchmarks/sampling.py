"""Shared measuring helper for the benchmark scripts: run a command, sample its process tree."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orchestrator.supervise import tree_rss_bytes  # noqa: E402

MB = 1 << 20


@dataclass
class Measurement:
    seconds: float
    returncode: int
    peak_tree_bytes: int
    peak_parent_bytes: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)   # (t, tree, parent)


def run_sampled(command: list[str], cwd: Path, interval_s: float = 0.1, **popen) -> Measurement:
    """Run ``command`` to its end, sampling the RSS of its whole process tree and of itself."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, **popen)
    samples: list[tuple[float, int, int]] = []
    while process.poll() is None:
        samples.append((time.perf_counter() - start, tree_rss_bytes(process.pid), own_rss(process.pid)))
        time.sleep(interval_s)
    seconds = time.perf_counter() - start
    return Measurement(seconds, process.returncode, max((s[1] for s in samples), default=0),
                       max((s[2] for s in samples), default=0), samples)


def own_rss(pid: int) -> int:
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


class TreePeak:
    """``with TreePeak(pid) as peak:`` samples a process and its descendants in a thread
    (this process when ``pid`` is None); ``peak.peak_bytes`` is the highest sum seen."""

    def __init__(self, pid: int | None = None, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import os

        pid = self.pid if self.pid is not None else os.getpid()
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(pid))
            self._stop.wait(self.interval_s)
