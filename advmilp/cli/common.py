"""The ``advmilp`` group and what its commands share: options, the clean-error wrapper, network loading.

Command modules (`commands`, `tools`) import this one and register on `main`; nothing here imports them."""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
from pathlib import Path

import click

from advmilp import __version__
from advmilp.errors import AdvmilpError, InvalidValue
from advmilp.experiments.workers import INTERRUPTED, limit_blas_threads
from advmilp.interrupts import accept_interrupts, interrupt_arrived

REPO = Path(__file__).resolve().parents[2]

DATA_DIR = click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                        help="MNIST directory (default: $ADVMILP_DATA or ~/.cache/advmilp/mnist).")
MODELS_DIR = click.option("--models-dir", type=click.Path(file_okay=False), default=None,
                          help="Directory of trained networks (default: $ADVMILP_MODELS or the shipped models/).")


def fail(message: str) -> None:
    """The one way a command ends on a user's error: one line on stderr, exit status 2."""
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _option_message(exc: InvalidValue) -> str:
    """An `InvalidValue` in the words of the command line: the option that set the field."""
    ctx = click.get_current_context(silent=True)
    field = "solver" if exc.field == "name" else exc.field
    for param in (ctx.command.params if ctx else []):
        if param.name == field and isinstance(param, click.Option):
            return f"{param.opts[0]} {exc.text}"
    return str(exc)


def clean_errors(fn):
    """Turn a user's error into one line on stderr and exit status 2 (no traceback): an AdvmilpError
    (a value out of range names its option), or an OSError (a file or folder that cannot be read or
    written).  Ctrl-C ends with one line and status 130, whatever is running."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            _interrupted()
        except Exception as exc:
            if interrupt_arrived():     # a Ctrl-C in another error's clothes (`advmilp.interrupts`)
                _interrupted()
            if isinstance(exc, InvalidValue):
                fail(_option_message(exc))
            if isinstance(exc, AdvmilpError):
                fail(str(exc))
            if isinstance(exc, OSError):
                where = f": {exc.filename}" if exc.filename else ""
                fail(f"{exc.strerror or exc}{where}")
            raise

    return wrapper


def _interrupted():
    click.echo("interrupted", err=True)
    sys.exit(INTERRUPTED)


_HELP_ERRORS = getattr(click.exceptions, "NoArgsIsHelpError", ())


class _Group(click.Group):
    """click's group, with its own usage errors (a bad option value, an unknown option) as one
    ``error:`` line and status 2 like every other error, instead of usage + hint + message."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            status = super().main(*args, **kwargs)
        except _HELP_ERRORS as exc:   # `advmilp` alone: the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message())
        except click.Abort:
            click.echo("interrupted", err=True)
            sys.exit(INTERRUPTED)
        sys.exit(status if isinstance(status, int) else 0)


class Positive(click.ParamType):
    """A finite number > 0 (``zero_ok``: ≥ 0); click's FloatRange lets NaN through."""

    name = "number"

    def __init__(self, zero_ok: bool = False):
        self.zero_ok = zero_ok

    def convert(self, value, param, ctx):
        try:
            x = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(x) or x < 0 or (x == 0 and not self.zero_ok):
            self.fail(f"must be a finite number {'≥' if self.zero_ok else '>'} 0 (got {value})", param, ctx)
        return x


class Workers(click.ParamType):
    """``auto`` or a whole number ≥ 1."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if value == "auto" or (isinstance(value, int) and value >= 1):
            return value
        try:
            n = int(str(value))
        except ValueError:
            n = 0
        if n < 1:
            self.fail(f"must be a whole number ≥ 1 or auto (got {value!r})", param, ctx)
        return n


class OutputFile(click.ParamType):
    """A file a command will write: refused before any work when it cannot be written there (a folder
    of that name, a parent that is a file, a folder without write permission) — a long run must not
    end on "cannot write".  Missing parent folders are fine: the command makes them when it writes."""

    name = "file"

    def convert(self, value, param, ctx):
        path = Path(value).expanduser()
        if path.is_dir():
            self.fail(f"{value}: is a folder; give a file name", param, ctx)
        parent = path.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            self.fail(f"{value}: {parent} is a file, not a folder", param, ctx)
        if not os.access(parent, os.W_OK | os.X_OK):
            self.fail(f"{value}: cannot write in {parent} (permission denied)", param, ctx)
        if path.exists() and not os.access(path, os.W_OK):
            self.fail(f"{value}: the file is read-only", param, ctx)
        return str(path)


def shipped_files(path: str | Path) -> list[str]:
    """Files under ``path`` (a file or a folder) that git tracks in the advmilp checkout this package
    runs from: the shipped weights, bounds, results, reports and figures.  Empty outside a checkout."""
    target = Path(path).resolve()
    if not (REPO / ".git").exists() or not target.is_relative_to(REPO):
        return []
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--", str(target.relative_to(REPO))],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [f for f in out.stdout.split("\0") if f]


def refuse_shipped(paths, force: bool) -> None:
    """Refuse to overwrite files shipped with advmilp unless ``force``: a command's default output
    may be a folder of the repository (models/, results/...), which a user's run must not rewrite."""
    if force:
        return
    tracked = [f for p in paths for f in shipped_files(p)]
    if tracked:
        more = f" and {len(tracked) - 1} more" if len(tracked) > 1 else ""
        raise AdvmilpError(f"would overwrite {tracked[0]}{more}, shipped with advmilp (tracked by git); "
                           "write elsewhere with --out DIR, or pass --force to replace them")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="advmilp")
def main():
    """Provably optimal adversarial examples for ReLU networks by MILP (HiGHS via PuLP)."""
    accept_interrupts()    # SIGINT may arrive inherited as ignored (a background job of a script)
    limit_blas_threads()   # before any command loads numpy



CACHE_DIR = click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                         help="Bounds cache, read and written (default: bounds are written to "
                              "$ADVMILP_RESULTS/bounds, else ~/.cache/advmilp/bounds, and read from there "
                              "and from the shipped results/bounds/).")


def architecture_names(arch: str) -> list[str]:
    """``--arch``'s names: ``all`` (the thesis networks and the notebook's), ``study`` (the robustness
    study's grid), or a comma list."""
    from advmilp.nn.architectures import ARCHITECTURES, study_names

    if arch.lower() == "all":
        return list(ARCHITECTURES)
    if arch.lower() == "study":
        return study_names()
    return [a.strip() for a in arch.split(",")]


def _load_nets(arch, models_dir):
    from advmilp.nn.interchange import load_any

    return [load_any(n, models_dir) for n in architecture_names(arch)]


MODEL = click.option("--model", default=None, type=click.Path(dir_okay=False),
                     help="Your own network: a .keras/.h5, .onnx or .npz file (instead of --arch).")


def _need_network(arch, model):
    if not (arch or model):
        raise AdvmilpError("give --arch NAME or --model FILE")
    return model or arch
