"""Issue 16, the fixed cost of one attack: what only a download needs (urllib.request, http.client: 25 ms)
is imported by the download alone, not by the command line or a single attack; PuLP (~40 ms) only by
what builds a PuLP model (the thesis MILP, the per-unit bound LPs), not by a tight attack that the phase
search decides."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli.helpers import cli_env, need_mnist
from tests.nets import REPO

DOWNLOAD_ONLY = ("urllib.request", "http.client")
PULP = ("pulp",)


def _imported_after(code: str, env: dict, modules: tuple[str, ...] = DOWNLOAD_ONLY) -> list[str]:
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                          env={**env, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_command_line_and_the_attack_modules_do_not_import_the_downloader(tmp_path):
    code = "import advmilp.cli, advmilp.data.mnist, advmilp.methods.registry, advmilp.methods.tight"
    assert _imported_after(code, cli_env(tmp_path)) == []


def test_a_download_imports_it(tmp_path):
    """The probe sees the modules when they are imported (a refused connection to a local port)."""
    code = ("from advmilp.data import mnist\n"
            "try:\n    mnist.download(mirrors=('http://127.0.0.1:9/',))\n"
            "except mnist.DataError:\n    pass")
    assert _imported_after(code, cli_env(tmp_path, ADVMILP_DATA=tmp_path / "empty")) == list(DOWNLOAD_ONLY)


def test_a_single_attack_does_not_import_the_downloader(tmp_path):
    need_mnist()
    code = ("import sys\nfrom advmilp.cli import main\n"
            "sys.argv = ['advmilp', 'attack', '--arch', 'dnn1', '--image', '0', '--method', 'tight']\n"
            "try:\n    main()\nexcept SystemExit as done:\n    assert done.code in (0, None), done.code")
    assert _imported_after(code, cli_env(tmp_path)) == []


def _attack(*args: str) -> str:
    return ("import sys\nfrom advmilp.cli import main\n"
            f"sys.argv = ['advmilp', 'attack', '--arch', 'dnn1', '--image', '0', {', '.join(map(repr, args))}]\n"
            "try:\n    main()\nexcept SystemExit as done:\n    assert done.code in (0, None), done.code")


def test_a_tight_attack_decided_by_the_phase_search_does_not_import_pulp(tmp_path):
    need_mnist()
    assert _imported_after(_attack("--method", "tight"), cli_env(tmp_path), PULP) == []


def test_the_thesis_milp_imports_pulp(tmp_path):
    """The probe sees PuLP when a method builds a PuLP model."""
    need_mnist()
    assert _imported_after(_attack("--method", "milp"), cli_env(tmp_path), PULP) == list(PULP)
