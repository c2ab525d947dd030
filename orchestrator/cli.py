"""The ``orchestrate`` command line. It parses and validates; library functions do the work."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from artifacts import Manifest, RunPaths
from artifacts.options import parse_options
from artifacts.registry import PROFILES
from artifacts.sources import SourceError
from orchestrator.executors import EXECUTORS
from orchestrator.memory import parse_size
from orchestrator.progress import PROGRESS_MODES

DEFAULT_RUNS_DIR = Path("runs")
DEFAULT_RUN = "default"


def split_names(ctx, param, value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def parse_memory(ctx, param, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def parse_data_options(ctx, param, values: tuple[str, ...]) -> dict:
    """``--data-option size=full --data-option faults=[1,2]`` -> dict (values read as JSON when they can be)."""
    try:
        return parse_options(values)
    except SourceError as error:
        raise click.BadParameter(str(error)) from None


def run_dir_option(function):
    return click.option("--run", "run_name", default=DEFAULT_RUN, show_default=True,
                        help="Run name: the run directory is RUNS_DIR/RUN.")(
        click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_RUNS_DIR,
                     show_default=True, help="Folder holding run directories.")(function))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="orchestrate", message="orchestrate %(version)s")
def cli() -> None:
    """Train and benchmark fault detectors on process data, one fresh worker process per
    detector, so no detector can take the others (or your machine) down with it.

    \b
    Examples:
      orchestrate run --all                      # every detector, built-in synthetic data
      orchestrate run --only PCA_T2_SPE,PCA_SVM --data braatz:data/tep
      orchestrate status                         # what happened, per job
      orchestrate report                         # rebuild the benchmark from saved results
      orchestrate list                           # detectors and their parameters
      orchestrate doctor                         # memory, CPUs, GPUs, TensorFlow: what to run here
      orchestrate data inspect braatz:data/tep   # what a data source holds
    """


@cli.command("run")
@click.option("--all", "select_all", is_flag=True, help="Run every registered detector.")
@click.option("--only", callback=split_names, metavar="A,B", help="Run only these detectors (comma separated).")
@click.option("--skip", callback=split_names, metavar="C,D", help="Leave these detectors out.")
@click.option("--data", default="synthetic", show_default=True, metavar="SOURCE",
              help="Data source: synthetic, braatz:DIR, rieth:DIR, csv:PATH, parquet:PATH, npz:PATH.")
@click.option("--size", type=click.Choice(["tiny", "small", "full"]), default=None,
              help="Size of the synthetic data (default small; full = 250,000 training rows).")
@click.option("--data-option", "data_options", multiple=True, callback=parse_data_options, metavar="KEY=VALUE",
              help="Option for the data source, repeatable, e.g. faults=[1,2,6].")
@click.option("--profile", type=click.Choice(PROFILES), default="fast", show_default=True,
              help="Parameter profile: fast (first runs, laptops) or production (overnight).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file overriding detector parameters or registering your own detectors.")
@run_dir_option
@click.option("--force", is_flag=True, help="Rerun every selected detector even if it is up to date.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Kill a worker after this many seconds (default: no limit).")
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True,
              help="Retries for a crashed or timed-out worker.")
@click.option("--executor", type=click.Choice(EXECUTORS), default="subprocess",
              show_default=True, help="subprocess: a fresh process per detector; inline: all in this process "
                                      "(debugging, the notebook's way); ray: a Ray cluster.")
@click.option("--ray-address", default=None, help="Ray cluster address ('auto' joins a running cluster).")
@click.option("--max-workers", type=click.IntRange(min=1), default=None,
              help="Workers running at once (default: the CPU count, limited by the memory budget).")
@click.option("--memory-budget", "memory_budget", callback=parse_memory, default=None, metavar="SIZE",
              help="Memory all workers together may use, e.g. 4GB (default: 70% of the memory available at start).")
@click.option("--on-oom", type=click.Choice(["fail", "shrink"]), default="fail", show_default=True,
              help="After an out-of-memory kill: fail, or retry on half the training rows (down to 1/16).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for data generation and detectors.")
@click.option("--progress", type=click.Choice(PROGRESS_MODES), default="auto", show_default=True,
              help="live table, plain timestamped lines, or quiet; auto = live on a terminal.")
@click.option("--k-consecutive", type=click.IntRange(min=1), default=6, show_default=True,
              help="Alarms in a row that count as a detection for the k-consecutive delay.")
@click.option("--no-report", is_flag=True, help="Skip building the benchmark report at the end.")
def run_command(select_all, only, skip, data, size, data_options, profile, config, run_name, runs_dir, force,
                timeout_s, retries, executor, ray_address, max_workers, memory_budget, on_oom, seed, progress,
                k_consecutive, no_report) -> None:
    """Train and score the selected detectors, then build the benchmark.

    A rerun of the same command skips detectors that are already done (same
    parameters, same data, checksums verified) and reruns the rest.

    \b
    Exit codes: 0 all ok; 1 finished but some detector not ok; 2 usage or input
    error; 130 interrupted (rerun to resume).

    \b
    Examples:
      orchestrate run --all
      orchestrate run --all --profile production --size full --memory-budget 4GB
      orchestrate run --only LSTM_VAE,VAE_T2 --timeout 1800 --retries 1
      orchestrate run --all --skip KPCA_SVM --data braatz:~/data/tep
      orchestrate run --all --data rieth:~/data/rieth --data-option runs=50
    """
    from orchestrator.runner import InputError, RunOptions, execute_run

    if ray_address is not None and executor != "ray":
        raise click.UsageError("--ray-address needs --executor ray")
    if size is not None:
        if not data.startswith("synthetic"):
            raise click.UsageError("--size applies to --data synthetic only; use --data-option for other sources")
        data_options = {**data_options, "size": size}
    options = RunOptions(
        run_dir=runs_dir / run_name, data=data, data_options=data_options, profile=profile, config=config,
        select_all=select_all, only=only, skip=skip, force=force, timeout_s=timeout_s, retries=retries,
        executor=executor, executor_options={"address": ray_address} if executor == "ray" else {},
        max_workers=max_workers, memory_budget_bytes=memory_budget, on_oom=on_oom, seed=seed,
        progress=progress, report=not no_report, k_consecutive=k_consecutive,
    )
    try:
        report = execute_run(options)
    except InputError as error:
        raise click.UsageError(str(error)) from None
    print_run_summary(report)
    sys.exit(report.exit_code)


def print_run_summary(report) -> None:
    from orchestrator.status import render_status

    render_status(report.run, report.manifest)
    if report.interrupted:
        click.echo("Interrupted: every worker was stopped. Run the same command again to resume.", err=True)
        return
    if report.benchmark is not None:
        click.echo(f"Benchmark: {report.run.benchmark_file('report.md')}")
    elif report.report_error:
        click.echo(f"No benchmark: {report.report_error}", err=True)
    failed = [name for name in report.selected if not report.manifest.jobs[name].job_state.succeeded]
    if failed:
        click.echo(f"Not ok: {', '.join(failed)} (see the reasons above; 'orchestrate run' again retries them)",
                   err=True)


def open_run(runs_dir: Path, run_name: str, run_path: Path | None) -> tuple[RunPaths, Manifest]:
    run = RunPaths.at(run_path if run_path is not None else runs_dir / run_name)
    if not run.manifest.exists():
        raise click.UsageError(f"{run.root} is not a run directory (no manifest.json); run 'orchestrate run' first")
    try:
        return run, Manifest.load(run.manifest)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


@cli.command("status")
@click.argument("run_path", required=False, type=click.Path(file_okay=False, path_type=Path))
@run_dir_option
def status_command(run_path, run_name, runs_dir) -> None:
    """Show every job of a run: state, attempts, duration, peak RSS, reason.

    \b
    Examples:
      orchestrate status
      orchestrate status runs/overnight
    """
    from orchestrator.status import render_status

    run, manifest = open_run(runs_dir, run_name, run_path)
    render_status(run, manifest)


@cli.command("report")
@click.argument("run_path", required=False, type=click.Path(file_okay=False, path_type=Path))
@run_dir_option
@click.option("--k-consecutive", type=click.IntRange(min=1), default=6, show_default=True,
              help="Alarms in a row that count as a detection for the k-consecutive delay.")
def report_command(run_path, run_name, runs_dir, k_consecutive) -> None:
    """Rebuild the benchmark (metrics, report.md, report.html, figures) from saved results,
    without retraining anything.

    \b
    Examples:
      orchestrate report
      orchestrate report runs/overnight --k-consecutive 3
    """
    from orchestrator.report import build_benchmark

    run, manifest = open_run(runs_dir, run_name, run_path)
    try:
        build_benchmark(run, k_consecutive=k_consecutive)
    except (ValueError, OSError) as error:
        raise click.UsageError(f"cannot build the benchmark of {run.root}: {error}") from None
    click.echo(f"Benchmark: {run.benchmark_file('report.md')}")


@cli.command("list")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file with parameter overrides and your own detectors.")
def list_command(config) -> None:
    """List every registered detector with a one-line description and its parameters per profile.

    \b
    Examples:
      orchestrate list
      orchestrate list --config orchestrate.toml
    """
    from orchestrator.config import ConfigError, load_config

    try:
        loaded = load_config(config)
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    for name, info in loaded.registry.items():
        click.echo(f"{name}  ({info.framework}{'' if info.builtin else ', from ' + str(config)})")
        click.echo(f"    {info.summary}")
        for profile in PROFILES:
            params = loaded.params(name, profile)
            click.echo(f"    {profile:<11} " + (", ".join(f"{k}={v}" for k, v in params.items()) or "(defaults)"))


def register_subcommands() -> None:
    from orchestrator.cli_data import data
    from orchestrator.doctor import doctor_command

    cli.add_command(data)
    cli.add_command(doctor_command)


register_subcommands()


def main() -> None:
    cli(prog_name="orchestrate")
