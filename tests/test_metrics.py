"""Benchmark metrics against values computed by hand on tiny arrays."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from orchestrator.metrics import (
    FAULT_METRICS, MEAN_ROW, MEAN_WITHOUT_HARD_ROW, POOLED_ROW, build_layout, first_consecutive,
    measure_detector, missing_detector_records, roc_auc,
)

ONSET = 2
MINUTES = 3.0
RUN_LENGTH = 10


def tiny_test_split(runs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, meta) for runs given as (fault of the run, run id), RUN_LENGTH samples each, onset 2."""
    meta = np.array([(fault, run, sample) for fault, run in runs for sample in range(RUN_LENGTH)], dtype=np.int32)
    labels = np.where(meta[:, 2] >= ONSET, meta[:, 0], 0)
    return labels, meta


# run 0 fault-free, runs 1 and 2 of fault 1, run 3 of fault 2
RUNS = [(0, 0), (1, 1), (1, 2), (2, 3)]


@pytest.fixture
def layout():
    labels, meta = tiny_test_split(RUNS)
    return build_layout(labels, meta, ONSET, MINUTES)


def by_fault(records: list[dict]) -> dict:
    return {r["fault"]: r for r in records}


def alarms_at(run_index: int, samples: list[int]) -> np.ndarray:
    alarms = np.zeros(len(RUNS) * RUN_LENGTH, dtype=np.int8)
    alarms[[run_index * RUN_LENGTH + s for s in samples]] = 1
    return alarms


def test_detector_that_never_alarms(layout):
    n = layout.n_rows
    records = by_fault(measure_detector("quiet", np.zeros(n), np.zeros(n), layout, "ok", k=3))
    assert records[1]["fdr"] == 0.0 and records[1]["far"] == 0.0
    assert records[1]["delay_mean_samples"] is None and records[1]["delay_median_minutes"] is None
    assert records[1]["delay_undetected_runs"] == 2 and records[1]["runs"] == 2
    assert records[1]["delay_k_undetected_runs"] == 2
    assert records[POOLED_ROW]["far"] == 0.0
    assert records[MEAN_ROW]["delay_mean_minutes"] is None
    # all scores tied: AUC is exactly one half
    assert records[1]["auc"] == 0.5


def test_detector_that_always_alarms(layout):
    n = layout.n_rows
    records = by_fault(measure_detector("loud", np.ones(n), np.ones(n), layout, "ok", k=3))
    for fault in (1, 2):
        assert records[fault]["fdr"] == 1.0
        assert records[fault]["far"] == 1.0
        assert records[fault]["delay_mean_samples"] == 0.0
        assert records[fault]["delay_k_mean_minutes"] == 0.0
        assert records[fault]["delay_undetected_runs"] == 0
    assert records[POOLED_ROW]["far"] == 1.0 and records[POOLED_ROW]["fdr"] == 1.0
    assert records[MEAN_ROW]["fdr"] == 1.0


def test_alarm_before_onset_is_a_false_alarm_not_a_detection(layout):
    # run 1 (fault 1) alarms at sample 1 (pre-onset) and 3, 5, 6, 7, 8; run 2 never alarms
    alarms = alarms_at(1, [1, 3, 5, 6, 7, 8])
    scores = alarms.astype(float)
    record = by_fault(measure_detector("d", scores, alarms, layout, "ok", k=3))[1]
    assert record["far"] == pytest.approx(1 / 4)           # 4 pre-onset rows of fault 1, one alarm
    assert record["fdr"] == pytest.approx(5 / 16)          # 16 post-onset rows, 5 alarms
    assert record["delay_mean_samples"] == 1.0             # sample 3 - onset 2, not sample 1
    assert record["delay_mean_minutes"] == 3.0
    assert record["delay_undetected_runs"] == 1            # run 2
    assert record["delay_k_mean_samples"] == 3.0           # 5,6,7 are the first 3 in a row
    assert record["delay_k_median_minutes"] == 9.0
    assert record["delay_k_undetected_runs"] == 1


def test_k_consecutive_longer_than_any_alarm_streak_is_undetected(layout):
    alarms = alarms_at(1, [3, 5, 6, 7, 8])
    record = by_fault(measure_detector("d", alarms.astype(float), alarms, layout, "ok", k=6))[1]
    assert record["delay_mean_samples"] == 1.0
    assert record["delay_k_mean_samples"] is None
    assert record["delay_k_undetected_runs"] == 2


def test_delay_uses_sample_order_not_row_order():
    labels, meta = tiny_test_split([(0, 0), (1, 1)])
    order = np.r_[np.arange(RUN_LENGTH), np.arange(2 * RUN_LENGTH - 1, RUN_LENGTH - 1, -1)]   # run 1 reversed
    labels, meta = labels[order], meta[order]
    alarms = ((meta[:, 1] == 1) & np.isin(meta[:, 2], [4, 9])).astype(np.int8)
    layout = build_layout(labels, meta, ONSET, MINUTES)
    record = by_fault(measure_detector("d", alarms.astype(float), alarms, layout, "ok", k=1))[1]
    assert record["delay_mean_samples"] == 2.0


def test_mean_median_over_runs(layout):
    alarms = alarms_at(1, [3]) | alarms_at(2, [6])
    record = by_fault(measure_detector("d", alarms.astype(float), alarms, layout, "ok", k=1))[1]
    assert record["delay_mean_samples"] == 2.5      # delays 1 and 4
    assert record["delay_median_minutes"] == 7.5


def test_means_without_hard_faults():
    labels, meta = tiny_test_split([(0, 0), (1, 1), (3, 2)])
    layout = build_layout(labels, meta, ONSET, MINUTES)
    alarms = (meta[:, 0] == 1).astype(np.int8) * (labels != 0)
    records = by_fault(measure_detector("d", alarms.astype(float), alarms, layout, "ok"))
    assert records[1]["fdr"] == 1.0 and records[3]["fdr"] == 0.0
    assert records[MEAN_ROW]["fdr"] == 0.5
    assert records[MEAN_WITHOUT_HARD_ROW]["fdr"] == 1.0
    assert 0 not in records                          # fault-free runs are no fault row


def test_fault_free_alarms_count_in_pooled_far(layout):
    alarms = alarms_at(0, [0, 1, 2, 3, 4])           # half of the fault-free run
    records = by_fault(measure_detector("d", alarms.astype(float), alarms, layout, "ok"))
    in_control_rows = RUN_LENGTH + 3 * ONSET          # fault-free run + pre-onset rows of 3 faulty runs
    assert records[POOLED_ROW]["far"] == pytest.approx(5 / in_control_rows)
    assert records[1]["far"] == 0.0


@pytest.mark.parametrize("positives, negatives, expected", [
    ([1, 2, 3], [0, 2], 0.75),            # (2, 2) is a tie: half a pair
    ([5, 5], [5, 5, 5], 0.5),             # all tied
    ([3, 4], [1, 2], 1.0),
    ([1, 2], [3, 4], 0.0),
])
def test_roc_auc_by_hand(positives, negatives, expected):
    assert roc_auc(np.array(positives, float), np.array(negatives, float)) == pytest.approx(expected)


def test_roc_auc_matches_pair_counting_with_many_ties():
    rng = np.random.default_rng(0)
    positives, negatives = rng.integers(0, 5, 40), rng.integers(0, 4, 30)
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(positives, negatives)]
    assert roc_auc(positives, negatives) == pytest.approx(np.mean(pairs))


def test_roc_auc_of_an_empty_side_is_none():
    assert roc_auc(np.array([]), np.array([1.0])) is None
    assert roc_auc(np.array([1.0]), np.array([])) is None


@pytest.mark.parametrize("flags, k, expected", [
    ([0, 1, 1, 0, 1, 1, 1], 1, 1),
    ([0, 1, 1, 0, 1, 1, 1], 2, 1),
    ([0, 1, 1, 0, 1, 1, 1], 3, 4),
    ([0, 1, 1, 0, 1, 1, 1], 4, None),
    ([1, 1], 3, None),                   # shorter than k
    ([], 1, None),
])
def test_first_consecutive(flags, k, expected):
    assert first_consecutive(np.array(flags, dtype=bool), k) == expected


def test_first_consecutive_rejects_k_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        first_consecutive(np.array([True]), 0)


def test_missing_detector_is_rows_of_none_with_reason(layout):
    records = missing_detector_records("gone", layout, "crashed", "crashed: SIGKILL(-9)")
    assert [r["fault"] for r in records] == [1, 2, MEAN_ROW, MEAN_WITHOUT_HARD_ROW, POOLED_ROW]
    assert all(r["state"] == "crashed" and r["reason"] == "crashed: SIGKILL(-9)" for r in records)
    assert all(records[0][m] is None for m in FAULT_METRICS)
    assert records[-1]["far"] is None


def test_layout_rejects_meta_of_the_wrong_shape():
    with pytest.raises(ValueError, match="test_meta has shape"):
        build_layout(np.zeros(4), np.zeros((3, 3)), ONSET, MINUTES)
