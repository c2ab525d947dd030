"""Build a detector from its registry entry (``module:Class``), importing lazily."""
from __future__ import annotations

import importlib
from typing import Any

from workers.detectors.base import Detector


def import_detector_class(entry: str) -> type[Detector]:
    """Import ``package.module:Class`` and check it follows the detector contract."""
    module_name, _, class_name = entry.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"detector entry {entry!r} must look like 'package.module:ClassName'")
    module = importlib.import_module(module_name)
    try:
        cls = getattr(module, class_name)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no class {class_name!r} (from entry {entry!r})") from None
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        raise TypeError(f"{entry} is not a subclass of workers.detectors.base.Detector")
    return cls


def build_detector(entry: str, params: dict[str, Any], seed: int | None = None) -> Detector:
    """Instantiate; the run's ``--seed`` becomes ``random_state`` unless the parameters set one."""
    cls = import_detector_class(entry)
    if seed is not None and "random_state" in cls.defaults and "random_state" not in params:
        params = {**params, "random_state": seed}
    return cls(**params)
