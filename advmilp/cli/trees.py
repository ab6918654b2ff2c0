"""The tree-ensemble side of ``advmilp train`` and ``advmilp attack`` (called by `advmilp.cli.commands`).

``advmilp train --arch tree-d8`` (``forest-d8-n20``, ``gbt-d4-n10``, a comma list) trains with scikit-learn and
writes ``models/trees/NAME.json`` + ``.npz``; ``advmilp attack --model models/trees/NAME.json --image I`` solves
the exact minimal-L1 (``--norm linf``: L∞) MILP of `advmilp.encode.trees` (method ``trees-milp``, which
``--method`` may name; ``--arch forest-d6-n10`` names a shipped ensemble).  Options that only networks
have (bounds, ratio, epsilon, another solver or method) are refused, never ignored."""

from __future__ import annotations

from pathlib import Path

import click

from advmilp.cli.common import refuse_shipped
from advmilp.errors import AdvmilpError

# attack options a tree ensemble has no use for (its criterion is the argmax of its scores)
NETWORK_ONLY = ("method", "ratio", "epsilon", "l1_budget", "output_relu", "bounds_method", "bounds_time_limit",
                "solver")


def train_trees(arch: str, seed: int, out, threads, force: bool, data_dir, epochs) -> None:
    from advmilp.data.mnist import load_split
    from advmilp.nn.network import default_models_dir
    from advmilp.nn.trees import TreeArch, train

    if epochs is not None:
        raise AdvmilpError("--epochs is for networks: a tree ensemble's size is in its name (e.g. forest-d8-n20)")
    names = [TreeArch.parse(a.strip()).name for a in arch.split(",")]
    out_dir = Path(out) if out else default_models_dir() / "trees"
    refuse_shipped([out_dir / f"{n}{ext}" for n in names for ext in (".json", ".npz")], force)
    train_split, test_split = load_split("train", data_dir), load_split("test", data_dir)
    for name in names:
        ens = train(name, train_split.images, train_split.labels, test_split.images, test_split.labels, seed=seed,
                    threads=threads or 1, log=click.echo)
        path = ens.save(out_dir / f"{name}.json")
        click.echo(f"saved {path} and {path.with_suffix('.npz').name}")


def attack_trees(ctx, model_path, image: int, spec, settings, save_png, data_dir, models_dir) -> None:
    from click.core import ParameterSource

    from advmilp.data.mnist import load_split
    from advmilp.methods.trees import METHOD, run_trees
    from advmilp.nn.interchange import load_any

    for name in NETWORK_ONLY:
        if name == "method" and ctx.params.get("method") == METHOD:   # naming the trees' own method is fine
            continue
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            opt = next(p.opts[0] for p in ctx.command.params if p.name == name)
            raise AdvmilpError(f"{opt} does not apply to a tree ensemble (method {METHOD}: the exact MILP of "
                               "Kantchelian et al. on HiGHS, criterion: the target's score is the largest)")
    ens = load_any(model_path, models_dir)
    test = load_split("test", data_dir)
    if not 0 <= image < len(test):
        raise AdvmilpError(f"image index {image} out of range (0..{len(test) - 1})")
    x_bar, label = test.images[image], int(test.labels[image])
    if int(ens.predict(x_bar)) != label:
        click.echo(f"warning: {ens.name} misclassifies test image {image} (label {label})", err=True)
    click.echo(f"attacking {ens.name} image {image} ({spec.kind}) with {METHOD}, time limit {settings.time_limit:g} s",
               err=True)
    result = run_trees(ens, spec, settings, x_bar, label, image)
    row = result.row
    click.echo(f"model       {ens.name} ({ens.describe()}, sha256 {ens.short_hash()})")
    click.echo(f"problem     {row['problem']} (minimal {'Linf' if spec.norm == 'linf' else 'L1'})")
    click.echo(f"image       test #{image}, label {label}" + (f" -> target {row['target']}" if row['target'] is not None else ""))
    click.echo(f"status      {row['status']}   method {METHOD}, solver {row['solver_version']}, {row['threads']} thread(s)")
    click.echo(f"objective   {row['objective']:.6g}   bound {row['bound']:.6g}   gap {row['gap_pct']:.2f} %")
    click.echo(f"effort      {row['nodes']} nodes, {row['binaries']} binaries, {row['time_s']:.2f} s in all, "
               f"{row['build_time_s']:.2f} s build")
    if result.witness is None:
        click.echo("witness     none")
        return
    v = "yes (float64 and float32 inputs)" if row["verified"] else f"NO ({row['verify_note']})"
    click.echo(f"verified    {v}")
    click.echo(f"witness     predicted {row['predicted']}, L1 {row['l1']:.6g}, Linf {row['linf']:.4g} (from the pixels), "
               f"{int((result.witness != x_bar).sum())} pixels changed; {result.extra and row['message']}")
    if save_png:
        from advmilp.reporting.figures import save_adversarial

        save_adversarial(save_png, x_bar, result.witness, label, row["target"], row["predicted"], row["l1"],
                         title_extra=f"{ens.name}, {row['status']}")
        click.echo(f"figure      {save_png}")
