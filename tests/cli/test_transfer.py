"""``advmilp transfer``: a small run folder of DNN1 witnesses, transferred to DNN2 from the command line."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from tests.cli.helpers import cli_env, invoke, need_mnist, one_error_line, run_cli
from tests.cli.test_outputs import _small_run
from tests.nets import random_net


def _dnn1_run(run):
    """Four rows of the shipped run core10 with their witnesses (DNN1 and DNN2, test image 0); the DNN1 rows."""
    _small_run(run, 4)
    with open(run / "instances.csv", newline="") as fh:
        return run, [r for r in csv.DictReader(fh) if r["network"] == "dnn1"]


def test_transfer_writes_the_rates_it_prints(tmp_path):
    data = need_mnist()
    from advmilp.data.mnist import load_split
    from advmilp.nn.network import load_network

    run, rows = _dnn1_run(tmp_path / "run")
    out = tmp_path / "out"
    proc = run_cli(["transfer", "--arch", "dnn1", "--from", str(run), "--to", "dnn2", "--images", "30",
                    "--out", str(out)], cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "dnn1 -> dnn2" in proc.stdout and "2 perturbations of dnn1" in proc.stdout
    summary = pd.read_csv(out / "transfer.csv")
    per = pd.read_csv(out / "transfer_deltas.csv")
    assert list(summary["to"]) == ["dnn1", "dnn2"] and list(summary["deltas"]) == [2, 2]
    # a verified targeted witness fools its own network on its own image, towards its target
    own = summary[summary["to"] == "dnn1"].iloc[0]
    assert own["same_fooled_pct"] == 100.0 and own["same_target_pct"] == 100.0
    # the same rates, recomputed here with numpy
    test = load_split("test", data)
    for net_name in ("dnn1", "dnn2"):
        net = load_network(net_name)
        for k, r in enumerate(rows):     # the per-δ rows of a network follow the run's rows
            i = int(r["image_index"])
            delta = np.load(run / r["witness"]) - test.images[i]
            others = np.array([j for j in range(30) if j != i])
            x = test.images[others]
            fooled = np.mean(net.predict(np.clip(x + delta, 0, 1)) != net.predict(x))
            got = per[per["to"] == net_name].iloc[k]
            assert got["image_index"] == i
            assert got["fooled"] == pytest.approx(fooled) and got["images"] == len(others)


def test_transfer_refusals_are_one_error_line(tmp_path):
    need_mnist()
    env = cli_env(tmp_path)
    run, _ = _dnn1_run(tmp_path / "run")
    assert "no results at" in one_error_line(invoke(["transfer", "--arch", "dnn1", "--from", str(tmp_path / "nope")], env))
    msg = one_error_line(invoke(["transfer", "--arch", "dnn3", "--from", str(run), "--out", str(tmp_path / "o")], env))
    assert "has no rows of dnn3" in msg
    small = random_net([16, 4, 10], seed=1).save(tmp_path / "small.npz")
    msg = one_error_line(invoke(["transfer", "--arch", "dnn1", "--from", str(run), "--to", str(small)], env))
    assert "--to" in msg and "16 inputs" in msg
    assert one_error_line(invoke(["transfer", "--from", str(run)], env)).startswith("error: give --arch")
