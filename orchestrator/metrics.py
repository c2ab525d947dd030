"""Benchmark metrics from saved arrays only: FDR, FAR, detection delay, ROC AUC.

Plain numpy on purpose: the parent never imports scikit-learn or scipy (a test
checks ``sys.modules``), so ROC AUC is the Mann-Whitney statistic computed by
ranks, ties counted one half.

Row roles come from the prepared dataset: ``test_labels`` is the fault number
of a row (0 = in control, which includes fault-free runs *and* the pre-onset
rows of faulty runs); ``test_meta`` columns are fault id of the run, run id and
sample index in the run. Fault 0 (fault-free runs) is never a fault row: its
alarms count in FAR only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HARD_FAULTS = (3, 9, 15)          # almost invisible in TEP; means are also given without them
DEFAULT_K_CONSECUTIVE = 6

MEAN_ROW = "mean"
MEAN_WITHOUT_HARD_ROW = "mean_without_hard"
POOLED_ROW = "pooled"
SUMMARY_ROWS = (MEAN_ROW, MEAN_WITHOUT_HARD_ROW, POOLED_ROW)

DELAY_KINDS = ("delay", "delay_k")    # first alarm; first of k consecutive alarms
DELAY_STATS = ("mean_samples", "median_samples", "mean_minutes", "median_minutes", "undetected_runs")
FAULT_METRICS = ("fdr", "far", "auc", "runs") + tuple(
    f"{kind}_{stat}" for kind in DELAY_KINDS for stat in DELAY_STATS)
MEAN_METRICS = ("fdr", "far", "auc", "delay_mean_samples", "delay_mean_minutes",
                "delay_k_mean_samples", "delay_k_mean_minutes")
POOLED_METRICS = ("fdr", "far", "auc")


@dataclass(frozen=True)
class FaultRows:
    """Row indices of one fault in the test split.

    ``post_onset``: rows labelled with the fault; ``pre_onset``: in-control rows of
    that fault's runs; ``runs``: per run, its post-onset rows ordered by sample index.
    """

    fault: int
    post_onset: np.ndarray
    pre_onset: np.ndarray
    runs: tuple[np.ndarray, ...]
    run_ids: tuple[int, ...]


@dataclass(frozen=True)
class TestLayout:
    """Which test row plays which role; built once, shared by every detector."""

    n_rows: int
    run_id: np.ndarray              # (n_rows,) test run of each row
    sample: np.ndarray              # (n_rows,) sample index in its run
    in_control: np.ndarray          # indices of all in-control rows
    faulty: np.ndarray              # indices of all post-onset rows of any fault
    faults: tuple[FaultRows, ...]
    onset: int
    sampling_minutes: float

    @property
    def fault_ids(self) -> list[int]:
        return [rows.fault for rows in self.faults]

    def rows_of(self, fault: int) -> FaultRows:
        for rows in self.faults:
            if rows.fault == fault:
                return rows
        raise KeyError(f"fault {fault} has no test runs; faults present: {self.fault_ids}")


def build_layout(labels: np.ndarray, meta: np.ndarray, onset: int, sampling_minutes: float) -> TestLayout:
    """Index the test split: ``labels`` of shape (n,), ``meta`` of shape (n, 3)."""
    labels = np.asarray(labels)
    meta = np.asarray(meta)
    if meta.ndim != 2 or meta.shape[1] < 3 or len(meta) != len(labels):
        raise ValueError(
            f"test_meta has shape {meta.shape} but test_labels has {len(labels)} rows; expected "
            f"({len(labels)}, 3) (fault id, run id, sample index). Re-prepare the dataset.")
    fault_of_run, run_id, sample = meta[:, 0], meta[:, 1], meta[:, 2]
    faults = tuple(_index_fault(int(f), labels, fault_of_run, run_id, sample, onset)
                   for f in np.unique(fault_of_run) if f != 0)
    return TestLayout(
        n_rows=len(labels), run_id=run_id, sample=sample, in_control=np.flatnonzero(labels == 0),
        faulty=np.flatnonzero(labels != 0), faults=faults, onset=int(onset),
        sampling_minutes=float(sampling_minutes))


def _index_fault(fault, labels, fault_of_run, run_id, sample, onset) -> FaultRows:
    of_fault = fault_of_run == fault
    after = np.flatnonzero(of_fault & (sample >= onset))
    after = after[np.lexsort((sample[after], run_id[after]))]
    starts = np.flatnonzero(np.diff(run_id[after])) + 1
    runs = tuple(np.split(after, starts)) if after.size else ()
    return FaultRows(
        fault=fault,
        post_onset=np.flatnonzero(labels == fault),
        pre_onset=np.flatnonzero(of_fault & (labels == 0)),
        runs=runs,
        run_ids=tuple(int(run_id[r[0]]) for r in runs),
    )


def alarm_rate(alarms: np.ndarray) -> float | None:
    """Fraction of rows alarmed; None when there are no rows to judge."""
    return float(np.mean(alarms)) if len(alarms) else None


def roc_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float | None:
    """ROC AUC of ``positive_scores`` (should be higher) against ``negative_scores``.

    Equal to the rank-based Mann-Whitney U / (n_pos * n_neg), a tie counting one
    half. None when either side is empty.
    """
    return auc_against_sorted(np.asarray(positive_scores), np.sort(np.asarray(negative_scores)))


def auc_against_sorted(positive_scores: np.ndarray, sorted_negatives: np.ndarray) -> float | None:
    """``roc_auc`` with the negatives already sorted, so they are sorted once per detector."""
    if len(positive_scores) == 0 or len(sorted_negatives) == 0:
        return None
    below = np.searchsorted(sorted_negatives, positive_scores, side="left")
    below_or_equal = np.searchsorted(sorted_negatives, positive_scores, side="right")
    # every negative below a positive is a won pair, every equal one half a pair
    wins = below.sum(dtype=np.float64) + 0.5 * (below_or_equal - below).sum(dtype=np.float64)
    return float(wins / (len(positive_scores) * len(sorted_negatives)))


def first_consecutive(flags: np.ndarray, k: int = 1) -> int | None:
    """Position of the first of ``k`` consecutive True values in ``flags``, or None."""
    flags = np.asarray(flags, dtype=bool)
    if k < 1:
        raise ValueError(f"k_consecutive must be at least 1, got {k}")
    if len(flags) < k:
        return None
    if k == 1:
        hits = np.flatnonzero(flags)
    else:
        window_sums = np.convolve(flags.astype(np.int32), np.ones(k, dtype=np.int32), mode="valid")
        hits = np.flatnonzero(window_sums == k)
    return int(hits[0]) if hits.size else None


def run_delays(alarms: np.ndarray, layout: TestLayout, rows: FaultRows, k: int = 1) -> list[int | None]:
    """Per run of ``rows.fault``: samples from onset to the first of ``k`` consecutive alarms.

    Alarms before the onset are false alarms (they count in FAR), never a detection.
    """
    delays: list[int | None] = []
    for run_rows in rows.runs:
        position = first_consecutive(alarms[run_rows], k)
        delays.append(None if position is None else int(layout.sample[run_rows[position]]) - layout.onset)
    return delays


def summarize_delays(delays: list[int | None], sampling_minutes: float, kind: str) -> dict:
    """Mean/median over detected runs, in samples and minutes, and how many runs went undetected."""
    detected = [d for d in delays if d is not None]
    mean = float(np.mean(detected)) if detected else None
    median = float(np.median(detected)) if detected else None
    return {
        f"{kind}_mean_samples": mean,
        f"{kind}_median_samples": median,
        f"{kind}_mean_minutes": None if mean is None else mean * sampling_minutes,
        f"{kind}_median_minutes": None if median is None else median * sampling_minutes,
        f"{kind}_undetected_runs": len(delays) - len(detected),
    }


def measure_fault(scores: np.ndarray, alarms: np.ndarray, layout: TestLayout, rows: FaultRows,
                  sorted_in_control: np.ndarray, k: int) -> dict:
    """Every per-fault metric of one detector (see ``FAULT_METRICS``)."""
    values = {
        "fdr": alarm_rate(alarms[rows.post_onset]),
        "far": alarm_rate(alarms[rows.pre_onset]),
        "auc": auc_against_sorted(scores[rows.post_onset], sorted_in_control),
        "runs": len(rows.runs),
    }
    for kind, consecutive in zip(DELAY_KINDS, (1, k)):
        delays = run_delays(alarms, layout, rows, consecutive)
        values.update(summarize_delays(delays, layout.sampling_minutes, kind))
    return values


def measure_detector(name: str, scores: np.ndarray, alarms: np.ndarray, layout: TestLayout,
                     state: str, k: int = DEFAULT_K_CONSECUTIVE) -> list[dict]:
    """Records of one detector: one per fault, then the mean, mean-without-hard and pooled rows.

    ``scores`` and ``alarms`` have shape (n_test_rows,).
    """
    scores = np.asarray(scores, dtype=np.float64)
    alarms = np.asarray(alarms).astype(bool)
    sorted_in_control = np.sort(scores[layout.in_control])
    per_fault = [_record(name, rows.fault, state, None,
                         measure_fault(scores, alarms, layout, rows, sorted_in_control, k))
                 for rows in layout.faults]
    pooled = {
        "fdr": alarm_rate(alarms[layout.faulty]),
        "far": alarm_rate(alarms[layout.in_control]),
        "auc": auc_against_sorted(scores[layout.faulty], sorted_in_control),
    }
    return per_fault + _summary_records(name, state, None, per_fault, pooled)


def missing_detector_records(name: str, layout: TestLayout, state: str, reason: str) -> list[dict]:
    """Rows of None for a detector without usable predictions, carrying its state and reason."""
    per_fault = [_record(name, rows.fault, state, reason, dict.fromkeys(FAULT_METRICS))
                 for rows in layout.faults]
    return per_fault + _summary_records(name, state, reason, per_fault, dict.fromkeys(POOLED_METRICS))


def mean_over_faults(records: list[dict], metric: str, exclude: tuple[int, ...] = ()) -> float | None:
    """Mean of ``metric`` over per-fault records, skipping None (e.g. a delay never reached)."""
    values = [r[metric] for r in records
              if isinstance(r["fault"], int) and r["fault"] not in exclude and r[metric] is not None]
    return float(np.mean(values)) if values else None


def metric_names(fault: int | str) -> tuple[str, ...]:
    """Which metrics a record of ``fault`` (a fault number or a summary row name) carries."""
    if isinstance(fault, int):
        return FAULT_METRICS
    return POOLED_METRICS if fault == POOLED_ROW else MEAN_METRICS


def _summary_records(name, state, reason, per_fault: list[dict], pooled: dict) -> list[dict]:
    means = {m: mean_over_faults(per_fault, m) for m in MEAN_METRICS}
    means_easy = {m: mean_over_faults(per_fault, m, HARD_FAULTS) for m in MEAN_METRICS}
    return [_record(name, MEAN_ROW, state, reason, means),
            _record(name, MEAN_WITHOUT_HARD_ROW, state, reason, means_easy),
            _record(name, POOLED_ROW, state, reason, pooled)]


def _record(name: str, fault: int | str, state: str, reason: str | None, values: dict) -> dict:
    return {"detector": name, "fault": fault, "state": state, "reason": reason, **values}


METRIC_DEFINITIONS = {
    "fdr": "fault detection rate: share of the fault's post-onset rows that raise an alarm",
    "far": "false alarm rate: share of in-control rows that raise an alarm (per fault: that fault's "
           "pre-onset rows; pooled: every fault-free and pre-onset row)",
    "auc": "ROC AUC of the scores, the fault's post-onset rows against every in-control row (ties count 1/2)",
    "runs": "test runs of the fault",
    "delay": "samples (or minutes) from onset to the first alarm at or after onset, per run; "
             "mean/median over detected runs; undetected_runs never alarmed after onset",
    "delay_k": "as delay, to the first of k consecutive alarms at or after onset",
}
