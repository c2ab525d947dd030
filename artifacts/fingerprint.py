"""Fingerprints decide what is up to date (like make/DVC).

Job fingerprint = hash of detector name, parameters, dataset fingerprint,
the detector module's source and the versions of numpy, scikit-learn,
tensorflow/keras. Nothing here imports those libraries.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

TRACKED_LIBRARIES = ("numpy", "scipy", "scikit-learn", "tensorflow", "tensorflow-cpu", "keras", "joblib")


def fingerprint_of(payload: Any) -> str:
    """Short sha256 of the canonical JSON form of ``payload``."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def library_versions() -> dict[str, str]:
    """Installed versions from package metadata (no import, so no TensorFlow in the parent)."""
    versions = {}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def module_source_digest(module_name: str, search_path: list[str] | tuple[str, ...] = ()) -> str:
    """sha256 of a module's source file, found without executing the module itself.

    ``search_path``: extra folders (user detectors registered from a config file).
    """
    added = [folder for folder in search_path if folder not in sys.path]
    sys.path[:0] = added
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        spec = None
    finally:
        for folder in added:
            sys.path.remove(folder)
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise ModuleNotFoundError(
            f"cannot find module {module_name!r}; check the 'module:Class' entry and that the "
            "module is importable (installed, or on PYTHONPATH)"
        )
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


def job_fingerprint(name: str, entry: str, params: dict, dataset_fingerprint: str,
                    search_path: list[str] | tuple[str, ...] = ()) -> str:
    """Fingerprint of one detector job (see module docstring)."""
    module_name = entry.split(":", 1)[0]
    return fingerprint_of({
        "name": name,
        "entry": entry,
        "params": params,
        "dataset": dataset_fingerprint,
        "source": module_source_digest(module_name, search_path),
        "versions": library_versions(),
    })
