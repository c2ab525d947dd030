"""``csv:PATH`` / ``parquet:PATH`` / ``npz:PATH``: your own process data, one row per sample.

Expected layout (one table; a ``.npz`` holds one 1-D array per column, keyed by column name):

    run     fault   sample   temp_1   flow_2   ...      <- one column per process variable
    A       0       0        71.2     3.05
    A       0       1        71.3     3.04              <- run A: in control throughout
    B       4       0        71.1     3.06              <- run B: fault 4 ...
    B       4       1        74.9     3.51

* ``run_column`` (default: the first of run, simulationRun, run_id): rows with the same value
  form one contiguous run (sequence models window inside a run). Any values; order of first
  appearance gives the run ids 0, 1, 2 ...
* ``fault_column`` (default: the first of fault, faultNumber, label): 0 = in control. By
  default it is the label of each ROW (0 before the fault starts). If it names the fault of
  the whole RUN instead (like Rieth's files), pass ``onset=N``: rows with sample >= N are
  faulty, earlier rows are relabelled 0.
* ``sample_column`` (default: sample, if present): order and index of rows within a run;
  without it, the row order of the file, counted from 0.
* ``features`` (default: every other numeric column): list of columns to use.

Runs whose rows are all 0 are in-control runs: in file order, the first ones train, the next
``valid_fraction`` (default 0.2) set thresholds, and the last ``test_fraction`` (default 0.2)
are test runs that measure false alarms (at least one run trains and one validates). A single
in-control run is split by rows instead (last ``valid_fraction`` validates). Runs with a
fault are test runs (``faults`` selects some). ``sampling_minutes`` (default 1) is the time
between samples, used to report detection delays in minutes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.data.dataset import (NO_FAULTY_ROW, LoadedData, build_test_meta, count_held_out, count_validation_runs,
                                  first_faulty_samples)
from workers.data.errors import DataError
from workers.data.options import check_option_names, fraction_option, select_faults
from workers.data.tables import import_optional, iter_table_chunks, numeric_columns, table_format

OPTIONS = {
    "run_column": "column naming the run of each row; default run/simulationRun/run_id",
    "fault_column": "column with the fault number (0 = in control); default fault/faultNumber/label",
    "sample_column": "column with the sample index within a run; default sample if present",
    "onset": "first faulty sample when the fault column labels whole runs; default: per-row labels",
    "features": "list of variable columns; default all other numeric columns",
    "faults": "fault numbers to test; default all",
    "valid_fraction": "share of in-control runs that set thresholds; default 0.2",
    "test_fraction": "share of in-control runs kept for testing false alarms; default 0.2",
    "sampling_minutes": "minutes between samples; default 1",
}
DEFAULT_COLUMNS = {"run_column": ("run", "simulationRun", "run_id"),
                   "fault_column": ("fault", "faultNumber", "label"), "sample_column": ("sample",)}


@dataclass
class Table:
    """The rows of the file, sorted by run then sample."""

    X: np.ndarray          # (n_rows, n_features) float64
    runs: np.ndarray       # (n_rows,) run id, 0.. in order of first appearance
    faults: np.ndarray     # (n_rows,) fault column as read
    samples: np.ndarray    # (n_rows,) sample index within the run
    features: list[str]


def load(location: str, options: dict, seed: int = 0) -> LoadedData:
    """Read the whole table and split its runs; ``seed`` is unused (splits follow file order)."""
    path = Path(location)
    source = f"{'npz' if path.suffix.lower() == '.npz' else table_format(path)}:{location}"
    check_option_names(options, OPTIONS, source)
    table = build_table(read_frame(path), options, path)
    run_fault = fault_of_each_run(table, path)
    labels = table.faults if options.get("onset") is None else np.where(
        table.samples >= options["onset"], run_fault[table.runs], 0)
    selected = select_faults(options, set(run_fault[run_fault > 0].tolist()), source)
    in_control = np.flatnonzero(run_fault == 0)
    if in_control.size == 0:
        raise DataError(f"{path}: no run is in control throughout (fault column 0 on every row); at least one "
                        "is needed for training. Check fault_column/onset, or add fault-free runs.")
    train, valid, test_runs = split_in_control_runs(in_control, options, source)
    test_runs = np.concatenate([test_runs, np.flatnonzero(np.isin(run_fault, selected))])
    return assemble(table, labels, run_fault, train, valid, test_runs, options, source)


def read_frame(path: Path):
    """The whole file as a DataFrame (CSV, Parquet, or .npz of 1-D column arrays)."""
    pd = import_optional("pandas", "tables")
    if path.suffix.lower() != ".npz":
        return pd.concat([frame for _, frame in iter_table_chunks(path, None)], ignore_index=True)
    try:
        with np.load(path, allow_pickle=False) as archive:
            columns = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {path} as .npz ({error}); save it with numpy.savez(path, run=..., "
                        "fault=..., temp_1=...): one 1-D array per column, text as fixed-width strings "
                        "(array.astype(str)), never object arrays") from error
    bad = [name for name, values in columns.items() if values.ndim != 1 or len(values) != len(next(iter(columns.values())))]
    if bad:
        raise DataError(f"{path}: arrays {', '.join(bad)} are not 1-D columns of equal length; store one 1-D "
                        "array per column, all with one entry per row")
    return pd.DataFrame(columns)


def pick_column(frame, options: dict, option: str, path: Path, required: bool = True) -> str | None:
    names = [str(c) for c in frame.columns]
    if options.get(option) is not None:
        if options[option] not in names:
            raise DataError(f"{path} has no column {options[option]!r} ({option}); it has: {', '.join(names)}")
        return options[option]
    found = next((c for c in DEFAULT_COLUMNS[option] if c in names), None)
    if found is None and required:
        raise DataError(f"{path}: no column named {' or '.join(DEFAULT_COLUMNS[option])}; name yours with "
                        f"--data-option {option}=NAME (columns: {', '.join(names)})")
    return found


def build_table(frame, options: dict, path: Path) -> Table:
    pd = import_optional("pandas", "tables")
    run_col, fault_col = pick_column(frame, options, "run_column", path), pick_column(frame, options, "fault_column", path)
    sample_col = pick_column(frame, options, "sample_column", path, required=False)
    features = options.get("features") or default_features(frame, {run_col, fault_col, sample_col})
    missing = [c for c in features if c not in frame.columns]
    if missing or not features:
        raise DataError(f"{path}: feature column(s) {missing or '(none)'} not found among {list(frame.columns)}; "
                        "pass features=[...] with existing numeric columns")
    runs, _ = pd.factorize(frame[run_col], use_na_sentinel=False)
    samples = (numeric_columns(frame, [sample_col], path, 0)[:, 0].astype(np.int64) if sample_col
               else frame.groupby(runs).cumcount().to_numpy())
    order = np.lexsort((samples, runs))   # stable: a run's rows become contiguous, in sample order
    faults = numeric_columns(frame, [fault_col], path, 0)[:, 0].astype(np.int64)
    X = numeric_columns(frame, list(features), path, 0)
    return Table(X[order], runs[order].astype(np.int64), faults[order], samples[order], list(features))


def default_features(frame, keys: set) -> list[str]:
    """Numeric columns, plus text columns that are mostly numbers (a typo then fails loudly on its cell)."""
    pd = import_optional("pandas", "tables")
    features = []
    for column in frame.columns:
        if column in keys:
            continue
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.to_numeric(values, errors="coerce").notna().mean() >= 0.5:
            features.append(str(column))
    return features


def fault_of_each_run(table: Table, path: Path) -> np.ndarray:
    """Fault number per run id (0 = in control throughout); a run may carry one fault only."""
    n_runs = int(table.runs.max()) + 1
    run_fault = np.zeros(n_runs, np.int64)
    faulty = table.faults != 0
    for run, fault in set(zip(table.runs[faulty].tolist(), table.faults[faulty].tolist())):
        if run_fault[run] not in (0, fault):
            raise DataError(f"{path}: run #{run} (in order of appearance) has faults {run_fault[run]} and {fault}; "
                            "each run may carry one fault. Give each faulty episode its own run value.")
        run_fault[run] = fault
    return run_fault


def split_in_control_runs(runs: np.ndarray, options: dict, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs in file order -> (train, valid, test); one run only -> train and valid are that run."""
    valid_fraction = fraction_option(options, "valid_fraction", 0.2, source)
    test_fraction = fraction_option(options, "test_fraction", 0.2, source)
    if len(runs) == 1:
        return runs, runs, runs[:0]
    n_valid = count_validation_runs(len(runs), valid_fraction)
    n_test = min(int(round(len(runs) * test_fraction)), len(runs) - n_valid - 1)
    n_train = len(runs) - n_valid - n_test
    return runs[:n_train], runs[n_train:n_train + n_valid], runs[n_train + n_valid:]


def assemble(table: Table, labels, run_fault, train, valid, test_runs, options: dict, source: str) -> LoadedData:
    train_rows, valid_rows = np.isin(table.runs, train), np.isin(table.runs, valid)
    if np.array_equal(train, valid):
        train_rows, valid_rows = split_single_run_rows(train_rows, fraction_option(options, "valid_fraction", 0.2, source))
    test_rows = np.isin(table.runs, test_runs)
    test_meta = build_test_meta(run_fault[table.runs[test_rows]], table.runs[test_rows], table.samples[test_rows])
    onsets = first_faulty_samples(table.runs, table.samples, labels, len(run_fault))
    onsets = onsets[onsets != NO_FAULTY_ROW]
    return LoadedData(
        train=table.X[train_rows], train_groups=table.runs[train_rows].astype(np.int32),
        valid=table.X[valid_rows], valid_groups=table.runs[valid_rows].astype(np.int32),
        test=table.X[test_rows], test_groups=table.runs[test_rows].astype(np.int32),
        test_labels=labels[test_rows], test_meta=test_meta, variables=table.features,
        onset=int(options["onset"]) if options.get("onset") is not None else int(np.median(onsets) if onsets.size else 0),
        sampling_minutes=float(options.get("sampling_minutes", 1.0)), source=source,
        notes=[f"Your own data: {len(train)} training, {len(valid)} validation and {len(test_runs)} test runs."],
        details={"n_runs": int(len(run_fault)), "onsets_in_samples": sorted(set(onsets.tolist()))[:50]},
    )


def split_single_run_rows(rows: np.ndarray, valid_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """One in-control run: its last rows validate, so thresholds come from rows not fitted on."""
    index = np.flatnonzero(rows)
    cut = index[len(index) - count_held_out(len(index), valid_fraction)]
    position = np.arange(len(rows))
    return rows & (position < cut), rows & (position >= cut)
