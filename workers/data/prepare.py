"""The ``prepare`` job: load a data source, validate it, write ``dataset/``."""
from __future__ import annotations

import importlib

from artifacts import DatasetPaths
from artifacts.sources import SOURCE_KINDS


def prepare_dataset(kind: str, location: str | None, options: dict, out: DatasetPaths,
                    fingerprint: str, seed: int = 0) -> dict:
    """Run the loader of ``kind`` and write the prepared arrays; returns ``meta.json``'s content."""
    loader = importlib.import_module(SOURCE_KINDS[kind][1])
    if hasattr(loader, "prepare"):   # sources too large to hold in memory write chunk by chunk
        return loader.prepare(location, options, out, fingerprint, seed=seed)
    from workers.data.writer import write_prepared

    return write_prepared(loader.load(location, options, seed=seed), out, fingerprint)
