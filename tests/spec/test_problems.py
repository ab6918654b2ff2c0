"""ProblemSpec and SolverSettings refuse values out of range (NaN included) naming the field, and a
spec refuses what it cannot ask of a network and an image: a target that is the label or no output."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advmilp.errors import InvalidValue
from advmilp.spec.problems import InvalidInstance, ProblemSpec, SolverSettings
from advmilp.spec.rows import INVALID, is_solved


@pytest.mark.parametrize("kwargs,field", [
    (dict(ratio=math.nan), "ratio"), (dict(ratio=0.9), "ratio"), (dict(epsilon=-0.5), "epsilon"),
    (dict(epsilon=math.nan), "epsilon"), (dict(margin=-0.5), "margin"), (dict(margin=math.inf), "margin"),
    (dict(l1_budget=0), "l1_budget"), (dict(linf_cap=math.nan), "linf_cap"), (dict(factor=1.0), "factor"),
    (dict(target=-1), "target"), (dict(target=True), "target"), (dict(target=2.0), "target"),
    (dict(kind="feature", layer=0), "layer"), (dict(kind="feature", layer=1, unit=-1), "unit"),
    (dict(kind="max-target"), "target"),
])
def test_problem_values_out_of_range(kwargs, field):
    with pytest.raises(InvalidValue) as info:
        ProblemSpec(**kwargs)
    assert info.value.field == field and str(info.value).startswith(field)


@pytest.mark.parametrize("kwargs,field", [
    (dict(time_limit=0), "time_limit"), (dict(time_limit=-1), "time_limit"), (dict(time_limit=math.nan), "time_limit"),
    (dict(time_limit=math.inf), "time_limit"), (dict(threads=0), "threads"), (dict(threads=1.5), "threads"),
    (dict(gap_rel=-5), "gap_rel"), (dict(gap_rel=math.nan), "gap_rel"), (dict(gap_rel=1.0), "gap_rel"),
    (dict(name="cplex"), "name"),
])
def test_solver_values_out_of_range(kwargs, field):
    with pytest.raises(InvalidValue) as info:
        SolverSettings(**kwargs)
    assert info.value.field == field


def test_solver_time_limit_is_seconds_as_a_float():
    assert SolverSettings(time_limit=60).time_limit == 60.0 and isinstance(SolverSettings(time_limit=60).time_limit, float)


def test_check_for_a_network_and_an_image():
    sizes = [784, 8, 8, 10]
    ProblemSpec("targeted").check_for(sizes, 2)                 # default target 7
    ProblemSpec("targeted", target=3).check_for(sizes, 2)
    with pytest.raises(InvalidInstance, match="2 is the image's label"):
        ProblemSpec("targeted", target=2).check_for(sizes, 2)
    with pytest.raises(InvalidInstance, match="11 is not an output"):
        ProblemSpec("targeted", target=11).check_for(sizes, 2)
    with pytest.raises(InvalidInstance, match="is the image's label"):
        ProblemSpec("targeted", target_offset=10).check_for(sizes, 4)
    with pytest.raises(InvalidInstance, match="3 is the image's label"):
        ProblemSpec("max-target", target=3).check_for(sizes, 3)
    ProblemSpec("untargeted").check_for(sizes, 2)
    ProblemSpec("feature", layer=2, unit=7).check_for(sizes)
    with pytest.raises(InvalidValue, match="hidden layer 1..2"):
        ProblemSpec("feature", layer=3).check_for(sizes)
    with pytest.raises(InvalidValue, match="0..7"):
        ProblemSpec("feature", layer=1, unit=8).check_for(sizes)
    with pytest.raises(InvalidValue, match="0..9"):
        ProblemSpec("feature", objective="diff", unit=10).check_for(sizes)


@pytest.mark.parametrize("method", ["milp", "tight", "fast", "cdh"])
def test_an_instance_whose_target_is_its_label_is_an_invalid_row(identity_net, method):
    """What a batch records for it: status invalid, never solved, the reason in the message."""
    from advmilp.bounds.compute import interval_bounds
    from advmilp.methods.registry import run_method

    res = run_method(method, identity_net, interval_bounds(identity_net), ProblemSpec("targeted", target=0),
                     SolverSettings(time_limit=10), np.array([0.8, 0.2]), 0, 5)
    assert res.row["status"] == INVALID and not is_solved(res.row) and res.witness is None
    assert res.row["method"] == method and res.row["image_index"] == 5 and "label" in res.row["message"]
