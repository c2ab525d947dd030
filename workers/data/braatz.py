"""``braatz:DIR``: the classic TEP files of Braatz's group (Russell, Chiang & Braatz 2000).

Files (whitespace-separated numbers, 52 columns = XMEAS(1..41), XMV(1..11), one row per
3-minute sample): ``d00.dat`` is the in-control training run, stored TRANSPOSED (52 lines of
500 values; detected by its shape); ``dNN_te.dat`` (NN = 00..21) are the 960-row test runs,
with fault NN introduced after sample 160, so 0-based rows >= 160 carry label NN.

``d01.dat .. d21.dat`` are NOT used: those training runs are faulty from their first row
(recording starts after the fault is introduced), so they are not in-control data.

Braatz has a single 500-row in-control training run. Detectors set their thresholds on
validation data they were not fitted on, so the last 20% of ``d00.dat`` (100 rows) is held out
as the validation run (group 1) and the first 80% trains (group 0). Keeping it contiguous at
the end, rather than sampling rows, keeps windows of sequence models inside one run.

Options: ``faults`` (int or list, default all 21), ``valid_fraction`` (default 0.2).
Get the files with ``orchestrate data download braatz --dest DIR``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from workers.data.dataset import TEP_VARIABLES, LoadedData, count_held_out, label_from_onset, whole_runs_test_meta
from workers.data.errors import DataError
from workers.data.options import check_option_names, fraction_option, select_faults

ONSET = 160
SAMPLING_MINUTES = 3.0
TRAIN_FILE = "d00.dat"
TRAIN_ROWS = 500
TEST_ROWS = 960
ALL_FAULTS = tuple(range(1, 22))
OPTIONS = {"faults": "fault numbers to test, e.g. [1,2,6]; default all 21",
           "valid_fraction": "share of d00.dat held out at its end for thresholds; default 0.2"}
DOWNLOAD_HINT = "Download them with: orchestrate data download braatz --dest DIR"


def test_file(fault: int) -> str:
    return f"d{fault:02d}_te.dat"


def load(location: str, options: dict, seed: int = 0) -> LoadedData:
    """Read ``d00.dat`` and the selected ``dNN_te.dat``; ``seed`` is unused (the files are fixed)."""
    source = f"braatz:{location}"
    check_option_names(options, OPTIONS, source)
    faults = select_faults(options, ALL_FAULTS, source)
    valid_fraction = fraction_option(options, "valid_fraction", 0.2, source)
    directory = Path(location)
    check_files_present(directory, [TRAIN_FILE, test_file(0), *(test_file(f) for f in faults)])
    in_control = read_braatz_file(directory / TRAIN_FILE, TRAIN_ROWS)
    n_train = len(in_control) - count_held_out(len(in_control), valid_fraction)
    test, test_meta = read_test_runs(directory, [0, *faults], first_run_id=2)
    return LoadedData(
        train=in_control[:n_train], train_groups=np.zeros(n_train, np.int32),
        valid=in_control[n_train:], valid_groups=np.ones(len(in_control) - n_train, np.int32),
        test=test, test_groups=test_meta[:, 1].copy(),
        test_labels=label_from_onset(test_meta, ONSET), test_meta=test_meta,
        variables=list(TEP_VARIABLES), onset=ONSET, sampling_minutes=SAMPLING_MINUTES, source=source,
        notes=["Braatz TEP data: one in-control training run (d00.dat); its last "
               f"{len(in_control) - n_train} rows are the validation run. One test run per fault."],
        details={"train_file": TRAIN_FILE, "test_files": [test_file(f) for f in [0, *faults]],
                 "validation_rows": len(in_control) - n_train},
    )


def check_files_present(directory: Path, names: list[str]) -> None:
    if not directory.is_dir():
        raise DataError(f"Braatz data folder {directory} does not exist or is not a folder. {DOWNLOAD_HINT}")
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise DataError(f"Braatz data folder {directory} lacks {len(missing)} file(s): {', '.join(missing)}. "
                        f"{DOWNLOAD_HINT} (files already there and intact are kept).")


def read_test_runs(directory: Path, faults: list[int], first_run_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack the test files; meta rows are (fault, run id, 0-based sample), shape (n_rows, 3)."""
    runs = [read_braatz_file(directory / test_file(fault), TEST_ROWS)[:TEST_ROWS] for fault in faults]
    run_ids = range(first_run_id, first_run_id + len(faults))
    return np.concatenate(runs), whole_runs_test_meta(faults, run_ids, [len(run) for run in runs])


def read_braatz_file(path: Path, expected_rows: int) -> np.ndarray:
    """One file as float64 (n_rows, 52); a transposed file (52 lines of ``expected_rows``) is turned."""
    lines = read_number_lines(path)
    widths = {len(fields) for fields in lines}
    if len(widths) > 1:
        raise_ragged_line(path, lines)
    transposed = len(lines) == len(TEP_VARIABLES) and len(lines[0]) != len(TEP_VARIABLES)
    values = parse_numbers(path, lines, transposed)
    if transposed:
        values = values.T
    if values.shape[1] != len(TEP_VARIABLES):
        raise DataError(f"{path} has {values.shape[1]} columns; Braatz files have 52 (XMEAS(1..41), XMV(1..11)). "
                        f"Is it a TEP file from another collection? {DOWNLOAD_HINT}")
    if len(values) < expected_rows:
        raise DataError(f"{path} has {len(values)} rows, expected {expected_rows}: the file is truncated. "
                        f"Delete it and download it again. {DOWNLOAD_HINT}")
    return values


def read_number_lines(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read {path} as a text file of numbers ({error}). "
                        f"Delete it and download it again. {DOWNLOAD_HINT}") from error
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path} is empty. Delete it and download it again. {DOWNLOAD_HINT}")
    return lines


def raise_ragged_line(path: Path, lines: list[list[str]]) -> None:
    """Name the first line whose field count differs from line 1 (a cut-off or damaged file)."""
    expected = len(lines[0])
    number = next(i for i, fields in enumerate(lines) if len(fields) != expected)
    raise DataError(f"{path}, line {number + 1} has {len(lines[number])} values but line 1 has {expected}: the "
                    f"file is truncated or damaged. Delete it and download it again. {DOWNLOAD_HINT}")


def parse_numbers(path: Path, lines: list[list[str]], transposed: bool) -> np.ndarray:
    """Parse every cell; a text cell or NaN/inf is reported by line, column and variable."""
    try:
        values = np.array(lines, dtype=np.float64)
    except ValueError:
        values = None
    bad = locate_bad_cell(lines, values)
    if bad is not None:
        line, column = bad
        index = line if transposed else column
        variable = TEP_VARIABLES[index] if index < len(TEP_VARIABLES) else "?"
        raise DataError(f"{path}, line {line + 1}, column {column + 1} ({variable}): {lines[line][column]!r} "
                        "is not a finite number. Fix that cell, or delete the file and download it again. "
                        f"{DOWNLOAD_HINT}")
    return values


def locate_bad_cell(lines: list[list[str]], values: np.ndarray | None) -> tuple[int, int] | None:
    if values is not None:
        rows, columns = np.nonzero(~np.isfinite(values))
        return (int(rows[0]), int(columns[0])) if len(rows) else None
    for line_number, fields in enumerate(lines):
        for column, text in enumerate(fields):
            try:
                float(text)
            except ValueError:
                return line_number, column
    return None
