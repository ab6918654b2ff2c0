"""The code carries no dead imports, unused locals or undefined names: pyflakes' rules (ruff's ``F``)
over the package, the benchmarks and the tests.  Ruff comes with the test extra; without it the check
is skipped."""

import importlib.util
import subprocess
import sys

import pytest

from tests.nets import REPO


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff not installed (pip install -e '.[test]')")
def test_no_unused_or_undefined_names():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F", "--output-format", "concise",
                          "--no-cache", "advmilp", "benchmarks", "tests"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
