"""``advmilp universal``: one δ for several DNN1 test images from the command line; refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli.helpers import cli_env, invoke, need_mnist, one_error_line, run_cli


def test_universal_writes_a_delta_that_fools_every_image(tmp_path):
    need_mnist()
    from advmilp.data.mnist import load_split
    from advmilp.nn.network import load_network

    out = tmp_path / "u" / "delta"
    proc = run_cli(["universal", "--arch", "dnn1", "--images", "0,2", "--target", "4", "--time-limit", "10",
                    "--eval-images", "200", "--out", str(out)], cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "verified    2 of 2 images" in proc.stdout and "fooling" in proc.stdout
    assert "first δ by the heuristic" in proc.stderr and " s  " in proc.stderr    # progress, timed
    delta = np.load(out.with_suffix(".npy"))
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["images"] == [0, 2] and meta["targets"] == [4, 4] and meta["network"] == "dnn1"
    assert meta["solver"].startswith("HiGHS ") and meta["git_sha"] and meta["time_limit"] == 10.0   # provenance
    net, test = load_network("dnn1"), load_split("test")
    for i in (0, 2):
        x = test.images[i] + delta
        assert np.all((x >= 0) & (x <= 1))
        assert net.predict(x) == 4
    assert meta["objective"] == pytest.approx(float(np.abs(delta).sum()), rel=1e-9)
    assert meta["bound"] <= meta["objective"] * (1 + 1e-9)


@pytest.mark.parametrize("args, words", [
    (["--untargeted"], "--untargeted is not supported"),
    (["--images", "5-2"], "write indices as 0-9 or 0,3,5"),
    (["--images", "99999"], "out of range"),
    (["--norm", "l0"], "Invalid value for '--norm'"),
])
def test_universal_refusals_are_one_line(tmp_path, args, words):
    need_mnist()
    proc = invoke(["universal", "--arch", "dnn1", "--time-limit", "1", *args], cli_env(tmp_path))
    assert words in one_error_line(proc)
