"""Shared helpers: run the real CLI in a real process, write configs for the scripted detector."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
BRAATZ_DIR = REPO_ROOT.parent / "shared" / "data" / "tep-braatz"


def write_config(path: Path, detectors: dict[str, dict]) -> Path:
    """A TOML config registering each name as a ScriptedDetector with the given parameters."""
    lines = []
    for name, params in detectors.items():
        lines.append(f"[detectors.{name}]")
        if params.pop("builtin", False) is False:
            lines.append('entry = "scripted_detector:ScriptedDetector"')
            lines.append("framework = \"numpy\"")
            lines.append(f"paths = [{json.dumps(str(TESTS_DIR))}]")
        for key, value in params.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def orchestrate_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Memory history goes to a per-test folder, never the user's cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ORCHESTRATE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def orchestrate(tmp_path, cache_dir):
    """Run ``python -m orchestrator ARGS`` in ``tmp_path``; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(orchestrate_command(*args), cwd=tmp_path, capture_output=True, text=True,
                              timeout=timeout)

    return run


@pytest.fixture
def start_orchestrate(tmp_path, cache_dir):
    """Start ``python -m orchestrator ARGS`` without waiting (for signal tests)."""
    started = []

    def start(*args: str) -> subprocess.Popen:
        process = subprocess.Popen(orchestrate_command(*args), cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def read_manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy (for observing another process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def running_pid(run_dir: Path, job: str):
    """The worker pid of ``job`` once the manifest says it is running, else None."""
    try:
        entry = read_manifest(run_dir)["jobs"].get(job, {})
    except (OSError, ValueError):
        return None
    return entry.get("pid") if entry.get("state") == "running" else None
