"""The same image under L1, L∞ and L0: the figure, and the command end to end on a tiny network."""

from __future__ import annotations

import numpy as np

from advmilp.reporting.figures import save_norms

from tests.cli.helpers import cli_env, invoke, need_mnist, one_error_line, run_cli
from tests.nets import random_net


def test_save_norms_writes_png_and_pdf(tmp_path):
    x = np.zeros(784)
    items = [{"norm": n, "x": np.clip(x + 0.1 * (i + 1), 0, 1), "value": v, "predicted": 3, "status": "optimal"}
             for i, (n, v) in enumerate((("l1", 78.4), ("linf", 0.2), ("l0", 784)))]
    paths = save_norms(tmp_path / "n.png", x, items, "title", also_pdf=True)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)


def test_norms_figure_from_the_command_line(tmp_path):
    need_mnist()
    net = random_net([784, 3, 10], seed=4, scale=3.0)
    model = tmp_path / "tiny.npz"
    net.save(model)
    proc = run_cli(["figures", "--norms", "--arch", str(model), "--image", "0", "--time-limit", "30",
                    "--out", str(tmp_path / "figs")], cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in (tmp_path / "figs").glob("norms_*_image0.*"))
    assert [n.rsplit(".", 1)[1] for n in written] == ["pdf", "png"], written
    assert all(f"figure  {tmp_path / 'figs' / n}" in proc.stdout for n in written)


def test_norms_needs_a_network(tmp_path):
    assert "--norms needs --arch" in one_error_line(invoke(["figures", "--norms"], cli_env(tmp_path)))
