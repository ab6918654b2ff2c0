"""The ``advmilp`` commands that run things: data, train, networks, bounds, attack, feature."""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time
from pathlib import Path

import click

from advmilp.cli.common import (CACHE_DIR, DATA_DIR, INTERRUPTED, MODEL, MODELS_DIR, OutputFile, Positive, Workers,
                                _load_nets, _need_network, architecture_names, clean_errors, main, refuse_shipped)
from advmilp.errors import AdvmilpError
from advmilp.methods.registry import METHODS
from advmilp.spec.rows import ERROR


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
@click.option("--arch", required=True, help="dnn1..dnn5, notebook, or all; a robustness-study network "
              "mlp-w<width>-d<depth>-p<dropout %>, or study (the whole grid); or a tree ensemble "
              "(scikit-learn): tree-d<depth>, forest-d<depth>-n<trees>, gbt-d<depth>-n<stages>, a comma list.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the architecture's epochs.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: the models directory, $ADVMILP_MODELS or the shipped models/).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="TensorFlow threads (default: all cores).")
@click.option("--force", is_flag=True, help="Replace the shipped weights (files tracked by git in this checkout).")
@DATA_DIR
@clean_errors
def train(arch, epochs, seed, out, threads, force, data_dir):
    """Train thesis networks with Keras and save weights + metadata.

    The shipped weights (models/*.npz and .json, tracked by git) are never overwritten without
    --force: give --out DIR (then --models-dir DIR to use them), or set $ADVMILP_MODELS."""
    if arch.lower().split("-")[0] in ("tree", "forest", "gbt"):   # scikit-learn tree ensembles (advmilp.cli.trees)
        from advmilp.cli.trees import train_trees

        return train_trees(arch, seed, out, threads, force, data_dir, epochs)
    from advmilp.nn.architectures import find_architecture, unknown_architecture
    from advmilp.data.mnist import load_split
    from advmilp.nn.network import default_models_dir
    from advmilp.nn.training import train_and_save

    names = architecture_names(arch)
    for name in names:
        if find_architecture(name) is None:
            raise AdvmilpError(unknown_architecture(name, ", all, or study"))
    out_dir = Path(out) if out else default_models_dir()
    refuse_shipped([out_dir / f"{find_architecture(n).weights_name}{ext}" for n in names for ext in (".npz", ".json")],
                   force)
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
@click.option("--time-limit", type=Positive(), default=None, help="Per-solve time limit in seconds (weak bounds).")
@click.option("--cap", type=Positive(), default=None,
              help="improved: cap each solve at this many seconds (its dual bound is used); default exact.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Parallel bound solves.")
@click.option("--recompute", is_flag=True, help="Ignore the cache.")
@CACHE_DIR
@MODELS_DIR
@clean_errors
def bounds(arch, model, method, time_limit, cap, workers, recompute, cache_dir, models_dir):
    """Compute (or load cached) neuron bounds and print stable units per layer.

    Computed bounds are cached in a user location ($ADVMILP_RESULTS/bounds, else ~/.cache/advmilp/bounds;
    see --cache-dir), never in the repository's shipped results/bounds/ unless --cache-dir names it."""
    from advmilp.bounds.compute import compute_bounds, get_bounds

    arch = _need_network(arch, model)
    if cap is not None and (method in ("basic", "weak") or time_limit is not None):
        raise AdvmilpError("--cap limits the solves of improved bounds; weak bounds take --time-limit")
    if time_limit is not None and method in ("basic", "improved"):
        raise AdvmilpError(f"--time-limit is the per-solve limit of weak bounds, not {method} "
                           "(improved bounds take --cap)")
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
        click.echo(f"  stable hidden units: {total} of {net.hidden_units}; "
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


SPEC_OPTIONS = ("problem", "target", "ratio", "epsilon", "linf_cap", "l1_budget", "output_relu", "norm", "l1_cap",
                "l0_cap")


def _spec_options(fn):
    """The problem options, passed to the command as ``spec`` (a ProblemSpec)."""
    def build(problem, target, ratio, epsilon, linf_cap, l1_budget, output_relu, norm, l1_cap, l0_cap):
        from advmilp.spec.problems import ProblemSpec

        return ProblemSpec(problem, ratio=ratio, target=target, epsilon=epsilon, linf_cap=linf_cap,
                           l1_budget=l1_budget, output_relu=output_relu, norm=norm, l1_cap=l1_cap, l0_cap=l0_cap)

    fn = _grouped(fn, "spec", build, SPEC_OPTIONS)
    return _with_options(fn, [
        click.option("--problem", type=click.Choice(["targeted", "untargeted", "max-target", "inference"]),
                     default="targeted", show_default=True,
                     help="targeted: output --target ≥ --ratio × every other output; untargeted: the label's "
                          "output ≤ 0.95 × the largest; max-target: maximise output --target within --l1-budget, "
                          "under the untargeted criterion (the label's output ≤ 0.95 × the largest); inference: "
                          "the image itself (a check of the model).  tight solves targeted, untargeted and "
                          "max-target; inference is milp's only."),
        click.option("--norm", type=click.Choice(["l1", "linf", "l0"]), default="l1", show_default=True,
                     help="targeted/untargeted: the distance minimised — Σ|δ| (thesis), max|δ| (MIPVerify's "
                          "default) or the number of changed pixels (a binary per pixel)."),
        click.option("--l1-cap", type=float, default=None, help="Σ|δ| ≤ cap (with another --norm)."),
        click.option("--l0-cap", type=int, default=None, help="At most this many pixels change."),
        click.option("--target", type=int, default=None,
                     help="Target class: targeted (default (label+5) mod 10) and max-target (required); "
                          "never the image's label."),
        click.option("--ratio", type=float, default=1.2, show_default=True),
        click.option("--epsilon", type=float, default=0.01, show_default=True,
                     help="The winning output must be at least this."),
        click.option("--linf-cap", type=float, default=None, help="Per-pixel cap |δ_j| ≤ cap (thesis: 0.2)."),
        click.option("--l1-budget", type=float, default=6.0, show_default=True, help="max-target: Σ|δ| budget."),
        click.option("--output-relu/--linear-output", default=True, show_default=True,
                     help="ReLU split on the output layer (thesis) or criteria on the logits (exact, fewer binaries); "
                          "max-target maximises the output after the ReLU with it, the logit without."),
    ])


SOLVER_OPTIONS = ("solver", "time_limit", "threads", "gap_rel")


def _solver_options(fn):
    """The solver options, passed to the command as ``settings`` (a SolverSettings), and the bounds."""
    def build(solver, time_limit, threads, gap_rel):
        from advmilp.spec.problems import SolverSettings

        return SolverSettings(solver, time_limit, threads, gap_rel)

    fn = _grouped(fn, "settings", build, SOLVER_OPTIONS)
    return _with_options(fn, [
        click.option("--solver", type=click.Choice(["highs", "cbc", "scip", "gurobi"]), default="highs",
                     show_default=True, help="The MILP solver (milp only: the other methods run on HiGHS)."),
        click.option("--time-limit", type=float, default=300.0, show_default=True, help="Seconds (> 0)."),
        click.option("--threads", type=int, default=1, show_default=True),
        click.option("--gap-rel", type=float, default=1e-4, show_default=True, help="In [0, 1)."),
        click.option("--bounds", "bounds_method", type=click.Choice(["basic", "improved", "weak"]), default=None,
                     help="Neuron bounds.  Default: improved where cached (the shipped networks), else basic "
                          "(interval arithmetic: the attack starts at once; a note says so).  improved or weak "
                          "bounds not cached are computed first (two MILPs per hidden unit, progress on stderr) "
                          "and cached (see --cache-dir)."),
        click.option("--bounds-time-limit", type=Positive(), default=1.0, show_default=True,
                     help="Per-solve limit for weak bounds."),
    ])


BATCH_OPTIONS = ("workers", "n_images", "executor", "scheduler", "force", "results_dir")


def _batch_options(fn):
    """The batch options, passed to the command as ``batch`` (a dict; used with --config only)."""
    fn = _grouped(fn, "batch", lambda **kw: kw, BATCH_OPTIONS)
    return _with_options(fn, [
        click.option("--workers", type=Workers(), default=None,
                     help="Batch: parallel solves (default from config; auto = one per core)."),
        click.option("--images", "n_images", type=click.IntRange(min=1), default=None,
                     help="Batch: number of images (overrides config)."),
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
        if row["status"] == ERROR and row.get("message"):      # what the solver said (e.g. a licence limit)
            click.echo(f"message     {row['message']}")
        click.echo(f"objective   {row['objective']:.6g}   bound {row['bound']:.6g}   gap {row['gap_pct']:.2f} %")
        prep = row.get("prep_time_s")
        nodes = "?" if row["nodes"] is None else f"{row['nodes']}"
        heuristic = row.get("heuristic_l1")
        prep_text = ("" if not prep else
                     f", {prep:.2f} s heuristic + ball bounds (heuristic L1 {heuristic:.6g})"
                     if isinstance(heuristic, float) and math.isfinite(heuristic) else f", {prep:.2f} s ball bounds")
        click.echo(f"effort      {nodes} nodes, {row['time_s']:.2f} s in all, {row['build_time_s']:.2f} s build"
                   + prep_text)
    if result.witness is not None:
        v = "yes (float64 and float32)" if row["verified"] else f"NO ({row['verify_note']})"
        click.echo(f"verified    {v}")
        if image is not None:
            click.echo(f"witness     predicted {row['predicted']}, ratio {row['ratio']:.4f}, "
                       f"L1 {row['l1']:.6g}, Linf {row['linf']:.4g} (from the pixels)")
    else:
        click.echo("witness     none")


def _instance_bounds(net, method, time_limit, cache_dir, deadline=None):
    """The bounds of a single instance.  ``method`` None: cached improved bounds, else basic at once
    (computing improved bounds of a network not seen before takes minutes to hours); computed bounds
    show their progress on stderr and stop at the instance's ``deadline`` (they count against its
    time limit; bounds cut short stay valid and are not cached)."""
    from advmilp.bounds.compute import bounds_cache_dirs, find_cached, get_bounds

    def warn(m):
        click.echo(f"warning: {m}", err=True)

    if method is None:
        b = find_cached(net, "improved", cache_dir=cache_dir, say=warn)
        if b is not None:
            return b
        click.echo(f"note: no improved bounds cached for {net.name}: using basic bounds (interval arithmetic); "
                   f"'advmilp bounds' computes and caches improved ones", err=True)
        return get_bounds(net, "basic")[0]
    if method != "basic" and find_cached(net, method, time_limit, cache_dir, say=warn) is None:
        click.echo(f"bounds: computing {method} bounds of {net.name} (two MILPs per hidden unit, layer by layer; "
                   f"cached in {bounds_cache_dirs(cache_dir)[0]})", err=True)
    return get_bounds(net, method, time_limit, cache_dir, warn=warn, deadline=deadline,
                      progress=lambda m: click.echo(f"bounds: {m}", err=True))[0]


def _within_limit(settings, deadline):
    """The settings a method runs with after a bound pass: the time left of the instance's limit."""
    from advmilp.solvers.clock import time_left

    return dataclasses.replace(settings, time_limit=max(time_left(deadline), 0.5))


def _given(ctx, name):
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


def _option_name(ctx, name) -> str:
    return next(p.opts[0] for p in ctx.command.params if p.name == name)


# options a batch takes from its config, and options only a batch reads
_SINGLE_ONLY = ("model", "method", "image", "save_png", "bounds_method", "bounds_time_limit", "solver", "gap_rel") \
    + SPEC_OPTIONS


def _refuse_unused(ctx, config_path) -> None:
    """Refuse an option the chosen mode would ignore (never run something the user did not ask for)."""
    unused = [n for n in (_SINGLE_ONLY if config_path else BATCH_OPTIONS) if _given(ctx, n)]
    if unused:
        opt = _option_name(ctx, unused[0])
        raise AdvmilpError(f"{opt} applies to a single attack, not a batch: set it in the config" if config_path
                           else f"{opt} applies to a batch (--config FILE), not a single attack")


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Run a batch from a YAML config instead of one instance.")
@click.option("--arch", default=None, help="Network name or model file (single-instance mode).")
@MODEL
@click.option("--method", type=click.Choice(list(METHODS)), default=None,
              help="; ".join(f"{m.name}: {m.summary}" for m in METHODS.values())
              + ".  Default: tight for every problem it solves (all but inference), else milp.")
@click.option("--image", type=int, default=0, show_default=True, help="Test-set image index.")
@_spec_options
@_solver_options
@click.option("--save-png", type=OutputFile(), default=None,
              help="Write original | perturbation | adversarial side by side.")
@_batch_options
@DATA_DIR
@MODELS_DIR
@CACHE_DIR
@clean_errors
def attack(config_path, arch, model, method, image, spec, settings, bounds_method, bounds_time_limit, save_png,
           batch, data_dir, models_dir, cache_dir):
    """Find an optimal adversarial example for one image (or run a config's batch).

    A method that does not solve the problem, or does not use the solver, is refused (never replaced
    by another); so is a target equal to the image's label.  Ctrl-C stops with status 130."""
    ctx = click.get_current_context()
    _refuse_unused(ctx, config_path)
    if config_path:
        return _run_config(ctx, config_path, batch, data_dir, models_dir, cache_dir)
    if not (arch or model):
        raise AdvmilpError("give --arch or --model (one instance) or --config (a batch)")
    from advmilp.nn.architectures import is_tree_arch

    if str(model or arch).lower().endswith(".json") or is_tree_arch(str(model or arch)):   # advmilp.cli.trees
        from advmilp.cli.trees import attack_trees

        return attack_trees(ctx, model or arch, image, spec, settings, save_png, data_dir, models_dir)
    from advmilp.data.mnist import load_split, split_size
    from advmilp.methods.registry import check_model, check_supported, default_method, load_inputs, run_method
    from advmilp.nn.interchange import load_any

    method = method or default_method(spec.kind, spec.distance_norm)
    check_supported(method, spec.kind, settings.name, spec.distance_norm)
    check_model(method, False, str(model or arch))   # trees-milp on a network: refused before any work
    net = load_any(model or arch, models_dir)
    n_test = split_size("test", data_dir)
    if not 0 <= image < n_test:
        raise AdvmilpError(f"image index {image} out of range (0..{n_test - 1})")
    test = load_split("test", data_dir, rows=slice(image, image + 1))  # the one image attacked
    x_bar, label = test.images[0], int(test.labels[0])
    spec.check_for(net.sizes, label)
    if int(net.predict(x_bar)) != label:
        click.echo(f"warning: {net.name} misclassifies test image {image} (label {label})", err=True)
    deadline = time.perf_counter() + settings.time_limit
    b = _instance_bounds(net, bounds_method, bounds_time_limit, cache_dir, deadline)
    click.echo(f"attacking {net.name} image {image} ({spec.describe()}) with {method}, {b.method} bounds, "
               f"time limit {settings.time_limit:g} s", err=True)
    result = run_method(method, net, b, spec, _within_limit(settings, deadline), x_bar, label, image,
                        load_inputs(method, data_dir))
    result.row["time_limit"] = settings.time_limit
    _print_result(net, b, result, label, image)
    if save_png and result.witness is not None:
        from advmilp.reporting.figures import save_adversarial

        row = result.row
        save_adversarial(save_png, x_bar, result.witness, label, row["target"], row["predicted"], row["l1"],
                         title_extra=f"{net.name}, {row['status']}")
        click.echo(f"figure      {save_png}")


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
        scheduler=batch["scheduler"], networks=architecture_names(p["arch"]) if p["arch"] else None)
    try:
        summary = run_batch(config, data_dir, models_dir, cache_dir, batch["results_dir"], batch["force"],
                            log=lambda m: click.echo(m, err=True))
    except KeyboardInterrupt:
        click.echo("\ninterrupted: finished instances are saved; rerun the same command to resume", err=True)
        sys.exit(INTERRUPTED)
    click.echo(f"{summary.ran} instances run ({summary.skipped} already recorded), {summary.solved} solved "
               f"(or found, for heuristics) and verified, {summary.errors} errors, {summary.wall_s:.1f} s wall; results in {summary.out_dir}")
    click.echo(write_report(load_rows([summary.out_dir]), summary.out_dir / "report"))


@main.command()
@click.option("--arch", default=None, help="Network name or model file.")
@MODEL
@click.option("--layer", type=int, default=None, help="Hidden layer 1..K-1 (1-based); omit for an output unit.")
@click.option("--unit", type=int, default=0, show_default=True)
@click.option("--objective", type=click.Choice(["simple", "diff"]), default=None,
              help="Output unit only (not with --layer): maximise it (simple, the default), or it minus the "
                   "sum of the other outputs (diff).")
@click.option("--output-relu/--linear-output", default=True, show_default=True)
@_solver_options
@click.option("--save-png", type=OutputFile(), default=None)
@MODELS_DIR
@CACHE_DIR
@clean_errors
def feature(arch, model, layer, unit, objective, output_relu, settings, bounds_method, bounds_time_limit, save_png,
            models_dir, cache_dir):
    """Feature visualisation: the input maximising a hidden or output unit (thesis §5.1.1)."""
    from advmilp.methods.milp import run_instance
    from advmilp.nn.interchange import load_any
    from advmilp.spec.problems import ProblemSpec

    if layer is not None and objective is not None:
        raise AdvmilpError("--objective is for an output unit: omit it with --layer (a hidden unit is maximised)")
    net = load_any(_need_network(arch, model), models_dir)
    spec = ProblemSpec("feature", layer=layer, unit=unit, output_relu=output_relu,
                       objective="hidden" if layer is not None else objective or "simple")
    spec.check_for(net.sizes)
    deadline = time.perf_counter() + settings.time_limit
    b = _instance_bounds(net, bounds_method, bounds_time_limit, cache_dir, deadline)
    result = run_instance(net, b, spec, _within_limit(settings, deadline))
    _print_result(net, b, result)
    if save_png and result.witness is not None:
        from advmilp.reporting.figures import save_feature

        save_feature(save_png, result.witness, f"{net.name}: {spec.describe()} = {result.row['objective']:.4g}")
        click.echo(f"figure      {save_png}")
