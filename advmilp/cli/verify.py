"""``advmilp verify``: decide a VNN-LIB property on a network (holds / violated / unknown), or every
instance of a VNN-COMP benchmark's ``instances.csv`` (``--instances``: a resumable batch)."""

from __future__ import annotations

from pathlib import Path

import click

from advmilp.cli.common import MODEL, MODELS_DIR, OutputFile, Positive, Workers, _need_network, clean_errors, main
from advmilp.errors import AdvmilpError

SINGLE_TIMEOUT = 120.0


def write_counterexample(path: Path, x, y) -> None:
    """VNN-COMP's result format: ``sat`` then the assignment ``((X_0 v) ... (Y_0 v) ...)``."""
    from advmilp.experiments.verify_batch import format_counterexample

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(format_counterexample(x, y))
    tmp.replace(path)


@main.command()
@click.option("--arch", default=None, help="Network name or model file.")
@MODEL
@click.option("--vnnlib", "vnnlib_path", default=None, type=click.Path(dir_okay=False),
              help="The VNN-LIB specification (an input box and the output constraints of a violation).")
@click.option("--instances", "instances_csv", default=None, type=click.Path(dir_okay=False),
              help="A VNN-COMP instances.csv (onnx,vnnlib,timeout per line, paths relative to its folder): "
                   "decide every instance, one row each in --results-dir.")
@click.option("--timeout", default=None, type=Positive(),
              help=f"Seconds for the whole decision (default {SINGLE_TIMEOUT:g}); with --instances it replaces "
                   "every timeout of the CSV.")
@click.option("--timeout-scale", default=None, type=Positive(),
              help="With --instances: multiply the CSV's timeouts by this factor.")
@click.option("--counterexample", type=OutputFile(), default=None,
              help="Write a violated property's counterexample here (VNN-COMP format).")
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="With --instances: the results folder (default results/<benchmark folder name>, "
                   "under $ADVMILP_RESULTS if set).")
@click.option("--force", is_flag=True, help="With --instances: redo the instances already recorded.")
@click.option("--workers", default=1, type=Workers(), show_default=True,
              help="With --instances: instances decided at once (auto: one per core).")
@click.option("--executor", type=click.Choice(["serial", "process", "dask"]), default=None,
              help="With --instances: where instances run (default: serial for 1 worker, else process).")
@click.option("--scheduler", default=None, help="With --executor dask: a scheduler address (default: a local cluster).")
@MODELS_DIR
@clean_errors
def verify(arch, model, vnnlib_path, instances_csv, timeout, timeout_scale, counterexample, results_dir, force,
           workers, executor, scheduler, models_dir):
    """Decide a VNN-LIB property: 'holds' (no input in the box violates it: proven by bounds, refined
    bounds, the β-CROWN branch-and-bound or the exact LP phase search), 'violated' (a counterexample,
    checked by a float64 and a float32 forward pass) or 'unknown' (not settled within --timeout).  A wrong answer is never given for speed.

    With --instances, decide every instance of a VNN-COMP benchmark and write one row per instance
    (resumable: a rerun skips the recorded ones); 'advmilp report <results dir>' scores them."""
    if instances_csv:
        given = [o for o, v in (("--vnnlib", vnnlib_path), ("--arch", arch), ("--model", model),
                                ("--counterexample", counterexample)) if v]
        if given:
            raise AdvmilpError(f"{given[0]} does not go with --instances (the CSV names the networks and "
                               "specifications; counterexamples are written beside the results)")
        return _batch(instances_csv, timeout, timeout_scale, results_dir, force, workers, executor, scheduler)
    given = [o for o, v in (("--timeout-scale", timeout_scale), ("--results-dir", results_dir), ("--force", force),
                            ("--executor", executor), ("--scheduler", scheduler), ("--workers", workers != 1)) if v]
    if given:
        raise AdvmilpError(f"{given[0]} needs --instances")
    if not vnnlib_path:
        raise AdvmilpError("give --vnnlib SPEC (with --arch NAME or --model FILE), or --instances instances.csv")
    _single(arch, model, vnnlib_path, timeout or SINGLE_TIMEOUT, counterexample, models_dir)


def _single(arch, model, vnnlib_path, timeout, counterexample, models_dir):
    from advmilp.methods.verify import VIOLATED, verify_property
    from advmilp.nn.interchange import load_any
    from advmilp.spec.vnnlib import read_vnnlib

    net = load_any(_need_network(arch, model), models_dir)
    prop = read_vnnlib(vnnlib_path)
    click.echo(f"network     {net.name} ({'-'.join(map(str, net.sizes))}, sha256 {net.short_hash()})")
    click.echo(f"property    {vnnlib_path} ({len(prop.disjuncts)} disjunct(s) over a box of {len(prop.x_lb)} inputs)")
    r = verify_property(net, prop, timeout)
    click.echo(f"result      {r.result}")
    click.echo(f"time        {r.time_s:.2f} s (limit {timeout:g} s)")
    if r.result == VIOLATED:
        click.echo(f"margin      {r.margin:.6g} (≤ 0: the violation's constraints hold at the counterexample)")
        click.echo(f"checked     {r.checked}")
        click.echo(f"how         {r.how}")
        if counterexample:
            write_counterexample(Path(counterexample), r.x, r.y)
            click.echo(f"written     {counterexample}")
    elif r.result == "holds":
        click.echo(f"margin      {r.margin:.6g} (a proven lower bound of every violation's slack, > 0)")
        click.echo(f"how         {r.how}")
    else:
        if r.margin == r.margin:    # (nan when no disjunct was bounded)
            click.echo(f"margin      {r.margin:.6g} (the least proven lower bound of an open disjunct's slack)")
        click.echo(f"how         {r.how}")


def _batch(instances_csv, timeout, timeout_scale, results_dir, force, workers, executor, scheduler):
    import os

    from advmilp.bounds.compute import default_results_dir
    from advmilp.experiments.verify_batch import (BatchOptions, TimeoutPolicy, default_name, summary_text,
                                                  read_instances, run_verify_batch)

    n_workers = (os.cpu_count() or 1) if workers == "auto" else int(workers)
    executor = executor or ("serial" if n_workers == 1 else "process")
    options = BatchOptions(TimeoutPolicy(timeout, timeout_scale), executor, n_workers, scheduler, force)
    read_instances(instances_csv)   # a malformed CSV is refused before the results folder is made
    out_dir = Path(results_dir) if results_dir else default_results_dir() / default_name(instances_csv)
    summary = run_verify_batch(instances_csv, out_dir, options, log=lambda m: click.echo(m, err=True))
    click.echo(summary_text(summary))
