"""``advmilp transfer``: studies of a finished batch's adversarial examples (issue 18 §3)."""

from __future__ import annotations

from pathlib import Path

import click

from advmilp.cli.common import DATA_DIR, MODEL, MODELS_DIR, _need_network, clean_errors, main, refuse_shipped
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
