"""Decide a VNN-LIB property on a network: ``holds``, ``violated`` (with a checked counterexample) or
``unknown`` — never a wrong answer by construction.

The property (`advmilp.spec.vnnlib.VnnlibProperty`) is violated iff some input x in its box gives
outputs y = N(x) meeting every row of some disjunct, ``G_d y <= h_d``.  Per disjunct, in order of cost:

1. **bounds** — backward linear propagation with optimised slopes (α-CROWN, `bounds.crown`) over the
   box gives a lower bound of every row ``G_d,r·y − h_d,r``; one positive lower bound rules the
   disjunct out (a proof by bounds alone);
2. **attack** — projected sign-gradient descent on all open disjuncts at once from a batch of starts
   (`_joint_attack`: each start follows the disjunct nearest to being met, ``max_r (G_d y − h_d)_r``
   the least; most violated instances fall here);
3. **β-CROWN search** — branch-and-bound over ReLU splits with β-CROWN bounds, many domains per
   matrix product and no LP (`search.split_bab`), on each open disjunct for its share of `FIRST_SHARE` of
   the time left: it rules a disjunct out when every domain has a row proven above ``TOL``, and its
   candidate points (and the LPs of fully split domains) can meet a disjunct;
   **refined bounds** — for the disjuncts still open, every hidden layer's unstable units bounded again
   one by one by short β-CROWN searches on the network truncated at them (`search.refine`, at most
   `REFINE_SHARE` of the time left), layer by layer, each re-propagated into the later ones by α-CROWN;
   the disjuncts are bounded again on them, and the β-CROWN search runs a second pass (`BAB_SHARE`);
4. **phase search** — the exact branch-and-bound over ReLU phases (`search.phase_bb`, the encoder
   table's big-M encoding with the CROWN bounds, `search.problems` kind "violation"): minimise
   t subject to ``G_d y − h_d ≤ t``; it stops at the first point with t ≤ 0 in float64 and float32,
   and rules the disjunct out when no node's LP bound is below ``TOL``.  An activation on the last
   layer (VNN-LIB's Y are the outputs after it) becomes a hidden layer before an identity layer.

A counterexample counts only if the disjunct holds **exactly** at it in a float64 and a float32
forward pass (outputs after the last layer's activation, as the VNN-LIB ``Y_j`` are).  ``holds`` is
reported only when every disjunct was ruled out by bounds (refined or not), by the β-CROWN search or by
the phase search's LP bounds (≥ ``TOL``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from advmilp.errors import AdvmilpError
from advmilp.nn.network import Network
from advmilp.spec.vnnlib import VnnlibProperty

HOLDS, VIOLATED, UNKNOWN = "holds", "violated", "unknown"
# An LP bound must clear this to prove a disjunct impossible: HiGHS satisfies rows to 1e-6
# (primal feasibility tolerance), so a bound within a few of those of 0 proves nothing.
TOL = 1e-5
# the phase search's first look at each disjunct (a root LP and a dive), before full searches
FIRST_LOOK_NODES = 30
# a node LP gets at least this long (or 5 % of the time left) before it is branched on its parent's bound
NODE_LP_S = 2.0
# the attack: this many starts in one batch (the box centre, then half uniform in the box, half random
# corners of it) and steps of sign-gradient descent with a cosine step from a quarter of the box's width.
# It replaced an attack per disjunct (4 starts, 40 steps of a decaying step each): on the 60 VNN-COMP 2021
# 256x2 + 256x4 instances, 30 s each, that found 14 counterexamples and this 17, every one of the 14
# among them (`benchmarks/attack_bench.py`)
JOINT_STARTS, JOINT_STEPS, JOINT_STEP = 64, 100, 0.25
# the β-CROWN branch-and-bound's first pass: its part of the time left after the attack; the refinement of
# the intermediate bounds for the disjuncts it leaves open (`search.refine`): its part of the time left
# then; the second pass on the refined bounds: its part of what is left (the LP phase search gets the rest)
FIRST_SHARE = 0.25
REFINE_SHARE = 0.5
BAB_SHARE = 0.75


@dataclass(frozen=True)
class VerifyResult:
    result: str                  # holds | violated | unknown
    x: np.ndarray | None         # the counterexample (violated)
    y: np.ndarray | None         # its outputs, float64
    margin: float                # violated: the disjunct's margin at x (≤ 0); holds: the least proven lower bound
    #                              (> 0); unknown: the least proven lower bound of the disjuncts left open (≤ 0)
    time_s: float
    how: str                     # bounds | attack | phase search (what settled it), or why unknown
    disjuncts: int               # how many the property has
    checked: str = ""            # the forward-pass check a counterexample passed


def network_outputs(network: Network, x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The network's outputs after its last layer's activation (what VNN-LIB calls Y)."""
    return network.layers[-1].act(network.forward(np.asarray(x, dtype=dtype), dtype))


def _check(network: Network, prop: VnnlibProperty, d: int, x: np.ndarray) -> tuple[bool, np.ndarray]:
    """Does disjunct d hold exactly at x (clipped to the box) in float64 and float32?"""
    x = np.clip(x, prop.x_lb, prop.x_ub)
    G, h = prop.disjuncts[d]
    y64 = network_outputs(network, x)
    y32 = network_outputs(network, x.astype(np.float32), np.float32).astype(np.float64)
    return bool(np.all(G @ y64 <= h) and np.all(G @ y32 <= h)), y64


def _bounds_margins(network: Network, prop: VnnlibProperty, box_bounds, deadline: float | None = None) -> list[float]:
    """Per disjunct, a proven lower bound of its margin over the box (> 0: the disjunct is impossible),
    by α-CROWN on its rows (CROWN after ``deadline``)."""
    from advmilp.bounds.crown import AlphaOptions, output_bounds

    linear_out = network.layers[-1].act.slope == 1.0
    out_lo, out_hi = network.layers[-1].act.interval(box_bounds.lower[-1], box_bounds.upper[-1])
    margins = []
    for G, h in prop.disjuncts:
        if linear_out:
            lo, _ = output_bounds(network, box_bounds, G, prop.x_lb, prop.x_ub, alpha=AlphaOptions(),
                                  deadline=deadline)
        else:   # outputs after an activation: interval arithmetic on them
            lo = np.maximum(G, 0) @ out_lo + np.minimum(G, 0) @ out_hi
        margins.append(float(np.max(lo - h)) if len(h) else -np.inf)
    return margins


def _joint_attack(network: Network, prop: VnnlibProperty, disjuncts: list[int], deadline: float,
                  rng: np.random.Generator):
    """Projected sign-gradient descent on all ``disjuncts`` at once — each start follows the disjunct it
    is nearest to meeting (the least of their margins ``max_r (G_d y − h_d)_r``, a CW loss over the
    violations) — from ``JOINT_STARTS`` starts in one batch: the box centre, then half uniform in the
    box and half random corners of it.  (disjunct, counterexample, outputs) checked by `_check`, or None."""
    lb, ub = prop.x_lb, prop.x_ub
    n, B = len(lb), JOINT_STARTS
    X = lb + rng.random((B, n)) * (ub - lb)
    X[B // 2:] = np.where(rng.random((B - B // 2, n)) < 0.5, lb, ub)
    X[0] = (lb + ub) / 2
    last = network.layers[-1].act
    rows = [prop.disjuncts[d] for d in disjuncts]
    for step in range(JOINT_STEPS):
        if time.perf_counter() > deadline:
            return None
        z = network.forward(X)
        y = last(z)
        slack = [y @ G.T - h for G, h in rows]                      # per disjunct (B, rows)
        margins = np.column_stack([s.max(axis=1) for s in slack])  # (B, disjuncts)
        near = margins.argmin(axis=1)
        value = margins[np.arange(B), near]
        for i in np.flatnonzero(value <= 0)[np.argsort(value[value <= 0])]:
            ok, y64 = _check(network, prop, disjuncts[near[i]], X[i])
            if ok:
                return disjuncts[near[i]], np.clip(X[i], lb, ub), y64
        C = np.stack([rows[k][0][int(slack[k][i].argmax())] for i, k in enumerate(near)])
        grad = network.input_gradient(X, C * np.where(z >= 0, 1.0, last.slope))
        width = JOINT_STEP * 0.5 * (1.0 + np.cos(np.pi * step / JOINT_STEPS)) + 1e-3
        X = np.clip(X - width * (ub - lb) * np.sign(grad), lb, ub)
    return None


def _outputs_as_logits(network: Network) -> Network:
    """``network`` with the outputs VNN-LIB reads (after the last layer's activation) as logits: an
    activation on the last layer becomes a hidden layer's, followed by an identity layer."""
    if network.layers[-1].activation == "linear":
        return network
    n = network.n_outputs
    weights = [layer.W for layer in network.layers] + [np.eye(n)]
    biases = [layer.b for layer in network.layers] + [np.zeros(n)]
    acts = [layer.activation for layer in network.layers] + ["linear"]
    slopes = [layer.slope for layer in network.layers] + [None]
    return Network.from_arrays(weights, biases, acts, dict(network.metadata), slopes)


def violation_problem(network: Network, prop: VnnlibProperty, d: int):
    """Disjunct d as a phase-search problem (`search.problems`): minimise the largest slack
    max_r (G_d y − h_d)_r over the box; a point with value ≤ 0 in float64 *and* float32 violates the
    property (``stop_at`` 0).  ``network`` reads the VNN-LIB outputs as logits (`_outputs_as_logits`)."""
    from advmilp.search.problems import LPObjective, PhaseProblem

    G, h = prop.disjuncts[d]
    lb, ub = prop.x_lb, prop.x_ub

    def evaluate(x):
        x = np.clip(x, lb, ub)
        y64 = network.forward(x)
        y32 = network.forward(x.astype(np.float32), np.float32).astype(np.float64)
        return True, float(max(np.max(G @ y64 - h), np.max(G @ y32 - h))), x

    n = network.n_outputs
    return PhaseProblem(lb.copy(), lb, ub, np.zeros((0, n)), np.zeros(0), evaluate,
                        LPObjective(l1=False, A=G, b=h), stop_at=0.0)


def _split_search(logits_net: Network, network: Network, prop: VnnlibProperty, d: int, box_bounds, deadline: float):
    """β-CROWN branch-and-bound on disjunct d (`search.split_bab`); a point counts only if `_check` passes."""
    from advmilp.search.split_bab import prove_disjunct

    G, h = prop.disjuncts[d]
    return prove_disjunct(logits_net, box_bounds.lower[:-1], box_bounds.upper[:-1], G, h, prop.x_lb, prop.x_ub,
                          lambda x: _check(network, prop, d, x)[0], deadline=deadline, tol=TOL)


def _search(network: Network, prop: VnnlibProperty, d: int, box_bounds, deadline: float, max_nodes: int | None = None):
    """The exact phase search on disjunct d: (result, proven lower bound of its slack, counterexample or None).
    result: violated | holds (every node's LP bound ≥ TOL) | unknown.  ``max_nodes``: a first look."""
    from advmilp.search.options import SearchOptions
    from advmilp.search.phase_bb import search_phases
    from advmilp.spec.rows import INFEASIBLE

    left = max(deadline - time.perf_counter(), 0.0)
    r = search_phases(network, box_bounds, violation_problem(network, prop, d),
                      options=SearchOptions(time_limit=left, gap_rel=0.0, max_nodes=max_nodes,
                                            node_time_limit=max(NODE_LP_S, 0.05 * left)),
                      cutoff=TOL)
    if r.x is not None and r.objective <= 0:    # (status found, or the last node's point)
        return VIOLATED, r.bound, r.x
    if r.status == INFEASIBLE and r.bound >= TOL:    # no point with slack below TOL anywhere in the box
        return HOLDS, r.bound, None
    return UNKNOWN, r.bound, None


def verify_property(network: Network, prop: VnnlibProperty, time_limit: float = 120.0, seed: int = 0) -> VerifyResult:
    """Decide ``prop`` on ``network`` within ``time_limit`` seconds (see the module docstring)."""
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    if len(prop.x_lb) != network.n_inputs or prop.n_outputs != network.n_outputs:
        raise AdvmilpError(f"the property has {len(prop.x_lb)} inputs and {prop.n_outputs} outputs; the network "
                           f"{network.n_inputs} and {network.n_outputs}")
    from advmilp.bounds.crown import AlphaOptions, crown_bounds

    n = len(prop.disjuncts)
    logits_net = _outputs_as_logits(network)
    box_bounds = crown_bounds(logits_net, prop.x_lb, prop.x_ub, alpha=AlphaOptions(), deadline=deadline)
    proven = _bounds_margins(logits_net, prop, box_bounds, deadline)
    open_ = [d for d in range(n) if not proven[d] > 0]
    how = "bounds"

    def done(result, x=None, y=None, margin=float("nan"), why=how, checked=""):
        return VerifyResult(result, x, y, margin, time.perf_counter() - t0, why, n, checked)

    rng = np.random.default_rng(seed)
    found = _joint_attack(network, prop, open_, deadline, rng) if open_ else None
    if found is not None:
        d, x, y = found
        return done(VIOLATED, x, y, prop.margin(y), "attack", "float64 and float32 forward pass")
    # β-CROWN branch-and-bound (no LPs) on every open disjunct, the least violated bound first: `holds` needs
    # every disjunct ruled out, and the time the easy ones leave goes to the hard ones.  A first pass gets
    # FIRST_SHARE of the time left; the disjuncts it leaves open get refined intermediate bounds
    # (`search.refine`, at most REFINE_SHARE of the time then) and a second pass on them (BAB_SHARE); what
    # that leaves goes to the LP phase search.
    def split_pass(open_, share, label):
        nonlocal how
        open_ = sorted(open_, key=lambda d: -proven[d])
        still, stop = [], time.perf_counter() + (deadline - time.perf_counter()) * share
        for i, d in enumerate(open_):
            r = _split_search(logits_net, network, prop, d, box_bounds,
                              time.perf_counter() + (stop - time.perf_counter()) / (len(open_) - i))
            if r.status == VIOLATED:
                ok, y = _check(network, prop, d, r.x)
                if ok:
                    return done(VIOLATED, np.clip(r.x, prop.x_lb, prop.x_ub), y, prop.margin(y), label,
                                "float64 and float32 forward pass"), []
            proven[d] = max(proven[d], r.bound)
            if r.status == HOLDS:
                how = label
            else:
                still.append(d)
        return None, still

    found, open_ = split_pass(open_, FIRST_SHARE, "β-CROWN search")
    if found is not None:
        return found
    refined = bool(open_) and len(logits_net.layers) > 2     # (a single hidden layer is exact over the box)
    if refined:
        from advmilp.search.refine import refine_bounds

        def enough(bounds):        # every open disjunct ruled out by the refined bounds alone
            margins = _bounds_margins(logits_net, prop, bounds, deadline)
            for d in open_:
                proven[d] = max(proven[d], margins[d])
            return all(proven[d] > 0 for d in open_)

        box_bounds = refine_bounds(logits_net, box_bounds, prop.x_lb, prop.x_ub,
                                   deadline=time.perf_counter() + (deadline - time.perf_counter()) * REFINE_SHARE,
                                   enough=enough)
        settled = [d for d in open_ if proven[d] > 0]
        if settled:
            how = "refined bounds"
        open_ = [d for d in open_ if d not in settled]
    if open_:
        label = "β-CROWN search on refined bounds" if refined else "β-CROWN search"
        found, open_ = split_pass(open_, BAB_SHARE, label)
        if found is not None:
            return found
    # the exact LP search: a first look (a dive) at every disjunct, then the rest.
    # (One LP per unstable unit over the box used to come between the two: on 256x2 prop_3_0.03 it took
    # 4 of 9 disjuncts to 8 of 9 over CROWN's bounds, but over α-CROWN's it bounds no unit tighter —
    # prop_1_0.03: 142 unstable units either way, 33 s of LPs against 0.3 s.)
    unknown = []
    for look in (FIRST_LOOK_NODES, None):
        still = []
        for d in open_:
            if time.perf_counter() > deadline:
                still.append(d)
                continue
            result, bound, point = _search(logits_net, prop, d, box_bounds, deadline, look)
            if result == VIOLATED:
                ok, y = _check(network, prop, d, point)
                if ok:     # checked again on the network as given (its own last activation)
                    return done(VIOLATED, np.clip(point, prop.x_lb, prop.x_ub), y, prop.margin(y),
                                "phase search", "float64 and float32 forward pass")
                unknown.append(d)
            elif result == HOLDS:
                proven[d] = max(proven[d], bound)
                how = "phase search"
            else:
                proven[d] = max(proven[d], bound)
                still.append(d)
        open_ = still
    unknown += open_
    if unknown:    # how far it got: the disjuncts ruled out, and the least proven bound of the others
        why = "time limit" if time.perf_counter() > deadline else "a node could not be settled within the solver's tolerances"
        return done(UNKNOWN, margin=float(min(proven[d] for d in unknown)),
                    why=f"{why}; {n - len(unknown)} of {n} disjuncts ruled out")
    return done(HOLDS, margin=float(min(proven)), why=how)
