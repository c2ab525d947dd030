"""Job spec (``job.json``), result record (``result.json``) and the manifest."""
from __future__ import annotations

import enum
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from artifacts.atomic import atomic_write_json, read_json

MANIFEST_SCHEMA_VERSION = 1
PREPARE_JOB = "prepare"


class KillReason(str, enum.Enum):
    """Why the parent (or the cluster) killed a worker; decides its final state."""

    TIMEOUT = "timeout"
    MEMORY = "memory"
    INTERRUPT = "interrupt"


class JobState(str, enum.Enum):
    """Lifecycle of a job; ``value`` is what files and tables show."""

    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    SKIPPED = "skipped"            # up to date from an earlier run
    FAILED = "failed"              # exception in the worker, traceback kept
    CRASHED = "crashed"            # died without a result
    TIMED_OUT = "timed_out"
    OOM_KILLED = "oom_killed"      # killed by the watchdog for memory
    INTERRUPTED = "interrupted"    # Ctrl-C / SIGTERM of the parent

    @property
    def succeeded(self) -> bool:
        return self in (JobState.OK, JobState.SKIPPED)

    @property
    def retryable(self) -> bool:
        """What --retries retries; an OOM kill is retried only by --on-oom shrink (on less data)."""
        return self in (JobState.CRASHED, JobState.TIMED_OUT)


def _from_dict(cls, data: dict):
    known = {f.name for f in fields(cls)}
    return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class JobSpec:
    """What a worker runs; written by the parent as ``job.json``."""

    name: str
    kind: str                                   # "prepare" or "detector"
    entry: str                                  # "module:Class" or the data source string
    params: dict[str, Any]
    run_dir: str
    job_dir: str
    output_dir: str                             # checksums in result.json are relative to this
    fingerprint: str
    seed: int = 0
    threads: int = 1
    memory_limit_bytes: int | None = None
    attempt: int = 1
    train_fraction: float = 1.0                 # < 1 after an OOM shrink
    cuda_visible_devices: str | None = ""       # "" hides every GPU
    parent_pid: int | None = None
    python_path: list[str] = field(default_factory=list)   # folders of user detectors (config file)

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> "JobSpec":
        return _from_dict(cls, read_json(path))


@dataclass
class ResultRecord:
    """What a worker reports; ``result.json`` is written LAST, after every other file."""

    name: str
    status: str                                  # "ok" or "failed"
    fingerprint: str
    started: float
    ended: float
    error: dict[str, str] | None = None          # type, message, traceback
    timings: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    threshold: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)   # relpath -> {sha256, size}
    extra: dict[str, Any] = field(default_factory=dict)
    #: the worker's own peak RSS (VmHWM); the parent's samples miss what lies between them,
    #: and a Ray worker on another node is not sampled at all
    peak_rss_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> "ResultRecord":
        data = read_json(path)
        if not isinstance(data, dict) or "status" not in data:
            raise ValueError(f"{path} is not a result record (no 'status')")
        return _from_dict(cls, data)


@dataclass
class ManifestEntry:
    """One job's line in ``manifest.json``."""

    state: str = JobState.PENDING.value
    attempts: int = 0
    fingerprint: str = ""
    pid: int | None = None
    started: float | None = None
    ended: float | None = None
    duration_s: float | None = None
    peak_rss_bytes: int | None = None
    reason: str | None = None
    files: dict[str, dict] = field(default_factory=dict)
    degraded: dict[str, Any] | None = None       # e.g. {"train_fraction": 0.5}

    @property
    def job_state(self) -> JobState:
        return JobState(self.state)


def _manifest_entry(path, name: str, data: Any) -> ManifestEntry:
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the entry of job {name!r} is not a JSON object")
    entry = _from_dict(ManifestEntry, data)
    try:
        JobState(entry.state)
    except ValueError:
        raise ValueError(f"{path}: job {name!r} has unknown state {entry.state!r}") from None
    return entry


@dataclass
class Manifest:
    """``manifest.json``: the parent's record of every job; only the parent writes it."""

    run: str
    created: float = field(default_factory=time.time)
    schema_version: int = MANIFEST_SCHEMA_VERSION
    settings: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, ManifestEntry] = field(default_factory=dict)

    def entry(self, name: str) -> ManifestEntry:
        return self.jobs.setdefault(name, ManifestEntry())

    def save(self, path: str | Path) -> None:
        data = asdict(self)
        atomic_write_json(path, data)

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        """Read and validate; ``ValueError`` names the file and what is wrong with it."""
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("jobs", {}), dict):
            raise ValueError(f"{path} is not a manifest (expected a JSON object with a 'jobs' object)")
        version = data.get("schema_version")
        if version != MANIFEST_SCHEMA_VERSION:
            raise ValueError(
                f"{path} has manifest schema {version}, this orchestrate reads {MANIFEST_SCHEMA_VERSION}; "
                "use a new run directory (--run NAME) or delete the old one"
            )
        jobs = {name: _manifest_entry(path, name, entry) for name, entry in data.get("jobs", {}).items()}
        manifest = _from_dict(cls, {**data, "jobs": {}})
        manifest.jobs = jobs
        return manifest

    @classmethod
    def load_or_new(cls, path: str | Path, run: str) -> "Manifest":
        return cls.load(path) if Path(path).exists() else cls(run=run)
