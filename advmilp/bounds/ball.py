"""Per-instance bounds over an L1 ball around the image (the speed pipeline's bounds).

Any verified adversarial point at L1 distance U from x̄ proves that the optimum lies in

    S_U = { x ∈ [lb, ub] : ‖x − x̄‖₁ ≤ U },

so bounds valid over S_U are valid for the search.  They are far tighter than bounds over
the whole box [0,1]^784, which stabilises units (no binary) and shrinks every big-M.

- Layer 1 is exact: max w·x over S_U is a fractional knapsack — spend the budget U on the
  pixels with the largest |w_i|, each up to its room in the box (``ub − x̄`` or ``x̄ − lb``).
- Deeper layers: interval propagation, then the LP relaxation (triangle relaxation of each
  unstable unit, plus Σ|x − x̄| ≤ U) maximised and minimised per unit, layer by layer.

LP optima are widened by a tolerance before use, and every bound is intersected with the
interval bound, so the result is sound and never looser than interval arithmetic over S_U.
A ``deadline`` (`solvers.clock`) stops the LPs: the units not yet bounded by LP keep their interval
bounds, which are valid, so bounds returned at the deadline are sound, only looser.
"""

from __future__ import annotations

import time

import numpy as np

from advmilp.bounds.compute import Bounds, widen
from advmilp.nn.network import Network
from advmilp.encode.activations import encoder_for
from advmilp.encode.lp import LinearRows, encode_units, next_pre_map
from advmilp.solvers.clock import expired
from advmilp.solvers.highs import HighsLP
from advmilp.spec.rows import OPTIMAL


# Pixels sorted per row by `_knapsack_steps` before it falls back to sorting them all: the budget of a tight
# instance's ball fills a few dozen pixels (each moves by at most 1), so the rest need only be known smaller.
KNAPSACK_TOP = 64


def _knapsack_steps(G: np.ndarray, x_bar: np.ndarray, radius: float, x_lb: np.ndarray,
                    x_ub: np.ndarray) -> np.ndarray:
    """Per row of G, how far each pixel moves (in the direction of the sign of its gain G[j, i]) at the
    maximum of G x over S_U: the budget U spent on the largest |G[j, i]| first, each pixel up to its
    room in the box.  Only the ``KNAPSACK_TOP`` largest of a row are sorted (`np.argpartition`) when their
    room holds the whole budget; the rows where it does not are sorted in full."""
    room = np.where(G > 0, (x_ub - x_bar)[None, :], (x_bar - x_lb)[None, :])
    A = np.abs(G)
    steps = np.empty_like(room)
    full = np.ones(len(G), dtype=bool)          # the rows sorted in full
    if KNAPSACK_TOP < G.shape[1]:
        top = np.argpartition(-A, KNAPSACK_TOP - 1, axis=1)[:, :KNAPSACK_TOP]
        full = np.take_along_axis(room, top, axis=1).sum(axis=1) < radius
        top, fit = top[~full], ~full
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(A[fit], top, axis=1), axis=1), axis=1)
        steps[fit] = _spend(order, room[fit], radius)
    if full.any():
        steps[full] = _spend(np.argsort(-A[full], axis=1), room[full], radius)
    return steps


def _spend(order: np.ndarray, room: np.ndarray, radius: float) -> np.ndarray:
    """The budget ``radius`` spent along each row's ``order`` (pixel indices, largest gain first; the pixels
    not listed get nothing), each pixel up to its ``room``: the steps, rows × pixels."""
    r = np.take_along_axis(room, order, axis=1)
    steps = np.zeros_like(room)
    np.put_along_axis(steps, order, np.clip(radius - (np.cumsum(r, axis=1) - r), 0.0, r), axis=1)
    return steps


def knapsack_max(W: np.ndarray, b: np.ndarray, x_bar: np.ndarray, radius: float, x_lb: np.ndarray,
                 x_ub: np.ndarray, argmax: bool = False):
    """Exact max of every row of W x + b over S_U (one fractional knapsack per row); with ``argmax``,
    (max, a maximiser per row: rows × inputs) from the same knapsack."""
    steps = _knapsack_steps(W, x_bar, radius, x_lb, x_ub)
    value = W @ x_bar + b + (np.abs(W) * steps).sum(axis=1)
    return (value, x_bar[None, :] + np.sign(W) * steps) if argmax else value


def knapsack_bounds(W: np.ndarray, b: np.ndarray, x_bar: np.ndarray, radius: float,
                    x_lb: np.ndarray, x_ub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact min and max of W x + b over S_U (one fractional knapsack per row and sense)."""
    return -knapsack_max(-W, -b, x_bar, radius, x_lb, x_ub), knapsack_max(W, b, x_bar, radius, x_lb, x_ub)


def ball_bounds(network: Network, x_bar: np.ndarray, radius: float, x_lb: np.ndarray | None = None,
                x_ub: np.ndarray | None = None, use_lp: bool = True, base: Bounds | None = None,
                lp_output: bool = False, deadline: float | None = None) -> Bounds:
    """Bounds of every pre-activation over S_U; ``base`` (e.g. box bounds) is intersected in.

    LPs are spent only where they can change the MILP: on hidden units that interval
    arithmetic leaves unstable (their bounds are the big-Ms and decide whether a binary is
    needed), and on the output layer only if ``lp_output`` (the tight models read the logits, even
    under a ReLU on the outputs, and their own relaxation already implies LP bounds on them, so
    they would only cost time).  No LP is solved after ``deadline``.
    """
    t0 = time.perf_counter()
    n0 = network.n_inputs
    x_bar = np.asarray(x_bar, dtype=np.float64)
    x_lb = np.zeros(n0) if x_lb is None else x_lb
    x_ub = np.ones(n0) if x_ub is None else x_ub
    lower, upper = [], []
    lp = HighsLP(presolve=True) if use_lp else None      # re-solved for many objectives: see `_tighten_by_lp`
    if lp is not None:
        rows = LinearRows()
        pm = rows.add_cols(np.zeros(2 * n0), np.concatenate([x_ub - x_bar, x_bar - x_lb]))   # x = x̄ + p − m
        rows.add_row(pm, np.ones(2 * n0), -np.inf, radius)
        _load(lp, rows)
        W1, b1 = network.layers[0].W, network.layers[0].b
        pre_map = (pm, np.hstack([W1, -W1]), W1 @ x_bar + b1)   # layer 1's pre-activations over p, m
    lo_a = up_a = None
    K = len(network.layers)
    for k, layer in enumerate(network.layers):
        act = layer.act
        if k == 0:
            L, U = knapsack_bounds(layer.W, layer.b, x_bar, radius, x_lb, x_ub)
        else:
            Wp, Wn = np.maximum(layer.W, 0), np.minimum(layer.W, 0)
            L = Wp @ lo_a + Wn @ up_a + layer.b
            U = Wp @ up_a + Wn @ lo_a + layer.b
            if base is not None:    # no LP for a unit the base already makes stable
                L, U = np.maximum(L, base.lower[k]), np.minimum(U, base.upper[k])
            output = k == K - 1
            if lp is not None and (lp_output if output else act.piecewise):
                _tighten_by_lp(lp, *pre_map, L, U, act.piecewise and not output, deadline)
        if base is not None:
            L, U = np.maximum(L, base.lower[k]), np.minimum(U, base.upper[k])
        U = np.maximum(U, L)
        lower.append(L)
        upper.append(U)
        lo_a, up_a = act.interval(L, U)
        if lp is not None and k < K - 1 and not expired(deadline):
            # the layer's convex relaxation from the encoder table, then the next layer's pre-activations
            rows = LinearRows(first_col=lp.n_cols)
            encoded = encode_units(rows, *pre_map, L, U, encoder_for(act), relaxed=True)
            _load(lp, rows)
            nxt = network.layers[k + 1]
            pre_map = next_pre_map(encoded, nxt.W, nxt.b)
    return Bounds(lower, upper, "ball", {"radius": float(radius), "lp": use_lp},
                  time.perf_counter() - t0, network.content_hash())


def _load(lp: HighsLP, rows: LinearRows) -> None:
    lp.add_cols(np.array(rows.col_lo), np.array(rows.col_hi), np.array(rows.cost))
    if rows.rows:
        lp.add_rows(*rows.compressed())


def _tighten_by_lp(lp: HighsLP, cols: np.ndarray, coef: np.ndarray, const: np.ndarray,
                   L: np.ndarray, U: np.ndarray, piecewise: bool, deadline: float | None = None) -> None:
    """Shrink [L, U] (pre-activations ``coef @ x[cols] + const``) in place by the LP relaxation; upper
    side first — a unit whose LP maximum is ≤ 0 is stably inactive and its lower bound is never used.
    Only units that would cost a binary (``piecewise`` and unstable) are bounded, or all if not
    ``piecewise`` (the output layer, when asked for).  Stops at ``deadline`` (the rest keep [L, U])."""
    for j in range(len(L)):
        if U[j] - L[j] <= 1e-9 or (piecewise and (U[j] <= 0 or L[j] >= 0)):
            continue
        if expired(deadline):
            return
        s_max, v_max = lp.minimize(cols, -coef[j], deadline=deadline)
        if s_max == OPTIMAL:
            vmax = -v_max + const[j]
            U[j] = min(U[j], vmax + widen(vmax))
        if piecewise and U[j] <= 0:
            continue
        s_min, v_min = lp.minimize(cols, coef[j], deadline=deadline)
        if s_min == OPTIMAL:
            vmin = v_min + const[j]
            L[j] = max(L[j], vmin - widen(vmin))


