"""Memory budget, admission by estimates, measured history, OOM shrink, GPU assignment."""
from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil

from artifacts import JobSpec, JobState, RunPaths, atomic_write_json, read_json
from artifacts.fingerprint import fingerprint_of
from artifacts.records import ManifestEntry

#: default budget = this fraction of the memory available when the run starts
DEFAULT_BUDGET_FRACTION = 0.7
#: an OOM-shrunk job never trains on less than this fraction of the training rows
SHRINK_FLOOR = 1 / 16
#: ...and its batch (detectors that have ``batch_size``) is halved with it, not below this
MIN_SHRUNK_BATCH = 32
#: resident memory of a worker before it touches data: interpreter + imports
BASE_BYTES = {"numpy": 80 << 20, "sklearn": 200 << 20, "tensorflow": 800 << 20}
#: bytes of worker memory per byte of (float32) training data, before any history exists, for
#: detectors without their own factor (DetectorInfo.memory_per_data_byte), e.g. a user's
DATA_FACTOR = {"numpy": 2.0, "sklearn": 4.0, "tensorflow": 3.0}
SAMPLE_EVERY_S = 0.5
#: measured sizes kept per detector and parameters in the history
HISTORY_SIZES = 4
#: duration assumed at PRIOR_ROWS training rows (the full TEP size) before a job has history, only
#: to order the start: TensorFlow training takes minutes at full size, the classical detectors seconds
PRIOR_SECONDS = {"tensorflow": 60.0, "sklearn": 5.0, "numpy": 1.0}
PRIOR_ROWS = 250_000
#: below this no worker can do anything useful
MIN_BUDGET_BYTES = 300 * 2**20

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20,
          "g": 1e9, "gb": 1e9, "gib": 2**30, "t": 1e12, "tb": 1e12, "tib": 2**40}


def parse_size(text: str) -> int:
    """``"4GB"`` -> 4_000_000_000, ``"512MiB"`` -> 536_870_912; ValueError with the accepted forms."""
    match = _SIZE.match(str(text))
    unit = (match.group(2) or "").lower() if match else None
    if not match or unit not in _UNITS:
        raise ValueError(f"cannot read memory size {text!r}; write e.g. 4GB, 2.5GiB or 800MB")
    return int(float(match.group(1)) * _UNITS[unit])


def default_budget_bytes() -> int:
    return int(psutil.virtual_memory().available * DEFAULT_BUDGET_FRACTION)


def history_path() -> Path:
    root = os.environ.get("ORCHESTRATE_CACHE_DIR") or Path.home() / ".cache" / "orchestrate"
    return Path(root) / "memory_history.json"


class RunningJobLike(Protocol):
    spec: JobSpec
    peak_rss_bytes: int
    last_rss_bytes: int


@dataclass
class Admission:
    start: bool
    limit_bytes: int | None = None
    message: str | None = None


class MemoryPolicy:
    """Decides whether a job may start now, records samples and peaks, shrinks after OOM."""

    def __init__(self, budget_bytes: int | None, on_oom: str, run: RunPaths, gpus: list[str],
                 frameworks: dict[str, str], hints: dict[str, int] | None = None,
                 data_factors: dict[str, float] | None = None) -> None:
        self.budget_bytes = budget_bytes
        self.frameworks = frameworks
        self.hints = hints or {}
        self.data_factors = data_factors or {}
        # Admission asks for estimates several times a second: read the history file once,
        # and meta.json only when it changes.
        self.history = load_history()
        self._shape_cache: tuple[tuple[int, int, int], tuple[int, int]] | None = None
        self.on_oom = on_oom
        self.run = run
        self.gpus = gpus
        self._gpu_turn = 0
        self._last_sample: dict[str, float] = {}
        self._warned: set[str] = set()

    @classmethod
    def create(cls, options: Any, run: RunPaths, plan: Any) -> "MemoryPolicy":
        budget = options.memory_budget_bytes
        if budget is None and options.executor == "subprocess":
            budget = default_budget_bytes()
        return cls(budget, options.on_oom, run, detect_gpus(), plan.frameworks, plan.memory_hints,
                   plan.data_factors)

    # ---- admission -------------------------------------------------------------------
    def framework(self, spec: JobSpec) -> str:
        return self.frameworks.get(spec.name, "numpy")

    def estimate_bytes(self, spec: JobSpec) -> int:
        """Peak RSS expected: measured history extended to this many rows, else the user's hint,
        else the size model (the detector's own factor, or its framework's)."""
        rows, features = self.training_shape(spec)
        return self.estimate_at(spec, rows, features)

    def estimate_at(self, spec: JobSpec, rows: int, features: int) -> int:
        """The estimate for ``rows`` x ``features`` of training data (also used to pick a shrink)."""
        framework = self.framework(spec)
        base = BASE_BYTES.get(framework, BASE_BYTES["numpy"])
        factor = self.data_factors.get(spec.name, DATA_FACTOR.get(framework, 2.0))
        points = measured_points(self.history.get(history_key(spec)), features)
        if points:
            return max(base, int(extend_measurement(points, rows, "peak_bytes", model_per_row=factor * features * 4)))
        if spec.name in self.hints:
            return self.hints[spec.name]
        return size_model_bytes(framework, rows, features, factor)

    def expected_seconds(self, spec: JobSpec) -> float | None:
        """Duration expected from the measurements, extended to this many rows as peaks are;
        None before any history."""
        points = [point for point in measured_points(self.history.get(history_key(spec))) if "seconds" in point]
        if not points:
            return None
        rows, _ = self.training_shape(spec)
        prior_per_row = PRIOR_SECONDS.get(self.framework(spec), 1.0) / PRIOR_ROWS
        return max(0.0, extend_measurement(points, rows, "seconds", model_per_row=prior_per_row))

    def longest_first(self, specs: list[JobSpec]) -> list[JobSpec]:
        """Start order: the longest expected job first, so it overlaps the short ones instead of
        running alone at the end (on 2 cores, LSTM_VAE takes ~3/4 of a full run). Jobs without
        history count as their framework's usual duration; ties keep the registry order."""
        def expected(spec: JobSpec) -> float:
            seconds = self.expected_seconds(spec)
            return PRIOR_SECONDS.get(self.framework(spec), 1.0) if seconds is None else seconds

        return sorted(specs, key=lambda spec: -expected(spec))

    def over_budget(self, running: dict) -> RunningJobLike | None:
        """The job to kill when all workers together exceed the budget: the one furthest above its estimate."""
        if self.budget_bytes is None or not running:
            return None
        total = sum(job.last_rss_bytes for job in running.values())
        if total <= self.budget_bytes:
            return None
        return max(running.values(), key=lambda job: job.last_rss_bytes - self.estimate_bytes(job.spec))

    def training_shape(self, spec: JobSpec) -> tuple[int, int]:
        rows, features = self.prepared_training_shape()
        return int(rows * spec.train_fraction), features

    def prepared_training_shape(self) -> tuple[int, int]:
        """(rows, features) of ``dataset/train.npy`` from ``meta.json``; (0, 0) before it exists."""
        try:
            stat = self.run.dataset.meta.stat()
            # meta.json is replaced atomically: a new inode even when the clock did not tick
            stamp = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
            if self._shape_cache is None or self._shape_cache[0] != stamp:
                shape = read_json(self.run.dataset.meta)["shapes"]["train"]
                self._shape_cache = (stamp, (int(shape[0]), int(shape[1])))
        except (OSError, KeyError, ValueError):
            return 0, 0
        return self._shape_cache[1]

    def admit(self, spec: JobSpec, running: dict) -> Admission:
        """Start ``spec`` only if its estimate fits the budget next to the running jobs."""
        if self.budget_bytes is None or spec.kind != "detector":
            return Admission(True, self.budget_bytes)
        estimate = self.estimate_bytes(spec)
        in_use = sum(max(job.peak_rss_bytes, self.estimate_bytes(job.spec)) for job in running.values())
        if in_use + estimate <= self.budget_bytes:
            return Admission(True, self.budget_bytes)
        if running:
            return Admission(False, message=self._once(
                f"{spec.name}:wait", f"waiting: estimated {mb(estimate)} does not fit "
                                     f"next to {mb(in_use)} in the {mb(self.budget_bytes)} budget"))
        return self.admit_alone(spec, estimate)

    def admit_alone(self, spec: JobSpec, estimate: int) -> Admission:
        """The estimate alone exceeds the budget: run alone, or shrink the training set first."""
        too_large = f"estimated {mb(estimate)} exceeds the {mb(self.budget_bytes)} budget"
        if self.on_oom == "shrink":
            all_rows, features = self.prepared_training_shape()
            fraction = spec.train_fraction
            while (fraction / 2 >= SHRINK_FLOOR
                   and self.estimate_at(spec, int(all_rows * fraction), features) > self.budget_bytes):
                fraction /= 2
            if fraction < spec.train_fraction:
                spec.train_fraction = fraction
                return Admission(True, self.budget_bytes, self._once(
                    f"{spec.name}:shrink:{fraction}", f"{too_large}: training on {fraction:.0%} of the rows"))
        return Admission(True, self.budget_bytes, self._once(f"{spec.name}:alone", f"{too_large}: running it alone"))

    def _once(self, key: str, message: str) -> str | None:
        """``message`` the first time ``key`` comes up, then None: a waiting job is announced once."""
        if key in self._warned:
            return None
        self._warned.add(key)
        return message

    # ---- measurements ----------------------------------------------------------------
    def record_sample(self, job: str, rss_bytes: int) -> None:
        """Keep a sample for the report's memory chart (at most every SAMPLE_EVERY_S per job)."""
        now = time.time()
        if now - self._last_sample.get(job, 0.0) < SAMPLE_EVERY_S:
            return
        self._last_sample[job] = now
        line = json.dumps({"ts": round(now, 3), "job": job, "rss_bytes": int(rss_bytes)}) + "\n"
        with open(self.run.memory_samples, "a", encoding="utf-8") as handle:
            handle.write(line)

    def record_measurement(self, spec: JobSpec, peak_bytes: int | None, seconds: float | None,
                           state: JobState) -> None:
        """Remember the measured peak and duration of a finished job, for later estimates and ordering.

        An out-of-memory kill is remembered too (its peak, a lower bound of what the job needs), so
        the next run starts it alone or shrunk instead of running into the same kill."""
        out_of_memory = state is JobState.OOM_KILLED
        if not (state is JobState.OK or out_of_memory) or not peak_bytes or spec.kind != "detector":
            return
        if out_of_memory:
            seconds = None   # killed early: not how long the job takes
        rows, features = self.training_shape(spec)
        if rows <= 0:
            return
        point = {"rows": rows, "features": features, "peak_bytes": int(peak_bytes)}
        if seconds is not None:
            point["seconds"] = round(float(seconds), 3)
        key = history_key(spec)
        history = load_history()   # keep what other runs wrote meanwhile
        kept = [p for p in measured_points(history.get(key) or self.history.get(key))
                if (p["rows"], p.get("features")) != (rows, features)]
        points = sorted([*kept, point], key=lambda p: p["rows"])[-HISTORY_SIZES:]
        # The top-level rows/features/peak_bytes are the format older versions read.
        entry = {"detector": spec.name, "framework": self.framework(spec), **points[-1], "points": points}
        self.history[key] = history[key] = entry
        try:
            atomic_write_json(history_path(), history)
        except OSError:
            pass   # a read-only home must not fail the run

    # ---- OOM shrink ------------------------------------------------------------------
    def shrink_retry(self, spec: JobSpec, outcome, entry: ManifestEntry) -> JobSpec | None:
        """With --on-oom shrink, retry an OOM-killed job on half the training rows, down to the floor."""
        if self.on_oom != "shrink" or not is_out_of_memory(outcome):
            return None
        if spec.train_fraction / 2 < SHRINK_FLOOR:
            outcome.reason = (f"{outcome.reason}; gave up: even {spec.train_fraction:.0%} of the training rows "
                              f"does not fit the {mb(self.budget_bytes) if self.budget_bytes else 'available'} memory")
            entry.reason = outcome.reason
            return None
        shrunk = copy.deepcopy(spec)
        shrunk.train_fraction = spec.train_fraction / 2
        batch = spec.params.get("batch_size")
        if isinstance(batch, int) and batch > MIN_SHRUNK_BATCH:   # a Keras batch's activations scale with it
            shrunk.params["batch_size"] = max(MIN_SHRUNK_BATCH, batch // 2)
        return shrunk

    # ---- GPUs ------------------------------------------------------------------------
    def gpu_for(self, spec: JobSpec) -> str:
        """TensorFlow jobs get one GPU each, round robin; everything else sees none."""
        if self.framework(spec) != "tensorflow" or not self.gpus:
            return ""
        gpu = self.gpus[self._gpu_turn % len(self.gpus)]
        self._gpu_turn += 1
        return gpu


def size_model_bytes(framework: str, rows: int, features: int, factor: float | None = None) -> int:
    """Peak RSS before any measurement: the framework's import cost plus ``factor`` (default: the
    framework's) x the bytes of float32 training data."""
    base = BASE_BYTES.get(framework, BASE_BYTES["numpy"])
    factor = DATA_FACTOR.get(framework, 2.0) if factor is None else factor
    return int(base + factor * rows * features * 4)


def degradation(spec: JobSpec, planned: JobSpec) -> dict[str, Any] | None:
    """What an OOM shrink changed against the plan, e.g. ``{"train_fraction": 0.5, "batch_size": 256}``."""
    degraded: dict[str, Any] = {}
    if spec.train_fraction < 1:
        degraded["train_fraction"] = spec.train_fraction
    if spec.params.get("batch_size") != planned.params.get("batch_size"):
        degraded["batch_size"] = spec.params.get("batch_size")
    return degraded or None


def check_budget(budget_bytes: int | None) -> None:
    """A budget below the smallest possible worker can never run anything: say so up front."""
    if budget_bytes is not None and budget_bytes < MIN_BUDGET_BYTES:
        raise ValueError(
            f"--memory-budget {mb(budget_bytes)} is below the smallest useful budget ({mb(MIN_BUDGET_BYTES)}: "
            f"a Python worker with numpy and the data); give at least 300MB, or 2GB for the TensorFlow detectors"
        )


def is_out_of_memory(outcome) -> bool:
    if outcome.state is JobState.OOM_KILLED:
        return True
    return outcome.state is JobState.CRASHED and "SIGKILL(-9)" in (outcome.reason or "")


def measured_points(entry: dict | None, features: int | None = None) -> list[dict]:
    """The measurements of one detector+parameters, one per training size (older files kept one);
    with ``features``, those with that many columns when there are any."""
    if not entry:
        return []
    fields = ("rows", "features", "peak_bytes", "seconds")
    points = [{key: point[key] for key in fields if key in point} for point in entry.get("points") or [entry]
              if point.get("rows", 0) > 0 and point.get("peak_bytes")]
    same_width = [point for point in points if point.get("features") == features]
    return same_width or points


def nearest_point(points: list[dict], rows: int) -> dict:
    return min(points, key=lambda point: abs(math.log(point["rows"] / max(rows, 1))))


def extend_measurement(points: list[dict], rows: int, field: str, *, model_per_row: float) -> float:
    """``field`` (a peak, a duration) measured at the nearest size, plus a slope times the rows in between.

    The slope is fitted when two sizes were measured, else the model's. Scaling one
    measurement in proportion to rows would multiply the fixed costs too (imports, scoring
    the test rows): a 3,000-row run of a 400 MB detector would predict 60 GB at 250,000 rows.
    """
    nearest = nearest_point(points, rows)
    slope = model_per_row
    if len({point["rows"] for point in points}) >= 2:
        xs = [float(point["rows"]) for point in points]
        ys = [float(point[field]) for point in points]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        spread = sum((x - mean_x) ** 2 for x in xs)
        fitted = max(0.0, sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread)
        # Beyond the largest size measured, small runs' noise must not promise a flat line.
        slope = max(fitted, model_per_row) if rows > max(xs) else fitted
    return nearest[field] + slope * (rows - nearest["rows"])


def history_key(spec: JobSpec) -> str:
    return fingerprint_of({"detector": spec.name, "entry": spec.entry, "params": spec.params})


def load_history() -> dict:
    try:
        return read_json(history_path())
    except (OSError, ValueError):
        return {}


def detect_gpus() -> list[str]:
    """GPU ids without importing TensorFlow: CUDA_VISIBLE_DEVICES if set, else ``nvidia-smi -L``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu for gpu in visible.split(",") if gpu.strip() and gpu.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.0f} MB"
