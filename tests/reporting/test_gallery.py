"""The "most ideal digits" gallery: per output, the input maximising it minus the other outputs."""

from __future__ import annotations

import numpy as np
import pytest

from advmilp.bounds.compute import interval_bounds
from advmilp.nn.interchange import load_any
from advmilp.reporting import figures
from advmilp.reporting.gallery import ideal_digits
from tests.cli.helpers import cli_env, invoke, one_error_line
from tests.nets import random_net


def test_identity_net_ideal_inputs_are_the_unit_corners(identity_net):
    # y = relu(x): max y_k − y_other over [0,1]^2 is 1, at x = e_k
    digits = ideal_digits(identity_net, time_limit=30, bounds=interval_bounds(identity_net))
    assert [d.status for d in digits] == ["optimal", "optimal"]
    assert [d.objective for d in digits] == pytest.approx([1.0, 1.0])
    assert np.allclose(digits[0].x, [1, 0]) and np.allclose(digits[1].x, [0, 1])
    assert [d.predicted for d in digits] == [0, 1]


def test_the_optimum_beats_sampled_inputs():
    net = random_net([6, 5, 3], seed=4, scale=2.0)
    digits = ideal_digits(net, time_limit=30, bounds=interval_bounds(net))
    xs = np.random.default_rng(0).random((3000, 6))
    y = np.maximum(net.forward(xs), 0.0)
    for d in digits:
        sampled = (2 * y[:, d.unit] - y.sum(axis=1)).max()
        at_x = np.maximum(net.forward(d.x), 0.0)
        assert d.objective == pytest.approx(2 * at_x[d.unit] - at_x.sum(), abs=1e-6)
        assert d.objective >= sampled - 1e-7


def test_save_digit_gallery_draws_empty_panels(tmp_path):
    imgs = [np.random.default_rng(i).random(784) for i in range(3)] + [None]
    png, pdf = figures.save_digit_gallery(tmp_path / "g.png", imgs, ["a", "b", "c", "d"], "t", also_pdf=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:4] == b"%PDF"


def test_figures_gallery_from_the_command_line(tmp_path):
    model = random_net([784, 4, 10], seed=2).save(tmp_path / "tiny.npz")
    env = cli_env(tmp_path)
    proc = invoke(["figures", "--gallery", "--arch", str(model), "--out", str(tmp_path / "figs"), "--time-limit", "30"], env)
    assert proc.returncode == 0, proc.stderr
    name = load_any(str(model)).name
    for ext in ("png", "pdf", "npy"):
        assert (tmp_path / "figs" / f"ideal_digits_{name}.{ext}").is_file()
    x = np.load(tmp_path / "figs" / f"ideal_digits_{name}.npy")
    assert x.shape == (10, 784) and ((0 <= x) & (x <= 1)).all()


@pytest.mark.parametrize("args, words", [
    (["--gallery", "--arch", "dnn1", "--near-image", "3", "--l1-budget", "5"], "not supported"),
    (["--gallery", "--arch", "dnn1", "--l1-budget", "5"], "not supported"),
    (["--gallery"], "needs --arch"),
    (["--arch", "dnn1", "--thesis"], "--arch is for --gallery"),
])
def test_gallery_refusals_are_one_error_line(tmp_path, args, words):
    assert words in one_error_line(invoke(["figures", *args, "--out", str(tmp_path)], cli_env(tmp_path)))
