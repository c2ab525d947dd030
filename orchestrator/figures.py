"""Benchmark figures as PNG bytes: FDR heatmap, monitoring chart, worker memory.

Figures are built with ``matplotlib.figure.Figure`` and the Agg renderer, never
``pyplot``: no global backend switch in a user's notebook, no figure kept alive
by a global registry. PNGs carry no "Software" metadata and a fixed dpi, so the
same run directory gives byte-identical files.
"""
from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

DPI = 100
_LOG_SCALE_RATIO = 1e3     # scores spanning more than three decades are read on a log axis
_GIB = 1024 ** 3
_MIB = 1024 ** 2


@dataclass(frozen=True)
class ChartSeries:
    """One detector's scores over one test run: arrays of shape (n_samples,)."""

    detector: str
    sample: np.ndarray
    score: np.ndarray
    threshold: float | None


def render_png(figure: Figure) -> bytes:
    """The figure as deterministic PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def plot_fdr_heatmap(detectors: list[str], faults: list[int], fdr: np.ndarray) -> bytes:
    """Heatmap of FDR, ``fdr`` of shape (n_detectors, n_faults), NaN where a detector failed."""
    figure = Figure(figsize=(max(6.0, 0.45 * len(faults) + 2.5), max(2.5, 0.5 * len(detectors) + 1.5)))
    axes = figure.add_subplot()
    cmap = _colormap_with_missing("viridis")
    image = axes.imshow(np.ma.masked_invalid(fdr), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(faults)), [str(f) for f in faults])
    axes.set_yticks(range(len(detectors)), detectors)
    axes.set_xlabel("fault")
    axes.set_title("Fault detection rate (grey: no result)")
    _annotate_cells(axes, fdr)
    figure.colorbar(image, ax=axes, label="FDR")
    figure.tight_layout()
    return render_png(figure)


def _colormap_with_missing(name: str):
    from matplotlib import colormaps   # local: keeps the module import light
    return colormaps[name].with_extremes(bad="#d0d0d0")


def _annotate_cells(axes, values: np.ndarray) -> None:
    if values.shape[1] > 30:          # unreadable when the grid is that dense
        return
    for (row, col), value in np.ndenumerate(values):
        if np.isfinite(value):
            axes.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                      color="black" if value > 0.6 else "white")


def plot_monitoring_chart(series: list[ChartSeries], fault: int, run_id: int, onset: int) -> bytes:
    """Classic monitoring chart: each detector's score over one run, its threshold, the onset."""
    figure = Figure(figsize=(9.0, 1.9 * len(series) + 0.8))
    axes_list = figure.subplots(len(series), 1, sharex=True, squeeze=False)[:, 0]
    for axes, one in zip(axes_list, series):
        _draw_score_panel(axes, one, onset)
    axes_list[-1].set_xlabel("sample in run")
    figure.suptitle(f"Fault {fault}, test run {run_id}: score against threshold")
    figure.tight_layout()
    return render_png(figure)


def _draw_score_panel(axes, one: ChartSeries, onset: int) -> None:
    axes.plot(one.sample, one.score, linewidth=0.8, color="tab:blue", label="score")
    if one.threshold is not None:
        axes.axhline(one.threshold, color="tab:red", linestyle="--", linewidth=1.0, label="threshold")
    axes.axvline(onset, color="black", linestyle=":", linewidth=1.0, label="fault onset")
    if _wants_log_scale(one.score, one.threshold):
        axes.set_yscale("log")
    axes.set_ylabel(one.detector, fontsize=8)
    axes.legend(loc="upper left", fontsize=7, frameon=False)


def _wants_log_scale(score: np.ndarray, threshold: float | None) -> bool:
    values = score if threshold is None else np.append(score, threshold)
    if values.size == 0 or np.min(values) <= 0:
        return False
    return float(np.max(values) / np.min(values)) > _LOG_SCALE_RATIO


def plot_memory(samples: list[dict], budget_bytes: int | None) -> bytes | None:
    """Each worker's RSS over time, all workers together, and the memory budget; None without samples.

    A budget far above what the workers used is named in the title instead of squashing the curves.
    """
    if not samples:
        return None
    start = min(float(s["ts"]) for s in samples)
    times, totals = _total_over_time(samples)
    peak = max([float(s["rss_bytes"]) for s in samples] + list(totals))
    budget_on_chart = bool(budget_bytes) and budget_bytes <= 3 * peak
    unit, unit_name = (_GIB, "GiB") if max(peak, budget_bytes if budget_on_chart else 0) >= _GIB else (_MIB, "MiB")
    figure = Figure(figsize=(9.0, 3.8))
    axes = figure.add_subplot()
    for job, points in sorted(_group_by_job(samples).items()):
        seconds = np.array([float(p["ts"]) - start for p in points])
        rss = np.array([float(p["rss_bytes"]) for p in points]) / unit
        axes.plot(seconds, rss, linewidth=1.0, label=job)
    axes.plot(times - start, totals / unit, color="black", linewidth=1.4, label="all workers")
    title = "Worker memory"
    if budget_on_chart:
        axes.axhline(budget_bytes / unit, color="tab:red", linestyle="--", label="memory budget")
    elif budget_bytes:
        title += f" (budget {budget_bytes / _GIB:.1f} GiB, far above)"
    axes.set_ylim(bottom=0)     # RSS read against zero, so growth is not exaggerated
    axes.set_xlabel("seconds since first sample")
    axes.set_ylabel(f"resident memory ({unit_name})")
    axes.set_title(title)
    axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return render_png(figure)


def _total_over_time(samples: list[dict], stale_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Sum of every worker's latest sample (younger than ``stale_s``) at each sample time."""
    ordered = sorted(samples, key=lambda s: float(s["ts"]))
    latest: dict[str, tuple[float, float]] = {}
    times, totals = [], []
    for sample in ordered:
        now = float(sample["ts"])
        latest[str(sample["job"])] = (now, float(sample["rss_bytes"]))
        times.append(now)
        totals.append(sum(rss for ts, rss in latest.values() if now - ts <= stale_s))
    return np.array(times), np.array(totals)


def _group_by_job(samples: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for sample in sorted(samples, key=lambda s: float(s["ts"])):
        grouped[str(sample["job"])].append(sample)
    return grouped

