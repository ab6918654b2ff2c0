"""``advmilp transfer``: studies of a finished batch's adversarial examples (issue 18 §3)."""

from __future__ import annotations

from pathlib import Path

import click

from advmilp.cli.common import (DATA_DIR, MODEL, MODELS_DIR, OutputFile, _need_network, clean_errors, main,
                                refuse_shipped)
from advmilp.errors import AdvmilpError


@main.command()
@click.option("--arch", default=None, help="The network whose witnesses are transferred (name or model file).")
@MODEL
@click.option("--from", "run_dir", required=True, type=click.Path(file_okay=False),
              help="A results/<name> run holding verified witnesses of that network.")
@click.option("--to", "to", default="", help="Other networks to evaluate, comma-separated (names or model files).")
@click.option("--images", "n_images", type=click.IntRange(min=1, max=10000), default=1000, show_default=True,
              help="Evaluate on the first N test images (each δ's own image left out).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the shuffled-δ control.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder of transfer.csv and transfer_deltas.csv (default <run>/transfer).")
@click.option("--force", is_flag=True, help="Replace files shipped with advmilp (tracked by git).")
@DATA_DIR
@MODELS_DIR
@clean_errors
def transfer(arch, model, run_dir, to, n_images, seed, out, force, data_dir, models_dir):
    """Apply every verified δ = witness − image of a batch to other test images and other networks
    (x + δ clipped to [0, 1]): per network pair, how often the prediction changes (fooled), how often
    it becomes the δ's target, on the δ's own image and on the others, beside a shuffled-δ control."""
    from advmilp.data.mnist import load_split
    from advmilp.nn.interchange import load_any
    from advmilp.reporting.tables import render_text
    from advmilp.reporting.transfer import deltas_from_run, format_summary, run_split, summarise, transfer_table

    run = Path(run_dir)
    if not (run / "instances.csv").is_file():
        raise AdvmilpError(f"no results at {run}: {run / 'instances.csv'} does not exist")
    source = load_any(_need_network(arch, model), models_dir)
    nets = {source.name: source}
    for name in (s.strip() for s in to.split(",")):
        if not name:
            continue
        net = load_any(name, models_dir)
        if (net.n_inputs, net.n_outputs) != (source.n_inputs, source.n_outputs):
            raise AdvmilpError(f"--to {name}: {net.n_inputs} inputs and {net.n_outputs} outputs, but {source.name} "
                               f"has {source.n_inputs} and {source.n_outputs}")
        nets.setdefault(net.name, net)
    out_dir = Path(out) if out else run / "transfer"
    refuse_shipped([out_dir], force)
    split = run_split(run)
    split_images = load_split(split, data_dir).images
    test_images = split_images if split == "test" else load_split("test", data_dir).images
    deltas = deltas_from_run(run, source, split_images)
    ids = list(range(min(n_images, len(test_images))))
    per_delta = transfer_table(deltas, nets, test_images[ids], seed=seed)
    summary = summarise(per_delta)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_dir / "transfer.csv", index=False)
    per_delta.to_csv(out_dir / "transfer_deltas.csv", index=False)
    click.echo(f"{len(deltas)} perturbations of {source.name} from {run}, first {len(ids)} test images "
               f"(x + δ clipped to [0, 1]; a δ's own image left out of 'fooled')")
    click.echo(render_text(format_summary(summary)), nl=False)
    click.echo("same img: the δ's own image on that network; fooled: prediction changed; to target: the δ's "
               "target, among images not already predicted as it; shuffled δ: the same values at random pixels")
    click.echo(f"written: {out_dir / 'transfer.csv'} and {out_dir / 'transfer_deltas.csv'}")


@main.command()
@click.option("--arch", default=None, help="Network name or model file.")
@MODEL
@click.option("--images", "images_text", default="0-9", show_default=True,
              help="Test images sharing the perturbation: 0-9 or 0,3,5 (those the network misclassifies, or "
                   "whose label is the target, are left out and listed).")
@click.option("--target", type=click.IntRange(min=0), default=None,
              help="One target for every image (default: (label + 5) mod 10 per image).")
@click.option("--norm", type=click.Choice(["l1", "linf"]), default="l1", show_default=True)
@click.option("--untargeted", is_flag=True, help="Every image away from its label (refused: see below).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True)
@click.option("--eval-images", type=click.IntRange(min=1, max=10000), default=10000, show_default=True,
              help="Fooling rate of δ on the first N test images (x + δ clipped to [0, 1]).")
@click.option("--out", type=OutputFile(), default=None, help="Save δ here (.npy) with a .json beside.")
@DATA_DIR
@MODELS_DIR
@clean_errors
def universal(arch, model, images_text, target, norm, untargeted, time_limit, eval_images, out, data_dir, models_dir):
    """One perturbation δ that sends every selected image to its target, with minimal ‖δ‖ (exact: the
    phase search on the network stacked once per image, every x̄_i + δ kept in [0, 1]); a δ counts only
    if each image passes the float64 and float32 check.  Prints its proven bound and gap and its fooling
    rate on the test set.  --untargeted is refused: every image leaving its label is a conjunction of one
    disjunction per image (9^k searches), not solved here."""
    import json
    import platform

    import numpy as np

    from advmilp import __version__
    from advmilp.data.mnist import load_split
    from advmilp.experiments.config import parse_indices
    from advmilp.methods.universal import fooling_rates, universal_attack
    from advmilp.nn.interchange import load_any
    from advmilp.spec.rows import gap_percent
    from advmilp.spec.problems import ProblemSpec

    if untargeted:
        raise AdvmilpError("--untargeted is not supported: a universal untargeted δ is a conjunction of one "
                           "disjunction per image (9^k conjunctions); choose --target or the default targets")
    net = load_any(_need_network(arch, model), models_dir)
    spec = ProblemSpec("targeted", target=target, norm=norm)
    test = load_split("test", data_dir)
    wanted = parse_indices(images_text)
    if max(wanted) >= len(test):
        raise AdvmilpError(f"--images: index {max(wanted)} out of range (0..{len(test) - 1})")
    keep, skipped = [], []
    for i in wanted:
        label = int(test.labels[i])
        if int(net.predict(test.images[i])) != label:
            skipped.append(f"{i} (misclassified)")
        elif spec.target_for(label) == label:
            skipped.append(f"{i} (label is the target)")
        else:
            keep.append(i)
    if skipped:
        click.echo(f"left out: {', '.join(skipped)}", err=True)
    if not keep:
        raise AdvmilpError("no image left to attack")
    click.echo(f"universal δ for {net.name} on {len(keep)} test images ({norm}, time limit {time_limit:g} s) ...",
               err=True)
    from advmilp.experiments.runner import git_sha
    from advmilp.solvers.highs import solver_version

    sha = git_sha()     # the code that runs: read before a run that may outlast the checkout's HEAD
    r = universal_attack(net, test.images[keep], test.labels[keep], spec, time_limit,
                         say=lambda line: click.echo(line, err=True))
    click.echo(f"network     {net.name} ({'-'.join(map(str, net.sizes))}, sha256 {net.short_hash()})")
    click.echo(f"images      {', '.join(map(str, keep))} -> targets {', '.join(map(str, r.targets))}")
    units = f"{r.binaries} unstable units in the stacked network, " if r.binaries else ""
    click.echo(f"status      {r.status}   ({units}{r.nodes} nodes, {r.time_s:.1f} s)")
    summary = {"network": net.name, "network_hash": net.short_hash(), "images": keep, "targets": list(r.targets),
               "norm": norm, "status": r.status, "objective": r.objective, "bound": r.bound,
               "time_s": r.time_s, "time_limit": time_limit, "nodes": r.nodes, "advmilp_version": __version__,
               "git_sha": sha, "solver": solver_version("highs"), "host": platform.node()}
    if r.delta is None:
        click.echo("delta       none found")
    else:
        gap = gap_percent(r.objective, r.bound)
        click.echo(f"objective   {r.objective:.6g}   bound {r.bound:.6g}   gap {gap:.2f} %")
        click.echo(f"verified    {sum(r.per_image)} of {len(keep)} images (float64 and float32)")
        n_eval = min(eval_images, len(test))
        rates = fooling_rates(net, r.delta, test.images[:n_eval], test.labels[:n_eval], target)
        text = f"fooling     {100 * rates['fooled']:.1f} % of the {rates['images']} correctly classified among " \
               f"the first {n_eval} test images change prediction"
        if "to_target" in rates:
            text += f", {100 * rates['to_target']:.1f} % go to {target}"
        click.echo(text)
        summary.update(gap_pct=gap, fooling=rates, verified_images=int(sum(r.per_image)))
        if out:
            path = Path(out)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path.with_suffix(".npy"), r.delta)
            path.with_suffix(".json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
            click.echo(f"written     {path.with_suffix('.npy')} and {path.with_suffix('.json')}")
