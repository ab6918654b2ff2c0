"""The one HiGHS LP class, and the one mapping of HiGHS' model status to advmilp's statuses.

`HighsLP` is a HiGHS LP kept alive across solves: columns and rows are added as numpy arrays,
bounds, coefficients and costs changed, and every ``run()`` starts from the last (or a restored)
basis.  The caller numbers columns and rows itself; nothing here knows what they mean.  Every
use of HiGHS as an LP solver goes through it:

- the phase search's node LP and the heuristic's region LPs (`search.phase_bb.PhaseLP`):
  many re-solves after bound changes — dual simplex (the old basis stays dual feasible);
- the L1-ball bounds (`bounds.ball`) and the bounds over a search problem's relaxation
  (`search.tighten`): one LP, many objectives (`minimize`) — primal simplex (after an
  objective change the old basis stays primal feasible; measured 2.5× faster than dual simplex
  on the ball bounds of DNN1);
- the LP relaxation of a PuLP model (`solvers.pulp.relaxation_lp`), solved, cut and re-solved.

Set-up is the same for all (output off, one thread); presolve is off unless asked for (LPs
re-solved after small changes gain nothing from it; on the heuristic's small dense LPs it cost
2.3× on DNN1), and ±inf bounds are mapped to HiGHS' infinity in one place (`_finite`).

Three things every HiGHS object of advmilp shares, in one place here:

- `new_highs`: HiGHS prints its banner ("Running HiGHS … Copyright …") to file descriptor 1 when
  the first ``highspy.Highs`` of a process is constructed, before ``output_flag`` can be set; it
  broke the progress bar and ``attack``'s output.  The first one is constructed with fd 1 on
  /dev/null.  Every Highs of advmilp — and PuLP's, which `solvers.pulp` makes only after calling
  `new_highs` — comes after it.
- `run_cancellable`: highspy's ``run()`` holds the main thread (with the GIL released) until HiGHS
  returns, so Ctrl-C acted only then (18 s measured).  A long solve runs in HiGHS' solver thread
  instead and is cancelled through its interrupt callback on KeyboardInterrupt, which is re-raised.
  That costs time per solve (a thread, a Python callback per simplex iteration): the phase search
  on DNN3 took 40 % longer with every LP run so, the relaxation tightening 17 % more CPU.  So
  `HighsLP` runs cancellable only the solves likely to be long — the first (cold) solve, and any
  solve after one that took `LONG_LP_S` or more; between two short solves Python sees Ctrl-C.
- deadlines (`solvers.clock`): ``run(deadline=...)`` cuts an LP's time limit to the time left.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import math
import os
import sys
import time

import numpy as np

from advmilp.solvers.clock import solve_limit
from advmilp.spec.rows import ERROR, INFEASIBLE, INTERRUPTED, LIMIT, OPTIMAL, TIME_LIMIT, UNBOUNDED

DUAL_SIMPLEX, PRIMAL_SIMPLEX = 1, 4   # HiGHS simplex_strategy values
LONG_LP_S = 0.1                       # a solve this long makes the next one run cancellable
STOP_GRACE_S = 1.0                    # after a Ctrl-C, how long a solve may take to stop before it is abandoned

_STATUS: dict | None = None


def status_of(model_status) -> str:
    """advmilp's status for a ``highspy.HighsModelStatus`` (``error`` for anything unexpected)."""
    global _STATUS
    if _STATUS is None:
        import highspy

        S = highspy.HighsModelStatus
        _STATUS = {
            S.kOptimal: OPTIMAL, S.kInfeasible: INFEASIBLE, S.kTimeLimit: TIME_LIMIT,
            S.kUnbounded: UNBOUNDED, S.kUnboundedOrInfeasible: UNBOUNDED,
            S.kInterrupt: INTERRUPTED, S.kIterationLimit: LIMIT, S.kSolutionLimit: LIMIT,
            S.kObjectiveBound: LIMIT, S.kObjectiveTarget: LIMIT, S.kMemoryLimit: LIMIT,
        }
    return _STATUS.get(model_status, ERROR)


@functools.cache
def swallow_banner() -> None:
    """Call before anything (PuLP) constructs a ``highspy.Highs``.  Constructs the process' first ``highspy.Highs`` (the one that prints the banner) with file
    descriptor 1 on /dev/null; once per process."""
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        highspy.Highs()
        try:   # anything HiGHS left in C's stdout buffer goes to /dev/null too
            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError, TypeError):   # no C library to ask (Windows): nothing buffered to drop
            pass
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def new_highs():
    """A new ``highspy.Highs`` with output off; never prints HiGHS' banner."""
    import highspy

    swallow_banner()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


@functools.lru_cache(maxsize=None)
def solver_version(name: str = "highs") -> str:
    """The name and version of a MILP solver PuLP can drive, as the result rows record it (``HiGHS 1.x``);
    here, beside HiGHS, so that reading it never imports PuLP."""
    if name == "highs":
        return f"HiGHS {new_highs().version()}"
    if name == "gurobi":
        try:
            import gurobipy

            return "Gurobi " + ".".join(map(str, gurobipy.gurobi.version()))
        except ImportError:
            return "Gurobi (unavailable)"
    return name


def run_cancellable(h) -> None:
    """``h.run()`` in HiGHS' solver thread, cancelled if Ctrl-C arrives: the KeyboardInterrupt is
    re-raised once HiGHS has stopped — within a fraction of a second where HiGHS polls its interrupt
    callback (simplex iterations, the MIP's root and nodes).  Its sub-MIPs (primal heuristics at the
    root) do not poll it and ran 30 s on after a Ctrl-C on DNN5's thesis model; after `STOP_GRACE_S`
    the solve is abandoned (`_abandon`) and the KeyboardInterrupt re-raised all the same."""
    h.HandleUserInterrupt = True        # registers the callbacks through which cancelSolve stops HiGHS
    try:
        h.startSolve()
        while not h.wait(0.05)[0]:
            pass
    except KeyboardInterrupt:           # also while starting: never leave HiGHS running unnoticed
        h.cancelSolve()
        give_up = time.perf_counter() + STOP_GRACE_S
        while not h.wait(0.05)[0]:
            if time.perf_counter() > give_up:
                _abandon(h)
                raise
        h.HandleUserInterrupt = False
        raise
    h.HandleUserInterrupt = False       # the callbacks cost a Python call per simplex iteration: off for
    #                                     the solves run directly


_ABANDONED: list = []    # solves still running after a Ctrl-C, kept alive until the process exits


def _abandon(h) -> None:
    """Leave a cancelled solve that has not stopped running in its thread.  A process that exits
    normally while HiGHS runs in another thread aborts in C++ (``terminate called without an active
    exception``, status 134), so once one is abandoned the process ends with ``os._exit(130)`` (the
    status of a Ctrl-C) after Python's other exit handlers, its output flushed."""
    if not _ABANDONED:
        atexit.register(_exit_now)
    _ABANDONED.append(h)


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # closed or broken: nothing more can be written anyway
            pass
    os._exit(130)


class HighsLP:
    """One HiGHS LP, re-solved warm after changes of bounds, coefficients, rows and objective.

    ``highs``: an already loaded ``highspy.Highs`` to adopt (its options are kept, except presolve
    when ``presolve`` is False); otherwise a new empty one with output off, ``threads`` threads and
    no simplex scaling.  ``presolve`` False turns HiGHS' presolve off, True leaves HiGHS' default.  The first
    solve, and every solve after one of `LONG_LP_S` or more, runs through `run_cancellable`."""

    def __init__(self, threads: int = 1, presolve: bool = False, highs=None):
        import highspy

        if highs is None:
            highs = new_highs()
            highs.setOptionValue("threads", threads)
            # no scaling: HiGHS scales and unscales the matrix on every run(), an eighth of a warm re-solve
            # of a node LP, and the thesis networks' searches took 10 % fewer nodes unscaled (RESULTS.md,
            # twenty-fourth session)
            highs.setOptionValue("simplex_scale_strategy", 0)
        if not presolve:
            highs.setOptionValue("presolve", "off")
        self.h = highs
        self.inf = highspy.kHighsInf
        self.last_solve_s = math.inf          # the first solve runs cancellable

    @property
    def n_cols(self) -> int:
        return self.h.getNumCol()

    @property
    def n_nonzeros(self) -> int:
        """Nonzeros of the constraint matrix."""
        return int(self.h.getNumNz())

    def _finite(self, v) -> np.ndarray:
        """float64 array with ±inf replaced by HiGHS' infinity."""
        v = np.asarray(v, dtype=np.float64)
        return np.where(np.isposinf(v), self.inf, np.where(np.isneginf(v), -self.inf, v))

    def add_cols(self, lo: np.ndarray, hi: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """Columns with bounds [lo, hi] (±inf allowed) and costs; returns their indices."""
        n = len(lo)
        first = self.h.getNumCol()
        cols = np.arange(first, first + n, dtype=np.int32)
        self.h.addVars(n, self._finite(lo), self._finite(hi))
        self.h.changeColsCost(n, cols, np.asarray(cost, dtype=np.float64))
        return cols

    def add_rows(self, lo: np.ndarray, hi: np.ndarray, starts: np.ndarray, index: np.ndarray,
                 value: np.ndarray) -> None:
        """Rows in compressed form (``starts`` into ``index``/``value``); ±inf allowed in lo/hi."""
        self.h.addRows(len(lo), self._finite(lo), self._finite(hi), len(index), np.asarray(starts, dtype=np.int32),
                       np.asarray(index, dtype=np.int32), np.asarray(value, dtype=np.float64))

    def add_row(self, cols: np.ndarray, vals: np.ndarray, lo: float, hi: float) -> None:
        """lo ≤ vals · x[cols] ≤ hi."""
        self.h.addRow(float(self._finite(lo)), float(self._finite(hi)), len(cols), np.asarray(cols, dtype=np.int32),
                      np.asarray(vals, dtype=np.float64))

    def set_col_bounds(self, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        self.h.changeColsBounds(len(cols), np.asarray(cols, dtype=np.int32), self._finite(lo), self._finite(hi))

    def set_row_bounds(self, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        self.h.changeRowsBounds(len(rows), np.asarray(rows, dtype=np.int32), self._finite(lo), self._finite(hi))

    def set_coeff(self, row: int, col: int, value: float) -> None:
        self.h.changeCoeff(int(row), int(col), float(value))

    def set_costs(self, cost: np.ndarray) -> None:
        """The costs of the first ``len(cost)`` columns."""
        n = len(cost)
        self.h.changeColsCost(n, np.arange(n, dtype=np.int32), np.asarray(cost, dtype=np.float64))

    def run(self, time_limit: float | None = None, primal: bool = False,
            deadline: float | None = None, ipm: bool = False) -> tuple[str, float]:
        """Solve from the current basis: (status, objective).  The objective is the optimum if
        ``optimal``, +inf if ``infeasible`` and −inf otherwise (nothing proven).  ``primal``: primal
        simplex (after an objective change the old basis stays primal feasible), else dual simplex
        (after bound changes it stays dual feasible).  ``ipm``: HiGHS' interior point method with
        crossover (a basis for the next solves) — for an LP without a useful basis yet.  ``time_limit``
        (seconds, None: none) counts from this call and is cut to the time left before ``deadline``
        (`solvers.clock`)."""
        time_limit = solve_limit(time_limit, deadline)
        if time_limit is None:
            self.h.setOptionValue("time_limit", self.inf)
        else:   # HiGHS' time_limit counts the object's run time summed over every run() so far
            self.h.setOptionValue("time_limit", self.h.getRunTime() + max(float(time_limit), 1e-3))
        self.h.setOptionValue("solver", "ipm" if ipm else "simplex")
        self.h.setOptionValue("simplex_strategy", PRIMAL_SIMPLEX if primal else DUAL_SIMPLEX)
        start = time.perf_counter()
        if self.last_solve_s >= LONG_LP_S:
            run_cancellable(self.h)
        else:
            self.h.run()
        self.last_solve_s = time.perf_counter() - start
        status = status_of(self.h.getModelStatus())
        if status == OPTIMAL:
            return status, float(self.h.getInfo().objective_function_value)
        return status, (math.inf if status == INFEASIBLE else -math.inf)

    def minimize(self, cols: np.ndarray, vals: np.ndarray, time_limit: float | None = None,
                 deadline: float | None = None) -> tuple[str, float]:
        """min vals · x[cols] (every other cost set to zero) by primal simplex from the current
        basis: `run`'s (status, objective)."""
        cost = np.zeros(self.n_cols)
        cost[np.asarray(cols)] = vals
        self.set_costs(cost)
        return self.run(time_limit, primal=True, deadline=deadline)

    def values(self) -> np.ndarray:
        """Column values of the last solve."""
        return np.asarray(self.h.getSolution().col_value)

    def row_duals(self) -> np.ndarray:
        """Row duals of the last solve (HiGHS' convention: reduced costs = c − Aᵀ·duals)."""
        return np.array(self.h.allConstrDuals())

    def dual_ray(self) -> tuple[bool, np.ndarray]:
        """After an ``infeasible`` solve: (whether HiGHS has a dual ray, the ray over the rows).  HiGHS'
        orientation: with r = Aᵀy, the maximum of r·x over the column bounds is below the least y·(row
        activity) the row bounds allow (`tests/search/test_pricing.py`)."""
        _, has, ray = self.h.getDualRay()
        return bool(has), np.asarray(ray, dtype=np.float64)

    def basis(self):
        """The current basis (to `restore` later)."""
        return self.h.getBasis()

    def restore(self, basis) -> None:
        self.h.setBasis(basis)
