"""A gradient start for the primal heuristic: a minimal-L1 boundary attack (FAB, Croce & Hein 2020).

On networks of hundreds of ReLUs the greedy pixel flips and pool bisections of `primal` land far from
the minimal L1 distance (ERAN 6x100 image 0: 40.65 greedy, 19.9 after 1.2 s of region LPs; the attack:
16.0), and the region LPs that polish a start cannot walk that far.  This attack moves in the input space instead, on the network's local linearisation:

1. at the current point x (a batch of them, one per restart), a soft minimum of the criterion's rows
   ``G y − h`` is linearised: ``S(x) + g·(z − x) ≥ τ`` (`soft_rows`);
2. x and x̄ are each projected onto that half-space ∩ the input box in L1 (`l1_project`: a fractional
   knapsack, the coordinates with the largest |g| first);
3. the next point is a convex combination of the two projections, biased towards x̄'s (weight α, at
   most ``alpha_max``) and extrapolated by ``eta``; once a point meets the criterion it is recorded if
   closest so far and pulled back towards x̄ (factor ``beta``), so the walk follows the decision
   boundary towards x̄.  A step from x is at most ``max_step`` long in L1 (FAB's full steps jumped across
   many ReLU kinks at once on VNN-COMP 256x2, whose near-one-hot logits make the linearisation poor).

The first restart starts at x̄, the next ones at ``seeds`` (the greedy and pool points: adversarial, so
their walk starts on the far side of the boundary), the rest at random points of an L1 ball around x̄
(radius half x̄'s distance to its own linearised boundary).  Everything is numpy on the network's own weights (one batched forward and
vector-Jacobian product per iteration).  The best point is then bisected towards x̄ along its segment.
Returned points are the float64 points the criterion holds at by more than ``margin`` in float64;
`primal.find_adversarial` verifies them (`spec.verify.verify_witness`, float64 and float32) and polishes
them with its region LPs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advmilp.nn.network import Network
from advmilp.solvers.clock import expired
from advmilp.spec.problems import Criterion


@dataclass(frozen=True)
class GradientOptions:
    """The attack's parameters (FAB's defaults for α_max, η, β)."""

    restarts: int = 8            # trajectories run as one batch (the first starts at x̄)
    iterations: int = 400        # at most (300 and 1,000 ended within 1 % of each other on ERAN 6x100)
    alpha_max: float = 0.1       # largest weight of x̄'s projection in a step
    eta: float = 1.05            # extrapolation of both projections past the linearised boundary
    beta: float = 0.9            # pull-back towards x̄ after an adversarial point
    max_step: float = 0.3        # L1 length of a step from the current point at most (a trust region)
    temperature: float = 0.05    # of the soft minimum over the criterion's rows, × the spread of x̄'s logits
    seed: int = 0
    # `primal.find_adversarial` runs the attack on networks with at least this many hidden units ...
    min_hidden_units: int = 200
    # ... for at most this share of each criterion's heuristic time (the region LPs polish in the rest)
    share: float = 0.5

    def __post_init__(self):
        if self.restarts < 1 or self.iterations < 0:
            raise ValueError(f"restarts must be ≥ 1 and iterations ≥ 0 (got {self.restarts}, {self.iterations})")
        if not 0.0 < self.share <= 1.0 or self.min_hidden_units < 0:
            raise ValueError(f"share must be in (0, 1] and min_hidden_units ≥ 0 (got {self.share}, "
                             f"{self.min_hidden_units})")
        if not (0.0 <= self.alpha_max <= 1.0 and self.eta >= 1.0 and 0.0 < self.beta < 1.0):
            raise ValueError(f"need 0 ≤ alpha_max ≤ 1, eta ≥ 1, 0 < beta < 1 (got {self.alpha_max}, {self.eta}, "
                             f"{self.beta})")

    def runs_on(self, network: Network) -> bool:
        """Whether `primal.find_adversarial` runs the attack on ``network`` (its hidden-unit count)."""
        return network.hidden_units >= self.min_hidden_units


def criterion_slack(network: Network, X: np.ndarray, criterion: Criterion) -> np.ndarray:
    """min over the criterion's rows of G y − h, for every row of the batch X."""
    return (network.forward(X) @ criterion.G.T - criterion.h).min(axis=1)


def soft_rows(network: Network, X: np.ndarray, criterion: Criterion, temperature: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(soft minimum of the criterion's rows G y − h, its input gradient, the hard minimum) for every point
    of the batch X (B, n): ``S = −T log Σ_r exp(−s_r / T)`` (≤ min_r s_r, so S ≥ 0 implies the criterion),
    one forward pass and one vector-Jacobian product through each hidden activation's slope.  A soft minimum, not the
    binding row: linearising one row at a time made the walk alternate between two rows (the label's and
    a runner-up's) without meeting both (VNN-COMP 256x2)."""
    pres = network.preactivations(X)
    rows = pres[-1] @ criterion.G.T - criterion.h
    low = rows.min(axis=1, keepdims=True)
    e = np.exp(-(rows - low) / temperature)
    total = e.sum(axis=1, keepdims=True)
    v = (e / total) @ criterion.G
    for k in range(len(network.layers) - 1, 0, -1):
        v = v @ network.layers[k].W
        v *= np.where(pres[k - 1] >= 0, 1.0, network.layers[k - 1].act.slope)
    return low[:, 0] - temperature * np.log(total[:, 0]), v @ network.layers[0].W, low[:, 0]


def l1_project(P: np.ndarray, g: np.ndarray, need: np.ndarray, x_lb: np.ndarray, x_ub: np.ndarray,
               top: int = 96) -> np.ndarray:
    """Row-wise ``argmin ‖z − p‖₁  s.t.  g·(z − p) ≥ need, x_lb ≤ z ≤ x_ub`` (p in the box): the
    coordinates with the largest |g| move first, each as far as the box lets it, the last one partly.
    A row with need ≤ 0 stays; a row whose need the box cannot meet moves every coordinate to its limit.
    Only the ``top`` coordinates of largest |g| are sorted unless they cannot meet the need (a full sort
    of every row was half the attack's time)."""
    P, g = np.atleast_2d(P), np.atleast_2d(g)
    need = np.maximum(np.broadcast_to(np.asarray(need, dtype=np.float64), (len(P),)), 0.0)[:, None]
    cap = np.where(g > 0, x_ub - P, P - x_lb).clip(min=0.0)
    a = np.where(cap > 0, np.abs(g), 0.0)
    step = np.zeros_like(P)
    if top < a.shape[1]:
        cand = np.argpartition(-a, top - 1, axis=1)[:, :top]
        order = np.take_along_axis(cand, np.argsort(-np.take_along_axis(a, cand, axis=1), axis=1), axis=1)
        done = _knapsack(a, cap, need, order, step)
    else:
        done = np.zeros(len(P), dtype=bool)
    rest = ~done
    if rest.any():
        sub = np.zeros((int(rest.sum()), P.shape[1]))
        _knapsack(a[rest], cap[rest], need[rest], np.argsort(-a[rest], axis=1), sub)
        step[rest] = sub
    return np.clip(P + np.sign(g) * step, x_lb, x_ub)


def _knapsack(a: np.ndarray, cap: np.ndarray, need: np.ndarray, order: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Fill ``step`` (zeros) row-wise along ``order`` (coordinates by decreasing gain per unit ``a``): each
    up to ``cap`` until the gain reaches ``need``; True for the rows whose need the ordered ones met."""
    a_s = np.take_along_axis(a, order, axis=1)
    cap_s = np.take_along_axis(cap, order, axis=1)
    gain = a_s * cap_s
    cum = np.cumsum(gain, axis=1)
    before = cum - gain
    with np.errstate(divide="ignore", invalid="ignore"):
        part = np.where(a_s > 0, (need - before) / a_s, 0.0)
    step_s = np.where(cum <= need, cap_s, np.where(before < need, np.minimum(part, cap_s), 0.0))
    step_s[a_s == 0] = 0.0
    np.put_along_axis(step, order, step_s, axis=1)
    return cum[:, -1] >= need[:, 0]


def _random_starts(rng: np.random.Generator, x_bar: np.ndarray, k: int, radius: float, x_lb: np.ndarray,
                   x_ub: np.ndarray) -> np.ndarray:
    """k points x̄ + t clipped to the box, t random with ‖t‖₁ = radius (Laplace directions)."""
    t = rng.laplace(size=(k, len(x_bar)))
    t *= radius / np.abs(t).sum(axis=1, keepdims=True)
    return np.clip(x_bar + t, x_lb, x_ub)


def _closest_on_segment(network: Network, x_bar: np.ndarray, x: np.ndarray, criterion: Criterion, margin: float,
                        deadline: float | None, steps: int = 20) -> np.ndarray:
    """The point of x̄ + t (x − x̄) with the least t that bisection finds meeting the criterion by more
    than ``margin`` (x itself does; the criterion need not be monotone along the segment) before ``deadline``."""
    lo, hi = 0.0, 1.0
    for _ in range(steps):
        if expired(deadline):
            break
        mid = 0.5 * (lo + hi)
        if criterion_slack(network, (x_bar + mid * (x - x_bar))[None, :], criterion)[0] > margin:
            hi = mid
        else:
            lo = mid
    return x_bar + hi * (x - x_bar)


def gradient_start(network: Network, x_bar: np.ndarray, criterion: Criterion, margin: float, x_lb: np.ndarray,
                   x_ub: np.ndarray, deadline: float | None = None,
                   options: GradientOptions = GradientOptions(), seeds: list[np.ndarray] | tuple = ()
                   ) -> np.ndarray | None:
    """The closest point to x̄ in L1 that the attack finds meeting ``criterion`` by more than ``margin``
    (float64), inside [x_lb, x_ub]; None if none is found or ``deadline`` (`solvers.clock`) passes first.
    ``seeds`` (e.g. the other starts' adversarial points) replace random restarts: from a point beyond
    the boundary the walk follows the boundary back towards x̄."""
    x_bar = np.asarray(x_bar, dtype=np.float64)
    if expired(deadline):
        return None
    rng = np.random.default_rng(options.seed)
    best, best_l1 = None, np.inf
    # the linearised target: a little above the margin, so that the curvature the linearisation misses
    # leaves the point on the right side more often
    tau = 2.0 * margin
    y0 = network.forward(x_bar)
    temp = options.temperature * max(float(y0.max() - y0.min()), 1e-6)
    X = np.repeat(np.clip(x_bar, x_lb, x_ub)[None, :], options.restarts, axis=0)
    seeds = [np.clip(np.asarray(p, dtype=np.float64), x_lb, x_ub) for p in seeds][:options.restarts - 1]
    if seeds:
        X[1:1 + len(seeds)] = seeds
    if options.restarts > 1 + len(seeds):   # random: at half x̄'s distance to its own linearised boundary
        s0, g0, _ = soft_rows(network, X[:1], criterion, temp)
        first = float(np.abs(l1_project(X[:1], g0, tau - s0, x_lb, x_ub) - X[:1]).sum())
        X[1 + len(seeds):] = _random_starts(rng, x_bar, options.restarts - 1 - len(seeds), 0.5 * max(first, 1e-3),
                                            x_lb, x_ub)
    for it in range(options.iterations + 1):   # the last pass only checks the last step's points
        if expired(deadline):
            break
        s, g, hard = soft_rows(network, X, criterion, temp)
        adv = hard > margin
        if adv.any():   # recorded if closest, then pulled back towards x̄ (on the linearisation at X, which
            # saves the forward pass of the pulled-back points: a third of an iteration on ERAN 6x100)
            l1 = np.abs(X - x_bar).sum(axis=1)
            i = int(np.argmin(np.where(adv, l1, np.inf)))
            if l1[i] < best_l1:
                best, best_l1 = X[i].copy(), float(l1[i])
            back = x_bar + options.beta * (X[adv] - x_bar)
            s[adv] += np.einsum("ij,ij->i", g[adv], back - X[adv])
            X[adv] = back
        if it == options.iterations:
            break
        f = s - tau
        dX = l1_project(X, g, -f, x_lb, x_ub) - X
        nX = np.abs(dX).sum(axis=1)
        dX *= np.minimum(1.0, options.max_step / np.maximum(nX, 1e-300))[:, None]
        dO = l1_project(np.broadcast_to(x_bar, X.shape), g, -(f + g @ x_bar - np.einsum("ij,ij->i", g, X)),
                        x_lb, x_ub) - x_bar
        nX, nO = np.minimum(nX, options.max_step), np.abs(dO).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(nX + nO > 0, np.minimum(nX / (nX + nO), options.alpha_max), 0.0)[:, None]
        X = np.clip((1.0 - alpha) * (X + options.eta * dX) + alpha * (x_bar + options.eta * dO), x_lb, x_ub)
    if best is None:
        return None
    return np.clip(_closest_on_segment(network, x_bar, best, criterion, margin, deadline), x_lb, x_ub)
