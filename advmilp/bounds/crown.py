"""Backward linear bound propagation (CROWN / DeepPoly) over the input box or an L1 ball.

Interval arithmetic loses every correlation between units; an LP per unit keeps them all but costs
two LP solves per unit.  Back-substitution sits between: every activation with pre-activation
bounds [L, U] is replaced by two linear functions of its pre-activation z that sandwich it,

    lower(z) = λ·z  ≤  act(z)  ≤  upper(z) = slope_u·(z − L) + act(L)

(the chord; λ ∈ [slope, 1] — CROWN's adaptive choice: 1 if U ≥ −L else the activation's negative
slope; a stable unit is linear and exact), and the bounds of layer k come from writing its
pre-activations as a linear function of the input, one layer at a time backwards, choosing the
upper or lower line of each unit by the sign of its coefficient.  The final linear function is
maximised exactly over the input set: the box (``c⁺·ub + c⁻·lb``) or the L1 ball
S_r = {x ∈ [lb, ub] : ‖x − x̄‖₁ ≤ r} (one fractional knapsack per unit, `ball.knapsack_bounds`).
Each layer costs a few dense matrix products (Zhang et al. 2018, "Efficient Neural Network
Robustness Certification with General Activation Functions"; Singh et al. 2019, DeepPoly).

The result is intersected with interval bounds (and ``base``), so it is never looser than either,
and widened by a relative tolerance like every other solver-free bound here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from advmilp.bounds.ball import knapsack_bounds, knapsack_max
from advmilp.bounds.compute import Bounds, widen
from advmilp.nn.network import Network
from advmilp.solvers.clock import expired


def relaxation_lines(slope: float, L: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lower slope, lower intercept, upper slope, upper intercept) of the two lines sandwiching
    ``act(z) = z (z ≥ 0), slope·z (z ≤ 0)`` on [L, U], per unit."""
    L, U = np.asarray(L, np.float64), np.asarray(U, np.float64)
    active, inactive = L >= 0, U <= 0
    unstable = ~(active | inactive)
    width = np.where(unstable, U - L, 1.0)
    up_slope = np.where(active, 1.0, np.where(inactive, slope, (U - slope * L) / width))
    up_icpt = np.where(unstable, slope * L - up_slope * L, 0.0)          # chord through (L, slope·L)
    lo_slope = np.where(active, 1.0, np.where(inactive, slope, np.where(U >= -L, 1.0, slope)))
    return lo_slope, np.zeros_like(L), up_slope, up_icpt


def _maximise(A: np.ndarray, c: np.ndarray, x_lb: np.ndarray, x_ub: np.ndarray,
              x_bar: np.ndarray | None, radius: float | None, argmax: bool = False):
    """max over the input set of A x + c, per row; with ``argmax``, (max, a maximiser per row: rows ×
    inputs)."""
    if radius is not None:
        return knapsack_max(A, c, x_bar, radius, x_lb, x_ub, argmax)
    value = np.maximum(A, 0) @ x_ub + np.minimum(A, 0) @ x_lb + c
    return (value, np.where(A > 0, x_ub[None, :], x_lb[None, :])) if argmax else value


def _upper_bound(network: Network, k: int, C: np.ndarray, lower: list, upper: list, x_lb, x_ub, x_bar,
                 radius, slopes: dict | None = None, gradient: bool = False):
    """An upper bound of C·z_k over the input set, by back-substitution through layers k−1 … 1.

    ``slopes`` {layer j: rows × n_j}: the lower lines' slopes to use instead of CROWN's (α-CROWN; valid
    for any value in [act.slope, 1]).  With ``gradient``, also the bound's gradient with respect to
    each of them (reverse mode through the same products; the maximum over the input set is
    differentiated at its maximiser), as (bound, {j: gradient})."""
    layer = network.layers[k]
    A, c = C @ layer.W, C @ layer.b
    trace = []
    for j in range(k - 1, -1, -1):
        lo_s, _, up_s, up_i = relaxation_lines(network.layers[j].act.slope, lower[j], upper[j])
        if slopes is not None and j in slopes:
            lo_s = slopes[j]
        pos, neg = np.maximum(A, 0), np.minimum(A, 0)
        D = pos * up_s + neg * lo_s                     # coefficient on z_j, unit by unit
        c = c + pos @ up_i                              # (every lower line passes through 0)
        if gradient:
            trace.append((j, A, up_s, up_i, lo_s))
        W, b = network.layers[j].W, network.layers[j].b
        A, c = D @ W, c + D @ b
    if not gradient:
        return _maximise(A, c, x_lb, x_ub, x_bar, radius)
    value, g_A = _maximise(A, c, x_lb, x_ub, x_bar, radius, argmax=True)     # d value / d A; d value / d c = 1
    grads = {}
    for j, A_j, up_s, up_i, lo_s in reversed(trace):
        W, b = network.layers[j].W, network.layers[j].b
        g_D = g_A @ W.T + b[None, :]
        if slopes is not None and j in slopes:
            grads[j] = g_D * np.minimum(A_j, 0)
        up = A_j > 0
        g_A = g_D * np.where(up, up_s, lo_s) + np.where(up, up_i, 0.0)
    return value, grads


@dataclass(frozen=True)
class AlphaOptions:
    """α-CROWN (Xu et al. 2021, "Fast and Complete"): the lower line's slope of every unstable unit,
    separately for every bounded quantity, optimised by projected gradient descent (Adam) on the bound
    instead of CROWN's fixed choice.  Every iterate is a valid bound; the best per row is kept, so the
    result is never looser than CROWN's (the first iterate)."""
    iterations: int = 20
    lr: float = 0.25            # Adam step on slopes in [act.slope, 1]
    decay: float = 0.9          # the step shrinks by this factor per iteration


def optimised_upper(network: Network, k: int, C: np.ndarray, lower: list, upper: list, x_lb, x_ub, x_bar,
                    radius, options: AlphaOptions, deadline: float | None = None) -> np.ndarray:
    """The α-CROWN upper bound of every row of C·z_k over the input set (≤ CROWN's, row by row); no
    iteration starts after ``deadline``."""
    C = np.atleast_2d(np.asarray(C, np.float64))
    rows = C.shape[0]
    slopes, free, floor = {}, {}, {}
    for j in range(k):
        act = network.layers[j].act
        unstable = (lower[j] < 0) & (upper[j] > 0)
        if act.piecewise and unstable.any():
            lo_s = relaxation_lines(act.slope, lower[j], upper[j])[0]
            slopes[j] = np.tile(lo_s, (rows, 1))
            free[j], floor[j] = unstable, act.slope
    best = _upper_bound(network, k, C, lower, upper, x_lb, x_ub, x_bar, radius)
    if not slopes:
        return best
    m = {j: np.zeros_like(a) for j, a in slopes.items()}
    v = {j: np.zeros_like(a) for j, a in slopes.items()}
    lr = options.lr
    for it in range(1, options.iterations + 1):
        if expired(deadline):
            break
        value, grads = _upper_bound(network, k, C, lower, upper, x_lb, x_ub, x_bar, radius, slopes, True)
        best = np.minimum(best, value)
        for j, g in grads.items():
            g = g * free[j]
            m[j] = 0.9 * m[j] + 0.1 * g
            v[j] = 0.999 * v[j] + 0.001 * g * g
            step = (m[j] / (1 - 0.9 ** it)) / (np.sqrt(v[j] / (1 - 0.999 ** it)) + 1e-8)
            slopes[j] = np.where(free[j], np.clip(slopes[j] - lr * step, floor[j], 1.0), slopes[j])
        lr *= options.decay
    if not expired(deadline):
        best = np.minimum(best, _upper_bound(network, k, C, lower, upper, x_lb, x_ub, x_bar, radius, slopes))
    return best


def crown_bounds(network: Network, x_lb: np.ndarray | float = 0.0, x_ub: np.ndarray | float = 1.0,
                 x_bar: np.ndarray | None = None, radius: float | None = None,
                 base: Bounds | None = None, alpha: AlphaOptions | None = None,
                 deadline: float | None = None) -> Bounds:
    """Bounds of every pre-activation over the box [x_lb, x_ub] — or, with ``x_bar`` and ``radius``,
    over the L1 ball S_radius around x_bar inside the box — by backward linear propagation.
    ``base`` (e.g. cached bounds valid over a superset) is intersected in, layer by layer, before
    the next layer relaxes on them.  With ``alpha``, the hidden units CROWN leaves unstable are
    bounded again by α-CROWN (`optimised_upper`), until ``deadline``."""
    t0 = time.perf_counter()
    if alpha is not None:   # tighter early bounds can change CROWN's slopes later for the worse: keep both
        base = crown_bounds(network, x_lb, x_ub, x_bar, radius, base)
    n0 = network.n_inputs
    x_lb = np.broadcast_to(np.asarray(x_lb, np.float64), (n0,)).copy()
    x_ub = np.broadcast_to(np.asarray(x_ub, np.float64), (n0,)).copy()
    if radius is not None:
        x_bar = np.asarray(x_bar, np.float64).reshape(-1)
    lower, upper = [], []
    lo_a, up_a = x_lb, x_ub
    for k, layer in enumerate(network.layers):
        Wp, Wn = np.maximum(layer.W, 0), np.minimum(layer.W, 0)
        L_int = Wp @ lo_a + Wn @ up_a + layer.b
        U_int = Wp @ up_a + Wn @ lo_a + layer.b
        if k == 0 and radius is not None:
            L_b, U_b = knapsack_bounds(layer.W, layer.b, x_bar, radius, x_lb, x_ub)
            L_int, U_int = np.maximum(L_int, L_b), np.minimum(U_int, U_b)
        if k == 0:
            L, U = L_int, U_int        # layer 1 is affine in x: interval / knapsack is exact
        else:
            n = len(layer.b)
            U_bs = _upper_bound(network, k, np.eye(n), lower, upper, x_lb, x_ub, x_bar, radius)
            L_bs = -_upper_bound(network, k, -np.eye(n), lower, upper, x_lb, x_ub, x_bar, radius)
            L = np.maximum(L_int, L_bs - widen(L_bs))
            U = np.minimum(U_int, U_bs + widen(U_bs))
            open_ = np.flatnonzero((L < 0) & (U > 0)) if layer.act.piecewise and alpha is not None else []
            if len(open_) and not expired(deadline):
                E = np.eye(n)[open_]
                best = optimised_upper(network, k, np.vstack([E, -E]), lower, upper, x_lb, x_ub, x_bar, radius,
                                       alpha, deadline)
                U[open_] = np.minimum(U[open_], best[:len(open_)] + widen(best[:len(open_)]))
                L[open_] = np.maximum(L[open_], -best[len(open_):] - widen(best[len(open_):]))
        if base is not None:
            L, U = np.maximum(L, base.lower[k]), np.minimum(U, base.upper[k])
        U = np.maximum(U, L)
        lower.append(L)
        upper.append(U)
        lo_a, up_a = layer.act.interval(L, U)
    params = {"radius": float(radius)} if radius is not None else {}
    if alpha is not None:
        params["alpha_iterations"] = alpha.iterations
    return Bounds(lower, upper, "alpha-crown" if alpha is not None else "crown", params, time.perf_counter() - t0, network.content_hash())


def output_bounds(network: Network, bounds: Bounds, C: np.ndarray, x_lb: np.ndarray, x_ub: np.ndarray,
                  x_bar: np.ndarray | None = None, radius: float | None = None, alpha: AlphaOptions | None = None,
                  deadline: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) bounds of ``C @ y`` (y the network's outputs before their activation, i.e. the
    last layer's pre-activations) over the input set, by back-substitution through ``bounds`` (valid
    pre-activation bounds over that set, e.g. from `crown_bounds`).  Tighter than bounding each y_j
    and combining: the rows of C may cancel what they share.  With ``alpha``: α-CROWN's slopes, per row."""
    K = len(network.layers) - 1
    C = np.atleast_2d(np.asarray(C, np.float64))
    x_lb = np.broadcast_to(np.asarray(x_lb, np.float64), (network.n_inputs,))
    x_ub = np.broadcast_to(np.asarray(x_ub, np.float64), (network.n_inputs,))
    both = _bound_rows(network, K, np.vstack([C, -C]), bounds.lower, bounds.upper, x_lb, x_ub, x_bar, radius,
                       alpha, deadline)
    upper, lower = both[:len(C)], -both[len(C):]
    return lower - widen(lower), upper + widen(upper)


def _bound_rows(network: Network, k: int, C: np.ndarray, lower: list, upper: list, x_lb, x_ub, x_bar, radius,
                alpha: AlphaOptions | None, deadline: float | None) -> np.ndarray:
    """Upper bounds of C·z_k: CROWN's, or α-CROWN's with ``alpha``."""
    if alpha is None:
        return _upper_bound(network, k, C, lower, upper, x_lb, x_ub, x_bar, radius)
    return optimised_upper(network, k, C, lower, upper, x_lb, x_ub, x_bar, radius, alpha, deadline)


def criterion_upper(network: Network, lower: list, upper: list, G: np.ndarray, x_lb: np.ndarray,
                    x_ub: np.ndarray, x_bar: np.ndarray | None = None, radius: float | None = None,
                    alpha: AlphaOptions | None = None, deadline: float | None = None) -> np.ndarray:
    """An upper bound of every row of ``G @ y`` (y the logits) over the input set: the lesser of
    back-substitution through ``lower``/``upper`` and interval arithmetic on the last hidden layer's
    bounds (either can be the tighter), widened outward; with ``alpha`` the former by α-CROWN."""
    G = np.atleast_2d(np.asarray(G, np.float64))
    K = len(network.layers) - 1
    ub = _bound_rows(network, K, G, lower, upper, x_lb, x_ub, x_bar, radius, alpha, deadline)
    if K > 0:
        lo_a, up_a = network.layers[K - 1].act.interval(lower[K - 1], upper[K - 1])
        GW = G @ network.layers[K].W
        ub = np.minimum(ub, np.maximum(GW, 0) @ up_a + np.minimum(GW, 0) @ lo_a + G @ network.layers[K].b)
    return ub + widen(ub)


def certified_radius(network: Network, x_bar: np.ndarray, conjunctions: list[tuple[np.ndarray, np.ndarray]],
                     x_lb: np.ndarray, x_ub: np.ndarray, upper: float, norm: str = "l1", base: Bounds | None = None,
                     rel_precision: float = 0.01, deadline: float | None = None,
                     alpha: AlphaOptions | None = None) -> float:
    """A proven lower bound on the distance (``norm`` l1 or linf) from ``x_bar`` to any point of the box
    [x_lb, x_ub] whose logits meet one of the ``conjunctions`` (rows G y ≥ h): the largest radius r ≤
    ``upper`` found by bisection at which backward propagation over the ball (L1: `S_r`; L∞: the box
    x̄ ± r) proves every conjunction unmeetable — some row's upper bound below its h.  An incomplete
    verifier's certificate (CROWN's certified radius), to within ``rel_precision`` of ``upper``; 0 if
    none is proven (x̄ itself is never such a point when it is correctly classified).  Each step costs
    one `crown_bounds` (α-CROWN's with ``alpha``); no step starts after ``deadline``."""
    x_bar = np.asarray(x_bar, np.float64).reshape(-1)

    def proven(r: float) -> bool:
        if norm == "linf":
            lo, hi = np.maximum(x_lb, x_bar - r), np.minimum(x_ub, x_bar + r)
            b = crown_bounds(network, lo, hi, base=base, alpha=alpha, deadline=deadline)
            ball = (lo, hi, None, None)
        else:
            b = crown_bounds(network, x_lb, x_ub, x_bar=x_bar, radius=r, base=base, alpha=alpha, deadline=deadline)
            ball = (x_lb, x_ub, x_bar, r)
        return all((criterion_upper(network, b.lower[:-1], b.upper[:-1], G, *ball, alpha=alpha,
                                    deadline=deadline) < h).any()
                   for G, h in conjunctions)

    lo, hi = 0.0, float(upper)
    if not np.isfinite(hi) or hi <= 0:
        return 0.0
    while hi - lo > rel_precision * upper and not expired(deadline):
        mid = 0.5 * (lo + hi)
        if proven(mid):
            lo = mid
        else:
            hi = mid
    return lo
