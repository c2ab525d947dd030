"""Detector parameters: profiles from the registry, overridden by a TOML config file.

Config format (``--config orchestrate.toml``)::

    [detectors.PCA_SVM]          # override parameters of a built-in detector
    nu = 0.05

    [detectors.MY_DETECTOR]      # register your own detector class
    entry = "my_detectors:MyDetector"   # module:Class, a workers.detectors.base.Detector
    summary = "what it does"
    framework = "sklearn"               # numpy | sklearn | tensorflow
    paths = ["."]                        # folders added to the worker's sys.path (relative to this file)
    memory_mb = 1500                     # optional: expected peak RSS until a measured peak exists
    window = 5                           # any other key is a parameter
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from artifacts.registry import PROFILES, DetectorInfo, builtin_registry

RESERVED_KEYS = {"entry", "summary", "framework", "paths", "memory_mb"}
FRAMEWORKS = ("numpy", "sklearn", "tensorflow")


class ConfigError(ValueError):
    """The config file is missing or malformed (usage/input error, exit 2)."""


@dataclass
class Config:
    registry: dict[str, DetectorInfo]
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    python_path: list[str] = field(default_factory=list)

    def params(self, name: str, profile: str) -> dict[str, Any]:
        """Profile parameters of ``name`` with the config's overrides on top."""
        return {**self.registry[name].params(profile), **self.overrides.get(name, {})}


def load_config(path: str | Path | None) -> Config:
    """The registry plus the overrides and user detectors of the TOML file at ``path``."""
    config = Config(registry=builtin_registry())
    if path is None:
        return config
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; check --config") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path} cannot be read ({error}); it must be a UTF-8 TOML file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    if not isinstance(data.get("detectors", {}), dict):
        raise ConfigError(f"config file {path}: 'detectors' must be tables like [detectors.PCA_SVM]")
    unknown = sorted(set(data) - {"detectors"})
    if unknown:
        raise ConfigError(f"config file {path}: unknown top-level key(s) {unknown}; only [detectors.NAME] tables are read")
    for name, table in data.get("detectors", {}).items():
        _apply_detector_table(config, path, name, table)
    return config


def _apply_detector_table(config: Config, path: Path, name: str, table: Any) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [detectors.{name}] must be a table of parameters")
    params = {key: value for key, value in table.items() if key not in RESERVED_KEYS}
    if "entry" in table:
        config.registry[name] = _user_detector(path, name, table)
        for folder in table.get("paths", ["."]):
            config.python_path.append(str((path.parent / folder).resolve()))
    elif name in config.registry and "memory_mb" in table:
        config.registry[name] = replace(config.registry[name], memory_hint_bytes=_memory_hint(path, name, table))
    elif name not in config.registry:
        raise ConfigError(
            f"config file {path}: [detectors.{name}] is not a registered detector; add "
            f"entry = \"module:Class\" to register it, or use one of: {', '.join(sorted(config.registry))}"
        )
    config.overrides[name] = params


def _user_detector(path: Path, name: str, table: dict) -> DetectorInfo:
    entry = table["entry"]
    if not isinstance(entry, str) or ":" not in entry:
        raise ConfigError(f"config file {path}: [detectors.{name}] entry must look like 'module:Class', got {entry!r}")
    framework = table.get("framework", "sklearn")
    if framework not in FRAMEWORKS:
        raise ConfigError(f"config file {path}: [detectors.{name}] framework {framework!r}; choose {FRAMEWORKS}")
    return DetectorInfo(name, entry, table.get("summary", f"user detector {entry}"), framework,
                        {profile: {} for profile in PROFILES}, builtin=False,
                        memory_hint_bytes=_memory_hint(path, name, table))


def _memory_hint(path: Path, name: str, table: dict) -> int | None:
    value = table.get("memory_mb")
    if value is None:
        return None
    if not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"config file {path}: [detectors.{name}] memory_mb must be a positive number of MB")
    return int(value * 2**20)
