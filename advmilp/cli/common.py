"""The ``advmilp`` group and what its commands share: options, the clean-error wrapper, network loading.

Command modules (`commands`, `tools`) import this one and register on `main`; nothing here imports them."""

from __future__ import annotations

import functools
import signal
import sys
from pathlib import Path

import click

from advmilp import __version__
from advmilp.errors import AdvmilpError
from advmilp.experiments.workers import limit_blas_threads

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
    # A process started in the background by a non-interactive shell (as CI runners start jobs)
    # inherits SIGINT as *ignored*, and Python then installs no KeyboardInterrupt handler: Ctrl-C
    # (or a SIGINT from a supervisor) would be ignored.  Install it explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    limit_blas_threads()   # before any command loads numpy



CACHE_DIR = click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                         help="Bounds cache (default: results/bounds).")


def _load_nets(arch, models_dir):
    from advmilp.nn.architectures import ARCHITECTURES
    from advmilp.nn.interchange import load_any

    names = list(ARCHITECTURES) if arch == "all" else [a.strip() for a in arch.split(",")]
    return [load_any(n, models_dir) for n in names]


MODEL = click.option("--model", default=None, type=click.Path(dir_okay=False),
                     help="Your own network: a .keras/.h5, .onnx or .npz file (instead of --arch).")


def _need_network(arch, model):
    if not (arch or model):
        raise AdvmilpError("give --arch NAME or --model FILE")
    return model or arch
