"""``rieth:DIR``: the Rieth et al. (2017) TEP data, Harvard Dataverse doi:10.7910/DVN/6C3JR1.

DIR holds up to four tables, each as ``.RData`` (needs pyreadr), ``.csv`` or ``.parquet``
(Parquet is preferred when several copies exist; it is read fastest, in batches):

    TEP_FaultFree_Training   required: in-control runs -> train and valid (whole runs)
    TEP_Faulty_Testing       required: faulty runs -> test
    TEP_FaultFree_Testing    optional: in-control test runs (fault 0) -> test, for false alarms
    TEP_Faulty_Training      not used: detectors learn from in-control data only

Columns: ``faultNumber, simulationRun, sample, xmeas_1..xmeas_41, xmv_1..xmv_11``. ``sample``
counts from 1; the fault starts after sample 20 in training files and after sample 160 in
testing files. ``faultNumber`` names the fault of the whole run, so rows up to the onset are
relabelled 0 (in control); ``test_meta`` keeps the 0-based sample (so onset = 160).
Nominal runs have 500 (training) and 960 (testing) samples; shorter runs load as they are.

Rows of a run must be contiguous (the files are sorted by fault, run, sample). The testing
file has 9.6 million rows, so everything is streamed chunk by chunk into the prepared
arrays (``prepare``), never held whole in memory. Each file is parsed once: the fault-free
training file feeds both train and valid, and which runs validate (the last ones) is known
only at its end, so its rows wait in a spool file next to the prepared arrays.

Options: ``faults`` (int or list; default all), ``runs`` (simulation runs used per fault in
each file, first ones in file order; default all), ``valid_fraction`` (share of the selected
fault-free training runs held out, last in file order; default 0.1), ``chunk_rows``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from artifacts import DatasetPaths
from workers.data.dataset import TEP_VARIABLES, build_test_meta, count_validation_runs, label_from_onset
from workers.data.errors import DataError
from workers.data.options import (check_faults_present, check_option_names, count_option, fraction_option,
                                  select_faults)
from workers.data.tables import CHUNK_ROWS, describe_row, find_table, iter_table_chunks, numeric_columns
from workers.data.writer import Chunk, ChunkedSource, ChunkSpool, write_prepared_chunks

SAMPLING_MINUTES = 3.0
ONSET = 160   # 0-based index of the first faulty sample in a testing run
KEY_COLUMNS = ["faultNumber", "simulationRun", "sample"]
FEATURE_COLUMNS = [f"xmeas_{i}" for i in range(1, 42)] + [f"xmv_{i}" for i in range(1, 12)]
#: role -> (file stem, required, last in-control sample (1-based), nominal run length)
FILES = {
    "fault_free_training": ("TEP_FaultFree_Training", True, None, 500),
    "fault_free_testing": ("TEP_FaultFree_Testing", False, None, 960),
    "faulty_testing": ("TEP_Faulty_Testing", True, 160, 960),
}
OPTIONS = {"faults": "fault numbers to test, e.g. [1,2,6]; default all",
           "runs": "simulation runs used per fault in each file; default all",
           "valid_fraction": "share of fault-free training runs held out for thresholds; default 0.1",
           "chunk_rows": f"rows read at a time; default {CHUNK_ROWS}"}
_RUN_KEY_BASE = 1 << 32   # key = fault * base + simulationRun, one int64 per row


@dataclass
class RiethPlan:
    files: dict[str, Path]
    in_control: ChunkSpool      # the rows of the selected fault-free training runs, run id as group
    train_runs: set[int]
    valid_runs: set[int]
    faults: list[int] | None
    runs: int | None
    chunk_rows: int
    details: dict = field(default_factory=dict)


def prepare(location: str, options: dict, out: DatasetPaths, fingerprint: str, seed: int = 0) -> dict:
    """Stream the files into ``out``; returns ``meta.json``'s content. ``seed`` is unused."""
    with ChunkSpool(out.root, "rieth-in-control") as in_control:
        return write_prepared_chunks(plan_source(location, options, in_control), out, fingerprint)


def plan_source(location: str, options: dict, in_control: ChunkSpool) -> ChunkedSource:
    """Find the files, read the fault-free training runs into ``in_control``, choose the
    training/validation runs, and describe the chunked source."""
    source = f"rieth:{location}"
    check_option_names(options, OPTIONS, source)
    files = find_rieth_files(Path(location))
    runs = count_option(options, "runs", source)
    chunk_rows = count_option(options, "chunk_rows", source) or CHUNK_ROWS
    faults = select_faults(options, None, source)
    valid_fraction = fraction_option(options, "valid_fraction", 0.1, source)
    run_order = spool_training_runs(files["fault_free_training"], runs, chunk_rows, in_control)
    train_runs, valid_runs = split_runs(run_order, valid_fraction, source)
    plan = RiethPlan(files, in_control, set(train_runs), set(valid_runs), faults, runs, chunk_rows,
                     details={"files": {role: path.name for role, path in files.items()},
                              "train_runs": len(train_runs), "valid_runs": len(valid_runs)})
    return ChunkedSource(
        read_chunks=lambda split: read_split(plan, split), variables=list(TEP_VARIABLES), onset=ONSET,
        sampling_minutes=SAMPLING_MINUTES, source=source, details=plan.details,
        notes=["Rieth et al. 2017 TEP data (doi:10.7910/DVN/6C3JR1); validation = the last "
               f"{len(valid_runs)} fault-free training runs."],
    )


def find_rieth_files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        raise DataError(f"Rieth data folder {directory} does not exist or is not a folder")
    found = {role: find_table(directory, stem) for role, (stem, _, _, _) in FILES.items()}
    missing = [FILES[role][0] for role, path in found.items() if path is None and FILES[role][1]]
    if missing:
        raise DataError(f"Rieth data folder {directory} lacks {', '.join(missing)} (.RData, .csv or .parquet). "
                        "Download them from Harvard Dataverse, doi:10.7910/DVN/6C3JR1 "
                        "(https://doi.org/10.7910/DVN/6C3JR1), into that folder.")
    return {role: path for role, path in found.items() if path is not None}


def spool_training_runs(path: Path, runs: int | None, chunk_rows: int, spool: ChunkSpool) -> list[int]:
    """Read the fault-free training file once: check that it is in control, keep the rows of its
    first ``runs`` runs (all when None) in ``spool``, one chunk per chunk read; return those
    runs' simulationRun numbers in file order."""
    order: dict[int, None] = {}   # an insertion-ordered set
    for first, keys, X in read_rows(path, chunk_rows):
        check_in_control(path, first, keys)
        values, first_seen = np.unique(keys[:, 1], return_index=True)
        order.update(dict.fromkeys(int(run) for run in values[np.argsort(first_seen)]))
        selected = np.isin(keys[:, 1], list(order)[:runs])
        if selected.any():
            spool.append(Chunk(X[selected], keys[selected, 1].astype(np.int32)))
    return list(order)[:runs]


def split_runs(runs: list[int], valid_fraction: float, source: str) -> tuple[list[int], list[int]]:
    """Hold out the last runs: whole runs, so no validation window overlaps a training run."""
    if len(runs) < 2:
        raise DataError(f"{source} has {len(runs)} fault-free training run(s) selected; at least 2 are needed "
                        "(one to train, one to set thresholds). Raise runs=, or check TEP_FaultFree_Training.")
    n_valid = count_validation_runs(len(runs), valid_fraction)
    return runs[:-n_valid], runs[-n_valid:]


def read_split(plan: RiethPlan, split: str) -> Iterator[Chunk]:
    if split == "test":
        yield from read_test_chunks(plan)
        return
    keep = list(plan.train_runs if split == "train" else plan.valid_runs)
    for chunk in plan.in_control.replay():
        mask = np.isin(chunk.groups, keep)
        if mask.any():
            yield Chunk(chunk.X[mask], chunk.groups[mask])


def read_rows(path: Path, chunk_rows: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(first_row, keys (n, 3) int64 [fault, run, sample], X (n, 52) float64)`` per chunk."""
    for first, frame in iter_table_chunks(path, KEY_COLUMNS + FEATURE_COLUMNS, chunk_rows):
        keys = numeric_columns(frame, KEY_COLUMNS, path, first)
        yield first, keys.astype(np.int64), numeric_columns(frame, FEATURE_COLUMNS, path, first)


def check_in_control(path: Path, first: int, keys: np.ndarray) -> None:
    faulty = np.flatnonzero(keys[:, 0] != 0)
    if faulty.size:
        raise DataError(f"{path}, {describe_row(path, first, int(faulty[0]))}: faultNumber is "
                        f"{keys[faulty[0], 0]}, but a fault-free training file must hold only faultNumber 0. "
                        "Is it the faulty training file under the wrong name?")


def read_test_chunks(plan: RiethPlan) -> Iterator[Chunk]:
    numbering = TestRunNumbering(max(plan.train_runs | plan.valid_runs) + 1, plan.runs, plan.faults)
    faults_seen: set[int] = set()
    for role in ("fault_free_testing", "faulty_testing"):
        if role not in plan.files:
            continue
        path, (_, _, last_in_control, nominal) = plan.files[role], FILES[role]
        for first, keys, X in read_rows(path, plan.chunk_rows):
            faults_seen.update(int(f) for f in np.unique(keys[:, 0]))
            ids = numbering.assign(role, path, first, keys)
            mask = ids >= 0
            if mask.any():
                yield build_test_chunk(X[mask], keys[mask], ids[mask], last_in_control)
        plan.details.setdefault("short_test_runs", {})[role] = numbering.count_short(role, nominal)
    if plan.faults is not None:
        check_faults_present(plan.faults, faults_seen, f"the Rieth testing files in {plan.files['faulty_testing'].parent}")


def build_test_chunk(X: np.ndarray, keys: np.ndarray, ids: np.ndarray, last_in_control: int | None) -> Chunk:
    """Label rows after the onset with their run's fault; rows up to it (and fault-free runs) get 0."""
    meta = build_test_meta(keys[:, 0], ids, keys[:, 2] - 1)   # the files count samples from 1
    # the last in-control sample counted from 1 is the first faulty one counted from 0
    return Chunk(X, ids.astype(np.int32), label_from_onset(meta, last_in_control), meta)


class TestRunNumbering:
    """One run id per (file, fault, simulationRun); keeps the selected faults (all when None) and
    the first ``runs_per_fault`` runs of each (id -1 marks rows left out), and refuses a run whose rows are not contiguous, because
    sequence models window inside a run and a split run would be two runs in disguise."""

    def __init__(self, first_id: int, runs_per_fault: int | None, faults: list[int] | None):
        self.next_id, self.runs_per_fault = first_id, runs_per_fault
        self.faults = None if faults is None else {0, *faults}
        self.ids: dict[tuple[str, int], int] = {}
        self.runs_of_fault: dict[tuple[str, int], int] = {}
        self.lengths: dict[tuple[str, int], int] = {}
        self.current: tuple[str, int] | None = None

    def assign(self, role: str, path: Path, first: int, keys: np.ndarray) -> np.ndarray:
        """Run id per row, shape (n_rows,); -1 for rows of runs beyond ``runs_per_fault``."""
        packed = keys[:, 0] * _RUN_KEY_BASE + keys[:, 1]
        starts = np.flatnonzero(np.r_[True, packed[1:] != packed[:-1]])
        ids = np.empty(len(keys), np.int64)
        for start, end in zip(starts, np.r_[starts[1:], len(keys)]):
            key = (role, int(packed[start]))
            if key != self.current:
                self.start_run(key, path, first + start, keys[start])
            ids[start:end] = self.ids[key]
            self.lengths[key] = self.lengths.get(key, 0) + int(end - start)
        return ids

    def start_run(self, key: tuple[str, int], path: Path, row: int, row_keys: np.ndarray) -> None:
        if key in self.ids:
            raise DataError(f"{path}, {describe_row(path, row, 0)}: the rows of faultNumber {row_keys[0]}, "
                            f"simulationRun {row_keys[1]} are not contiguous. Sort the file by faultNumber, "
                            "simulationRun, sample.")
        fault_key = (key[0], int(row_keys[0]))
        taken = self.runs_of_fault.get(fault_key, 0)
        self.runs_of_fault[fault_key] = taken + 1
        if (self.runs_per_fault is not None and taken >= self.runs_per_fault) or (
                self.faults is not None and fault_key[1] not in self.faults):
            self.ids[key] = -1
        else:
            self.ids[key], self.next_id = self.next_id, self.next_id + 1
        self.current = key

    def count_short(self, role: str, nominal: int) -> int:
        return sum(1 for key, n in self.lengths.items() if key[0] == role and self.ids[key] >= 0 and n < nominal)
