"""The trees-milp method: rows, verification, refusals, and a trained forest's witness flips scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from advmilp.errors import AdvmilpError
from advmilp.encode.trees import up32
from advmilp.methods.trees import run_trees, verify_tree_witness
from advmilp.spec.problems import ProblemSpec, SolverSettings
from advmilp.spec.rows import COLUMNS, is_solved
from tests.nets import mnist_dir, random_net
from tests.trees_material import hand_tree

X_BAR = np.array([0.2, 0.1])
SETTINGS = SolverSettings(time_limit=30)


def test_hand_tree_row_is_a_verified_optimum():
    ens = hand_tree()
    res = run_trees(ens, ProblemSpec("targeted", target=1), SETTINGS, X_BAR, 0, image_index=7)
    row = res.row
    assert tuple(row) == COLUMNS and is_solved(row) and res.solved
    assert row["status"] == "optimal" and row["method"] == "trees-milp" and row["predicted"] == 1
    assert row["l1"] == pytest.approx(up32(0.5) - 0.1, abs=1e-12) and row["objective"] == pytest.approx(row["l1"], abs=1e-9)
    assert row["problem"] == "targeted argmax" and row["image_index"] == 7 and row["network_hash"] == ens.short_hash()
    linf = run_trees(ens, ProblemSpec("untargeted"), SETTINGS, X_BAR, 0, norm="linf").row
    assert linf["problem"] == "untargeted argmax norm linf" and is_solved(linf)
    assert linf["linf"] == pytest.approx(up32(0.5) - 0.2, abs=1e-12)
    capped = run_trees(ens, ProblemSpec("targeted", target=1, linf_cap=0.25), SETTINGS, X_BAR, 0).row
    assert capped["status"] == "infeasible" and not is_solved(capped) and capped["problem"].endswith("linf<=0.25")


def test_the_spec_chooses_the_norm_and_caps():
    ens = hand_tree()
    row = run_trees(ens, ProblemSpec("targeted", target=1, norm="linf"), SETTINGS, X_BAR, 0).row
    assert is_solved(row) and row["linf"] == pytest.approx(up32(0.5) - 0.2, abs=1e-12)
    # an L1 budget of 0.45 leaves only the x1 > 0.5 way (L1 = L∞ ≈ 0.4) to the smallest L∞
    row = run_trees(ens, ProblemSpec("targeted", target=1, norm="linf", l1_cap=0.45), SETTINGS, X_BAR, 0).row
    assert is_solved(row) and row["linf"] == pytest.approx(up32(0.5) - 0.1, abs=1e-12) and row["l1"] <= 0.45
    assert row["problem"] == "targeted argmax norm linf l1<=0.45"
    with pytest.raises(AdvmilpError, match="not l0"):
        run_trees(ens, ProblemSpec("targeted", target=1, norm="l0"), SETTINGS, X_BAR, 0)
    with pytest.raises(AdvmilpError, match="no L0 cap"):
        run_trees(ens, ProblemSpec("targeted", target=1, norm="linf", l0_cap=3), SETTINGS, X_BAR, 0)


def test_a_witness_that_does_not_flip_is_not_solved(monkeypatch):
    from advmilp.encode.trees import TreeFormulation

    monkeypatch.setattr(TreeFormulation, "input_point", lambda self, values: self.x_bar.copy())
    row = run_trees(hand_tree(), ProblemSpec("targeted", target=1), SETTINGS, X_BAR, 0).row
    assert row["status"] == "optimal" and not row["verified"] and not is_solved(row)
    assert "criterion" in row["verify_note"]


def test_verification_checks_float32_and_the_box():
    ens = hand_tree()
    x = np.array([0.2, 0.5 + 1e-12])     # class 1 in float64, class 0 once cast to float32
    check = verify_tree_witness(ens, x, X_BAR, "targeted", 0, 1)
    assert not check.verified and check.reason == "float32: criterion"
    check = verify_tree_witness(ens, np.array([0.2, 0.6]), X_BAR, "targeted", 0, 1, ub=0.55)
    assert not check.verified and check.reason == "outside the input box"
    assert verify_tree_witness(ens, np.array([0.2, 0.6]), X_BAR, "targeted", 0, 1).verified


def test_refusals():
    ens = hand_tree()
    with pytest.raises(AdvmilpError, match="not max-target"):
        run_trees(ens, ProblemSpec("max-target", target=1), SETTINGS, X_BAR, 0)
    with pytest.raises(AdvmilpError, match="highs only"):
        run_trees(ens, ProblemSpec("targeted", target=1), SolverSettings("cbc"), X_BAR, 0)
    with pytest.raises(AdvmilpError, match="attacks tree ensembles"):
        run_trees(random_net([2, 3, 2]), ProblemSpec("targeted", target=1), SETTINGS, X_BAR, 0)
    with pytest.raises(AdvmilpError, match="is the image's label"):
        run_trees(ens, ProblemSpec("targeted", target=0), SETTINGS, X_BAR, 0)


def test_trained_forest_witness_flips_scikit_learn():
    pytest.importorskip("sklearn")
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    from sklearn.ensemble import RandomForestClassifier

    from advmilp.data.mnist import load_split
    from advmilp.nn.trees import from_sklearn

    test = load_split("test", root)        # trained on test images 1000..1299, attacked on the first ones
    model = RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(test.images[1000:1300],
                                                                                     test.labels[1000:1300])
    ens = from_sklearn(model, {"architecture": "tiny-forest"})
    i = next(i for i in range(50) if model.predict(test.images[i:i + 1])[0] == test.labels[i])
    x_bar, label = test.images[i], int(test.labels[i])
    for spec in (ProblemSpec("targeted"), ProblemSpec("untargeted")):
        res = run_trees(ens, spec, SETTINGS, x_bar, label, i)
        assert res.solved, res.row
        flipped = model.predict(res.witness[None, :])[0]
        assert flipped != label and (spec.kind == "untargeted" or flipped == res.row["target"])
        assert flipped == res.row["predicted"]


def test_the_benchmark_script_runs_on_a_shipped_tree(tmp_path, monkeypatch, capsys):
    import runpy

    from tests.nets import REPO

    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    out = tmp_path / "rows.csv"
    monkeypatch.setattr("sys.argv", ["trees_bench.py", "--models", "tree-d6", "--images", "2", "--time-limit", "30",
                                     "--norms", "l1,linf", "--out", str(out), "--data-dir", str(root)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / "benchmarks" / "trees_bench.py"), run_name="__main__")
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "| tree-d6 | 64 | 0.7415 | l1 | 2 | 2 |" in printed and "| tree-d6 | 64 | 0.7415 | linf | 2 | 2 |" in printed
    import csv

    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and all(r["verified"] == "True" and r["status"] == "optimal" for r in rows)
