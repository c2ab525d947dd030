"""A test-only detector whose ``mode`` makes its worker fail in every way a real one can.

Registered from a TOML config in the tests (``entry = "scripted_detector:ScriptedDetector"``),
which also exercises user-registered detectors.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from workers.detectors.base import Detector

MODES = ("ok", "raise", "exit", "sigkill", "segfault", "sleep", "partial", "allocate")


class ScriptedDetector(Detector):
    """Distance from the training mean; misbehaves on purpose according to ``mode``.

    ``when`` = "fit" or "save" chooses where the misbehaviour happens; ``allocate_mb``
    and ``steps`` drive the memory tests (allocate in steps, then hold); with ``marker``
    (a file path) it misbehaves only once, so a resumed run or a retry succeeds.
    """

    defaults = {**Detector.defaults, "mode": "ok", "when": "fit", "sleep_s": 60.0, "allocate_mb": 200, "allocate_per_row_kb": 0,
                "steps": 4, "step_s": 0.3, "marker": "", "batch_size": None}

    def _fit(self, X, *, groups, X_valid, groups_valid) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}; choose one of {MODES}")
        self.mean_ = np.asarray(X, dtype=np.float64).mean(axis=0)
        if self.allocate_per_row_kb:   # memory that grows with the training rows (OOM shrink tests)
            self.allocate_mb = len(X) * self.allocate_per_row_kb / 1024
        if self.when == "fit":
            self.misbehave()

    # "partial": the worker saves scores.npy, then dies reading threshold_ for alarms.npy,
    # i.e. after writing predictions and before result.json (the worker's cwd is its job folder).
    @property
    def threshold_(self) -> float:
        if self.mode == "partial" and Path("scores.npy").exists():
            os._exit(4)
        return self._threshold

    @threshold_.setter
    def threshold_(self, value: float) -> None:
        self._threshold = value

    def _score(self, X, *, groups) -> np.ndarray:
        return np.sqrt(((np.asarray(X, dtype=np.float64) - self.mean_) ** 2).mean(axis=1))

    def save(self, directory):
        written = super().save(directory)
        if self.when == "save":
            self.misbehave()
        return written

    def misbehave(self) -> None:
        """Fail as ``mode`` says; with ``marker`` only the first time (the marker file records it)."""
        if self.marker:
            if os.path.exists(self.marker):
                return
            with open(self.marker, "w") as handle:
                handle.write(f"{os.getpid()}\n")
        mode = self.mode
        if mode == "raise":
            raise RuntimeError("scripted failure for the test")
        if mode == "exit":
            os._exit(3)
        if mode == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "segfault":
            ctypes.string_at(0)
        if mode == "sleep":
            time.sleep(self.sleep_s)
        if mode == "allocate":
            self.hold_memory()

    def hold_memory(self) -> None:
        chunks = []
        for _ in range(self.steps):
            chunk = np.ones(int(self.allocate_mb) * 2**20 // self.steps // 8)   # touched, so resident
            chunks.append(chunk)
            time.sleep(self.step_s)
        self._held = len(chunks)
        print(f"allocated {self.allocate_mb} MB in {self.steps} steps", file=sys.stderr)
