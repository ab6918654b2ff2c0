"""The command line.  Importing this package registers every command on `main`."""

from advmilp.cli import commands, study, tools, verify  # noqa: F401  (register their commands)
from advmilp.cli.common import main

__all__ = ["main"]
