"""The only module that talks to a solver.  It knows nothing of what a model means.

HiGHS (through PuLP's highspy interface) is the default.  PuLP's own result handling is
bypassed for HiGHS: it maps "time limit reached" to Optimal, raises KeyError on some
statuses and has no warm start.  We let PuLP load the model into ``highspy.Highs``, pass a
warm start with ``setSolution``, run, and read status, incumbent, dual bound, gap and nodes
from HiGHS itself.  Objective and bound are returned in the model's own sense (PuLP negates
a maximisation and drops the objective's constant; both are undone here).

CBC, SCIP and Gurobi are reachable through PuLP when installed (``solver="cbc"`` ...), with
status and incumbent from PuLP and, where the interface exposes them, bound and nodes.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np
import pulp

from advmilp.errors import AdvmilpError

SOLVERS = ("highs", "cbc", "scip", "gurobi")

# Statuses in SolveResult.status
OPTIMAL, TIME_LIMIT, INFEASIBLE, UNBOUNDED, INTERRUPTED, LIMIT, ERROR = (
    "optimal", "time_limit", "infeasible", "unbounded", "interrupted", "limit", "error")


@dataclass
class SolveResult:
    status: str
    objective: float          # incumbent objective (nan if none)
    bound: float              # proven bound on the optimum (nan if unknown)
    gap_pct: float            # 100·|objective − bound| / |objective|; 100 without incumbent
    nodes: float              # branch-and-bound nodes (nan if unknown)
    time_s: float             # wall time of load + solve
    values: dict[str, float] | None   # variable name → value of the incumbent
    solver: str = "highs"
    solver_version: str = ""
    message: str = ""

    @property
    def has_solution(self) -> bool:
        return self.values is not None


def gap_percent(objective: float, bound: float) -> float:
    if not math.isfinite(objective):
        return 100.0
    if not math.isfinite(bound):
        return 100.0
    return 100.0 * abs(objective - bound) / max(abs(objective), 1e-9)


@functools.lru_cache(maxsize=None)
def solver_version(name: str = "highs") -> str:
    if name == "highs":
        import highspy

        h = highspy.Highs()
        return f"HiGHS {h.version()}"
    if name == "gurobi":
        try:
            import gurobipy

            return "Gurobi " + ".".join(map(str, gurobipy.gurobi.version()))
        except ImportError:
            return "Gurobi (unavailable)"
    return name


_HIGHS_STATUS = None


def _highs_status_map():
    global _HIGHS_STATUS
    if _HIGHS_STATUS is None:
        import highspy

        S = highspy.HighsModelStatus
        _HIGHS_STATUS = {
            S.kOptimal: OPTIMAL, S.kInfeasible: INFEASIBLE, S.kTimeLimit: TIME_LIMIT,
            S.kUnbounded: UNBOUNDED, S.kUnboundedOrInfeasible: UNBOUNDED,
            S.kInterrupt: INTERRUPTED, S.kIterationLimit: LIMIT, S.kSolutionLimit: LIMIT,
            S.kObjectiveBound: LIMIT, S.kObjectiveTarget: LIMIT, S.kMemoryLimit: LIMIT,
        }
    return _HIGHS_STATUS


def solve(prob: pulp.LpProblem, solver: str = "highs", time_limit: float | None = None,
          gap_rel: float | None = None, threads: int = 1, warm_start: dict[str, float] | None = None,
          options: dict | None = None, msg: bool = False) -> SolveResult:
    """Solve ``prob``; never raises for solver-side failures (status ``error`` instead)."""
    if solver not in SOLVERS:
        raise AdvmilpError(f"unknown solver {solver!r} (choose from {', '.join(SOLVERS)})")
    if solver == "highs":
        return _solve_highs(prob, time_limit, gap_rel, threads, warm_start, options or {}, msg)
    return _solve_pulp(prob, solver, time_limit, gap_rel, threads, warm_start, msg)


def _solve_highs(prob, time_limit, gap_rel, threads, warm_start, options, msg) -> SolveResult:
    api = pulp.HiGHS(msg=msg, timeLimit=time_limit, gapRel=gap_rel, threads=threads, **options)
    version = solver_version("highs")
    start = time.perf_counter()
    try:
        api.createAndConfigureSolver(prob)
        api.buildSolverModel(prob)
        h = prob.solverModel
        variables = prob.variables()
        if warm_start:
            idx = np.array([v.index for v in variables if v.name in warm_start], dtype=np.int32)
            val = np.array([warm_start[v.name] for v in variables if v.name in warm_start], dtype=np.float64)
            h.setSolution(len(idx), idx, val)
        h.run()
    except Exception as exc:  # solver-side failure becomes a result, not a crash
        return SolveResult(ERROR, math.nan, math.nan, 100.0, math.nan, time.perf_counter() - start,
                           None, "highs", version, f"{type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - start
    status = _highs_status_map().get(h.getModelStatus(), ERROR)
    if status == INTERRUPTED:  # highspy turned a Ctrl-C into a solver interrupt: stop the caller too
        raise KeyboardInterrupt("HiGHS solve interrupted")
    info = h.getInfo()
    sign = -1.0 if prob.sense == pulp.LpMaximize else 1.0
    const = float(prob.objective.constant) if prob.objective is not None else 0.0
    values = None
    objective = math.nan
    if info.primal_solution_status == 2:  # feasible point available
        col = h.getSolution().col_value
        values = {v.name: float(col[v.index]) for v in variables}
        for v in variables:
            v.varValue = values[v.name]
        objective = sign * float(info.objective_function_value) + const
    is_mip = any(v.cat in (pulp.LpInteger, pulp.LpBinary) for v in variables)
    if status == OPTIMAL and not is_mip:
        bound = objective
    elif is_mip and status in (OPTIMAL, TIME_LIMIT, LIMIT) and math.isfinite(info.mip_dual_bound):
        bound = sign * float(info.mip_dual_bound) + const
    else:
        bound = math.nan
    nodes = float(info.mip_node_count) if is_mip else 0.0
    gap = 0.0 if (status == OPTIMAL and not is_mip) else gap_percent(objective, bound)
    message = "" if status != ERROR else f"HiGHS model status {h.modelStatusToString(h.getModelStatus())}"
    return SolveResult(status, objective, bound, gap, nodes, elapsed, values, "highs", version, message)


def _solve_pulp(prob, solver, time_limit, gap_rel, threads, warm_start, msg) -> SolveResult:
    kwargs = dict(msg=msg, timeLimit=time_limit)
    if gap_rel is not None:
        kwargs["gapRel"] = gap_rel
    if warm_start:
        for v in prob.variables():
            if v.name in warm_start:
                v.setInitialValue(warm_start[v.name])
    if solver == "cbc":
        api = pulp.PULP_CBC_CMD(threads=threads, warmStart=bool(warm_start), **kwargs)
    elif solver == "scip":
        api = pulp.SCIP_PY(threads=threads, **kwargs) if pulp.SCIP_PY().available() else pulp.SCIP_CMD(**kwargs)
    else:
        api = pulp.GUROBI(threads=threads, warmStart=bool(warm_start), **kwargs)
    if not api.available():
        raise AdvmilpError(f"solver {solver!r} is not installed or not usable from PuLP")
    start = time.perf_counter()
    try:
        prob.solve(api)
    except Exception as exc:
        return SolveResult(ERROR, math.nan, math.nan, 100.0, math.nan, time.perf_counter() - start,
                           None, solver, solver_version(solver), f"{type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - start
    has_sol = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    if prob.status == pulp.LpStatusInfeasible or prob.sol_status == pulp.LpSolutionInfeasible:
        status = INFEASIBLE
    elif prob.status == pulp.LpStatusUnbounded:
        status = UNBOUNDED
    elif prob.sol_status == pulp.LpSolutionOptimal:
        status = OPTIMAL
    elif has_sol or prob.sol_status == pulp.LpSolutionNoSolutionFound:
        status = TIME_LIMIT
    else:
        status = ERROR
    values = {v.name: float(v.varValue) for v in prob.variables()} if has_sol else None
    objective = float(pulp.value(prob.objective)) if has_sol else math.nan
    bound, nodes = math.nan, math.nan
    if solver == "gurobi" and getattr(prob, "solverModel", None) is not None:
        model = prob.solverModel
        try:
            bound = float(model.ObjBound)
            nodes = float(model.NodeCount)
        except Exception:
            pass
    if status == OPTIMAL and math.isnan(bound):
        bound = objective  # solver-proven within its gap tolerance
    return SolveResult(status, objective, bound, gap_percent(objective, bound), nodes, elapsed,
                       values, solver, solver_version(solver), "")


@dataclass
class LPResult:
    status: str
    x: np.ndarray | None
    objective: float


def solve_lp(c: np.ndarray, A: np.ndarray, row_lo: np.ndarray, row_hi: np.ndarray,
             col_lo: np.ndarray, col_hi: np.ndarray, time_limit: float | None = None,
             presolve: bool = False) -> LPResult:
    """min c·x s.t. row_lo ≤ A x ≤ row_hi, col_lo ≤ x ≤ col_hi, with HiGHS on dense numpy arrays.

    The array path skips PuLP entirely: a 1,568-column LP loads and solves in milliseconds.
    Infinite bounds are given as ±inf.  Presolve is off by default: on the heuristic's region
    LPs (a few dozen dense rows) it costs more than it saves (measured: 2.3× slower on DNN1).
    """
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    if not presolve:
        h.setOptionValue("presolve", "off")
    if time_limit:
        h.setOptionValue("time_limit", float(time_limit))
    inf = highspy.kHighsInf
    n = len(c)
    lo = np.where(np.isfinite(col_lo), col_lo, -inf)
    hi = np.where(np.isfinite(col_hi), col_hi, inf)
    h.addVars(n, lo.astype(np.float64), hi.astype(np.float64))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), np.asarray(c, dtype=np.float64))
    A = np.asarray(A, dtype=np.float64)
    m = A.shape[0]
    if m:
        mask = A != 0
        counts = mask.sum(axis=1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        rows, cols = np.nonzero(mask)
        rl = np.where(np.isfinite(row_lo), row_lo, -inf).astype(np.float64)
        rh = np.where(np.isfinite(row_hi), row_hi, inf).astype(np.float64)
        h.addRows(m, rl, rh, int(mask.sum()), starts, cols.astype(np.int32), A[rows, cols])
    h.run()
    status = _highs_status_map().get(h.getModelStatus(), ERROR)
    if status != OPTIMAL:
        return LPResult(status, None, math.nan)
    x = np.array(h.getSolution().col_value, dtype=np.float64)
    return LPResult(status, x, float(h.getInfo().objective_function_value))


DUAL_SIMPLEX, PRIMAL_SIMPLEX = 1, 4   # HiGHS simplex_strategy values


class IncrementalLP:
    """A HiGHS LP grown column- and row-wise from numpy blocks, re-solved for many objectives.

    Re-solving after an objective change starts from the previous basis, so bounding every
    unit of a layer costs one LP factorisation plus a few pivots per unit.  Primal simplex:
    after a change of objective the old basis is still primal feasible (measured 2.5× faster
    than HiGHS' default dual simplex on the L1-ball bounds of DNN1).
    """

    def __init__(self, threads: int = 1):
        import highspy

        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("threads", threads)
        self.h.setOptionValue("simplex_strategy", PRIMAL_SIMPLEX)
        self.inf = highspy.kHighsInf
        self.n = 0

    def add_vars(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        lo = np.where(np.isfinite(lo), lo, -self.inf).astype(np.float64)
        hi = np.where(np.isfinite(hi), hi, self.inf).astype(np.float64)
        self.h.addVars(len(lo), lo, hi)
        idx = np.arange(self.n, self.n + len(lo))
        self.n += len(lo)
        return idx

    def add_rows(self, cols: np.ndarray, A: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Rows ``lo ≤ A @ x[cols] ≤ hi`` (A dense, one row per constraint)."""
        A = np.atleast_2d(np.asarray(A, dtype=np.float64))
        mask = A != 0
        counts = mask.sum(axis=1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        rows, c = np.nonzero(mask)
        lo = np.where(np.isfinite(lo), lo, -self.inf).astype(np.float64)
        hi = np.where(np.isfinite(hi), hi, self.inf).astype(np.float64)
        self.h.addRows(A.shape[0], lo, hi, int(mask.sum()), starts, np.asarray(cols)[c].astype(np.int32),
                       A[rows, c])

    def minimize(self, cols: np.ndarray, cost: np.ndarray) -> tuple[str, float]:
        """Minimise cost @ x[cols] (all other costs zero); returns (status, optimal value)."""
        full = np.zeros(self.n)
        full[np.asarray(cols)] = cost
        self.h.changeColsCost(self.n, np.arange(self.n, dtype=np.int32), full)
        self.h.run()
        status = _highs_status_map().get(self.h.getModelStatus(), ERROR)
        if status != OPTIMAL:
            return status, math.nan
        return status, float(self.h.getInfo().objective_function_value)


class WarmLP:
    """One HiGHS LP kept for a whole search and re-solved after changes of bounds, coefficients,
    rows and objective — each re-solve starts from the last (or a restored) basis.  The caller
    numbers columns and rows itself; nothing here knows what they mean.  Presolve off: the LPs
    are re-solved many times with small changes."""

    def __init__(self, threads: int = 1):
        import highspy

        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("threads", threads)
        self.h.setOptionValue("presolve", "off")
        self.inf = highspy.kHighsInf
        self._optimal = highspy.HighsModelStatus.kOptimal
        self._infeasible = highspy.HighsModelStatus.kInfeasible

    def _finite(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        return np.where(np.isposinf(v), self.inf, np.where(np.isneginf(v), -self.inf, v))

    def add_cols(self, lo: np.ndarray, hi: np.ndarray, cost: np.ndarray) -> None:
        n = len(lo)
        first = self.h.getNumCol()
        self.h.addVars(n, self._finite(lo), self._finite(hi))
        self.h.changeColsCost(n, np.arange(first, first + n, dtype=np.int32), np.asarray(cost, dtype=np.float64))

    def add_rows(self, lo: np.ndarray, hi: np.ndarray, starts: np.ndarray, index: np.ndarray,
                 value: np.ndarray) -> None:
        """Rows in compressed form (``starts`` into ``index``/``value``); ±inf allowed in lo/hi."""
        self.h.addRows(len(lo), self._finite(lo), self._finite(hi), len(index), np.asarray(starts, dtype=np.int32),
                       np.asarray(index, dtype=np.int32), np.asarray(value, dtype=np.float64))

    def add_row(self, cols: np.ndarray, vals: np.ndarray, lo: float, hi: float) -> None:
        self.h.addRow(float(self._finite(lo)), float(self._finite(hi)), len(cols), np.asarray(cols, dtype=np.int32),
                      np.asarray(vals, dtype=np.float64))

    def set_col_bounds(self, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        self.h.changeColsBounds(len(cols), np.asarray(cols, dtype=np.int32), self._finite(lo), self._finite(hi))

    def set_row_bounds(self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        self.h.changeRowsBounds(len(rows), np.asarray(rows, dtype=np.int32), self._finite(lo), self._finite(hi))

    def set_coeff(self, row: int, col: int, value: float) -> None:
        self.h.changeCoeff(int(row), int(col), float(value))

    def set_costs(self, cost: np.ndarray) -> None:
        n = len(cost)
        self.h.changeColsCost(n, np.arange(n, dtype=np.int32), np.asarray(cost, dtype=np.float64))

    def run(self, time_limit: float, primal: bool = False) -> tuple[str, float]:
        """(``optimal`` | ``infeasible`` | ``unknown``, objective).  ``primal``: primal simplex (after
        an objective change the old basis stays primal feasible), else dual simplex (after bound
        changes it stays dual feasible)."""
        # HiGHS' time_limit counts the object's run time summed over every run() so far
        self.h.setOptionValue("time_limit", self.h.getRunTime() + max(float(time_limit), 1e-3))
        self.h.setOptionValue("simplex_strategy", PRIMAL_SIMPLEX if primal else DUAL_SIMPLEX)
        self.h.run()
        st = self.h.getModelStatus()
        if st == self._infeasible:
            return "infeasible", math.inf
        if st != self._optimal:
            return "unknown", -math.inf
        return "optimal", float(self.h.getInfo().objective_function_value)

    def values(self) -> np.ndarray:
        return np.asarray(self.h.getSolution().col_value)

    def row_duals(self) -> np.ndarray:
        return np.asarray(self.h.getSolution().row_dual)

    def basis(self):
        return self.h.getBasis()

    def restore(self, basis) -> None:
        self.h.setBasis(basis)


class RelaxationLP:
    """The LP relaxation of a PuLP model in HiGHS, to be solved, cut and re-solved (warm).

    Rows added here stay in this LP only; the caller adds what it keeps to the PuLP model.
    """

    def __init__(self, prob: pulp.LpProblem):
        import highspy

        self.inf = highspy.kHighsInf
        self._optimal = highspy.HighsModelStatus.kOptimal
        api = pulp.HiGHS(msg=False, mip=False, threads=1)
        api.createAndConfigureSolver(prob)
        api.buildSolverModel(prob)       # numbers the variables (v.index)
        self.h = prob.solverModel
        prob.solverModel = None          # the PuLP model keeps no solver state
        self.index = {v.name: v.index for v in prob.variables()}

    def solve(self) -> np.ndarray | None:
        """Column values at the LP optimum (None if not optimal)."""
        self.h.setOptionValue("simplex_strategy", DUAL_SIMPLEX)     # after added rows (cuts)
        self.h.run()
        if self.h.getModelStatus() != self._optimal:
            return None
        return np.asarray(self.h.getSolution().col_value)

    def minimize(self, cols: np.ndarray, vals: np.ndarray) -> float | None:
        """Optimal value of min vals · x[cols] (the model's own objective replaced; None if the LP
        is not solved to optimality).  Re-solves start from the previous basis."""
        n = self.h.getNumCol()
        cost = np.zeros(n)
        cost[np.asarray(cols)] = vals
        self.h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
        self.h.setOptionValue("simplex_strategy", PRIMAL_SIMPLEX)   # the old basis stays primal feasible
        self.h.run()
        if self.h.getModelStatus() != self._optimal:
            return None
        return float(self.h.getInfo().objective_function_value)

    def add_row(self, cols: np.ndarray, vals: np.ndarray, upper: float) -> None:
        """vals · x[cols] ≤ upper."""
        self.h.addRow(-self.inf, float(upper), len(cols), np.asarray(cols, dtype=np.int32),
                      np.asarray(vals, dtype=np.float64))

