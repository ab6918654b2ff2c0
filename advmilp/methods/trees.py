"""Minimal adversarial examples for tree ensembles: the MILP of `advmilp.encode.trees`, solved by HiGHS
through PuLP (`advmilp.solvers.pulp.solve`: one deadline, Ctrl-C stops it), the witness verified, one
result row of the same columns as every other method (`advmilp.spec.rows`).

Verification: the witness is re-evaluated by `TreeEnsemble.scores` with the input compared in float64
and cast to float32 (scikit-learn's rule); it is ``verified`` only if both evaluations meet the criterion
exactly — targeted: the target's score is strictly above every other score; untargeted: the predicted
class is not the label.  Distances are recomputed from the pixels.  A witness that does not verify is
never counted as solved (`advmilp.spec.rows.is_solved`).

Criteria on trees are on the ensemble's scores (class fractions for a tree or a forest, raw scores for
boosting), not the networks' ratio / epsilon / factor criteria: the problem column says "argmax".
"""

from __future__ import annotations

import dataclasses
import math
import platform
import time
from dataclasses import dataclass

import numpy as np

from advmilp import __version__
from advmilp.encode.trees import NORMS, build_tree_model
from advmilp.errors import AdvmilpError
from advmilp.methods.result import InstanceResult, started_at
from advmilp.nn.trees import TreeEnsemble
from advmilp.solvers.pulp import solve
from advmilp.spec.problems import ProblemSpec, SolverSettings
from advmilp.spec.rows import make_row

METHOD = "trees-milp"
PROBLEMS = ("targeted", "untargeted")
# HiGHS' presolve spends its time probing the predicates: on the shipped tree-d10 (one tree, 842 binaries)
# it had not finished after 60 s, while without it the same instances are proven optimal in 1-20 s, and on
# forest-d6-n10 every instance tried was as fast or faster without it (benchmarks/RESULTS.md, "Tree ensembles").
HIGHS_OPTIONS = {"presolve": "off"}


@dataclass(frozen=True)
class TreeCheck:
    verified: bool
    predicted: int
    margin: float          # targeted: s_target − max other; untargeted: max other − s_label (float64)
    l1: float
    linf: float
    x: np.ndarray
    reason: str = ""


def _criterion(scores: np.ndarray, kind: str, label: int, target: int | None) -> tuple[bool, float]:
    if kind == "targeted":
        margin = float(scores[target] - np.delete(scores, target).max())
        return margin > 0, margin
    margin = float(np.delete(scores, label).max() - scores[label])
    return int(np.argmax(scores)) != label, margin


def verify_tree_witness(ens: TreeEnsemble, x: np.ndarray, x_bar: np.ndarray, kind: str, label: int,
                        target: int | None, lb=0.0, ub=1.0) -> TreeCheck:
    """The witness checked in float64 and float32 (see the module docstring), inside [lb, ub]."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    diff = x - np.asarray(x_bar, dtype=np.float64).reshape(-1)
    l1, linf = float(np.abs(diff).sum()), float(np.abs(diff).max())
    s64, s32 = ens.scores(x, np.float64), ens.scores(x, np.float32)
    ok64, margin = _criterion(s64, kind, label, target)
    ok32, _ = _criterion(s32, kind, label, target)
    inside = bool(np.all(x >= lb) and np.all(x <= ub))
    reason = "" if ok64 and ok32 and inside else (
        "outside the input box" if not inside else "float64: criterion" if not ok64 else "float32: criterion")
    return TreeCheck(ok64 and ok32 and inside, int(np.argmax(s32)), margin, l1, linf, x, reason)


def describe(spec: ProblemSpec, norm: str) -> str:
    """The problem column of a tree row: ``targeted argmax``, then ``norm linf`` as `ProblemSpec.describe`
    writes it (the robustness report reads the distance from that token) and the caps."""
    s = f"{spec.kind} argmax" + (" norm linf" if norm == "linf" else "")
    s += f" linf<={spec.linf_cap}" if spec.linf_cap is not None else ""
    return s + (f" l1<={spec.l1_cap}" if spec.l1_cap is not None else "")


def run_trees(ens: TreeEnsemble, spec: ProblemSpec, settings: SolverSettings, x_bar: np.ndarray, label: int,
              image_index: int | None = None, norm: str | None = None, deadline: float | None = None) -> InstanceResult:
    """Solve one instance: the minimal L1 (or L∞: ``norm``, default the spec's) change of ``x̄`` that makes
    ``ens`` predict the target (targeted) or anything but ``label`` (untargeted), within the spec's
    ``linf_cap`` / ``l1_cap``.  Refuses other problems, L0 and other solvers."""
    if not getattr(ens, "is_tree_ensemble", False):
        raise AdvmilpError(f"method {METHOD} attacks tree ensembles (a .json model saved by advmilp)")
    if spec.kind not in PROBLEMS:
        raise AdvmilpError(f"method {METHOD} solves {' and '.join(PROBLEMS)} problems, not {spec.kind}")
    if settings.name != "highs":
        raise AdvmilpError(f"method {METHOD} runs on highs only, not solver {settings.name}")
    norm = norm or spec.norm
    if norm not in NORMS:
        raise AdvmilpError(f"method {METHOD} minimises {' or '.join(NORMS)}, not {norm}")
    if spec.l0_cap is not None:
        raise AdvmilpError(f"method {METHOD} has no L0 cap (a tree ensemble's MILP has no per-pixel binaries)")
    l1_cap = spec.l1_cap
    spec.check_for(ens.sizes, label)
    target = spec.target_for(label)
    started = started_at()
    t0 = time.perf_counter()
    deadline = deadline if deadline is not None else t0 + settings.time_limit
    form = build_tree_model(ens, x_bar, spec.kind, label, target, norm, spec.margin, spec.linf_cap,
                            name=f"{ens.name}_{image_index}", l1_cap=l1_cap)
    build_s = time.perf_counter() - t0
    res = solve(form.prob, "highs", settings.time_limit, settings.gap_rel, settings.threads, options=HIGHS_OPTIONS,
                deadline=deadline)
    witness, check = None, None
    if res.values is not None:
        lb = np.maximum(0.0, form.x_bar - spec.linf_cap) if spec.linf_cap is not None else 0.0
        ub = np.minimum(1.0, form.x_bar + spec.linf_cap) if spec.linf_cap is not None else 1.0
        check = verify_tree_witness(ens, form.input_point(res.values), form.x_bar, spec.kind, label, target, lb, ub)
        if l1_cap is not None and check.verified and check.l1 > l1_cap:
            check = dataclasses.replace(check, verified=False, reason=f"L1 {check.l1:.6g} over the cap {l1_cap}")
        witness = check.x
    row = make_row(
        network=ens.name, network_hash=ens.short_hash(), method=METHOD, bounds="none",
        problem=describe(spec, norm), image_index=image_index, label=label, target=target, status=res.status,
        objective=res.objective, bound=res.bound, gap_pct=res.gap_pct, nodes=res.nodes,
        time_s=time.perf_counter() - t0, build_time_s=build_s, bounds_time_s=0.0, binaries=form.n_binaries,
        verified=bool(check and check.verified), verify_note=check.reason if check else "",
        predicted=check.predicted if check else None, ratio=math.nan,
        l1=check.l1 if check else math.nan, linf=check.linf if check else math.nan,
        solver=res.solver, solver_version=res.solver_version, threads=settings.threads,
        time_limit=settings.time_limit, gap_rel=settings.gap_rel, advmilp_version=__version__,
        host=platform.node(), started_at=started,
        message="; ".join(m for m in (res.message, f"score margin {check.margin:.6g}" if check else "",
                                      f"{form.fixed} predicates fixed by the input box" if form.fixed else "") if m))
    return InstanceResult(row, witness, {"score_margin": check.margin if check else math.nan})

