"""advmilp.reporting.thesis_figures: the thesis figures are made from real (short) solves and run directories."""

from __future__ import annotations


import numpy as np
import pytest

from advmilp.reporting import thesis_figures
from advmilp.reporting.tables import load_rows
from advmilp.nn.network import load_network

from tests.reporting.test_figures import _assert_png, write_run
from tests.nets import mnist_dir  # noqa: E402


def _pngs(paths):
    pngs = [p for p in paths if p.suffix == ".png"]
    for p in pngs:
        _assert_png(p)
    return pngs


def test_make_run_figures(tmp_path, mnist_test):
    run = write_run(tmp_path, mnist_test)
    paths = thesis_figures.make_run_figures(run, tmp_path / "figs", data_dir=mnist_dir())
    names = {p.name for p in _pngs(paths)}
    assert names == {"cactus.png", "gallery.png", "perturbation_counts.png", "comparison.png"}


def test_make_run_figures_without_counts(tmp_path, mnist_test):
    run = write_run(tmp_path, mnist_test, with_counts=False)
    paths = thesis_figures.make_run_figures(run, tmp_path / "figs", data_dir=mnist_dir())
    assert "perturbation_counts.png" not in {p.name for p in _pngs(paths)}


def test_counts_grouped_by_method(tmp_path, mnist_test):
    run = write_run(tmp_path, mnist_test)
    from advmilp.reporting import figures

    rows = figures.witness_rows(load_rows(run), run)
    groups = thesis_figures._count_groups(rows, run)
    assert list(groups) == ["cdh"] and len(groups["cdh"]["times"]) == 2


def test_make_feature_figures(tmp_path):
    paths, values = thesis_figures.make_feature_figures(tmp_path, time_limit=20)
    assert len(_pngs(paths)) == len(thesis_figures.FEATURE_CASES)
    for name, net_name, _, kwargs, _ in thesis_figures.FEATURE_CASES:
        if "layer" not in kwargs:
            continue
        x = np.load(tmp_path / f"{name}.npy")
        assert x.shape == (784,) and x.min() >= -1e-9 and x.max() <= 1 + 1e-9
        pre = load_network(net_name).preactivations(x)[kwargs["layer"] - 1][kwargs["unit"]]
        assert values[name] == pytest.approx(max(pre, 0.0), rel=1e-6, abs=1e-6)


def test_make_adversarial_figure(tmp_path, mnist_test):
    paths, results = thesis_figures.make_adversarial_figure(tmp_path, 0, data_dir=mnist_dir(), time_limit=30)
    assert len(_pngs(paths)) == 2
    for key in ("unbounded", "capped"):
        r = results[key]
        assert r["row"]["verified"] and r["x_adv"] is not None
        assert r["row"]["predicted"] == r["row"]["target"]
    capped = results["capped"]
    assert np.max(np.abs(capped["x_adv"] - capped["x_bar"])) <= thesis_figures.FIG4_CAP + 1e-9
    assert results["unbounded"]["row"]["l1"] <= capped["row"]["l1"] + 1e-6
