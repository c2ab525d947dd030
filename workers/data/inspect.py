"""``python -m workers.data.inspect SOURCE [--option key=value ...]``: what a data source holds.

The source is prepared exactly as a run would prepare it (same loader, same checks), into a
temporary folder that is deleted afterwards, so what this reports is what detectors would
see: shapes, runs, faults, onsets, per-variable ranges in the file's units, and every problem
(warnings such as dropped constant variables). Exit 0, or 2 with the problem on bad input.
The orchestrator runs this in a subprocess (``orchestrate data inspect``): it never imports
the worker side.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from artifacts import DatasetPaths
from artifacts.options import parse_options
from artifacts.sources import SourceError, parse_source
from workers.data.dataset import NO_FAULTY_ROW, PreparedData, first_faulty_samples, open_prepared
from workers.data.errors import DataError

_SCAN_ROWS = 1_000_000   # rows read at a time when scanning a prepared array


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        source = parse_source(args.source, parse_options(args.option))
    except SourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="orchestrate-inspect-") as folder:
        try:
            data, problems = prepare_into(source, Path(folder))
        except DataError as error:
            print(f"error: {source.describe()}: {error}", file=sys.stderr)
            return 2
        print(format_report(data, problems))
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers.data.inspect",
                                     description="Show what a data source holds and any problems in it.")
    parser.add_argument("source", help="synthetic | braatz:DIR | rieth:DIR | csv:PATH | parquet:PATH | npz:PATH")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="loader option, value as JSON when it parses: faults=[1,2] runs=10 size=tiny")
    return parser.parse_args(argv)


def prepare_into(source, folder: Path) -> tuple[PreparedData, list[str]]:
    """Run the real preparation; return the prepared arrays and the warnings it raised."""
    from workers.data.prepare import prepare_dataset

    paths = DatasetPaths(folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepare_dataset(source.kind, source.location, source.options, paths, fingerprint="inspect")
    return open_prepared(paths), [str(w.message) for w in caught]


def format_report(data: PreparedData, problems: list[str]) -> str:
    meta = data.meta
    lines = [f"source: {meta['source']}",
             f"variables: {len(meta['variables'])}; sampling every {meta['sampling_minutes']} min; "
             f"nominal onset at sample {meta['onset']} (0-based)",
             "", f"{'split':<6} {'rows':>10} {'runs':>6}"]
    lines += [f"{split:<6} {meta['shapes'][split][0]:>10} {meta['runs'][split]:>6}" for split in ("train", "valid", "test")]
    lines += ["", "test runs by fault:", *format_faults(data)]
    lines += ["", "variable ranges (file units): train min..max | test min..max", *format_ranges(data)]
    lines += ["", "notes:", *(f"  {note}" for note in meta["notes"])]
    lines += ["", "problems:", *(f"  {problem}" for problem in problems or ["none found"])]
    return "\n".join(lines)


def format_faults(data: PreparedData) -> list[str]:
    """Per fault: runs, rows, faulty rows and the range of onsets (first faulty sample of each run)."""
    meta = np.asarray(data.test_meta)
    labels = np.asarray(data.test_labels)
    runs, run_index = np.unique(meta[:, 1], return_inverse=True)
    run_fault = np.zeros(len(runs), np.int64)
    run_fault[run_index] = meta[:, 0]
    onset = first_faulty_samples(run_index, meta[:, 2], labels, len(runs))
    lines = [f"  {'fault':>5} {'runs':>6} {'rows':>10} {'faulty rows':>12}  onset samples"]
    for fault in np.unique(run_fault):
        of_fault = run_fault == fault
        rows = int(np.isin(run_index, np.flatnonzero(of_fault)).sum())
        starts = onset[of_fault & (onset != NO_FAULTY_ROW)]
        shown = "-" if starts.size == 0 else f"{starts.min()}..{starts.max()}" if starts.min() != starts.max() else str(starts.min())
        lines.append(f"  {fault:>5} {int(of_fault.sum()):>6} {rows:>10} {int((labels == fault).sum()) if fault else 0:>12}  {shown}")
    return lines


def format_ranges(data: PreparedData) -> list[str]:
    """Ranges back in file units (prepared arrays are standardized with the train scaler)."""
    mean, std = np.asarray(data.meta["scaler"]["mean"]), np.asarray(data.meta["scaler"]["std"])
    train_low, train_high, test_low, test_high = (
        bound * std + mean for bound in (*column_range(data.train), *column_range(data.test)))
    return [f"  {name:<14} {train_low[i]:>12.5g} .. {train_high[i]:<12.5g} | {test_low[i]:>12.5g} .. {test_high[i]:.5g}"
            for i, name in enumerate(data.meta["variables"])]


def column_range(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column min and max, scanned in slices so a memmapped 2 GB array is never loaded whole."""
    low = np.full(array.shape[1], np.inf)
    high = np.full(array.shape[1], -np.inf)
    for start in range(0, len(array), _SCAN_ROWS):
        block = np.asarray(array[start:start + _SCAN_ROWS])
        low, high = np.minimum(low, block.min(axis=0)), np.maximum(high, block.max(axis=0))
    return low, high


if __name__ == "__main__":
    sys.exit(main())
