"""The one HiGHS LP class on LPs solved by hand, and the one status mapping."""

import math

import highspy
import numpy as np
import pytest

from tests.nets import dense_rows

from advmilp.solvers.highs import HighsLP, status_of
from advmilp.spec.rows import ERROR, INFEASIBLE, INTERRUPTED, LIMIT, OPTIMAL, TIME_LIMIT, UNBOUNDED


def two_variable_lp() -> HighsLP:
    """min x + y  s.t.  x + 2y ≥ 2,  3x + y ≥ 3,  x, y ≥ 0.

    Vertices (0, 3), (2, 0) and the rows' crossing (0.8, 0.6): optimum 1.4 there.  Duals λ with
    (1, 1) = λ1 (1, 2) + λ2 (3, 1):  λ = (0.4, 0.2)."""
    lp = HighsLP()
    cols = lp.add_cols(np.zeros(2), np.full(2, np.inf), np.ones(2))
    assert list(cols) == [0, 1]
    lp.add_rows(np.array([2.0, 3.0]), np.array([np.inf, np.inf]), *dense_rows(np.array([[1.0, 2.0], [3.0, 1.0]])))
    return lp


def test_optimum_and_duals_by_hand():
    lp = two_variable_lp()
    status, obj = lp.run(10.0)
    assert status == OPTIMAL and obj == pytest.approx(1.4)
    assert lp.values() == pytest.approx([0.8, 0.6])
    assert lp.row_duals() == pytest.approx([0.4, 0.2])


def test_warm_resolve_after_a_bound_change_and_restored_basis():
    lp = two_variable_lp()
    lp.run()
    basis = lp.basis()
    # x ≤ 0.5: y ≥ max(0.75, 1.5) = 1.5, optimum 2.0 at (0.5, 1.5)
    lp.set_col_bounds(np.array([0]), np.array([0.0]), np.array([0.5]))
    status, obj = lp.run()
    assert status == OPTIMAL and obj == pytest.approx(2.0) and lp.values() == pytest.approx([0.5, 1.5])
    # back to x ≥ 0 free above, from the first optimum's basis: the first optimum again
    lp.set_col_bounds(np.array([0]), np.array([0.0]), np.array([np.inf]))
    lp.restore(basis)
    assert lp.run() == (OPTIMAL, pytest.approx(1.4))
    # a changed coefficient: x + 2y ≥ 2 becomes x + 4y ≥ 2; crossing with 3x + y ≥ 3 at (10/11, 3/11)
    lp.set_coeff(0, 1, 4.0)
    assert lp.run()[1] == pytest.approx(13 / 11)


def test_infeasible_and_infinite_bounds():
    lp = two_variable_lp()
    lp.set_col_bounds(np.array([0, 1]), np.array([0.0, 0.0]), np.array([0.1, 0.1]))   # x + 2y ≤ 0.3 < 2
    assert lp.run() == (INFEASIBLE, math.inf)
    # a free column (−inf, inf) and a row with −inf below: min z s.t. −5 ≤ z, z ≤ 7 as rows
    free = HighsLP()
    free.add_cols(np.array([-np.inf]), np.array([np.inf]), np.array([1.0]))
    free.add_row(np.array([0]), np.array([1.0]), -5.0, np.inf)
    free.add_row(np.array([0]), np.array([1.0]), -np.inf, 7.0)
    assert free.run() == (OPTIMAL, pytest.approx(-5.0))
    free.set_costs(np.array([-1.0]))                                                   # max z
    assert free.run(primal=True) == (OPTIMAL, pytest.approx(-7.0))
    free.set_row_bounds(np.array([1]), np.array([-np.inf]), np.array([np.inf]))       # no upper row: unbounded
    status, obj = free.run()
    assert status == UNBOUNDED and obj == -math.inf


def test_minimize_replaces_the_objective():
    lp = two_variable_lp()
    lp.run()
    # min y over the same region: y = 0 at x ≥ 2;  max y (min −y) is unbounded
    assert lp.minimize(np.array([1]), np.array([1.0])) == (OPTIMAL, pytest.approx(0.0))
    # min 3x + y: the row 3x + y ≥ 3 itself: 3
    assert lp.minimize(np.array([0, 1]), np.array([3.0, 1.0])) == (OPTIMAL, pytest.approx(3.0))


def test_dense_rows_drops_zeros():
    starts, index, value = dense_rows(np.array([[0.0, 2.0, 0.0], [1.0, 0.0, -3.0]]))
    assert list(starts) == [0, 1] and list(index) == [1, 0, 2] and list(value) == [2.0, 1.0, -3.0]


def test_status_mapping():
    S = highspy.HighsModelStatus
    expected = {S.kOptimal: OPTIMAL, S.kInfeasible: INFEASIBLE, S.kTimeLimit: TIME_LIMIT,
                S.kUnbounded: UNBOUNDED, S.kUnboundedOrInfeasible: UNBOUNDED, S.kInterrupt: INTERRUPTED,
                S.kIterationLimit: LIMIT, S.kSolutionLimit: LIMIT, S.kObjectiveBound: LIMIT,
                S.kObjectiveTarget: LIMIT, S.kMemoryLimit: LIMIT, S.kSolveError: ERROR, S.kNotset: ERROR}
    for model_status, status in expected.items():
        assert status_of(model_status) == status, model_status


def test_options_per_use():
    # presolve off unless asked for; the time limit counts from each run() (HiGHS sums run times)
    assert HighsLP().h.getOptionValue("presolve")[1] == "off"
    assert HighsLP(presolve=True).h.getOptionValue("presolve")[1] == "choose"
    lp = two_variable_lp()
    lp.run(5.0)
    before = lp.h.getRunTime()
    lp.run(5.0, primal=True)
    assert lp.h.getOptionValue("time_limit")[1] == pytest.approx(before + 5.0)
    assert lp.h.getOptionValue("simplex_strategy")[1] == 4      # primal simplex
    lp.run()
    assert lp.h.getOptionValue("time_limit")[1] == math.inf
    assert lp.h.getOptionValue("simplex_strategy")[1] == 1      # dual simplex
