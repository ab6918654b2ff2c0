"""The result row: the one schema of what an instance reports, its statuses, and what "solved" means.

Every method (`advmilp.methods`) returns one row per instance, the experiment runner appends it to
``results/<name>/instances.csv`` with the columns of `ResultRow` in their order (`COLUMNS`), and
the reports, figures, progress counter and Python API read it back.  This module owns all of that:

* `ResultRow` — every column, in CSV order, with its unit and default;
* `KEY_COLUMNS` — the columns that identify an instance (resume skips rows with a recorded key);
* the statuses: the solver's ``OPTIMAL``, ``TIME_LIMIT``, ``INFEASIBLE``, ``UNBOUNDED``,
  ``INTERRUPTED``, ``LIMIT``; a heuristic's ``FOUND`` / ``NOT_FOUND``; ``ERROR`` for an instance that
  failed (an exception or a crashed worker); ``INVALID`` for one that cannot be asked (target = label);
* `is_solved` — the one definition of "solved": status optimal (an exact method proved it) or found
  (a heuristic produced one), **and** the witness passed float64/float32 verification;
* `as_bool` — the one rule that reads a truth value back from a CSV cell.

Why a dataclass and not a TypedDict: constructing a `ResultRow` checks the column names (a misspelt
column is a TypeError, not a silently empty CSV cell), fills every column a method does not produce
with its default (None, written as an empty cell) and normalises ``nodes`` to an int.  The pipeline
then carries rows as plain dicts (`ResultRow.as_dict`): they are pickled between worker processes,
updated step by step by the tight pipeline, and written by ``csv.DictWriter``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

# ---- statuses ------------------------------------------------------------------------------------
# what a solve (MILP or the phase search) ended with
OPTIMAL, TIME_LIMIT, INFEASIBLE, UNBOUNDED, INTERRUPTED, LIMIT = (
    "optimal", "time_limit", "infeasible", "unbounded", "interrupted", "limit")
# what a heuristic (no optimality proof) ended with
FOUND, NOT_FOUND = "found", "not_found"
# the instance failed: an exception in the method, or its worker process crashed
ERROR = "error"
# the instance cannot be asked (its target is its label, or not an output): never solved
INVALID = "invalid"
# an exact method ended before its time limit with a verified point and a bound it could not close
# (e.g. the solver's own optimum failed the exact forward-pass check): reported with its gap, not solved
UNPROVEN = "unproven"
# statuses that count as solved when the witness is verified: an exact method's proven optimum,
# a heuristic's verified adversarial example
SOLVED_STATUSES = (OPTIMAL, FOUND)

_TRUE = frozenset({"true", "t", "1", "1.0", "yes", "y"})


@dataclass(frozen=True)
class ResultRow:
    """One instance's result; the field order is the CSV column order.  Every field defaults to
    None (an empty CSV cell) except ``verified`` (False): error rows carry only what is known."""

    # the instance (KEY_COLUMNS) and its data
    network: str | None = None             # network name (architecture or file stem)
    network_hash: str | None = None        # Network.short_hash() of the weights
    method: str | None = None              # milp | tight | fast | cdh | cdh-<variant>
    bounds: str | None = None              # neuron bounds method: basic | improved | weak
    problem: str | None = None             # ProblemSpec.describe()
    image_index: int | None = None         # test-set index of x̄
    label: int | None = None               # true label of x̄
    target: int | None = None              # target class (targeted / max-target)
    # the outcome
    status: str | None = None              # one of the statuses above
    objective: float | None = None         # incumbent objective (L1 for attacks); nan without one
    bound: float | None = None             # proven bound on the optimum; nan if none
    gap_pct: float | None = None           # 100·|objective − bound|/|objective|; 100 without incumbent
    nodes: int | None = None               # branch-and-bound nodes (None if the solver does not say)
    time_s: float | None = None            # wall time of the method, everything included
    build_time_s: float | None = None      # building the model
    bounds_time_s: float | None = None     # computing the bounds it uses (cached: their first cost)
    binaries: int | None = None            # binaries of the model (unstable units)
    verified: bool = False                 # the witness passed float64 and float32 verification
    verify_note: str | None = None         # why verification failed, or where the reported point came from
    predicted: int | None = None           # argmax of the network at the witness
    ratio: float | None = None             # target / best other output at the witness (ReLU'd)
    l1: float | None = None                # ‖witness − x̄‖₁ recomputed from the pixels
    linf: float | None = None              # ‖witness − x̄‖∞ recomputed from the pixels
    # provenance
    solver: str | None = None              # highs | cbc | ... | advmilp-phase-bb | none (heuristics)
    solver_version: str | None = None
    threads: int | None = None
    time_limit: float | None = None        # seconds
    gap_rel: float | None = None
    advmilp_version: str | None = None
    git_sha: str | None = None
    host: str | None = None
    started_at: str | None = None          # local time, ISO 8601
    message: str | None = None             # solver message, restarts, fall-backs, errors
    witness: str | None = None             # witnesses/<slug>.npy, relative to the run directory
    # method-specific
    heuristic_l1: float | None = None      # tight/fast: L1 of the primal heuristic's point
    prep_time_s: float | None = None       # tight/fast: heuristic + ball bounds + bound tightening
    iterations: int | None = None          # cdh: local-search iterations
    escapes: int | None = None             # cdh: escapes from local optima
    cuts: int | None = None                # ideal ReLU cuts added at the root
    feature_value: float | None = None     # feature: the unit's value by forward() at the witness

    def __post_init__(self):
        if self.nodes is not None and not isinstance(self.nodes, int):
            nodes = float(self.nodes)
            object.__setattr__(self, "nodes", int(nodes) if math.isfinite(nodes) else None)

    def as_dict(self) -> dict[str, Any]:
        """The row as the plain dict the pipeline carries and the CSV writer writes."""
        return asdict(self)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ResultRow))
KEY_COLUMNS: tuple[str, ...] = ("network", "network_hash", "method", "bounds", "problem", "image_index")


def make_row(**values) -> dict[str, Any]:
    """A full row (every column, defaults for the missing ones) as a dict; unknown names raise TypeError."""
    return ResultRow(**values).as_dict()


def as_bool(value) -> bool:
    """A truth value from a CSV cell or a Python value: "True", "t", "1", "yes" ... are true;
    "False", "", None and NaN are false."""
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)


def gap_percent(objective: float, bound: float) -> float:
    """The relative gap of a result, in percent of its objective: |objective − bound| / max(|objective|, 1e-9);
    100 when either is not finite (no witness, or nothing proven)."""
    if not math.isfinite(objective):
        return 100.0
    if not math.isfinite(bound):
        return 100.0
    return 100.0 * abs(objective - bound) / max(abs(objective), 1e-9)


def is_solved(row: Mapping) -> bool:
    """The one definition of "solved": status optimal or found, and the witness verified.

    An unverified witness is never solved, whatever the solver said."""
    return str(row.get("status", "")).strip().lower() in SOLVED_STATUSES and as_bool(row.get("verified"))
