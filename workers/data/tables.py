"""Tabular files (CSV, Parquet, RData) read in chunks, with errors naming file, row and column.

pandas is needed for every format here, pyarrow for Parquet, pyreadr for RData (optional
extras ``orchestrate[parquet]`` / ``orchestrate[rieth]``). RData cannot be read in parts
(R stores whole columns), so an ``.RData`` file is read whole once and then cut into chunks;
convert very large ones to Parquet to keep memory flat.
"""
from __future__ import annotations

import contextlib
import importlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from workers.data.errors import DataError

CHUNK_ROWS = 100_000
#: file suffix (lower case) -> format, in order of preference when several copies exist
TABLE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".rdata": "rdata", ".rda": "rdata"}
_PACKAGES = {"pandas": "parquet", "pyarrow.parquet": "parquet", "pyreadr": "rieth"}


def import_optional(module: str, purpose: str) -> Any:
    """Import an optional dependency or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        raise DataError(f"reading {purpose} needs the Python package {package!r}: "
                        f"pip install -e '.[{_PACKAGES[module]}]' in the orchestrate checkout (or pip install {package})") from error


def table_format(path: Path) -> str:
    try:
        return TABLE_FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataError(f"{path}: unknown table format {path.suffix!r}; use one of "
                        f"{', '.join(sorted(TABLE_FORMATS))}") from None


def find_table(directory: Path, stem: str) -> Path | None:
    """The file ``stem.<suffix>`` in ``directory`` (any case), preferring Parquet, then CSV, then RData."""
    candidates = {p.suffix.lower(): p for p in directory.iterdir() if p.stem.lower() == stem.lower()}
    return next((candidates[suffix] for suffix in TABLE_FORMATS if suffix in candidates), None)


def read_column_names(path: Path) -> list[str] | None:
    """Header of a CSV/Parquet file (None for RData, whose names are known only once read)."""
    fmt = table_format(path)
    if fmt == "csv":
        pd = import_optional("pandas", "CSV files")
        with translate_read_errors(path):
            return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    if fmt == "parquet":
        pq = import_optional("pyarrow.parquet", "Parquet files")
        with translate_read_errors(path):
            return list(pq.ParquetFile(path).schema_arrow.names)
    return None


def require_columns(path: Path, available: list[str], needed: list[str]) -> None:
    missing = [c for c in needed if c not in available]
    if missing:
        shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
        raise DataError(f"{path} lacks column(s) {', '.join(missing)} (it has: {shown}). Rename the columns, "
                        "or name yours with the source's options; train and test files need the same variables.")


def iter_table_chunks(path: Path, columns: list[str] | None, chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[int, Any]]:
    """Yield ``(first_row, DataFrame)`` with ``columns`` (None = all), ``first_row`` 0-based in the data."""
    fmt = table_format(path)
    names = read_column_names(path)
    if names is not None and columns is not None:
        require_columns(path, names, columns)
    readers = {"csv": _csv_chunks, "parquet": _parquet_chunks, "rdata": _rdata_chunks}
    with translate_read_errors(path):
        yield from readers[fmt](path, columns, chunk_rows)


def _csv_chunks(path: Path, columns: list[str] | None, chunk_rows: int) -> Iterator[tuple[int, Any]]:
    pd = import_optional("pandas", "CSV files")
    first = 0
    # low_memory=False: one dtype per column per chunk, so a text cell is never half-parsed
    # No usecols: with it pandas silently ignores a row with extra fields, hiding a shifted row.
    with pd.read_csv(path, chunksize=chunk_rows, low_memory=False) as reader:
        for frame in reader:
            yield first, frame if columns is None else frame[columns]
            first += len(frame)


def _parquet_chunks(path: Path, columns: list[str] | None, chunk_rows: int) -> Iterator[tuple[int, Any]]:
    pq = import_optional("pyarrow.parquet", "Parquet files")
    first = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
        yield first, batch.to_pandas()
        first += batch.num_rows


def _rdata_chunks(path: Path, columns: list[str] | None, chunk_rows: int) -> Iterator[tuple[int, Any]]:
    pyreadr = import_optional("pyreadr", ".RData files")
    objects = pyreadr.read_r(str(path))
    if not objects:
        raise DataError(f"{path} holds no data frame; save one with R's save() or pyreadr.write_rdata")
    frame = next(iter(objects.values()))
    if columns is not None:
        require_columns(path, [str(c) for c in frame.columns], columns)
        frame = frame[columns]
    for first in range(0, len(frame), chunk_rows):
        yield first, frame.iloc[first:first + chunk_rows]


@contextlib.contextmanager
def translate_read_errors(path: Path) -> Iterator[None]:
    """Turn a parser's exception into a ``DataError`` naming the file and the likely fix."""
    try:
        yield
    except DataError:
        raise
    except FileNotFoundError as error:
        raise DataError(f"{path} does not exist; check the path") from error
    except Exception as error:   # pandas/pyarrow/pyreadr each raise their own kinds
        raise DataError(f"cannot read {path}: {type(error).__name__}: {str(error).strip()}. The file may be truncated, "
                        "have a row with a different number of columns, or not be a "
                        f"{table_format(path)} file; fix or re-export it.") from error


def describe_row(path: Path, first_row: int, offset: int) -> str:
    """'row 12 (line 13)' for CSV (header is line 1), 'row 12' otherwise; rows counted from 1."""
    row = first_row + offset + 1
    return f"row {row} (line {row + 1})" if table_format(path) == "csv" else f"row {row}"


def numeric_columns(frame, columns: list[str], path: Path, first_row: int) -> np.ndarray:
    """``frame[columns]`` as float64 (n_rows, n_columns); a text or NaN/inf cell is named exactly."""
    try:
        values = frame[columns].to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise_text_cell(frame, columns, path, first_row)
    bad = ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise DataError(f"{path}, {describe_row(path, first_row, int(rows[0]))}, column {columns[cols[0]]!r}: "
                        f"{values[rows[0], cols[0]]} ({int(bad.sum())} missing/NaN/inf cell(s) in this chunk). "
                        "Drop those rows or fill them (e.g. forward-fill within each run).")
    return values


def raise_text_cell(frame, columns: list[str], path: Path, first_row: int) -> None:
    pd = import_optional("pandas", "tables")
    for column in columns:
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = np.flatnonzero(converted.isna().to_numpy() & frame[column].notna().to_numpy())
        if bad.size:
            raise DataError(f"{path}, {describe_row(path, first_row, int(bad[0]))}, column {column!r} holds "
                            f"{frame[column].iloc[bad[0]]!r}, which is not a number. Fix that cell, or leave the "
                            "column out of the features.")
    raise DataError(f"{path}: columns {columns} could not be read as numbers")
