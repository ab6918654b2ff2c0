"""Tree ensembles through the batch runner (issue 19 part 2): config entries, bounds 'none', one-line
refusals up front, a batch over the shipped tree-d6 (rows verified again here), resume, the report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advmilp.errors import AdvmilpError, ConfigError
from advmilp.experiments.config import apply_overrides, load_config, parse_config
from advmilp.experiments.runner import prepare, run_batch
from advmilp.methods.trees import verify_tree_witness
from advmilp.nn.interchange import load_any
from advmilp.spec.rows import COLUMNS

from tests.experiments.batch import need_mnist, rows_of
from tests.nets import REPO

TREES = REPO / "models" / "trees"
BOTH = [{"kind": "targeted"}, {"kind": "untargeted"}]


def test_a_shipped_name_or_a_json_file_is_a_tree_entry(tmp_path, monkeypatch):
    c = parse_config({"name": "t", "networks": ["Tree-D6", "forest-d6-n10"], "problems": BOTH})
    assert c.networks == ("tree-d6", "forest-d6-n10")
    assert c.bounds == ("none",) and c.methods == ("trees-milp",)   # the defaults for tree ensembles
    cfg = tmp_path / "cfgs" / "c.yaml"
    cfg.parent.mkdir()
    cfg.write_text("name: t\nnetworks: ['${TREES_HERE:-../m}/tree-d6.json']\nbounds: [none]\n"
                   "methods: [trees-milp]\n")
    assert load_config(cfg).networks == (str(tmp_path / "m" / "tree-d6.json"),)   # relative to the config
    monkeypatch.setenv("TREES_HERE", str(TREES))
    assert load_config(cfg).networks == (str(TREES / "tree-d6.json"),)


def test_the_shipped_trees_config():
    c = load_config(REPO / "configs" / "trees.yaml")
    assert c.networks == ("tree-d6", "tree-d10", "forest-d6-n10", "forest-d8-n20", "gbt-d3-n10", "gbt-d4-n20")
    assert [p.kind for p in c.problems] == ["targeted", "untargeted"] and c.methods == ("trees-milp",)
    assert c.images.count == 100 and c.solver.time_limit == 60 and c.bounds == ("none",)
    for name in c.networks:   # every name resolves to a shipped ensemble
        assert (TREES / f"{name}.json").is_file() and (TREES / f"{name}.npz").is_file()


@pytest.mark.parametrize("data, message", [
    ({"networks": ["tree-d6"], "methods": ["tight"]},
     "method tight attacks networks, not the tree ensemble tree-d6 (methods for tree ensembles: trees-milp)"),
    ({"networks": ["dnn1"], "methods": ["trees-milp"]},
     "method trees-milp attacks tree ensembles, not the network dnn1 (methods for networks: milp, tight, fast, cdh)"),
    ({"networks": ["tree-d6", "dnn1"]}, "'networks' mixes tree ensembles (tree-d6) and networks (dnn1)"),
    ({"networks": ["tree-d6"], "bounds": ["basic"]}, "tree ensembles have no neuron bounds: write 'bounds: [none]'"),
    ({"networks": ["dnn1"], "bounds": ["none"]}, "bounds 'none' is for tree ensembles"),
    ({"networks": ["tree-dx"]}, "unknown tree architecture 'tree-dx'"),
    ({"networks": ["trees-d6"]}, "unknown network 'trees-d6'"),
    ({"networks": ["tree-d6"], "problems": [{"kind": "targeted"}, {"kind": "untargeted", "factor": 0.9}]},
     "problems[1].factor does not apply to tree ensembles"),
    ({"networks": ["tree-d6"], "problem": {"kind": "max-target", "target": 3}},
     "trees-milp does not solve max-target problems (no method for tree ensembles does)"),
    ({"networks": ["tree-d6"], "solver": {"name": "cbc"}}, "trees-milp runs on highs only, not solver cbc"),
])
def test_a_method_or_bounds_for_the_other_kind_of_model_is_one_line(data, message):
    with pytest.raises(ConfigError) as exc:
        parse_config({"name": "t", **data}, "c.yaml")
    text = str(exc.value)
    assert text.startswith("c.yaml: ") and message in text and "\n" not in text


def test_a_networks_override_is_checked_when_loaded():
    trees = parse_config({"name": "t", "networks": ["tree-d6"]}, "c.yaml")
    with pytest.raises(ConfigError, match=r"^c.yaml: method trees-milp attacks tree ensembles, not the network dnn1"):
        prepare(apply_overrides(trees, networks=["dnn1"]))
    nets = parse_config({"name": "t", "networks": ["dnn1"], "methods": ["tight"], "bounds": ["basic"]}, "c.yaml")
    with pytest.raises(ConfigError, match=r"^c.yaml: method tight attacks networks, not the tree ensemble tree-d6"):
        prepare(apply_overrides(nets, networks=["tree-d6"]))


def test_a_tree_name_without_a_file_is_one_line(tmp_path):
    with pytest.raises(AdvmilpError) as exc:
        load_any("tree-d7", tmp_path)
    assert str(exc.value) == (f"{tmp_path / 'trees' / 'tree-d7.json'}: no trained tree ensemble tree-d7 "
                              "(run 'advmilp train --arch tree-d7')")
    ens = load_any("forest-d6-n10")
    assert ens.is_tree_ensemble and ens.name == "forest-d6-n10" and ens.sizes == [784, 10]
    assert load_any("dnn1").name == "dnn1"   # networks' names are unchanged


def test_a_batch_over_a_tree_resumes_and_is_reported(tmp_path):
    data = need_mnist()
    cfg = parse_config({"name": "tb", "networks": ["tree-d6"], "bounds": ["none"], "methods": ["trees-milp"],
                        "problems": BOTH + [{"kind": "untargeted", "norm": "linf"}],
                        "images": {"count": 2}, "solver": {"time_limit": 60}, "executor": "serial"})
    s1 = run_batch(cfg, data_dir=data, results_dir=tmp_path / "res")
    assert (s1.total, s1.ran, s1.skipped, s1.errors) == (6, 6, 0, 0)
    out = tmp_path / "res" / "tb"
    rows = rows_of(out / "instances.csv")
    assert len(rows) == 6 and all(tuple(r) == COLUMNS for r in rows)
    assert {r["problem"] for r in rows} == {"targeted argmax", "untargeted argmax", "untargeted argmax norm linf"}
    ens = load_any("tree-d6")
    from advmilp.data.mnist import load_split

    test = load_split("test", data)
    images = sorted({int(r["image_index"]) for r in rows})
    assert len(images) == 2 and all(int(ens.predict(test.images[i])) == test.labels[i] for i in images)
    for r in rows:
        i, label = int(r["image_index"]), int(r["label"])
        assert (r["network"], r["network_hash"], r["method"], r["bounds"]) == \
            ("tree-d6", ens.short_hash(), "trees-milp", "none")
        assert label == test.labels[i] and r["status"] == "optimal" and r["verified"] == "True"
        kind = r["problem"].split()[0]
        target = (label + 5) % 10 if kind == "targeted" else None
        assert r["target"] == ("" if target is None else str(target))
        # the witness, checked again here: in the box, the criterion met, its distance the objective
        x = np.load(out / r["witness"])
        check = verify_tree_witness(ens, x, test.images[i], kind, label, target)
        assert check.verified, check.reason
        dist = check.linf if r["problem"].endswith("norm linf") else check.l1
        assert math.isclose(float(r["objective"]), dist, rel_tol=1e-6, abs_tol=1e-7)
    # resume: nothing left to run, no row added
    s2 = run_batch(cfg, data_dir=data, results_dir=tmp_path / "res")
    assert (s2.total, s2.ran, s2.skipped) == (6, 0, 6) and len(rows_of(out / "instances.csv")) == 6

    from advmilp.reporting.robustness import robustness_table
    from advmilp.reporting.tables import is_heuristic, load_rows, table2

    df = load_rows(out)
    assert not is_heuristic(df).any()
    t2 = table2(df)
    # one row per problem (the run has three), each over the 2 images
    assert sorted(t2["problem"]) == ["targeted argmax", "untargeted argmax", "untargeted argmax norm linf"]
    assert (t2["method"] == "trees-milp").all() and (t2["bounds"] == "none").all()
    assert (t2["n"] == 2).all() and (t2["%solved"] == 100).all()
    rob = robustness_table(df)
    groups = rob.drop_duplicates(["problem", "norm"])
    assert sorted(zip(groups["problem"], groups["norm"])) == [
        ("targeted argmax", "l1"), ("untargeted argmax", "l1"), ("untargeted argmax norm linf", "linf")]
    assert (groups["n"] == 2).all() and (groups["exact"] == 2).all()
    linf = df[df["problem"] == "untargeted argmax norm linf"]["objective"].astype(float)
    at = rob[(rob["norm"] == "linf")]
    for _, c in at.iterrows():   # robust % at ε: the share of proven minimal L∞ distances above ε
        assert c["robust_pct"] == pytest.approx(100.0 * float(np.mean(linf > c["eps"])))


def test_a_batch_refusal_is_one_error_line_and_runs_nothing(tmp_path):
    from tests.cli.helpers import cli_env, invoke, one_error_line

    env = cli_env(tmp_path)
    for name, body, message in [
        ("a", "networks: [tree-d6]\nmethods: [tight]\n", "method tight attacks networks, not the tree ensemble"),
        ("b", "networks: [dnn1]\nmethods: [trees-milp]\n", "method trees-milp attacks tree ensembles, not the network"),
        ("c", "networks: [tree-d7]\n", "tree-d7.json: no trained tree ensemble tree-d7"),
    ]:
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(f"name: {name}\n{body}images: {{count: 2}}\n")
        assert message in one_error_line(invoke(["attack", "--config", str(cfg)], env))
        assert not (tmp_path / "results" / name / "instances.csv").exists()


def test_a_tree_ensemble_crosses_to_a_worker_process(tmp_path):
    """The process executor pickles the ensemble into its workers (one instance: one busy core)."""
    data = need_mnist()
    cfg = parse_config({"name": "tp", "networks": ["forest-d6-n10"], "problem": {"kind": "untargeted"},
                        "images": {"indices": [0]}, "workers": 2, "executor": "process"})
    s = run_batch(cfg, data_dir=data, results_dir=tmp_path / "res")
    assert (s.ran, s.solved, s.errors) == (1, 1, 0)
    row, = rows_of(tmp_path / "res" / "tp" / "instances.csv")
    assert row["network"] == "forest-d6-n10" and row["status"] == "optimal" and row["verified"] == "True"
