"""The ``advmilp`` commands that run things: data, train, networks, bounds, attack, feature."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from advmilp.cli.common import (CACHE_DIR, DATA_DIR, MODEL, MODELS_DIR, _load_nets, _need_network, clean_errors,
                                main)
from advmilp.errors import AdvmilpError
from advmilp.methods.registry import METHODS


# ---- data ---------------------------------------------------------------------------------
@main.group()
def data():
    """MNIST: check the local copy or download it."""


@data.command("check")
@DATA_DIR
@clean_errors
def data_check(data_dir):
    """Verify the four MNIST files (checksums, counts, first labels)."""
    from advmilp.data.mnist import check, resolve_data_dir

    click.echo(f"MNIST directory: {resolve_data_dir(data_dir)}")
    for entry in check(data_dir):
        line = f"  OK  {Path(entry['file']).name:<28} {entry['count']:>6} items  md5 {entry['md5']}"
        if "first_labels" in entry:
            line += "  first labels " + " ".join(map(str, entry["first_labels"]))
        click.echo(line)


@data.command("download")
@DATA_DIR
@click.option("--force", is_flag=True, help="Download even if a verified copy is present.")
@clean_errors
def data_download(data_dir, force):
    """Download MNIST from the canonical mirrors (checksums verified)."""
    from advmilp.data.mnist import download

    root = download(data_dir, force=force, log=click.echo)
    click.echo(f"MNIST ready in {root}")


# ---- networks -----------------------------------------------------------------------------
@main.command()
@click.option("--arch", required=True, help="dnn1..dnn5, notebook, or all.")
@click.option("--epochs", type=int, default=None, help="Override the architecture's epochs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: the models directory).")
@click.option("--threads", type=int, default=None, help="TensorFlow threads (default: all cores).")
@DATA_DIR
@clean_errors
def train(arch, epochs, seed, out, threads, data_dir):
    """Train thesis networks with Keras and save weights + metadata."""
    from advmilp.nn.architectures import ARCHITECTURES
    from advmilp.data.mnist import load_split
    from advmilp.nn.network import default_models_dir
    from advmilp.nn.training import train_and_save

    names = list(ARCHITECTURES) if arch == "all" else [arch.lower()]
    for name in names:
        if name not in ARCHITECTURES:
            raise AdvmilpError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHITECTURES)}, or all)")
    out_dir = Path(out) if out else default_models_dir()
    train_split, test_split = load_split("train", data_dir), load_split("test", data_dir)
    for name in names:
        path = train_and_save(name, out_dir, seed=seed, epochs=epochs, threads=threads,
                              train_split=train_split, test_split=test_split, log=click.echo)
        click.echo(f"saved {path} and {path.with_suffix('.json').name}")


@main.command()
@MODELS_DIR
@DATA_DIR
@click.option("--evaluate", is_flag=True, help="Recompute test accuracy on MNIST.")
@clean_errors
def networks(models_dir, data_dir, evaluate):
    """List the trained networks with their sizes and accuracies."""
    from advmilp.nn.architectures import ARCHITECTURES
    from advmilp.nn.network import default_models_dir, load_network

    test = None
    if evaluate:
        from advmilp.data.mnist import load_split

        test = load_split("test", data_dir)
    root = Path(models_dir) if models_dir else default_models_dir()
    click.echo(f"{'network':<9} {'structure':<26} {'params':>7} {'test acc':>9} {'thesis':>7}  sha256")
    for name, arch in ARCHITECTURES.items():
        if not (root / f"{name}.npz").is_file():
            click.echo(f"{name:<9} {'-'.join(map(str, arch.sizes)):<26} {'(not trained)':>17}")
            continue
        net = load_network(name, root)
        acc = net.accuracy(test.images, test.labels) if test is not None else net.metadata.get("test_accuracy", float("nan"))
        click.echo(f"{name:<9} {'-'.join(map(str, net.sizes)):<26} {net.n_parameters:>7,} {acc:>9.4f} "
                   f"{arch.thesis_accuracy:>7.2f}  {net.short_hash()}")



# ---- bounds ---------------------------------------------------------------------------------
def _pick_method(method, time_limit):
    if method is None:
        method = "weak" if time_limit else "improved"
    if method == "weak" and not time_limit:
        time_limit = 1.0
    return method, time_limit


@main.command()
@click.option("--arch", default=None, help="dnn1..dnn5, notebook, a model file, a comma list, or all.")
@MODEL
@click.option("--method", type=click.Choice(["basic", "improved", "weak"]), default=None,
              help="Default: improved, or weak when --time-limit is given.")
@click.option("--time-limit", type=float, default=None, help="Per-solve time limit (weak bounds).")
@click.option("--cap", type=float, default=None,
              help="improved: cap each solve at this many seconds (its dual bound is used); default exact.")
@click.option("--workers", type=int, default=1, show_default=True, help="Parallel bound solves.")
@click.option("--recompute", is_flag=True, help="Ignore the cache.")
@CACHE_DIR
@MODELS_DIR
@clean_errors
def bounds(arch, model, method, time_limit, cap, workers, recompute, cache_dir, models_dir):
    """Compute (or load cached) neuron bounds and print stable units per layer."""
    from advmilp.bounds.compute import compute_bounds, get_bounds

    arch = _need_network(arch, model)
    method, time_limit = _pick_method(method, time_limit)
    for net in _load_nets(arch, models_dir):
        click.echo(f"{net.name} ({'-'.join(map(str, net.sizes))}, {net.short_hash()}): {method} bounds"
                   + (f", {time_limit:g} s per solve" if method == "weak" else ""))
        b, hit = get_bounds(net, method, time_limit, cache_dir, recompute,
                            progress=lambda m: click.echo("  " + m, err=True),
                            warn=lambda m: click.echo(f"warning: {m}", err=True), cap=cap, workers=workers)
        basic = compute_bounds(net, "basic")
        click.echo(f"  {'layer':>5} {'units':>5} {'inactive':>8} {'active':>6} {'unstable':>8} "
                   f"{'mean width':>11} {'basic width':>11}")
        for k, ((ina, act, uns), lo, up, blo, bup) in enumerate(
                zip(b.stable_counts(), b.lower, b.upper, basic.lower, basic.upper), start=1):
            kind = "out" if k == len(b.lower) else str(k)
            click.echo(f"  {kind:>5} {len(lo):>5} {ina:>8} {act:>6} {uns:>8} "
                       f"{float((up - lo).mean()):>11.3f} {float((bup - blo).mean()):>11.3f}")
        total = sum(c[0] + c[1] for c in b.stable_counts()[:-1])
        click.echo(f"  stable hidden units: {total} of {sum(net.sizes[1:-1])}; "
                   f"computation time {b.time_s:.1f} s" + (" (cached)" if hit else "")
                   + (f"; parameters {b.params}" if b.params else ""))


# ---- single instances -------------------------------------------------------------------------
def _grouped(fn, into: str, build, names: tuple[str, ...]):
    """``fn`` receiving the options ``names`` as one value ``into`` = build(**those options); errors in
    ``build`` (an invalid spec) are clean one-line errors."""

    @functools.wraps(fn)
    def wrapper(**kwargs):
        kwargs[into] = build(**{n: kwargs.pop(n) for n in names})
        return fn(**kwargs)

    return clean_errors(wrapper)


def _with_options(fn, options):
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _spec_options(fn):
    """The problem options, passed to the command as ``spec`` (a ProblemSpec)."""
    def build(problem, target, ratio, epsilon, linf_cap, l1_budget, output_relu):
        from advmilp.spec.problems import ProblemSpec

        return ProblemSpec(problem, ratio=ratio, target=target, epsilon=epsilon, linf_cap=linf_cap,
                           l1_budget=l1_budget, output_relu=output_relu)

    fn = _grouped(fn, "spec", build, ("problem", "target", "ratio", "epsilon", "linf_cap", "l1_budget", "output_relu"))
    return _with_options(fn, [
        click.option("--problem", type=click.Choice(["targeted", "untargeted", "max-target", "inference"]),
                     default="targeted", show_default=True),
        click.option("--target", type=int, default=None, help="Target class (default (label+5) mod 10)."),
        click.option("--ratio", type=float, default=1.2, show_default=True),
        click.option("--epsilon", type=float, default=0.01, show_default=True,
                     help="The winning output must be at least this."),
        click.option("--linf-cap", type=float, default=None, help="Per-pixel cap |δ_j| ≤ cap (thesis: 0.2)."),
        click.option("--l1-budget", type=float, default=6.0, show_default=True, help="max-target: Σ|δ| budget."),
        click.option("--output-relu/--linear-output", default=True, show_default=True,
                     help="ReLU split on the output layer (thesis) or criteria on the logits (exact, fewer binaries)."),
    ])


def _solver_options(fn):
    """The solver options, passed to the command as ``settings`` (a SolverSettings), and the bounds."""
    def build(solver, time_limit, threads, gap_rel):
        from advmilp.spec.problems import SolverSettings

        return SolverSettings(solver, time_limit, threads, gap_rel)

    fn = _grouped(fn, "settings", build, ("solver", "time_limit", "threads", "gap_rel"))
    return _with_options(fn, [
        click.option("--solver", type=click.Choice(["highs", "cbc", "scip", "gurobi"]), default="highs",
                     show_default=True),
        click.option("--time-limit", type=float, default=300.0, show_default=True),
        click.option("--threads", type=int, default=1, show_default=True),
        click.option("--gap-rel", type=float, default=1e-4, show_default=True),
        click.option("--bounds", "bounds_method", type=click.Choice(["basic", "improved", "weak"]),
                     default="improved", show_default=True),
        click.option("--bounds-time-limit", type=float, default=1.0, show_default=True,
                     help="Per-solve limit for weak bounds."),
    ])


def _batch_options(fn):
    """The batch options, passed to the command as ``batch`` (a dict; used with --config only)."""
    names = ("workers", "n_images", "executor", "scheduler", "force", "results_dir")
    fn = _grouped(fn, "batch", lambda **kw: kw, names)
    return _with_options(fn, [
        click.option("--workers", default=None, help="Batch: parallel solves (default from config; auto = one per core)."),
        click.option("--images", "n_images", type=int, default=None, help="Batch: number of images (overrides config)."),
        click.option("--executor", type=click.Choice(["serial", "process", "dask"]), default=None,
                     help="Batch executor."),
        click.option("--scheduler", default=None, help="Batch: Dask scheduler address tcp://host:port (implies dask)."),
        click.option("--force", is_flag=True, help="Batch: rerun instances already recorded."),
        click.option("--results-dir", type=click.Path(file_okay=False), default=None,
                     help="Batch: where results/<name>/ goes (default: results/)."),
    ])


def _print_result(net, bounds_obj, result, label=None, image=None):
    row = result.row
    click.echo(f"network     {net.name} ({'-'.join(map(str, net.sizes))}, sha256 {net.short_hash()})")
    click.echo(f"bounds      {bounds_obj.method}: {bounds_obj.n_unstable()} unstable hidden units, "
               f"{row['binaries']} binaries in the model")
    click.echo(f"problem     {row['problem']}")
    if image is not None:
        click.echo(f"image       test #{image}, label {label}" + (f" -> target {row['target']}" if row['target'] is not None else ""))
    if not METHODS[row["method"]].exact:  # a heuristic: no solver, no bound
        click.echo(f"status      {row['status']}   method {row['method']} (heuristic: no optimality proof)")
        click.echo(f"objective   {row['objective']:.6g}   time {row['time_s']:.2f} s")
    else:
        click.echo(f"status      {row['status']}   method {row['method']}, solver {row['solver_version']}, "
                   f"{row['threads']} thread(s)")
        click.echo(f"objective   {row['objective']:.6g}   bound {row['bound']:.6g}   gap {row['gap_pct']:.2f} %")
        prep = row.get("prep_time_s")
        nodes = "?" if row["nodes"] is None else f"{row['nodes']}"
        click.echo(f"effort      {nodes} nodes, {row['time_s']:.2f} s in all, {row['build_time_s']:.2f} s build"
                   + (f", {prep:.2f} s heuristic + ball bounds (heuristic L1 {row['heuristic_l1']:.6g})" if prep else ""))
    if result.witness is not None:
        v = "yes (float64 and float32)" if row["verified"] else f"NO ({row['verify_note']})"
        click.echo(f"verified    {v}")
        if image is not None:
            click.echo(f"witness     predicted {row['predicted']}, ratio {row['ratio']:.4f}, "
                       f"L1 {row['l1']:.6g}, Linf {row['linf']:.4g} (from the pixels)")
    else:
        click.echo("witness     none")


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Run a batch from a YAML config instead of one instance.")
@click.option("--arch", default=None, help="Network name or model file (single-instance mode).")
@MODEL
@click.option("--method", type=click.Choice(list(METHODS)), default="tight", show_default=True,
              help="; ".join(f"{m.name}: {m.summary}" for m in METHODS.values()) + ".")
@click.option("--image", type=int, default=0, show_default=True, help="Test-set image index.")
@_spec_options
@_solver_options
@click.option("--save-png", type=click.Path(dir_okay=False), default=None,
              help="Write original | perturbation | adversarial side by side.")
@_batch_options
@DATA_DIR
@MODELS_DIR
@CACHE_DIR
@clean_errors
def attack(config_path, arch, model, method, image, spec, settings, bounds_method, bounds_time_limit, save_png,
           batch, data_dir, models_dir, cache_dir):
    """Find an optimal adversarial example for one image (or run a config's batch)."""
    if config_path:
        return _run_config(click.get_current_context(), config_path, batch, data_dir, models_dir, cache_dir)
    if not (arch or model):
        raise AdvmilpError("give --arch or --model (one instance) or --config (a batch)")
    from advmilp.bounds.compute import get_bounds
    from advmilp.data.mnist import load_split
    from advmilp.methods.registry import load_inputs, run_method
    from advmilp.nn.interchange import load_any

    net = load_any(model or arch, models_dir)
    test = load_split("test", data_dir)
    if not 0 <= image < len(test):
        raise AdvmilpError(f"image index {image} out of range (0..{len(test) - 1})")
    x_bar, label = test.images[image], int(test.labels[image])
    if int(net.predict(x_bar)) != label:
        click.echo(f"warning: {net.name} misclassifies test image {image} (label {label})", err=True)
    b, _ = get_bounds(net, bounds_method, bounds_time_limit, cache_dir,
                      warn=lambda m: click.echo(f"warning: {m}", err=True))
    result = run_method(method, net, b, spec, settings, x_bar, label, image, load_inputs(method, data_dir))
    _print_result(net, b, result, label, image)
    if save_png and result.witness is not None:
        from advmilp.reporting.figures import save_adversarial

        row = result.row
        save_adversarial(save_png, x_bar, result.witness, label, row["target"], row["predicted"], row["l1"],
                         title_extra=f"{net.name}, {row['status']}")
        click.echo(f"figure      {save_png}")


def _given(ctx, name):
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


def _run_config(ctx, config_path, batch, data_dir, models_dir, cache_dir):
    from advmilp.experiments.config import apply_overrides, load_config
    from advmilp.experiments.runner import run_batch
    from advmilp.reporting.tables import load_rows, write_report

    p = ctx.params
    config = load_config(config_path)
    config = apply_overrides(
        config,
        time_limit=p["time_limit"] if _given(ctx, "time_limit") else None,
        threads=p["threads"] if _given(ctx, "threads") else None,
        workers=batch["workers"], images=batch["n_images"], executor=batch["executor"],
        scheduler=batch["scheduler"], networks=[p["arch"]] if p["arch"] else None)
    try:
        summary = run_batch(config, data_dir, models_dir, cache_dir, batch["results_dir"], batch["force"],
                            log=lambda m: click.echo(m, err=True))
    except KeyboardInterrupt:
        click.echo("\ninterrupted: finished instances are saved; rerun the same command to resume", err=True)
        sys.exit(130)
    click.echo(f"{summary.ran} instances run ({summary.skipped} already recorded), {summary.solved} solved "
               f"(or found, for heuristics) and verified, {summary.errors} errors, {summary.wall_s:.1f} s wall; results in {summary.out_dir}")
    click.echo(write_report(load_rows([summary.out_dir]), summary.out_dir / "report"))


@main.command()
@click.option("--arch", default=None, help="Network name or model file.")
@MODEL
@click.option("--layer", type=int, default=None, help="Hidden layer (1-based); omit for an output unit.")
@click.option("--unit", type=int, default=0, show_default=True)
@click.option("--objective", type=click.Choice(["simple", "diff"]), default="simple", show_default=True,
              help="For an output unit: maximise it, or it minus the sum of the other outputs.")
@click.option("--output-relu/--linear-output", default=True, show_default=True)
@_solver_options
@click.option("--save-png", type=click.Path(dir_okay=False), default=None)
@MODELS_DIR
@CACHE_DIR
@clean_errors
def feature(arch, model, layer, unit, objective, output_relu, settings, bounds_method, bounds_time_limit, save_png,
            models_dir, cache_dir):
    """Feature visualisation: the input maximising a hidden or output unit (thesis §5.1.1)."""
    from advmilp.methods.milp import run_instance
    from advmilp.bounds.compute import get_bounds
    from advmilp.nn.interchange import load_any
    from advmilp.spec.problems import ProblemSpec

    net = load_any(_need_network(arch, model), models_dir)
    spec = ProblemSpec("feature", layer=layer, unit=unit, objective="hidden" if layer else objective,
                       output_relu=output_relu)
    b, _ = get_bounds(net, bounds_method, bounds_time_limit, cache_dir,
                      warn=lambda m: click.echo(f"warning: {m}", err=True))
    result = run_instance(net, b, spec, settings)
    _print_result(net, b, result)
    if save_png and result.witness is not None:
        from advmilp.reporting.figures import save_feature

        save_feature(save_png, result.witness, f"{net.name}: {spec.describe()} = {result.row['objective']:.4g}")
        click.echo(f"figure      {save_png}")
