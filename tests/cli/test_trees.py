"""The command line with a tree ensemble: attack --model T.json, refusals as one error line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.nets import REPO, mnist_dir

TREE = REPO / "models" / "trees" / "tree-d6.json"


def run(args, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "ADVMILP_RESULTS": str(tmp_path / "results")}
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    env["ADVMILP_DATA"] = str(root)
    return subprocess.run([sys.executable, "-m", "advmilp", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def test_attack_a_shipped_tree(tmp_path):
    out = run(["attack", "--model", str(TREE), "--image", "0", "--time-limit", "60"], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(None, 1) for line in out.stdout.splitlines() if line.strip())
    assert lines["status"].startswith("optimal   method trees-milp")
    assert lines["verified"].startswith("yes") and lines["witness"].startswith("predicted 2,")
    assert lines["image"] == "test #0, label 7 -> target 2"


def test_attack_a_shipped_tree_in_linf(tmp_path):
    out = run(["attack", "--model", str(TREE), "--image", "0", "--norm", "linf", "--time-limit", "60"], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(None, 1) for line in out.stdout.splitlines() if line.strip())
    assert lines["problem"] == "targeted argmax norm linf (minimal Linf)"
    assert lines["status"].startswith("optimal") and lines["verified"].startswith("yes")


@pytest.mark.parametrize("args, message", [
    (["attack", "--model", str(TREE), "--bounds", "basic"], "--bounds does not apply to a tree ensemble"),
    (["attack", "--model", str(TREE), "--method", "tight"], "--method does not apply to a tree ensemble"),
    (["attack", "--model", str(TREE), "--problem", "inference"], "solves targeted and untargeted problems"),
    (["bounds", "--model", str(TREE)], "is a tree ensemble"),
    (["attack", "--model", str(TREE), "--norm", "l0"], "minimises l1 or linf, not l0"),
    (["train", "--arch", "forest-d8", "--out", "x"], "unknown tree architecture 'forest-d8'"),
    (["train", "--arch", "tree-d4", "--epochs", "3", "--out", "x"], "--epochs is for networks"),
])
def test_refusals_are_one_error_line(tmp_path, args, message):
    out = run(args, tmp_path)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in out.stderr


def test_attack_a_shipped_tree_by_name_with_its_method(tmp_path):
    out = run(["attack", "--arch", "tree-d6", "--method", "trees-milp", "--image", "0", "--time-limit", "60"],
              tmp_path)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(None, 1) for line in out.stdout.splitlines() if line.strip())
    assert lines["status"].startswith("optimal   method trees-milp") and lines["verified"].startswith("yes")


@pytest.mark.parametrize("args, message", [
    (["attack", "--arch", "dnn1", "--method", "trees-milp"], "method trees-milp attacks tree ensembles, not the network dnn1"),
    (["attack", "--arch", "tree-d7", "--models-dir", "nowhere"], "no trained tree ensemble tree-d7"),
])
def test_trees_milp_on_a_network_or_a_missing_tree_is_one_line(tmp_path, args, message):
    out = run(args, tmp_path)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "Traceback" not in out.stderr
