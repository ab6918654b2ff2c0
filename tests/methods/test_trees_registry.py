"""trees-milp through the registry: the same row as `run_trees`, and a method for the other kind of
model (network or tree ensemble) refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from advmilp.bounds.compute import Bounds, interval_bounds
from advmilp.errors import AdvmilpError
from advmilp.methods.registry import METHODS, check_supported, run_method
from advmilp.methods.trees import run_trees
from advmilp.spec.problems import ProblemSpec, SolverSettings
from tests.trees_material import hand_tree

X_BAR = np.array([0.2, 0.1])
SETTINGS = SolverSettings(time_limit=30)
NONE = Bounds([], [], "none")


def test_trees_milp_entry():
    m = METHODS["trees-milp"]
    assert m.exact and m.trees and not m.needs_pool and not m.needs_masks
    assert m.supports("targeted") and m.supports("untargeted", "linf") and not m.supports("max-target")
    assert not m.supports("targeted", "l0") and m.uses_solver("highs") and not m.uses_solver("cbc")


def test_the_registry_runs_run_trees():
    ens = hand_tree()
    for spec in (ProblemSpec("targeted", target=1), ProblemSpec("untargeted", norm="linf")):
        via = run_method("trees-milp", ens, NONE, spec, SETTINGS, X_BAR, 0, 7).row
        direct = run_trees(ens, spec, SETTINGS, X_BAR, 0, 7).row
        skip = ("time_s", "build_time_s", "started_at", "nodes")
        assert {k: v for k, v in via.items() if k not in skip} == {k: v for k, v in direct.items() if k not in skip}
        assert via["status"] == "optimal" and via["verified"] and via["bounds"] == "none"
    # a target equal to the label: an invalid row with the trees' problem text, never a solve
    row = run_method("trees-milp", ens, NONE, ProblemSpec("targeted", target=0), SETTINGS, X_BAR, 0, 7).row
    assert row["status"] == "invalid" and row["problem"] == "targeted argmax" and row["bounds"] == "none"


def test_a_method_for_the_other_kind_of_model_is_refused(identity_net):
    spec = ProblemSpec("targeted", target=1)
    for name in ("milp", "tight", "fast", "cdh"):
        with pytest.raises(AdvmilpError) as exc:
            run_method(name, hand_tree(), NONE, spec, SETTINGS, X_BAR, 0, 0)
        assert str(exc.value) == (f"method {name} attacks networks, not the tree ensemble hand-tree "
                                  "(methods for tree ensembles: trees-milp)")
    with pytest.raises(AdvmilpError) as exc:
        run_method("trees-milp", identity_net, interval_bounds(identity_net), spec, SETTINGS, X_BAR, 0, 0)
    assert str(exc.value) == ("method trees-milp attacks tree ensembles, not the network identity "
                              "(methods for networks: milp, tight, fast, cdh)")


def test_alternatives_are_named_among_the_same_kind_of_model():
    with pytest.raises(AdvmilpError, match=r"^method cdh does not solve untargeted problems \(methods that do: "
                                           r"milp, tight, fast\)$"):
        check_supported("cdh", "untargeted")
    with pytest.raises(AdvmilpError, match=r"^method trees-milp does not solve feature problems "
                                           r"\(no method for tree ensembles does\)$"):
        check_supported("trees-milp", "feature")
