"""Decide a VNN-LIB property on a network: ``holds``, ``violated`` (with a checked counterexample) or
``unknown`` — never a wrong answer by construction.

The property (`advmilp.spec.vnnlib.VnnlibProperty`) is violated iff some input x in its box gives
outputs y = N(x) meeting every row of some disjunct, ``G_d y <= h_d``.  Per disjunct, in order of cost:

1. **bounds** — backward linear propagation (`bounds.crown`) over the box gives a lower bound of every
   row ``G_d,r·y − h_d,r``; one positive lower bound rules the disjunct out (a proof by bounds alone);
2. **attack** — projected sign-gradient descent on the disjunct's margin ``max_r (G_d y − h_d)_r``
   from the box centre and a few seeded starts (most violated instances fall here);
3. **MILP** — the exact model (`encode.milp`, the thesis' big-M encoding with the CROWN bounds as
   big-Ms): minimise t subject to ``G_d y − h_d ≤ t`` on HiGHS.  A proven dual bound > ``TOL`` rules
   the disjunct out; an incumbent with t ≤ 0 is a candidate counterexample.

A counterexample counts only if the disjunct holds **exactly** at it in a float64 and a float32
forward pass (outputs after the last layer's activation, as the VNN-LIB ``Y_j`` are).  ``holds`` is
reported only when every disjunct was ruled out by bounds or by a MILP dual bound above ``TOL``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from advmilp.errors import AdvmilpError
from advmilp.nn.network import Network
from advmilp.spec.vnnlib import VnnlibProperty

HOLDS, VIOLATED, UNKNOWN = "holds", "violated", "unknown"
# A MILP dual bound must clear this to prove a disjunct impossible: HiGHS satisfies rows to 1e-6
# (primal feasibility tolerance), so a bound within a few of those of 0 proves nothing.
TOL = 1e-5
ATTACK_STARTS = 4
ATTACK_STEPS = 40


@dataclass(frozen=True)
class VerifyResult:
    result: str                  # holds | violated | unknown
    x: np.ndarray | None         # the counterexample (violated)
    y: np.ndarray | None         # its outputs, float64
    margin: float                # violated: the disjunct's margin at x (≤ 0); holds: the least proven lower bound (> 0)
    time_s: float
    how: str                     # bounds | attack | milp (what settled it), or why unknown
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


def _bounds_margins(network: Network, prop: VnnlibProperty, box_bounds) -> list[float]:
    """Per disjunct, a proven lower bound of its margin over the box (> 0: the disjunct is impossible)."""
    from advmilp.bounds.crown import output_bounds

    linear_out = network.layers[-1].act.slope == 1.0
    out_lo, out_hi = network.layers[-1].act.interval(box_bounds.lower[-1], box_bounds.upper[-1])
    margins = []
    for G, h in prop.disjuncts:
        if linear_out:
            lo, _ = output_bounds(network, box_bounds, G, prop.x_lb, prop.x_ub)
        else:   # outputs after an activation: interval arithmetic on them
            lo = np.maximum(G, 0) @ out_lo + np.minimum(G, 0) @ out_hi
        margins.append(float(np.max(lo - h)) if len(h) else -np.inf)
    return margins


def _attack(network: Network, prop: VnnlibProperty, d: int, deadline: float, rng: np.random.Generator):
    """Projected sign-gradient descent on disjunct d's margin; a checked counterexample or None."""
    G, h = prop.disjuncts[d]
    lb, ub = prop.x_lb, prop.x_ub
    starts = [(lb + ub) / 2] + [lb + rng.random(len(lb)) * (ub - lb) for _ in range(ATTACK_STARTS - 1)]
    last = network.layers[-1].act
    for x in starts:
        step = (ub - lb) / 4
        for _ in range(ATTACK_STEPS):
            if time.perf_counter() > deadline:
                return None
            ok, y = _check(network, prop, d, x)
            if ok:
                return x, y
            z = network.forward(x)
            slack = G @ last(z) - h
            r = int(np.argmax(slack))
            dy = np.where(z >= 0, 1.0, last.slope)                          # dy/dz of the last activation
            grad = network.input_gradient(x, G[r] * dy)
            if not np.any(grad):
                break
            x = np.clip(x - step * np.sign(grad), lb, ub)
            step = step * 0.85
    return None


def _milp(network: Network, prop: VnnlibProperty, d: int, box_bounds, deadline: float):
    """min t s.t. G_d y − h_d ≤ t over the box: (status, proven lower bound of t, candidate x or None)."""
    import pulp

    from advmilp.encode.milp import encode_network
    from advmilp.solvers.pulp import solve

    G, h = prop.disjuncts[d]
    prob = pulp.LpProblem("vnnlib", pulp.LpMinimize)
    x = [prob.add_variable(f"x_{i}", lowBound=float(lo), upBound=float(hi)) for i, (lo, hi) in
         enumerate(zip(prop.x_lb, prop.x_ub))]
    outs = encode_network(prob, network, box_bounds, x, len(network.layers), output_relu=False)[-1]
    t = prob.add_variable("t")
    for r, (g, rhs) in enumerate(zip(G, h)):
        terms = [(v, g[j] * c) for j in np.flatnonzero(g) for v, c in outs[j].value]
        prob += (pulp.LpAffineExpression(terms + [(t, -1.0)]) <= float(rhs)), f"row_{r}"
    prob += pulp.LpAffineExpression([(t, 1.0)])
    res = solve(prob, "highs", time_limit=max(deadline - time.perf_counter(), 0.01), gap_rel=1e-6)
    point = None
    if res.values is not None and np.isfinite(res.objective) and res.objective <= TOL:
        point = np.array([res.values.get(v.name, lo) for v, lo in zip(x, prop.x_lb)])
    return res.status, res.bound, point


def verify_property(network: Network, prop: VnnlibProperty, time_limit: float = 120.0, seed: int = 0) -> VerifyResult:
    """Decide ``prop`` on ``network`` within ``time_limit`` seconds (see the module docstring)."""
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    if len(prop.x_lb) != network.n_inputs or prop.n_outputs != network.n_outputs:
        raise AdvmilpError(f"the property has {len(prop.x_lb)} inputs and {prop.n_outputs} outputs; the network "
                           f"{network.n_inputs} and {network.n_outputs}")
    from advmilp.bounds.crown import crown_bounds

    n = len(prop.disjuncts)
    box_bounds = crown_bounds(network, prop.x_lb, prop.x_ub)
    proven = _bounds_margins(network, prop, box_bounds)
    open_ = [d for d in range(n) if not proven[d] > 0]
    how = "bounds"

    def done(result, x=None, y=None, margin=float("nan"), why=how, checked=""):
        return VerifyResult(result, x, y, margin, time.perf_counter() - t0, why, n, checked)

    rng = np.random.default_rng(seed)
    for d in open_:
        found = _attack(network, prop, d, deadline, rng)
        if found is not None:
            x, y = found
            return done(VIOLATED, np.clip(x, prop.x_lb, prop.x_ub), y, prop.margin(y), "attack",
                        "float64 and float32 forward pass")
    unknown = []
    for d in open_:
        if time.perf_counter() > deadline:
            unknown.append(d)
            continue
        status, bound, point = _milp(network, prop, d, box_bounds, deadline)
        if point is not None:
            ok, y = _check(network, prop, d, point)
            if ok:
                return done(VIOLATED, np.clip(point, prop.x_lb, prop.x_ub), y, prop.margin(y), "milp",
                            "float64 and float32 forward pass")
            found = _attack_from(network, prop, d, point, deadline)
            if found is not None:
                x, y = found
                return done(VIOLATED, x, y, prop.margin(y), "milp", "float64 and float32 forward pass")
        if np.isfinite(bound) and bound > TOL:
            proven[d] = max(proven[d], bound)
            how = "milp"
        else:
            unknown.append(d)
    if unknown:
        return done(UNKNOWN, why="time limit" if time.perf_counter() > deadline else
                    "a MILP point failed the forward-pass check")
    return done(HOLDS, margin=float(min(proven)), why=how)


def _attack_from(network: Network, prop: VnnlibProperty, d: int, x0: np.ndarray, deadline: float):
    """A MILP point that misses the exact check by a solver tolerance: a few descent steps from it."""
    lb, ub = prop.x_lb, prop.x_ub
    rng = np.random.default_rng(1)
    for scale in (1e-6, 1e-4, 1e-2):
        for _ in range(8):
            if time.perf_counter() > deadline:
                return None
            x = np.clip(x0 + scale * (ub - lb) * rng.standard_normal(len(x0)), lb, ub)
            ok, y = _check(network, prop, d, x)
            if ok:
                return x, y
    return None
