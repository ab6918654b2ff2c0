"""The ``advmilp`` command line: each command is a few lines of glue over the modules."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from . import __version__
from .errors import AdvmilpError

DATA_DIR = click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                        help="MNIST directory (default: $ADVMILP_DATA or ~/.cache/advmilp/mnist).")
MODELS_DIR = click.option("--models-dir", type=click.Path(file_okay=False), default=None,
                          help="Directory of trained networks (default: $ADVMILP_MODELS or the shipped models/).")


def clean_errors(fn):
    """Turn AdvmilpError into one line on stderr and exit status 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AdvmilpError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="advmilp")
def main():
    """Provably optimal adversarial examples for ReLU networks by MILP (HiGHS via PuLP)."""


# ---- data ---------------------------------------------------------------------------------
@main.group()
def data():
    """MNIST: check the local copy or download it."""


@data.command("check")
@DATA_DIR
@clean_errors
def data_check(data_dir):
    """Verify the four MNIST files (checksums, counts, first labels)."""
    from .data import check, resolve_data_dir

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
    from .data import download

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
    from .architectures import ARCHITECTURES
    from .data import load_split
    from .networks import default_models_dir
    from .training import train_and_save

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
    from .architectures import ARCHITECTURES
    from .networks import default_models_dir, load_network

    test = None
    if evaluate:
        from .data import load_split

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


if __name__ == "__main__":  # pragma: no cover
    main()
