"""Fingerprints decide what is up to date (like make/DVC).

Job fingerprint = hash of detector name, parameters, dataset fingerprint,
the detector module's source and the versions of numpy, scikit-learn,
tensorflow/keras. Nothing here imports those libraries.
"""
from __future__ import annotations

import ast
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


def package_version(name: str) -> str | None:
    """Installed version from package metadata (no import, so no TensorFlow in the parent)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that change a model's results."""
    versions = {name: package_version(name) for name in TRACKED_LIBRARIES}
    return {name: version for name, version in versions.items() if version is not None}


def module_source_digest(module_name: str, search_path: list[str] | tuple[str, ...] = ()) -> str:
    """sha256 of a module's source file, found without executing the module itself.

    ``search_path``: extra folders (user detectors registered from a config file).
    """
    origin = module_origin(module_name, search_path)
    if origin is None:
        raise ModuleNotFoundError(
            f"cannot find module {module_name!r}; check the 'module:Class' entry and that the "
            "module is importable (installed, or on PYTHONPATH)"
        )
    return hashlib.sha256(origin.read_bytes()).hexdigest()


#: code every detector job runs besides its own module: a change to it reruns every detector
JOB_RUNTIME_MODULES = ("workers.jobs", "workers.detectors.base", "workers.detectors.loading")
#: detector modules import their helpers from here; those imports are followed
PROJECT_PACKAGE = "workers"


def job_fingerprint(name: str, entry: str, params: dict, dataset_fingerprint: str,
                    search_path: list[str] | tuple[str, ...] = (), seed: int = 0) -> str:
    """Fingerprint of one detector job (see module docstring)."""
    module_name = entry.split(":", 1)[0]
    modules = sorted(set(project_imports(module_name, search_path)) | set(JOB_RUNTIME_MODULES))
    return fingerprint_of({
        "name": name,
        "entry": entry,
        "params": params,
        "seed": seed,
        "dataset": dataset_fingerprint,
        "source": module_source_digest(module_name, search_path),
        "helpers": {module: module_source_digest(module) for module in modules if module != module_name},
        "versions": library_versions(),
    })


def project_imports(module_name: str, search_path: list[str] | tuple[str, ...] = (),
                    seen: set[str] | None = None) -> list[str]:
    """``module_name`` and every ``workers.*`` module it imports, transitively, read with ``ast``
    (not imported: the parent must not load scikit-learn or TensorFlow to fingerprint a job)."""
    seen = set() if seen is None else seen
    if module_name in seen:
        return []
    seen.add(module_name)
    origin = module_origin(module_name, search_path)
    if origin is None:
        return [module_name]
    tree = ast.parse(origin.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                 else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            if name.split(".")[0] == PROJECT_PACKAGE:
                project_imports(name, search_path, seen)
    return sorted(seen)


def module_origin(module_name: str, search_path: list[str] | tuple[str, ...] = ()) -> Path | None:
    added = [folder for folder in search_path if folder not in sys.path]
    sys.path[:0] = added
    try:
        spec = importlib.util.find_spec(module_name)
    except (ModuleNotFoundError, ValueError):
        spec = None
    finally:
        for folder in added:
            sys.path.remove(folder)
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        return None
    return Path(spec.origin)
