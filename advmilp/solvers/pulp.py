"""Solving a PuLP model: the MILP `solve`, and a PuLP model's LP relaxation as a `HighsLP`.

HiGHS (through PuLP's highspy interface) is the default.  PuLP's own result handling is
bypassed for HiGHS: it maps "time limit reached" to Optimal, raises KeyError on some
statuses and has no warm start.  We let PuLP load the model into ``highspy.Highs``, pass a
warm start with ``setSolution``, run, and read status, incumbent, dual bound, gap and nodes
from HiGHS itself.  Objective and bound are returned in the model's own sense (PuLP negates
a maximisation and drops the objective's constant; both are undone here).  The HiGHS solve runs
cancellable (`solvers.highs.run_cancellable`: Ctrl-C stops it within a fraction of a second), and a
``deadline`` (`solvers.clock`) cuts its time limit to the time left.

CBC, SCIP and Gurobi are reachable through PuLP when installed (``solver="cbc"`` ...), with
status and incumbent from PuLP and, where the interface exposes them, bound and nodes.
This module (with `solvers.highs`) is the only one that talks to a solver; it knows nothing of
what a model means.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pulp

from advmilp.errors import AdvmilpError
from advmilp.interrupts import reraise_interrupt
from advmilp.solvers.clock import solve_limit
from advmilp.solvers.highs import HighsLP, run_cancellable, solver_version, status_of, swallow_banner
from advmilp.spec.rows import ERROR, INFEASIBLE, INTERRUPTED, LIMIT, OPTIMAL, TIME_LIMIT, UNBOUNDED, gap_percent

SOLVERS = ("highs", "cbc", "scip", "gurobi")


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


def solve(prob: pulp.LpProblem, solver: str = "highs", time_limit: float | None = None,
          gap_rel: float | None = None, threads: int = 1, warm_start: dict[str, float] | None = None,
          options: dict | None = None, msg: bool = False, deadline: float | None = None) -> SolveResult:
    """Solve ``prob``; never raises for solver-side failures (status ``error`` instead).  The time limit
    is ``time_limit`` cut to the time left before ``deadline``."""
    if solver not in SOLVERS:
        raise AdvmilpError(f"unknown solver {solver!r} (choose from {', '.join(SOLVERS)})")
    if solver == "highs":
        return _solve_highs(prob, time_limit, gap_rel, threads, warm_start, options or {}, msg, deadline)
    return _solve_pulp(prob, solver, _limit(time_limit, deadline), gap_rel, threads, warm_start, msg)


def _limit(time_limit: float | None, deadline: float | None) -> float | None:
    """The solve's time limit now: ``time_limit`` cut to the time left (at least 10 ms: past the
    deadline the solver stops at once with what the warm start gives)."""
    limit = solve_limit(time_limit, deadline)
    return None if limit is None else max(limit, 0.01)


def _solve_highs(prob, time_limit, gap_rel, threads, warm_start, options, msg, deadline) -> SolveResult:
    swallow_banner()
    api = pulp.HiGHS(msg=msg, gapRel=gap_rel, threads=threads, **options)
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
        limit = _limit(time_limit, deadline)   # set last: loading a large model into HiGHS takes time too
        h.setOptionValue("time_limit", h.getRunTime() + limit if limit is not None else math.inf)
        run_cancellable(h)
    except Exception as exc:  # solver-side failure becomes a result, not a crash
        reraise_interrupt(exc)   # ... a Ctrl-C that pybind11 turned into a TypeError does not
        return SolveResult(ERROR, math.nan, math.nan, 100.0, math.nan, time.perf_counter() - start,
                           None, "highs", version, f"{type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - start
    status = status_of(h.getModelStatus())
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
        reraise_interrupt(exc)
        return SolveResult(ERROR, math.nan, math.nan, 100.0, math.nan, time.perf_counter() - start,
                           None, solver, solver_version(solver), f"{type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - start
    has_sol = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    model = getattr(prob, "solverModel", None) if solver == "gurobi" else None
    status = pulp_status(prob.status, prob.sol_status, has_sol,
                         int(model.Status) if model is not None else None)
    values = {v.name: float(v.varValue) for v in prob.variables()} if has_sol else None
    objective = float(pulp.value(prob.objective)) if has_sol else math.nan
    bound, nodes = math.nan, math.nan
    if model is not None:
        try:
            bound = float(model.ObjBound)
            nodes = float(model.NodeCount)
        except Exception:
            pass
    if status == OPTIMAL and math.isnan(bound):
        bound = objective  # solver-proven within its gap tolerance
    return SolveResult(status, objective, bound, gap_percent(objective, bound), nodes, elapsed,
                       values, solver, solver_version(solver), "")


# Gurobi's own status codes (gurobipy GRB.*), read from the model: PuLP folds every limit into "not solved",
# which its constants then map to the solution status "infeasible"
GUROBI_STATUS = {2: OPTIMAL, 3: INFEASIBLE, 4: INFEASIBLE,    # 4: infeasible or unbounded (our models are bounded)
                 5: UNBOUNDED, 7: LIMIT, 8: LIMIT, 9: TIME_LIMIT, 10: LIMIT, 11: INTERRUPTED, 16: LIMIT}


def pulp_status(status: int, sol_status: int, has_solution: bool, gurobi_status: int | None = None) -> str:
    """One status (`spec.rows`) from what PuLP reports.  Infeasible only when the solver said so: PuLP maps
    "not solved" (a time limit reached without a point) to the solution status "infeasible"
    (`pulp.constants.LpStatusToSolution`), which is no proof of anything."""
    if gurobi_status is not None:
        found = GUROBI_STATUS.get(gurobi_status, ERROR)
        if found == OPTIMAL and not has_solution:
            return ERROR
        return found
    if status == pulp.LpStatusInfeasible:
        return INFEASIBLE
    if status == pulp.LpStatusUnbounded:
        return UNBOUNDED
    if sol_status == pulp.LpSolutionOptimal:
        return OPTIMAL
    if has_solution or status == pulp.LpStatusNotSolved:
        return TIME_LIMIT
    return ERROR


def relaxation_lp(prob: pulp.LpProblem) -> tuple[HighsLP, dict[str, int]]:
    """The LP relaxation of ``prob`` in HiGHS, to be solved, cut and re-solved warm, and the column
    of every variable (by name).  Rows added to it stay in that LP only; the caller adds what it
    keeps to the PuLP model.  HiGHS' presolve is left on its default, as PuLP configures it."""
    swallow_banner()
    api = pulp.HiGHS(msg=False, mip=False, threads=1)
    api.createAndConfigureSolver(prob)
    api.buildSolverModel(prob)       # numbers the variables (v.index)
    lp = HighsLP(presolve=True, highs=prob.solverModel)
    prob.solverModel = None          # the PuLP model keeps no solver state
    return lp, {v.name: v.index for v in prob.variables()}
