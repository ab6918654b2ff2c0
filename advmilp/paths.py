"""Where advmilp looks for its folders when none is given: an environment variable, else the folder
of that name beside the package in a source checkout, else the current directory's."""

from __future__ import annotations

import os
from pathlib import Path


def default_dir(env_var: str, name: str) -> Path:
    """``$env_var``, else the checkout's ``<repo>/<name>`` if it exists, else ``./<name>``."""
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    in_repo = Path(__file__).resolve().parents[1] / name
    if in_repo.is_dir():
        return in_repo
    return Path.cwd() / name
