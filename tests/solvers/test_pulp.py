"""PuLP models: the MILP `solve` and the LP relaxation, on models solved by hand."""

import math

import numpy as np
import pulp
import pytest

from advmilp.errors import AdvmilpError
from advmilp.solvers.highs import solver_version
from advmilp.solvers.pulp import relaxation_lp, solve
from advmilp.spec.rows import gap_percent
from advmilp.spec.rows import INFEASIBLE, OPTIMAL


def knapsack() -> pulp.LpProblem:
    """max x + y + 10  s.t.  2x + 2y ≤ 3,  x, y ∈ {0, 1}:  optimum 11 (one of them), LP relaxation 11.5."""
    prob = pulp.LpProblem("k", pulp.LpMaximize)
    x, y = pulp.LpVariable("x", cat="Binary"), pulp.LpVariable("y", cat="Binary")
    prob += x + y + 10
    prob += 2 * x + 2 * y <= 3
    return prob


def test_milp_by_hand_in_the_models_own_sense():
    res = solve(knapsack(), time_limit=10)
    assert res.status == OPTIMAL and res.has_solution
    assert res.objective == pytest.approx(11.0) and res.bound == pytest.approx(11.0, abs=1e-6)
    assert res.values["x"] + res.values["y"] == pytest.approx(1.0)
    assert res.gap_pct == pytest.approx(0.0, abs=1e-6)
    assert res.solver_version == solver_version("highs") and res.solver_version.startswith("HiGHS")


def test_infeasible_milp_and_unknown_solver():
    prob = knapsack()
    prob += pulp.lpSum(prob.variables()) >= 2
    res = solve(prob, time_limit=10)
    assert res.status == INFEASIBLE and not res.has_solution and math.isnan(res.objective)
    with pytest.raises(AdvmilpError, match="unknown solver"):
        solve(knapsack(), solver="nope")


def test_gap_percent_by_hand():
    assert gap_percent(10.0, 9.0) == pytest.approx(10.0)
    assert gap_percent(-4.0, -5.0) == pytest.approx(25.0)
    assert gap_percent(math.nan, 1.0) == 100.0 and gap_percent(1.0, -math.inf) == 100.0


def test_relaxation_lp_solves_cuts_and_minimizes():
    prob = knapsack()
    lp, index = relaxation_lp(prob)
    assert prob.solverModel is None and set(index) == {"x", "y"}
    cols = np.array([index["x"], index["y"]])
    # PuLP loads max (x + y) as min −(x + y) without the constant: −1.5 over the relaxation
    assert lp.run() == (OPTIMAL, pytest.approx(-1.5))
    assert lp.minimize(cols, np.array([-1.0, -1.0])) == (OPTIMAL, pytest.approx(-1.5))
    lp.add_row(cols, np.array([1.0, 1.0]), -np.inf, 1.0)          # the cut x + y ≤ 1
    assert lp.run(primal=True) == (OPTIMAL, pytest.approx(-1.0))
    assert lp.values()[cols].sum() == pytest.approx(1.0)
    assert len(prob.constraints) == 1                              # the PuLP model is untouched


def test_not_solved_is_never_infeasible():
    """PuLP maps "not solved" (Gurobi's and CBC's time limit without a point) to the solution status
    "infeasible"; a Gurobi run that timed out was once recorded as a proof of infeasibility."""
    from advmilp.solvers.pulp import pulp_status
    from advmilp.spec.rows import ERROR, INTERRUPTED, TIME_LIMIT

    prob = knapsack()
    prob.assignStatus(pulp.LpStatusNotSolved)
    assert prob.sol_status == pulp.LpSolutionInfeasible            # PuLP's own mapping, the trap
    assert pulp_status(prob.status, prob.sol_status, False) == TIME_LIMIT
    prob.assignStatus(pulp.LpStatusInfeasible)
    assert pulp_status(prob.status, prob.sol_status, False) == INFEASIBLE
    # Gurobi: its own codes decide (9 time limit, 3 infeasible, 2 optimal, 11 interrupted, 12 numeric)
    assert pulp_status(pulp.LpStatusNotSolved, pulp.LpSolutionInfeasible, False, gurobi_status=9) == TIME_LIMIT
    assert pulp_status(pulp.LpStatusNotSolved, pulp.LpSolutionIntegerFeasible, True, gurobi_status=9) == TIME_LIMIT
    assert pulp_status(pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible, False, gurobi_status=3) == INFEASIBLE
    assert pulp_status(pulp.LpStatusOptimal, pulp.LpSolutionOptimal, True, gurobi_status=2) == OPTIMAL
    assert pulp_status(pulp.LpStatusNotSolved, pulp.LpSolutionInfeasible, False, gurobi_status=11) == INTERRUPTED
    assert pulp_status(pulp.LpStatusNotSolved, pulp.LpSolutionInfeasible, False, gurobi_status=12) == ERROR
