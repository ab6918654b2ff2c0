"""``advmilp verify``: decide a VNN-LIB property on a network (holds / violated / unknown)."""

from __future__ import annotations

from pathlib import Path

import click

from advmilp.cli.common import MODEL, MODELS_DIR, Positive, _need_network, clean_errors, main


def write_counterexample(path: Path, x, y) -> None:
    """VNN-COMP's result format: ``sat`` then the assignment ``((X_0 v) ... (Y_0 v) ...)``."""
    lines = ["sat", "("] + [f" (X_{i} {float(v)!r})" for i, v in enumerate(x)]
    lines += [f" (Y_{j} {float(v)!r})" for j, v in enumerate(y)] + [")"]
    path.write_text("\n".join(lines) + "\n")


@main.command()
@click.option("--arch", default=None, help="Network name or model file.")
@MODEL
@click.option("--vnnlib", "vnnlib_path", required=True, type=click.Path(dir_okay=False),
              help="The VNN-LIB specification (an input box and the output constraints of a violation).")
@click.option("--timeout", default=120.0, type=Positive(), show_default=True, help="Seconds for the whole decision.")
@click.option("--counterexample", type=click.Path(dir_okay=False), default=None,
              help="Write a violated property's counterexample here (VNN-COMP format).")
@MODELS_DIR
@clean_errors
def verify(arch, model, vnnlib_path, timeout, counterexample, models_dir):
    """Decide a VNN-LIB property: 'holds' (no input in the box violates it: proven by bounds or by the
    exact MILP), 'violated' (a counterexample, checked by a float64 and a float32 forward pass) or
    'unknown' (not settled within --timeout).  A wrong answer is never given for speed."""
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
        click.echo(f"how         {r.how}")
