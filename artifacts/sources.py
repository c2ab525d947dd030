"""Data source strings (``synthetic``, ``braatz:DIR``, ``rieth:DIR``, ``csv:PATH`` ...).

Parsed and fingerprinted here so the parent can reject a bad source (exit 2)
and decide whether ``dataset/`` is up to date without running a worker.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifacts.fingerprint import fingerprint_of, module_source_digest, package_version

#: kind -> (needs a path, module that loads it, one-line help)
SOURCE_KINDS: dict[str, tuple[bool, str, str]] = {
    "synthetic": (False, "workers.data.synthetic", "built-in TEP-shaped generator (default; --size tiny|small|full)"),
    "braatz": (True, "workers.data.braatz", "classic Braatz TEP files d00.dat..d21_te.dat in DIR"),
    "rieth": (True, "workers.data.rieth", "Rieth et al. 2017 files (RData/CSV/Parquet) in DIR"),
    "csv": (True, "workers.data.tabular", "your own process data as one CSV file"),
    "parquet": (True, "workers.data.tabular", "your own process data as one Parquet file"),
    "npz": (True, "workers.data.tabular", "your own process data as one .npz file"),
    "simulate": (False, "workers.data.simulate", "real TEP simulator (tep-studio, optional extra [simulate]); generated runs are cached"),
}


#: modules every loader relies on: a change to any of them re-prepares the data
SHARED_DATA_MODULES = ("workers.data.writer", "workers.data.tables", "workers.data.options",
                       "workers.data.dataset", "workers.data.prepare")
#: packages whose version changes what a loader produces (reader or simulator)
SOURCE_PACKAGES = {"simulate": ("tep-studio",), "rieth": ("pandas", "pyarrow", "pyreadr"),
                   "csv": ("pandas",), "parquet": ("pandas", "pyarrow")}
#: files of a data folder that can be data; anything else (a runs/ folder inside it, notes) is ignored
DATA_SUFFIXES = {".dat", ".csv", ".parquet", ".rdata", ".npz", ".txt", ".tsv", ".gz"}


class SourceError(ValueError):
    """The data source string or its path is unusable (a usage/input error, exit 2)."""


@dataclass(frozen=True)
class DataSource:
    kind: str
    location: str | None
    options: dict[str, Any]

    @property
    def loader_module(self) -> str:
        return SOURCE_KINDS[self.kind][1]

    def describe(self) -> str:
        return self.kind if self.location is None else f"{self.kind}:{self.location}"

    def fingerprint(self) -> str:
        """Changes when the source string, its options, its files or its loader change."""
        return fingerprint_of({
            "kind": self.kind,
            "location": self.location,
            "options": self.options,
            "files": _file_stats(self.location),
            "numpy": package_version("numpy"),
            "packages": {name: package_version(name) for name in SOURCE_PACKAGES.get(self.kind, ())},
            "loader": module_source_digest(self.loader_module),
            "shared": [module_source_digest(name) for name in SHARED_DATA_MODULES],
        })


def parse_source(text: str, options: dict[str, Any] | None = None) -> DataSource:
    """Parse ``kind[:path]``; raise ``SourceError`` naming the valid kinds or the missing path."""
    kind, _, location = text.partition(":")
    if kind not in SOURCE_KINDS:
        valid = "; ".join(f"{name}{':PATH' if SOURCE_KINDS[name][0] else ''} ({SOURCE_KINDS[name][2]})"
                          for name in SOURCE_KINDS)
        raise SourceError(f"unknown data source {text!r}. Valid sources: {valid}.")
    needs_path = SOURCE_KINDS[kind][0]
    if needs_path and not location:
        raise SourceError(f"data source {kind!r} needs a path: --data {kind}:PATH")
    if not needs_path and location:
        raise SourceError(f"data source {kind!r} takes no path (got {location!r}); use --data {kind}")
    resolved = None
    if location:
        path = Path(location).expanduser().resolve()
        if not path.exists():
            raise SourceError(
                f"data source {text!r}: {path} does not exist. Check the path, or use "
                "'orchestrate data download braatz --dest DIR' for the Braatz files."
            )
        resolved = str(path)
    return DataSource(kind, resolved, dict(options or {}))


def _file_stats(location: str | None) -> list:
    if location is None:
        return []
    path = Path(location)
    files = sorted(data_files_under(path)) if path.is_dir() else [path]
    return [(p.name, (st := os.stat(p)).st_size, st.st_mtime_ns) for p in files]


def data_files_under(folder: Path) -> list[Path]:
    """Files that can be data; run directories (a runs/ folder kept inside the data folder) and
    hidden folders are skipped, so a run never changes the fingerprint of its own source."""
    found = []
    for root, dirs, files in os.walk(folder):
        if "manifest.json" in files and root != str(folder):
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / f for f in files
                  if not f.startswith(".") and Path(f).suffix.lower() in DATA_SUFFIXES]
    return found


