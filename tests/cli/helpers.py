"""Running the command line as a user does: a subprocess, with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nets import REPO, mnist_dir


def need_mnist() -> Path:
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    return root


def cli_env(tmp_path: Path, **extra) -> dict:
    """The environment of a fresh user: results, caches and home inside ``tmp_path``."""
    from advmilp.data.mnist import CACHE_ENV, decoded_cache_dir

    env = {**os.environ, "HOME": str(tmp_path / "home"), "ADVMILP_RESULTS": str(tmp_path / "results"),
           "XDG_CACHE_HOME": str(tmp_path / "home" / ".cache"), "PYTHONDONTWRITEBYTECODE": "1",
           # the decoded MNIST (55 MB, read-only, verified) is shared, not rewritten for every test
           CACHE_ENV: str(decoded_cache_dir() or "off")}
    root = mnist_dir()
    if root is not None:
        env["ADVMILP_DATA"] = str(root)
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
    return env


def run_cli(args: list[str], env: dict, cwd: Path | None = None, timeout: float = 300,
            package_root: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m advmilp ARGS`` with the package of ``package_root`` first on the path."""
    env = {**env, "PYTHONPATH": str(package_root)}
    return subprocess.run([sys.executable, "-m", "advmilp", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or REPO, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single ``error: ...`` line of a refused command (status 2, no traceback)."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def invoke(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """The command line in this process (fast; for refusals that happen before any solve), as a
    CompletedProcess like `run_cli`.  An exception other than the exit is re-raised."""
    from click.testing import CliRunner

    from advmilp.cli import main

    changes = {k: env.get(k) for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)}
    result = CliRunner(env=changes).invoke(main, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)
