"""Validate a loaded source, standardize it with training statistics, write ``dataset/``."""
from __future__ import annotations

import contextlib
import os
import time
import uuid
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from artifacts import DatasetPaths, atomic_save_npy, atomic_write_json
from workers.data.dataset import LoadedData, SourceDescription
from workers.data.errors import DataError

_CONSTANT_STD = 1e-8
SPLITS = ("train", "valid", "test")
#: a number per split for seeding generated runs; fixed, so a run's rows never depend on the other splits
SPLIT_CODE = {"train": 1, "valid": 2, "test": 3}
#: runs a generating source (synthetic, simulate) produces per chunk: memory stays at one chunk
RUNS_PER_CHUNK = 25


def check_finite(array: np.ndarray, what: str, variables: list[str]) -> None:
    """Raise ``DataError`` naming the first NaN/inf cell (row, column) of ``array``."""
    bad = ~np.isfinite(array)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)
    count = int(bad.sum())
    raise DataError(
        f"{what} has {count} NaN/inf value(s); the first is at row {int(rows[0])}, column "
        f"{int(cols[0])} ({variables[cols[0]] if cols[0] < len(variables) else '?'}). "
        "Drop those rows or fill them (e.g. forward-fill within each run) before running orchestrate."
    )


def empty_split_error(split: str, source: str) -> DataError:
    return DataError(f"the {split} split of {source} is empty; check the selected runs/faults")


def check_shapes(data: LoadedData) -> None:
    """Every split must have the same variables, one label per row, and rows at all."""
    n_vars = len(data.variables)
    for name in SPLITS:
        array = getattr(data, name)
        if array.ndim != 2 or array.shape[0] == 0:
            raise empty_split_error(name, data.source)
        if array.shape[1] != n_vars:
            raise DataError(
                f"the {name} split of {data.source} has {array.shape[1]} columns but {n_vars} variables "
                f"are named; train and test must have the same variables"
            )
        if len(getattr(data, f"{name}_groups")) != array.shape[0]:
            raise DataError(f"{name}_groups has a different number of rows than {name}")
    if len(data.test_labels) != len(data.test) or len(data.test_meta) != len(data.test):
        raise DataError("test labels/metadata do not have one entry per test row")


def find_constant_columns(variables: list[str], std: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Indices of the columns to keep and names of those constant in training (warned about)."""
    constant = np.flatnonzero(std < _CONSTANT_STD)
    names = [variables[i] for i in constant]
    if names:
        warnings.warn(f"dropping variables constant in the training data: {', '.join(names)}", stacklevel=3)
    return np.setdiff1d(np.arange(len(variables)), constant), names


def drop_constant_columns(data: LoadedData, std: np.ndarray) -> list[str]:
    """Columns constant in training carry no information and break standardization: drop them."""
    keep, names = find_constant_columns(data.variables, std)
    if not names:
        return []
    for split in SPLITS:
        setattr(data, split, getattr(data, split)[:, keep])
    data.variables = [data.variables[i] for i in keep]
    return names


def write_prepared(data: LoadedData, out: DatasetPaths, fingerprint: str) -> dict:
    """Write every array (float32, standardized with train mean/std) and ``meta.json`` last."""
    check_shapes(data)
    for split in SPLITS:
        check_finite(getattr(data, split), f"the {split} split of {data.source}", data.variables)
    dropped = drop_constant_columns(data, data.train.std(axis=0, dtype=np.float64))
    mean = data.train.mean(axis=0, dtype=np.float64)
    std = data.train.std(axis=0, dtype=np.float64)
    for split in SPLITS:
        array = getattr(data, split)
        atomic_save_npy(out.array(split), ((array - mean) / std).astype(np.float32))
    for name, dtype in (("train_groups", np.int32), ("valid_groups", np.int32), ("test_groups", np.int32),
                        ("test_labels", np.int16), ("test_meta", np.int32)):
        atomic_save_npy(out.array(name), np.asarray(getattr(data, name), dtype=dtype))
    meta = _meta_record(data, mean, std, dropped, fingerprint)
    atomic_write_json(out.meta, meta)
    return meta


def _meta_record(data: LoadedData, mean, std, dropped: list[str], fingerprint: str) -> dict:
    return build_meta(
        data, mean, std, dropped, fingerprint,
        shapes={split: list(getattr(data, split).shape) for split in SPLITS},
        runs={split: int(len(np.unique(getattr(data, f"{split}_groups")))) for split in SPLITS},
        faults=sorted(int(f) for f in np.unique(data.test_meta[:, 0])),
    )


def build_meta(described: SourceDescription, mean, std, dropped: list[str], fingerprint: str, *,
               shapes: dict, runs: dict, faults: list[int]) -> dict:
    """``meta.json``; ``described`` is a ``LoadedData`` or a ``ChunkedSource``."""
    return {
        "source": described.source,
        "fingerprint": fingerprint,
        "created": time.time(),
        "variables": described.variables,
        "dropped_constant_variables": dropped,
        "onset": described.onset,
        "sampling_minutes": described.sampling_minutes,
        "scaler": {"mean": mean.tolist(), "std": std.tolist()},
        "shapes": shapes,
        "runs": runs,
        "faults": faults,
        "notes": described.notes,
        "details": described.details,
    }


# --- chunk by chunk, for sources too large to hold in memory (the Rieth testing file) ---

@dataclass
class Chunk:
    """Consecutive rows of one split: ``X`` (n_rows, n_variables) in raw units, ``groups`` (n_rows,)
    run ids; for the test split also ``labels`` (n_rows,) and ``meta`` (n_rows, 3)."""

    X: np.ndarray
    groups: np.ndarray
    labels: np.ndarray | None = None
    meta: np.ndarray | None = None


@dataclass(kw_only=True)
class ChunkedSource(SourceDescription):
    """A source read in chunks. ``read_chunks(split)`` starts a pass over one split; the writer
    makes one pass per split, in the order of ``SPLITS``. ``details`` may still be filled in
    while chunks are read: ``meta.json`` is built after the last one."""

    read_chunks: Callable[[str], Iterator[Chunk]]


class RunningMoments:
    """Column mean and population std over chunks, merged pairwise (Chan et al.) in float64 so
    millions of rows lose no precision the way a running sum of squares would."""

    def __init__(self, n_columns: int):
        self.count = 0
        self.mean = np.zeros(n_columns)
        self.m2 = np.zeros(n_columns)

    def add(self, X: np.ndarray) -> None:
        n = len(X)
        if n == 0:
            return
        chunk_mean = X.mean(axis=0, dtype=np.float64)
        chunk_m2 = ((X - chunk_mean) ** 2).sum(axis=0)
        delta = chunk_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + chunk_m2 + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.count, 1))


class NpyAppender:
    """A ``.npy`` file whose row count is known only at the end.

    Rows are appended with plain writes (RSS stays at one chunk, unlike dirty memmap pages);
    numpy reserves header room for the first axis to grow (``GROWTH_AXIS_MAX_DIGITS``), so the
    final shape is written over the provisional header in place. The temp file replaces
    ``path`` only in ``commit``, so readers never see half an array.
    """

    def __init__(self, path: Path, dtype, row_shape: tuple[int, ...]):
        self.path, self.dtype, self.row_shape, self.rows = Path(path), np.dtype(dtype), row_shape, 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        self.handle = open(self.temp, "wb")
        self.header_size = self._write_header()

    def _write_header(self) -> int:
        self.handle.seek(0)
        np.lib.format.write_array_header_1_0(self.handle, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": (self.rows, *self.row_shape)})
        return self.handle.tell()

    def append(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path.name}: rows of shape {block.shape[1:]}, expected {self.row_shape}")
        self.handle.write(memoryview(block).cast("B"))
        self.rows += len(block)

    def commit(self) -> Path:
        self.handle.seek(0, os.SEEK_END)
        if self._write_header() != self.header_size:
            raise RuntimeError(f"{self.path.name}: the .npy header grew; numpy >= 1.24 is needed")
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.temp, self.path)
        return self.path

    def discard(self) -> None:
        self.handle.close()
        self.temp.unlink(missing_ok=True)


class ChunkSpool:
    """Chunks kept in a temporary file between two passes over them.

    A second pass replays the chunks as they were appended (same boundaries and dtypes, so
    what is computed from them is the same to the byte) without producing them again: no run
    simulated twice, no file parsed twice. Plain writes and reads, not a memmap, so RSS stays
    at one chunk. The file is hidden in ``folder`` and deleted by ``close`` (by ``with`` also on
    an error).
    """

    def __init__(self, folder: Path, name: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.spool"
        self.handle = open(self.path, "wb")
        self.layouts: list[dict[str, tuple[np.dtype, tuple[int, ...]]]] = []

    def __enter__(self) -> ChunkSpool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def append(self, chunk: Chunk) -> None:
        layout = {}
        for name in (f.name for f in fields(Chunk)):
            array = getattr(chunk, name)
            if array is not None:
                array = np.ascontiguousarray(array)
                if array.size:   # a view of no bytes cannot be cast
                    self.handle.write(memoryview(array).cast("B"))
                layout[name] = (array.dtype, array.shape)
        self.layouts.append(layout)

    def replay(self) -> Iterator[Chunk]:
        """The appended chunks in order; each replay reads the file afresh."""
        self.handle.flush()
        with open(self.path, "rb") as reader:
            for layout in self.layouts:
                yield Chunk(**{name: self._read(reader, dtype, shape) for name, (dtype, shape) in layout.items()})

    def _read(self, reader: BinaryIO, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        array = np.empty(shape, dtype)
        if array.size and reader.readinto(memoryview(array).cast("B")) != array.nbytes:
            raise RuntimeError(f"the spool file {self.path} ended early; was it truncated or deleted?")
        return array

    def close(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


def description_of(source: SourceDescription) -> dict:
    """The descriptive fields of ``source`` as keyword arguments (to build a ``LoadedData``)."""
    return {f.name: getattr(source, f.name) for f in fields(SourceDescription)}


def load_chunks(source: ChunkedSource) -> LoadedData:
    """Every chunk of every split concatenated in memory: the rows ``write_prepared_chunks`` would
    write, unstandardized (for tests, benchmarks and notebooks)."""
    splits = {split: list(source.read_chunks(split)) for split in SPLITS}
    test = splits["test"]
    return LoadedData(
        train=np.concatenate([c.X for c in splits["train"]]), train_groups=np.concatenate([c.groups for c in splits["train"]]),
        valid=np.concatenate([c.X for c in splits["valid"]]), valid_groups=np.concatenate([c.groups for c in splits["valid"]]),
        test=np.concatenate([c.X for c in test]), test_groups=np.concatenate([c.groups for c in test]),
        test_labels=np.concatenate([c.labels for c in test]), test_meta=np.concatenate([c.meta for c in test]),
        **description_of(source),
    )


def write_prepared_chunks(source: ChunkedSource, out: DatasetPaths, fingerprint: str) -> dict:
    """Like ``write_prepared`` for a source read chunk by chunk, one pass per split: the training
    chunks are spooled to disk while their statistics are measured, then every split is
    standardized as it streams. Peak memory is a few chunks, whatever the file size."""
    with contextlib.ExitStack() as cleanup:
        train_spool = cleanup.enter_context(ChunkSpool(out.root, "train"))
        moments = measure_training_moments(source, train_spool)
        keep, dropped = find_constant_columns(source.variables, moments.std)
        mean, std = moments.mean[keep], moments.std[keep]
        writers = {split: open_split_writers(out, split, len(keep), cleanup) for split in SPLITS}
        summaries = {"train": stream_split(train_spool.replay(), "train", source, writers["train"], keep, mean, std)}
        train_spool.close()   # its disk space is free again before the test split, the largest, is written
        for split in ("valid", "test"):
            summaries[split] = stream_split(read_checked(source, split), split, source, writers[split], keep, mean, std)
        for appender in (a for split_writers in writers.values() for a in split_writers.values()):
            appender.commit()
    source.variables = [source.variables[i] for i in keep]
    meta = build_meta(
        source, mean, std, dropped, fingerprint,
        shapes={split: [summaries[split]["rows"], len(keep)] for split in SPLITS},
        runs={split: len(summaries[split]["groups"]) for split in SPLITS},
        faults=sorted(summaries["test"]["faults"]),
    )
    atomic_write_json(out.meta, meta)
    return meta


def measure_training_moments(source: ChunkedSource, spool: ChunkSpool) -> RunningMoments:
    """Column moments of the train split, read once: each chunk is kept in ``spool``, to be written
    when the moments are known."""
    moments = RunningMoments(len(source.variables))
    for chunk in read_checked(source, "train"):
        moments.add(chunk.X)
        spool.append(chunk)
    if moments.count == 0:
        raise empty_split_error("train", source.source)
    return moments


def open_split_writers(out: DatasetPaths, split: str, n_columns: int,
                       cleanup: contextlib.ExitStack) -> dict[str, NpyAppender]:
    """One appender per array of ``split``; each is discarded unless committed."""
    shapes = {split: (np.float32, (n_columns,)), f"{split}_groups": (np.int32, ())}
    if split == "test":
        shapes.update(test_labels=(np.int16, ()), test_meta=(np.int32, (3,)))
    writers = {name: NpyAppender(out.array(name), dtype, shape) for name, (dtype, shape) in shapes.items()}
    for appender in writers.values():
        cleanup.callback(appender.discard)
    return writers


def stream_split(chunks: Iterator[Chunk], split: str, source: ChunkedSource, writers: dict[str, NpyAppender],
                 keep: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict:
    """Standardize and append every chunk of ``split``; return its row count, runs and faults."""
    rows, groups, faults = 0, set(), set()
    for chunk in chunks:
        writers[split].append((chunk.X[:, keep] - mean) / std)
        writers[f"{split}_groups"].append(chunk.groups)
        if split == "test":
            writers["test_labels"].append(chunk.labels)
            writers["test_meta"].append(chunk.meta)
            faults.update(int(f) for f in np.unique(chunk.meta[:, 0]))
        groups.update(int(g) for g in np.unique(chunk.groups))
        rows += len(chunk.X)
    if rows == 0:
        raise empty_split_error(split, source.source)
    return {"rows": rows, "groups": groups, "faults": faults}


def read_checked(source: ChunkedSource, split: str) -> Iterator[Chunk]:
    """``source.read_chunks(split)``, each chunk checked before it is used (rows counted per split)."""
    first_row = 0
    for chunk in source.read_chunks(split):
        check_chunk(chunk, split, source, first_row)
        first_row += len(chunk.X)
        yield chunk


def check_chunk(chunk: Chunk, split: str, source: ChunkedSource, first_row: int = 0) -> None:
    """The checks of ``check_shapes``/``check_finite``, per chunk (loaders name file rows first)."""
    n_vars = len(source.variables)
    if chunk.X.ndim != 2 or chunk.X.shape[1] != n_vars:
        raise DataError(
            f"the {split} split of {source.source} has rows of shape {chunk.X.shape[1:]} but {n_vars} "
            "variables are named; train and test must have the same variables"
        )
    if len(chunk.groups) != len(chunk.X) or (split == "test" and (
            chunk.labels is None or chunk.meta is None or len(chunk.labels) != len(chunk.X)
            or chunk.meta.shape != (len(chunk.X), 3))):
        raise DataError(f"a {split} chunk of {source.source} lacks one run id/label/meta row per data row")
    check_finite(chunk.X, f"the {split} split of {source.source} (from its row {first_row})", source.variables)
