"""The method ``tight``: the default exact pipeline.

tight  exact: heuristic incumbent U → bounds over the L1 ball S_U (`ball`) → MILP with those
       bounds, criteria on the logits (no output binaries), Σ d_j ≤ U and the heuristic point
       as HiGHS warm start.  Every change is a valid restriction of the thesis model to a set
       known to contain an optimum, so a proven optimum is the thesis model's optimum.
       The models are solved by the branch-and-bound over ReLU phases (`advmilp.search.phase_bb`),
       with HiGHS' MILP as the fallback.  `TightPolicy` holds every measured choice.

The time limit is one deadline for all of it (`advmilp.solvers.clock`): heuristic, ball bounds,
relaxation tightening, phase search, MILP and verification share it, each stopping with what it
has proven when it passes; the row is then ``time_limit`` with the best verified point so far.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from advmilp.methods.result import InstanceResult, point_result
from advmilp.bounds.compute import Bounds, unstable_widths
from advmilp.nn.network import Network
from advmilp.search.branching import DeepestLayerBranching, PseudocostBranching
from advmilp.search.options import SearchOptions
from advmilp.search.disjunction import search_disjunction
from advmilp.search.ladder import climb_ladder, fractions
from advmilp.search.phase_bb import PhaseSearchResult, search_phases
from advmilp.search.problems import distance_problem, output_problem
from advmilp.search.tighten import tighten_over_problem
from advmilp.heuristics.gradient import GradientOptions
from advmilp.heuristics.primal import find_adversarial, sparsify
from advmilp.spec.problems import ProblemSpec, SolverSettings, criteria, input_box
from advmilp.spec.rows import INFEASIBLE, OPTIMAL, TIME_LIMIT, UNPROVEN, gap_percent
from advmilp.solvers.clock import expired, time_left
from advmilp.solvers.highs import solver_version
from advmilp.spec.verify import verify_witness


@dataclass(frozen=True)
class TightPolicy:
    """The measured choices of the tight pipeline (benchmarks/RESULTS.md has every figure).

    Benchmarks and tests pass a policy with other values (``dataclasses.replace(DEFAULT_POLICY, ...)``)
    instead of changing module state."""

    # HiGHS options of the tight pipeline's MILP.  It starts from the heuristic's incumbent (within a
    # few per cent of the optimum), so HiGHS' sub-MIP heuristics (RINS, RENS) mostly re-find what is
    # known; switching them off halved the MILP time on DNN1-DNN3.
    highs_options: dict = field(default_factory=lambda: {"mip_heuristic_run_rins": False,
                                                         "mip_heuristic_run_rens": False})
    # Rounds of ideal ReLU cuts (`advmilp.search.cuts`) separated at the root LP of the tight model.
    cut_rounds: int = 20
    # On top of highs_options for the models that get those root cuts: no HiGHS cut separation at the
    # nodes, which then go faster than the cuts help (levers_bench, 300 s, same heuristic point: DNN5
    # six images 205 -> 131 s in all, faster on 6 of 6; DNN4 five images 101 -> 88 s, faster on 4 of 5;
    # DNN2 six images 50 -> 52 s, about even).
    cut_milp_options: dict = field(default_factory=lambda: {"mip_allow_cut_separation_at_nodes": False})
    # Small models (at most this many unstable units, i.e. binaries, in the ball bounds) are solved
    # without the cuts and without HiGHS' presolve (small_milp_options, on top of highs_options): with
    # so few binaries both cost more time than they save; beyond it presolve pays (DNN5 images 0, 2, 4,
    # 5: 54.4 s with presolve, 77.2 s without).  RESULTS.md, "What each lever contributed".
    small_milp_binaries: int = 24
    small_milp_options: dict = field(default_factory=lambda: {"presolve": "off"})
    # Solve by the branch-and-bound over ReLU phases (`advmilp.search.phase_bb`) instead of HiGHS'
    # MILP, for every model size (the MILP remains the fallback if the search cannot settle a node).
    # Full pipeline, first 25 images, 120 s, mean time MILP -> phase search up to 44 binaries: DNN2
    # 0.86 -> 0.49 s, DNN3 1.28 -> 0.59, DNN4 3.30 -> 3.03; DNN1 40 images 0.234 -> 0.109 s.  From 45
    # binaries up: DNN4 even in sum (63.5 vs 67.4 s on 8 images), DNN5 images 0, 2, 3, 4, 5 68.7 ->
    # 38.7 s, and the DNN5 time-outs 1 and 22 (300 s on the MILP) proven in 234 and 80 s.  A size
    # threshold was measured (30, 44 binaries) and not kept.  False: HiGHS' MILP (tests, benchmarks).
    phase_search: bool = True
    # Rounds of ideal ReLU cuts at the phase search's root, for models above small_milp_binaries
    # (DNN3, 25 images: 0.50 s without, 0.36 s with 5 or 20 rounds; DNN1: cuts cost 0.031 -> 0.048 s).
    phase_cut_rounds: int = 5
    # A model above the small-model size that HiGHS has not solved after this many seconds is
    # restarted with bounds tightened on its LP relaxation (the tightening costs 1-10 s, which only
    # the hard instances repay: DNN2/DNN3 images solved in under a second took 1-4 s with it).
    # math.inf: never restarted.
    escalate_after_s: float = 2.0
    # Models with at least this many binaries are tightened before the first solve instead: they are
    # rarely solved within escalate_after_s (old full run, median time 2-80 s from 45 binaries up,
    # 1-2 s below), and a restart throws HiGHS' search tree away (DNN4, four images of 5-140 s:
    # tightening up front was faster on all four, by 1.9-56 s).  0: always up front.
    upfront_binaries: float = 45
    # Bound tightening over the problem's own LP relaxation (`tighten_over_criteria`, on the phase search's
    # LP) for models above the small-model size: rounds of ideal cuts at its root, then this many passes
    # (a pass that neither stabilises a unit nor shrinks the unstable units' total width by 5 % ends them).
    # One pass after 5 rounds: thesis DNN5, 20 images, the 19 proven in 89.1 s in all with the PuLP
    # model's relaxation (20 cut rounds, 3 passes) and 86.0 s this way, image 1's bound at 300 s 20.47 ->
    # 21.36; DNN4, 20 images, mean 2.21 -> 1.74 s (heuristic + bounds + tightening 1.02 -> 0.57 s);
    # without any tightening DNN4 1.59 s but DNN5 127.7 s (RESULTS.md, nineteenth session).
    tighten_cut_rounds: int = 5
    relaxation_passes: int = 1
    # On networks with more hidden units than this, backward linear propagation optimises its slopes
    # (α-CROWN, `alpha_for`) for the certified floor and the L∞ box bounds; plain CROWN below.  (The L1-ball
    # bounds are α-CROWN's on every network: `ball_bounds_for`.)
    alpha_units: int = 200
    # The up-front relaxation tightening gets at most this share of the time limit (DNN4/DNN5 take
    # 1-10 s of 300; on ERAN 6x100 its 500 per-unit LPs took the whole 60 s before any search).
    tighten_share: float = 0.2
    # Before the phase search, on networks with more hidden units than this, the distance that backward
    # propagation certifies (`certified_floor`) is a proven floor of the search's bound; -1: on every network,
    # math.inf: on none.  On the small networks the search's own bound passes it in milliseconds, and its
    # bisection cost DNN1 (40 images) 0.195 -> 0.166 s mean time, DNN2 0.533 -> 0.504 s (RESULTS.md,
    # nineteenth session).  Wider networks keep it, unmeasured without it: from 500 hidden units up it is
    # often the best bound at the time limit, and the study networks' ladder (192 units) starts from it.
    certify_units: float = 100
    # The phase search (pseudocost branching, `branching.PseudocostBranching`) is joined, once it has run
    # race_after seconds, by a search branching on the deepest layer first (`branching.DeepestLayerBranching`),
    # on networks with at most race_units hidden units; the two share incumbent and bound
    # (`phase_bb.race_phases`), and 31 nodes of 32 go to the one nearer to settling the problem
    # (`phase_bb.RaceShares`, `SearchOptions.race_trailing_share`).
    race_after: float = 1.0
    race_units: int = 200
    # The radius ladder (`ladder_rungs`) at these fractions of the way from the floor to the incumbent,
    # when the direct phase search has not settled the problem by ladder_after × the time limit (from the
    # instance's start) and is still more than ladder_gap from it; () for none.  The ladder raises the
    # bound of an instance that times out, but its rungs are proofs the direct search does not reuse:
    # started at 10 % of a 60 s limit it cost DNN4 two of three instances the direct search proves in
    # 36-59 s (RESULTS.md), hence only the last quarter.  Targeted problems only: on untargeted ones (a
    # search per winning class) it lost 3 of 19 proofs and worsened 13 of 42 incumbents on the study
    # networks, since the hand-off skips the later classes' searches.
    ladder: tuple = (0.25, 0.5, 0.75)
    ladder_after: float = 0.75
    ladder_gap: float = 0.25     # ... and only if the direct search's gap is still above this then
    # Problems with pixel binaries (minimal L0, or an L0 cap): the same problem without them first, by
    # this pipeline, for at most this share of the time limit; its proven bound and point start the
    # MILP with the binaries (`run_l0`).
    l0_relaxed_share: float = 0.3
    # The primal heuristic's starts from the nearest training images that meet the criterion
    # (`heuristics.primal.pool_starts`), each polished by region LPs.  Ten instead of two: mean heuristic
    # L1 over the best known 1.154 -> 1.056 on the replication's DNN5, 1.090 -> 1.067 on its DNN1; it proved
    # 3 of DNN5's 17 time-outs (38, 66, 88: a smaller ball, tighter bounds from the start); mean time of
    # the same instances DNN1 0.136 -> 0.159 s, DNN2 0.758 -> 0.769, DNN3 3.07 -> 2.90, DNN4 (40) 16.1 -> 15.3
    # (RESULTS.md, eighteenth session).  On the 500-ReLU networks the gradient attack's point wins anyway.
    pool_starts: int = 10


DEFAULT_POLICY = TightPolicy()


def alpha_for(network: Network, policy: "TightPolicy"):
    """α-CROWN's options on networks with more than ``policy.alpha_units`` hidden units, else None (plain
    CROWN)."""
    from advmilp.bounds.crown import AlphaOptions

    return AlphaOptions() if network.hidden_units > policy.alpha_units else None


def ball_bounds_for(network: Network, x_bar, radius: float, base: Bounds, deadline: float | None) -> Bounds:
    """Bounds over the L1 ball of ``radius`` (intersected with ``base``) by α-CROWN (`bounds.crown`), no
    iteration after ``deadline``.  Until the nineteenth session the networks of at most 200 hidden units got
    two LPs per unit CROWN left unstable instead (`bounds.ball`); α-CROWN's bounds gave the search as few
    nodes at a fraction of the cost: DNN1-DNN4 6-20 % faster, DNN5 within noise (RESULTS.md)."""
    from advmilp.bounds.crown import AlphaOptions, crown_bounds

    t0 = time.perf_counter()
    b = crown_bounds(network, 0.0, 1.0, x_bar=np.asarray(x_bar, np.float64), radius=radius, base=base,
                     alpha=AlphaOptions(), deadline=deadline)
    return replace(b, method="alpha-crown-ball", time_s=time.perf_counter() - t0)


def unstable_count(bounds: Bounds, network: Network) -> int:
    """Hidden ReLU units the bounds leave unstable (each costs the MILP a binary)."""
    return int(unstable_widths(bounds, network).size)


def tighten_over_criteria(network: Network, bounds: Bounds, spec: ProblemSpec, x_bar, label, cap: float,
                          policy: "TightPolicy", deadline: float | None = None) -> Bounds:
    """``bounds`` tightened over the LP relaxation of the tight problem (the spec's criteria on the logits,
    Σ|δ| ≤ cap) by `search.tighten.tighten_over_problem`: ``policy.tighten_cut_rounds`` rounds of ideal cuts
    at its root, ``policy.relaxation_passes`` passes, no LP after ``deadline`` (what is tightened by then is
    kept: it is valid).  A criterion of several conjunctions (untargeted) is tightened over each, and the
    result is their union: every feasible point meets one of them (a conjunction with no point within the
    cap adds nothing)."""
    t0 = time.perf_counter()
    x_bar = np.asarray(x_bar, dtype=np.float64)
    x_lb, x_ub = input_box(spec, len(x_bar), x_bar)
    linear = spec.with_(output_relu=False)
    hull = None
    for c in criteria(linear, label, network.n_outputs):
        problem = distance_problem(network, linear, x_bar, label, x_lb, x_ub, c, cap)
        b, infeasible = tighten_over_problem(network, bounds, problem, policy.relaxation_passes, deadline,
                                             policy.tighten_cut_rounds)
        if infeasible:
            continue
        hull = b if hull is None else replace(hull, lower=[np.minimum(p, q) for p, q in zip(hull.lower, b.lower)],
                                              upper=[np.maximum(p, q) for p, q in zip(hull.upper, b.upper)])
    if hull is None:    # (the incumbent lies within the cap: only rounding can get here) the bounds as they were
        hull = bounds
    return replace(hull, time_s=bounds.time_s + time.perf_counter() - t0)


def _run_milp(*args, **kwargs) -> InstanceResult:
    """`methods.milp.run_instance`, the MILP on PuLP, imported where a branch of the pipeline needs it
    (a call that ends in the phase search never loads PuLP: ~40 ms of every call's start)."""
    from advmilp.methods.milp import run_instance

    return run_instance(*args, **kwargs)


def tight_settings(bounds: Bounds, network: Network, policy: TightPolicy = DEFAULT_POLICY) -> tuple[dict, int]:
    """HiGHS options and cut rounds of the tight MILP for these bounds."""
    if unstable_count(bounds, network) <= policy.small_milp_binaries:
        return {**policy.highs_options, **policy.small_milp_options}, 0
    return {**policy.highs_options, **policy.cut_milp_options}, policy.cut_rounds


def run_tight(network: Network, bounds: Bounds, spec: ProblemSpec, settings: SolverSettings, x_bar, label,
              image_index, pool=None, policy: TightPolicy = DEFAULT_POLICY) -> InstanceResult:
    """Heuristic → L1-ball bounds → phase search or warm-started MILP on the logits (restarted with
    relaxation-tightened bounds if not solved quickly); time_s counts everything, and everything ends
    by ``settings.time_limit``."""
    t0 = time.perf_counter()
    if spec.distance_norm == "l0":
        return run_l0(network, bounds, spec, settings, x_bar, label, image_index, pool, t0, policy)
    if spec.kind == "max-target":
        return run_max_target(network, bounds, spec, settings, x_bar, label, image_index, t0, policy)
    if spec.norm == "linf":
        return run_linf(network, bounds, spec, settings, x_bar, label, image_index, pool, t0, policy)
    h = tight_heuristic(network, x_bar, label, spec, settings.time_limit, pool, deadline=t0 + settings.time_limit,
                        policy=policy)
    return solve_from_incumbent(network, bounds, spec, settings, x_bar, label, image_index, h, t0, policy)


def tight_heuristic(network: Network, x_bar, label, spec: ProblemSpec, time_limit: float, pool=None,
                    deadline: float | None = None, policy: TightPolicy = DEFAULT_POLICY):
    """The primal heuristic as the tight pipeline runs it: 2 % of the time limit (0.5-3 s), 5 % from 200
    hidden units (where its gradient attack runs), ``policy.pool_starts`` pool starts, nothing past the
    instance's ``deadline``."""
    share = 0.05 if GradientOptions().runs_on(network) else 0.02   # RESULTS.md, "A gradient start at scale"
    return find_adversarial(network, x_bar, label, spec, pool=pool, n_pool=policy.pool_starts,
                            time_limit=min(3.0, max(0.5, share * time_limit)), deadline=deadline)


def solve_from_incumbent(network: Network, bounds: Bounds, spec: ProblemSpec, settings: SolverSettings, x_bar,
                         label, image_index, h, t0: float, policy: TightPolicy = DEFAULT_POLICY) -> InstanceResult:
    """The tight problem from the heuristic's result ``h`` (started at ``t0``) under ``policy``: the
    relaxation-tightened bounds before the first solve from ``policy.upfront_binaries`` binaries up,
    else in a restart after ``policy.escalate_after_s``.  Everything ends by ``t0 + settings.time_limit``."""
    linear = spec.with_(output_relu=False)
    deadline = t0 + settings.time_limit
    if not h.found:  # no incumbent: the phase search, else the plain model (on the logits), over the given bounds
        if policy.phase_search and not expired(deadline):
            res = run_phase_search(network, bounds, spec, settings, x_bar, label, image_index, None, None,
                                   time_left(deadline), policy)
            if res is not None:
                res.row.update(method="tight", time_s=time.perf_counter() - t0, heuristic_l1=math.nan,
                               prep_time_s=h.time_s, problem=spec.describe(), bounds=bounds.method)
                return res
        if expired(deadline):
            res = _stopped(network, bounds, spec, settings, x_bar, label, image_index, None, "")
        else:
            res = _run_milp(network, bounds, linear, settings, x_bar, label, image_index, split_distance=True,
                            solver_options=policy.highs_options, deadline=deadline)
        res.row.update(method="tight", time_s=time.perf_counter() - t0, heuristic_l1=math.nan,
                       prep_time_s=h.time_s, problem=spec.describe())
        return res
    best_x, best_l1 = h.x, h.l1
    cap = incumbent_cap(best_l1)
    bb = ball_bounds_for(network, x_bar, cap, bounds, deadline)
    prep = h.time_s + bb.time_s
    options, rounds = tight_settings(bb, network, policy)
    escalate_after = 0.0 if unstable_count(bb, network) >= policy.upfront_binaries else policy.escalate_after_s
    note = ""
    # (measured for the targeted problem only: the untargeted model's relaxation carries the disjunction's
    # big-Ms, too weak to tighten on — notebook net image 2 spent all 300 s there without a search)
    if rounds and escalate_after <= 0 and spec.kind == "targeted" and not expired(deadline):
        tb = tighten_over_criteria(network, bb, spec, x_bar, label, cap, policy,
                                   min(deadline, time.perf_counter() + policy.tighten_share * settings.time_limit))
        prep += tb.time_s - bb.time_s
        note = (f"bounds tightened on the LP relaxation before the solve "
                f"({unstable_count(bb, network)} -> {unstable_count(tb, network)} binaries)")
        bb = tb
    if policy.phase_search and not expired(deadline):
        res = run_phase_search(network, bb, spec, settings, x_bar, label, image_index, best_x, cap,
                               time_left(deadline), policy)
        if res is not None:
            if note:
                res.row["message"] = note
            return _finish(res, network, bounds, spec, x_bar, label, h, best_x, best_l1, prep, t0)
    if expired(deadline):   # no time left for a MILP: the best verified point so far
        res = _stopped(network, bb, spec, settings, x_bar, label, image_index, best_x, note)
        return _finish(res, network, bounds, spec, x_bar, label, h, best_x, best_l1, prep, t0)
    escalating = rounds and escalate_after > 0
    first_deadline = min(deadline, time.perf_counter() + escalate_after) if escalating else deadline
    res = _run_milp(network, bb, linear, settings, x_bar, label, image_index,
                    warm_start_x=best_x, l1_cap=cap, split_distance=True, solver_options=options,
                    cut_rounds=rounds, deadline=first_deadline)
    if note:
        res.row["message"] = (note + "; " + res.row["message"]).rstrip("; ")
    if escalating and first_deadline < deadline and res.row["status"] == TIME_LIMIT \
            and time_left(deadline) > 1.0:
        # not solved quickly: a hard instance.  Restart from the best point so far with bounds
        # tightened on the MILP's own relaxation (`relaxation_bounds`).
        nodes = res.row["nodes"] or 0
        if res.row["verified"] and res.witness is not None and res.row["l1"] < best_l1:
            best_x, best_l1 = res.witness, res.row["l1"]
            cap = incumbent_cap(best_l1)
            bb = ball_bounds_for(network, x_bar, cap, bounds, deadline)
            prep += bb.time_s
        tb = tighten_over_criteria(network, bb, spec, x_bar, label, cap, policy, deadline)
        prep += tb.time_s - bb.time_s
        res = _run_milp(network, tb, linear, settings, x_bar, label, image_index,
                        warm_start_x=best_x, l1_cap=cap, split_distance=True, solver_options=options,
                        cut_rounds=rounds, deadline=deadline)
        res.row["nodes"] = (res.row["nodes"] or 0) + nodes
        res.row["message"] = (f"restarted after {escalate_after:g} s with bounds tightened on the LP relaxation; "
                              + res.row["message"]).rstrip("; ")
    return _finish(res, network, bounds, spec, x_bar, label, h, best_x, best_l1, prep, t0)


def _stopped(network: Network, bounds: Bounds, spec: ProblemSpec, settings: SolverSettings, x_bar, label,
             image_index, x, note: str) -> InstanceResult:
    """The row of an instance whose deadline passed before a solve could start: ``time_limit``, the
    verified point ``x`` (None: none), no bound."""
    res = point_result(network, bounds, spec, settings, x_bar, label, image_index, "tight", x, 0.0)
    res.row.update(status=TIME_LIMIT, gap_pct=100.0, solver="none",
                   message="; ".join(m for m in (note, "time limit reached before the solve") if m))
    return res


def _finish(res: InstanceResult, network: Network, bounds: Bounds, spec: ProblemSpec, x_bar, label, h, best_x,
            best_l1: float, prep: float, t0: float) -> InstanceResult:
    """The tight row: the best verified point so far if the solve's own is no better; total time."""
    row = res.row
    total = time.perf_counter() - t0
    if not row["verified"] or not math.isfinite(row["objective"]) or row["l1"] > best_l1:
        # the solver's incumbent is no better than the best verified point so far: report that point
        check = verify_witness(network, best_x, spec, x_bar, label, spec.target_for(label))
        gap = gap_percent(check.l1, row["bound"])
        # still optimal if the verified point is within the gap tolerance of the solver's proven bound;
        # a time limit stays one; anything else (an optimum that failed the exact check and a gap left
        # open, a solver error) is not a time limit: UNPROVEN
        gap_rel = row["gap_rel"] if row["gap_rel"] is not None else SolverSettings().gap_rel
        if row["status"] == OPTIMAL and gap <= 100 * gap_rel:
            status = OPTIMAL
        else:
            status = TIME_LIMIT if row["status"] == TIME_LIMIT else UNPROVEN
        row.update(status=status, objective=check.l1, l1=check.l1, gap_pct=gap,
                   linf=check.linf, ratio=check.ratio, predicted=check.predicted, verified=True,
                   verify_note="heuristic incumbent" if best_x is h.x else "incumbent of the first solve")
        res = InstanceResult(row, check.x, res.extra)
    row.update(method="tight", bounds=bounds.method, time_s=total, heuristic_l1=h.l1,
               prep_time_s=prep, problem=spec.describe())
    return res


def _search_columns(r: PhaseSearchResult) -> dict:
    """The row columns that say a phase search produced it: its effort and the solver's name."""
    return dict(nodes=int(r.nodes), binaries=r.binaries, cuts=r.cuts, solver="advmilp-phase-bb",
                solver_version=f"ReLU-phase branch-and-bound on {solver_version('highs')} LPs")


def _search(network: Network, bounds: Bounds, problems, x0, options: SearchOptions,
            floor: float = -math.inf) -> PhaseSearchResult:
    """One conjunction: the phase search; several (a disjunctive criterion): the least of their optima.
    ``floor``: a proven lower bound of the optimum (`certified_floor`)."""
    if len(problems) == 1:
        return search_phases(network, bounds, problems[0], x0, options, floor=floor)
    return search_disjunction(network, bounds, problems, x0, options, floor=floor)


def certified_floor(network: Network, bounds: Bounds, spec: ProblemSpec, x_bar, label, x_lb, x_ub, upper: float,
                    deadline: float | None, policy: "TightPolicy") -> float:
    """A proven lower bound of the minimal distance (the spec's norm, l1 or linf) below ``upper`` (an
    incumbent's): the radius backward propagation certifies (`bounds.crown.certified_radius`) for the
    spec's criteria on the logits *without* the model's margin, so that it bounds every point the exact
    check accepts as well as the model's optimum.  ``bounds`` must hold over the ball of ``upper``.  −inf (no
    floor, nothing computed) on networks of at most ``policy.certify_units`` hidden units."""
    from advmilp.bounds.crown import certified_radius

    if network.hidden_units <= policy.certify_units:
        return -math.inf
    linear = spec.with_(output_relu=False)
    conjunctions = [(c.G, c.h) for c in criteria(linear, label, network.n_outputs)]
    return certified_radius(network, x_bar, conjunctions, x_lb, x_ub, upper, norm=spec.norm, base=bounds,
                            deadline=deadline, alpha=alpha_for(network, policy))


def ladder_rungs(network: Network, bounds: Bounds, problems_within, floor: float, cap: float, x_bar,
                 settings: SolverSettings, deadline: float, policy: TightPolicy, effort: list):
    """The radius ladder (`search.ladder`) between a proven floor and the incumbent's distance ``cap``, at
    r = floor + f·(cap − floor) for f in ``policy.ladder``: each rung the phase search with Σ|δ| ≤ r over
    bounds re-computed for that smaller ball (a quarter of the time left at most).  Returns (floor, the
    search that settled the problem or None, the best point a rung found or None); every search is
    appended to ``effort``."""
    def rung(r, floor):
        bb = ball_bounds_for(network, x_bar, r, bounds, deadline)
        return _search(network, bb, problems_within(r), None,
                       _search_options(network, bb, settings, time_left(deadline), policy), floor)

    end = climb_ladder(fractions(max(floor, 0.0), cap, policy.ladder), rung, floor, deadline)
    effort.extend(end.searches)
    return end.floor, end.settled, end.point


def _search_options(network: Network, bounds: Bounds, settings: SolverSettings, time_limit: float,
                    policy: TightPolicy) -> SearchOptions:
    rounds = policy.phase_cut_rounds if unstable_count(bounds, network) > policy.small_milp_binaries else 0
    race = (DeepestLayerBranching(),) if network.hidden_units <= policy.race_units else ()
    return SearchOptions(time_limit=time_limit, cut_rounds=rounds, branching=PseudocostBranching(), race=race,
                         race_after=policy.race_after,
                         gap_rel=settings.gap_rel if settings.gap_rel is not None else 1e-4)


def run_phase_search(network: Network, bounds: Bounds, spec: ProblemSpec, settings: SolverSettings, x_bar, label,
                     image_index, x0, cap: float | None, time_limit: float,
                     policy: TightPolicy = DEFAULT_POLICY) -> InstanceResult | None:
    """The tight problem (logits criteria, Σ|δ| ≤ cap) by branch-and-bound over ReLU phases from the
    verified point ``x0`` — one search per conjunction of the criterion (`spec.problems.criteria`);
    None if the search could not settle it (the caller then runs the MILP).  With an incumbent, first
    the certified floor (`certified_floor`), then the radius ladder (`ladder_rungs`)."""
    x_lb, x_ub = input_box(spec, len(x_bar), x_bar)
    linear = spec.with_(output_relu=False)
    x_bar = np.asarray(x_bar, dtype=np.float64)
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    conjunctions = criteria(linear, label, network.n_outputs)

    def problems_within(radius):
        return [distance_problem(network, linear, x_bar, label, x_lb, x_ub, c, radius) for c in conjunctions]

    floor, r, effort = -math.inf, None, []
    if cap is not None and spec.norm == "l1":
        floor = certified_floor(network, bounds, spec, x_bar, label, x_lb, x_ub, cap, deadline, policy)
        if policy.ladder and len(conjunctions) == 1:   # the direct search first; it hands the ladder the last part
            #   of the limit if far from settled by then.  Not for a disjunction (untargeted): its direct search
            #   improves the incumbent through the later conjunctions, which a hand-off skips (RESULTS.md)
            ladder_from = deadline - (1.0 - policy.ladder_after) * settings.time_limit
            first = _search(network, bounds, problems_within(cap), x0,
                            replace(_search_options(network, bounds, settings, time_left(deadline), policy),
                                    handoff_at=ladder_from, handoff_gap=policy.ladder_gap), floor)
            effort.append(first)
            if first.status != TIME_LIMIT or expired(deadline):
                r = first
            else:
                floor = max(floor, first.bound)
                if first.x is not None and first.objective < cap:
                    x0, cap = first.x, incumbent_cap(first.objective)
                floor, r, x = ladder_rungs(network, bounds, problems_within, floor, cap, x_bar, settings, deadline,
                                            policy, effort)
                x0 = x if x is not None else x0     # a point within a rung is better than the incumbent
    if r is None:
        r = _search(network, bounds, problems_within(cap), x0,
                    _search_options(network, bounds, settings, time_left(deadline), policy), floor)
        effort.append(r)
    r.nodes, r.lps = sum(e.nodes for e in effort), sum(e.lps for e in effort)   # (effort holds r itself)
    r.time_s = time.perf_counter() - t0
    if r.status == INFEASIBLE and cap is None:   # no point at all: the problem is infeasible
        res = point_result(network, bounds, spec, settings, x_bar, label, image_index, "tight", None, r.time_s)
        res.row.update(status=INFEASIBLE, **_search_columns(r))
        return res
    if r.status not in (OPTIMAL, TIME_LIMIT) or r.x is None:
        return None
    res = point_result(network, bounds, spec, settings, x_bar, label, image_index, "tight", r.x, r.time_s)
    if not res.row["verified"]:
        return None
    res.row.update(status=r.status, bound=r.bound, gap_pct=gap_percent(res.row["objective"], r.bound),
                   **_search_columns(r))
    return res


def run_max_target(network: Network, bounds: Bounds, spec: ProblemSpec, settings: SolverSettings, x_bar, label,
                   image_index, t0: float, policy: TightPolicy = DEFAULT_POLICY) -> InstanceResult:
    """Max-target (maximise output ``spec.target`` with Σ|δ| ≤ l1_budget and the misclassification
    criterion): bounds over the L1 ball of the budget (`ball`), a first point within it (the untargeted
    problem's heuristic without pool starts: its criterion is the same; without a point, the untargeted
    distance searches over the ball stop at their first point or prove that there is none), then one
    phase search per winning class (`search.disjunction`); the thesis-style MILP if the search cannot
    settle it."""
    deadline = t0 + settings.time_limit
    x_bar = np.asarray(x_bar, dtype=np.float64)
    linear = spec.with_(output_relu=False)
    x_lb, x_ub = input_box(spec, len(x_bar), x_bar)
    misclassified = spec.with_(kind="untargeted", target=None, output_relu=False)   # the same criterion
    # (no pool starts: on images 1-30 they cost 0.3-1.0 s more per instance on DNN1, DNN4 and the notebook net and
    # gave a point within the budget on 3 of 79, which the distance searches below find anyway; RESULTS.md)
    h = tight_heuristic(network, x_bar, label, misclassified, settings.time_limit, None, deadline=deadline,
                        policy=policy)
    bb = ball_bounds_for(network, x_bar, spec.l1_budget, bounds, deadline)
    conjunctions = criteria(linear, label, network.n_outputs)
    problems = [output_problem(network, linear, x_bar, label, x_lb, x_ub, c, relu=spec.output_relu)
                for c in conjunctions]
    x0 = h.x if h.found and problems[0].evaluate(h.x)[0] else None
    first = None
    if x0 is None and not expired(deadline):
        # Is there a misclassified point within the budget?  The distance LPs lead to the nearest one (the
        # output LPs to the largest output); on DNN5 image 56, output 7, the output searches found no point
        # and proved nothing in 300 s (benchmarks/RESULTS.md, eleventh session).
        cap = spec.l1_budget - spec.margin
        within = [replace(distance_problem(network, misclassified, x_bar, label, x_lb, x_ub, c, cap),
                          stop_at=math.inf) for c in conjunctions]
        first = _search(network, bb, within, None, _search_options(network, bb, settings, time_left(deadline), policy))
        x0 = first.x
    if first is not None and first.status == INFEASIBLE:     # no misclassified point within the budget: proven
        r = first
    else:
        r = _search(network, bb, problems, x0, _search_options(network, bb, settings, time_left(deadline), policy))
        if first is not None:
            r.nodes, r.lps = r.nodes + first.nodes, r.lps + first.lps
    # a search out of time without a point still reports what it proved (the bound) and its nodes
    if r.status in (OPTIMAL, TIME_LIMIT, INFEASIBLE) and (r.x is not None or r.status != OPTIMAL):
        res = point_result(network, bounds, spec, settings, x_bar, label, image_index, "tight", r.x, r.time_s)
        if r.x is None or res.row["verified"]:
            relu = (lambda v: max(v, 0.0) + 0.0) if spec.output_relu else (lambda v: v + 0.0)   # (+ 0.0: no −0)
            objective = relu(-r.objective) if r.x is not None else math.nan
            # the searches' proven bound, or the ball's bound on the output if a search did not get that far
            top = float(bb.upper[-1][spec.target])
            bound = relu(min(-r.bound, top)) if r.bound < math.inf else math.nan
            res.row.update(status=r.status, objective=objective, bound=bound,
                           gap_pct=gap_percent(objective, bound) if r.x is not None else math.nan,
                           **_search_columns(r), bounds=bounds.method, time_s=time.perf_counter() - t0,
                           prep_time_s=h.time_s + bb.time_s, problem=spec.describe())
            return res
    if expired(deadline):
        res = _stopped(network, bb, spec, settings, x_bar, label, image_index, r.x, "")
    else:
        res = _run_milp(network, bb, spec, settings, x_bar, label, image_index, deadline=deadline,
                        solver_options=policy.highs_options)
        res.row["message"] = ("the phase search could not settle it; " + res.row["message"]).rstrip("; ")
    res.row.update(method="tight", bounds=bounds.method, time_s=time.perf_counter() - t0,
                   prep_time_s=h.time_s + bb.time_s, problem=spec.describe())
    return res


def run_linf(network: Network, bounds: Bounds, spec: ProblemSpec, settings: SolverSettings, x_bar, label,
             image_index, pool, t0: float, policy: TightPolicy = DEFAULT_POLICY) -> InstanceResult:
    """Minimal max|δ| (targeted or untargeted): the heuristic's point (its L∞ distance r), bounds by
    backward propagation (`bounds.crown`) over the box x̄ ± r, then the phase search minimising
    t ≥ |x_i − x̄_i| (`search.problems`, objective linf) — every point at least as good lies in that
    box, so its optimum is the problem's."""
    from advmilp.bounds.crown import crown_bounds

    deadline = t0 + settings.time_limit
    x_bar = np.asarray(x_bar, dtype=np.float64)
    linear = spec.with_(output_relu=False)
    x_lb, x_ub = input_box(spec, len(x_bar), x_bar)
    h = tight_heuristic(network, x_bar, label, spec, settings.time_limit, pool, deadline=deadline, policy=policy)
    incumbent = None
    if h.found:
        r0 = verify_witness(network, h.x, spec, x_bar, label, spec.target_for(label), x_lb, x_ub).linf
        r0 = r0 * (1 + 1e-7) + 1e-9
        x_lb, x_ub = np.maximum(x_lb, x_bar - r0), np.minimum(x_ub, x_bar + r0)
        incumbent = h.x
    prep0 = time.perf_counter()
    bb = crown_bounds(network, x_lb, x_ub, base=bounds, alpha=alpha_for(network, policy), deadline=deadline)
    floor = (certified_floor(network, bb, spec, x_bar, label, x_lb, x_ub, r0, deadline, policy)
             if h.found else -math.inf)
    prep = h.time_s + time.perf_counter() - prep0
    problems = [distance_problem(network, linear, x_bar, label, x_lb, x_ub, c)
                for c in criteria(linear, label, network.n_outputs)]
    r = _search(network, bb, problems, incumbent, _search_options(network, bb, settings, time_left(deadline), policy),
                floor)
    res = point_result(network, bounds, spec, settings, x_bar, label, image_index, "tight", r.x, r.time_s)
    if r.x is not None and not res.row["verified"]:     # cannot happen: the search keeps verified points only
        res.row.update(status=UNPROVEN)
    else:
        status = r.status if r.status in (OPTIMAL, TIME_LIMIT, INFEASIBLE) else (TIME_LIMIT if expired(deadline)
                                                                                  else UNPROVEN)
        if status == INFEASIBLE and h.found:
            status = UNPROVEN    # the heuristic's point exists: the search must have found it
        res.row.update(status=status, objective=r.objective if r.x is not None else math.nan,
                       bound=r.bound if r.x is not None or status != INFEASIBLE else math.inf,
                       gap_pct=gap_percent(r.objective, r.bound) if r.x is not None else math.nan)
    res.row.update(**_search_columns(r), time_s=time.perf_counter() - t0, heuristic_l1=h.l1 if h.found else math.nan, prep_time_s=prep,
                   bounds=bounds.method, problem=spec.describe())
    return res


def run_l0(network: Network, bounds: Bounds, spec: ProblemSpec, settings: SolverSettings, x_bar, label,
           image_index, pool, t0: float, policy: TightPolicy = DEFAULT_POLICY) -> InstanceResult:
    """A problem with pixel binaries: minimal L0 (number of changed pixels), or minimal L1/L∞ under an L0 cap.

    First the problem without the binaries (L1 for minimal L0; the same norm without the cap otherwise)
    by this pipeline, for ``policy.l0_relaxed_share`` of the limit: a lower bound b and a verified point.
    Every pixel moves by at most 1, so a point changing k pixels has Σ|δ| ≤ k: minimal L0 ≥ ⌈b⌉, and
    the relaxed point changing k pixels is an incumbent; a better point changes at most k − 1 pixels, so
    it lies in the L1 ball of radius k − 1, whose bounds (`ball_bounds_for`) the MILP with the binaries
    (`methods.milp`, with Σc ≤ k − 1 and Σ|δ| ≤ k − 1) then uses.  Under an L0 cap, the relaxed problem's
    optimum is the answer if its point meets the cap; else the MILP, whose bound is at least b."""
    deadline = t0 + settings.time_limit
    x_bar = np.asarray(x_bar, dtype=np.float64)
    x_lb, x_ub = input_box(spec, len(x_bar), x_bar)
    relaxed = spec.with_(norm="l1" if spec.norm == "l0" else spec.norm, l0_cap=None)
    first = run_tight(network, bounds, relaxed,
                      replace(settings, time_limit=policy.l0_relaxed_share * settings.time_limit),
                      x_bar, label, image_index, pool, policy)
    r1 = first.row
    floor = r1["bound"] if r1["status"] != INFEASIBLE and math.isfinite(r1["bound"]) else -math.inf
    if spec.norm == "l0":
        floor = _whole_bound(floor)
    best, note_sparse = None, ""
    if first.witness is not None and r1["verified"]:
        check = verify_witness(network, first.witness, spec, x_bar, label, spec.target_for(label), x_lb, x_ub)
        best = check.x if check.verified else None
    if best is not None and spec.norm == "l0" and not expired(deadline):
        # fewer pixels by region LPs that hold the changed pixels at x̄ one by one (kept if verified)
        y = network.forward(best)
        criterion = max(criteria(spec, label, network.n_outputs), key=lambda c: c.slack(y))
        fewer = verify_witness(network, sparsify(network, best, x_bar, criterion, spec.margin, x_lb, x_ub, deadline),
                               spec, x_bar, label, spec.target_for(label), x_lb, x_ub)
        k = int(np.count_nonzero(best - x_bar))
        if fewer.verified and fewer.l0 < k:
            note_sparse = f"; sparsified {k} -> {fewer.l0} pixels"
            best = fewer.x
    note = (f"{relaxed.describe()} first: {r1['status']} {r1['objective']:.6g}, bound {r1['bound']:.6g} "
            f"in {r1['time_s']:.1f} s{note_sparse}")

    def done(x, status, bound, res=None):
        out = point_result(network, bounds, spec, settings, x_bar, label, image_index, "tight", x, 0.0)
        objective = out.row["objective"] if out.witness is not None else math.nan
        bound = max(bound, floor)
        if out.witness is not None:
            bound = min(bound, objective)
            if bound >= objective - 1e-9 * max(1.0, abs(objective)):
                status = OPTIMAL
        extra = {} if res is None else {k: res.row[k] for k in ("nodes", "binaries", "cuts", "solver",
                                                                 "solver_version", "build_time_s")}
        note_milp = "" if res is None else res.row["message"]
        out.row.update(status=status, bound=bound if status != INFEASIBLE else math.inf,
                       gap_pct=gap_percent(objective, bound) if out.witness is not None else math.nan,
                       time_s=time.perf_counter() - t0, prep_time_s=r1["time_s"], heuristic_l1=r1["heuristic_l1"],
                       message="; ".join(m for m in (note, note_milp) if m), **extra)
        return out

    if r1["status"] == INFEASIBLE:           # no point even without the binaries' constraints
        return done(None, INFEASIBLE, math.inf)
    if best is not None and spec.norm != "l0" and r1["status"] == OPTIMAL:
        return done(best, OPTIMAL, r1["bound"])     # the relaxation's optimum meets the cap
    if expired(deadline):
        return done(best, TIME_LIMIT, -math.inf)
    milp_spec, base = spec, bounds
    if spec.norm == "l0" and best is not None:
        k = int(np.count_nonzero(best - x_bar))
        if k <= floor:
            return done(best, OPTIMAL, floor)
        radius = k - 1
        base = ball_bounds_for(network, x_bar, radius + 1e-6, bounds, deadline)
        cap = radius if spec.l0_cap is None else min(radius, spec.l0_cap)
        milp_spec = spec.with_(l0_cap=cap, l1_cap=radius + spec.margin + 1e-6
                               if spec.l1_cap is None else min(spec.l1_cap, radius + spec.margin + 1e-6))
    res = _run_milp(network, base, milp_spec, settings, x_bar, label, image_index, deadline=deadline,
                    solver_options=policy.highs_options)
    row = res.row
    milp_bound = row["bound"] if math.isfinite(row["bound"]) else -math.inf
    if spec.norm == "l0":
        milp_bound = _whole_bound(milp_bound)
    if res.witness is not None and row["verified"]:
        status = OPTIMAL if row["status"] == OPTIMAL else TIME_LIMIT
        return done(res.witness, status, milp_bound, res)
    if row["status"] == INFEASIBLE and milp_spec is not spec:
        return done(best, OPTIMAL, math.inf, res)    # nothing changes fewer pixels than the incumbent
    if row["status"] == INFEASIBLE:
        return done(None, INFEASIBLE, math.inf, res)
    # time limit (or an unverified point): the incumbent, the bound of the restricted problem capped by it
    status = TIME_LIMIT if expired(deadline) or row["status"] == TIME_LIMIT else UNPROVEN
    return done(best, status, milp_bound, res)


def _whole_bound(bound: float) -> float:
    """A proven bound on a number of pixels, rounded up to the whole number it implies (less a tolerance
    for the solver's); -inf stays -inf."""
    return float(math.ceil(bound - 1e-6 * max(1.0, abs(bound)))) if math.isfinite(bound) else bound


def incumbent_cap(l1: float) -> float:
    """Σ|δ| ≤ cap keeps every point as good as the incumbent (and the incumbent itself)."""
    return l1 * (1 + 1e-7) + 1e-7
