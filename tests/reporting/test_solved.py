"""One definition of "solved": every consumer (the instance result, the report tables, the figures, the
batch runner's progress counter) agrees with `advmilp.spec.rows.is_solved` on the same hand-made rows."""

import pytest

from advmilp.spec.rows import is_solved, make_row

# (status, verified) -> solved by hand: optimal or found, and verified
HAND = [("optimal", True, True), ("optimal", False, False), ("found", True, True), ("found", False, False),
        ("time_limit", True, False), ("not_found", False, False), ("infeasible", False, False),
        ("error", False, False)]


def hand_rows():
    return [make_row(network="n", network_hash="h", method="milp", bounds="basic", problem="p", image_index=i,
                     status=status, verified=verified, time_s=1.0 + i, time_limit=10.0)
            for i, (status, verified, _) in enumerate(HAND)]


def test_the_hand_answers():
    assert [is_solved(r) for r in hand_rows()] == [s for _, _, s in HAND]


def test_instance_result_agrees():
    from advmilp.methods.result import InstanceResult

    assert [InstanceResult(r).solved for r in hand_rows()] == [s for _, _, s in HAND]


def test_api_result_agrees():
    from advmilp.api import AttackResult

    results = [AttackResult(r["status"], 0.0, 0.0, 0.0, None, r["verified"], 0.0, 0.0, 1.0, r) for r in hand_rows()]
    assert [a.solved for a in results] == [s for _, _, s in HAND]


def test_tables_and_figures_agree_through_the_csv(tmp_path):
    """Written by the runner's writer, read by the one reader, counted by tables and figures."""
    from advmilp.experiments.runner import append_row
    from advmilp.reporting import figures, tables

    for r in hand_rows():
        append_row(tmp_path / "instances.csv", r)
    df = tables.load_rows(tmp_path)
    assert tables.solved_mask(df).tolist() == [s for _, _, s in HAND]
    # Table 2's %solved and the cactus plot's count use the same rows
    assert tables.table2(df)["%solved"].iloc[0] == pytest.approx(100 * 2 / len(HAND))
    assert len(figures.witness_rows(df.assign(witness="w.npy"), tmp_path)) == 0   # no witness files: none
    (tmp_path / "w.npy").write_bytes(b"")
    assert len(figures.witness_rows(df.assign(witness="w.npy"), tmp_path)) == 2


def test_heuristic_table_agrees(tmp_path):
    from advmilp.experiments.runner import append_row
    from advmilp.reporting import tables

    for r in hand_rows():
        append_row(tmp_path / "instances.csv", {**r, "method": "fast"})
    t = tables.table_heuristics(tables.load_rows(tmp_path))
    assert t["%found"].iloc[0] == pytest.approx(100 * 2 / len(HAND))


def test_the_batch_counter_agrees(tmp_path, monkeypatch):
    """run_batch's progress counter (``solved``) on rows the method returns."""
    import numpy as np

    import advmilp.experiments.runner as runner
    from advmilp.data.mnist import Split
    from advmilp.experiments.config import parse_config
    from advmilp.methods.result import InstanceResult
    from tests.nets import random_net

    net = random_net([4, 3, 2], seed=0)
    path = net.save(tmp_path / "tiny.npz", {"architecture": "tiny"})
    rows = iter(hand_rows())
    monkeypatch.setattr(runner, "run_method", lambda *a, **k: InstanceResult(next(rows)))
    monkeypatch.setattr(runner, "load_split", lambda *a, **k: Split(np.zeros((len(HAND), 4)), np.zeros(len(HAND), int)))
    cfg = parse_config({"name": "s", "networks": [str(path)], "bounds": ["basic"], "executor": "serial",
                        "images": {"count": len(HAND), "correctly_classified": False}})
    summary = runner.run_batch(cfg, results_dir=tmp_path / "res")
    assert summary.ran == len(HAND) and summary.solved == sum(s for _, _, s in HAND) == 2
