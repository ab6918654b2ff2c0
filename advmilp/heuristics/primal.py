"""A fast primal heuristic for minimal-L1 targeted adversarial examples ("fast" method).

Inside one *activation region* (every hidden unit's phase fixed) a ReLU network is affine,
so "the closest adversarial point in this region" is a linear program:

    min Σ (p + m)   s.t.  x = x̄ + p − m ∈ box,   phase constraints of every hidden unit,
                          y_d − ratio·y_j ≥ margin (j ≠ d),  y_d ≥ epsilon + margin

(criteria on the logits y, exact given y_d ≥ ε > 0; see `formulation`).  The heuristic

1. finds a first adversarial point: greedy full pixel flips along the gradient of the margin
   ``y_d − ratio·max_{j≠d} y_j`` of the current region ("greedy"), and/or bisection towards
   the nearest pool images that the network already classifies as d ("pool"); on large networks a
   boundary attack (`heuristics.gradient`) walks from those points and x̄ along the decision boundary
   towards x̄ ("gradient");
2. solves the region LP of that point;
3. moves to neighbouring regions: at the LP optimum some units sit at pre-activation 0 (their
   phase constraint binds); flipping such a unit opens the adjacent region, whose LP is solved
   and accepted if it lowers the L1 distance; repeated until no flip improves.

Every returned point is verified with `verify.verify_witness` (float64 and float32).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from advmilp.bounds.compute import interval_bounds
from advmilp.heuristics.gradient import GradientOptions, gradient_start
from advmilp.heuristics.pool import ImagePool
from advmilp.nn.network import Network
from advmilp.nn.activations import ACTIVE, INACTIVE
from advmilp.search.phase_bb import PhaseLP
from advmilp.solvers.clock import expired
from advmilp.spec.problems import Criterion, ProblemSpec, criteria, input_box
from advmilp.spec.rows import INFEASIBLE, OPTIMAL
from advmilp.spec.verify import verify_witness


@dataclass
class PrimalResult:
    x: np.ndarray | None
    l1: float
    verified: bool
    time_s: float
    lps: int
    start: str
    rounds: int

    @property
    def found(self) -> bool:
        return self.x is not None and self.verified


def hidden_pattern(network: Network, x: np.ndarray) -> list[np.ndarray]:
    return [p > 0 for p in network.preactivations(x)[:-1]]


def affine_maps(network: Network, pattern: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(M_k, c_k) with pre-activation of layer k = M_k x + c_k inside the region ``pattern``."""
    maps = []
    M = network.layers[0].W
    c = network.layers[0].b
    maps.append((M, c))
    for k in range(1, len(network.layers)):
        D = np.where(pattern[k - 1], 1.0, network.layers[k - 1].act.slope)   # the activation's slope per unit
        layer = network.layers[k]
        WD = layer.W * D[None, :]
        M, c = WD @ M, WD @ c + layer.b
        maps.append((M, c))
    return maps


def _margin(network: Network, x: np.ndarray, criterion: Criterion) -> tuple[float, int]:
    """(margin of the criterion, min over its rows of G y − h; the binding row)."""
    slack = criterion.G @ network.forward(x) - criterion.h
    r = int(np.argmin(slack))
    return float(slack[r]), r


def greedy_start(network: Network, x_bar: np.ndarray, criterion: Criterion, margin: float,
                 x_lb: np.ndarray, x_ub: np.ndarray, deadline: float | None = None) -> np.ndarray | None:
    """Full pixel flips, largest margin gain first, until the criterion holds by more than ``margin``
    (None if that is not reached, or not before ``deadline``: on a large network hundreds of flips
    take seconds)."""
    x = x_bar.copy()
    free = np.ones(len(x), dtype=bool)
    for _ in range(len(x)):
        if expired(deadline):
            return None
        m, r = _margin(network, x, criterion)
        if m > margin:
            return x
        # the binding row's gradient, one vector-Jacobian product (the region's full affine map took
        # 0.15 s a step on ERAN 6x100)
        g = network.input_gradient(x, criterion.G[r])
        up, down = x_ub - x, x - x_lb
        gain = np.where(g > 0, g * up, -g * down)
        gain[~free] = -np.inf
        i = int(np.argmax(gain))
        if not gain[i] > 0:
            return None
        x[i] = x_ub[i] if g[i] > 0 else x_lb[i]
        free[i] = False
    return None


def pool_starts(network: Network, x_bar: np.ndarray, criterion: Criterion, margin: float, pool: ImagePool | np.ndarray,
                x_lb: np.ndarray, x_ub: np.ndarray, n_candidates: int = 5, steps: int = 30) -> list[np.ndarray]:
    """Bisection from x̄ towards the nearest pool images that already meet the criterion: of each segment
    x̄ + t (c − x̄), the point at the least t found in ``steps`` halvings to meet it by more than ``margin``.
    The candidates are bisected together, one batched forward pass per halving."""
    pool = ImagePool.of(pool)
    ok = np.flatnonzero(criterion.slack(pool.outputs(network)) > margin)
    if len(ok) == 0:
        return []
    # the nearest, ranked in float32 (a quarter of the time of float64 over the ~2,000 images of a class)
    near = np.clip(pool.codes[ok].astype(np.float32) / np.float32(pool.divisor), x_lb.astype(np.float32),
                   x_ub.astype(np.float32))
    order = np.argsort(np.abs(near - x_bar.astype(np.float32)).sum(axis=1), kind="stable")[:n_candidates]
    cands = np.clip(pool.pixels(ok[order]), x_lb, x_ub)
    cands = cands[criterion.slack(network.forward(cands)) > margin]   # (clipping may have moved one)
    if len(cands) == 0:
        return []
    step = cands - x_bar
    lo_t, hi_t = np.zeros(len(cands)), np.ones(len(cands))
    for _ in range(steps):
        mid = 0.5 * (lo_t + hi_t)
        meets = criterion.slack(network.forward(x_bar + mid[:, None] * step)) > margin
        hi_t = np.where(meets, mid, hi_t)
        lo_t = np.where(meets, lo_t, mid)
    return list(x_bar + hi_t[:, None] * step)


def improve_by_regions(network: Network, x: np.ndarray, x_bar: np.ndarray, lp: PhaseLP,
                       x_lb: np.ndarray, x_ub: np.ndarray, max_rounds: int = 50, max_flips: int = 12,
                       tol: float = 1e-6, deadline: float = np.inf,
                       solved: dict | None = None) -> tuple[np.ndarray, int, int]:
    """Region LP at x, then neighbouring regions through binding phase constraints.

    The region LPs are one persistent `phase_bb.PhaseLP` with every unit's phase fixed: moving to a
    neighbouring region changes bounds only, and each LP restarts from the current region's
    optimal basis (measured on DNN1: ~0.5 ms per region LP against ~4 ms for a region LP built
    from scratch); ``lp`` is `region_lp_model`'s.  ``solved``: the regions of this ``lp`` already solved
    (by earlier starts), filled in here; a region found there is not solved again (on DNN1 the starts of an
    image meet the same regions: 392 of 662 region LPs repeated one).  Returns (point, LPs solved, rounds)."""
    solved = {} if solved is None else solved
    best, best_basis, lps = _solve_region(lp, hidden_pattern(network, x), x_lb, x_ub, deadline, solved)
    if best is None:
        return x, lps, 0
    best_l1 = float(np.abs(best - x_bar).sum())
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        if time.perf_counter() > deadline:
            break
        pres = network.preactivations(best)[:-1]
        pattern = [p > 0 for p in pres]
        flat = np.concatenate(pres)
        tight = np.flatnonzero(np.abs(flat) <= tol * max(1.0, float(np.abs(flat).max())))
        tight = tight[np.argsort(np.abs(flat[tight]))][:max_flips]
        offsets = np.cumsum([0] + [len(p) for p in pres])
        candidates = []
        for u in tight:
            k = int(np.searchsorted(offsets, u, side="right") - 1)
            pat = [p.copy() for p in pattern]
            pat[k][u - offsets[k]] = not pat[k][u - offsets[k]]
            candidates.append(pat)
        if len(tight) > 1:  # all binding units flipped together (degenerate vertices)
            pat = [p.copy() for p in pattern]
            for u in tight:
                k = int(np.searchsorted(offsets, u, side="right") - 1)
                pat[k][u - offsets[k]] = not pat[k][u - offsets[k]]
            candidates.append(pat)
        improved = None
        for pat in candidates:
            if time.perf_counter() > deadline:
                break
            cand, basis, fresh = _solve_region(lp, pat, x_lb, x_ub, deadline, solved, start=best_basis)
            lps += fresh
            if cand is None:
                continue
            l1 = float(np.abs(cand - x_bar).sum())
            if l1 < best_l1 - 1e-7 * max(1.0, best_l1):
                improved, improved_basis, best_l1 = cand, basis, l1
        if improved is None:
            break
        best, best_basis = improved, improved_basis
    return best, lps, rounds


def region_lp_model(network: Network, criterion: Criterion, margin: float, x_bar: np.ndarray, x_lb: np.ndarray,
                    x_ub: np.ndarray) -> PhaseLP:
    """The warm LP the region LPs of one image are solved on: minimal Σ|x − x̄| with ``criterion``
    (+ ``margin``); box bounds (with every phase fixed they constrain nothing)."""
    return PhaseLP(network, interval_bounds(network, x_lb, x_ub), x_bar, x_lb, x_ub, criterion.G,
                   criterion.h + margin, None)


def _solve_region(lp: PhaseLP, pattern: list[np.ndarray], x_lb: np.ndarray, x_ub: np.ndarray,
                  deadline: float, solved: dict | None = None, start=None):
    """(minimal-L1 adversarial point of the region, the LP's optimal basis, 1 if an LP was solved for it
    else 0), the first two None if the region has no such point; from ``solved`` (region → that pair) if
    the region is there, else by the LP (restarted from the basis ``start`` if given), put there if the LP
    settles it (optimal or infeasible: not a time limit)."""
    key = np.concatenate(pattern).tobytes()
    if solved is not None and key in solved:
        return (*solved[key], 0)
    if start is not None:
        lp.restore(start)
    lp.set_phases(np.where(np.concatenate(pattern), ACTIVE, INACTIVE).astype(np.int8))
    status, _, col = lp.solve(max(deadline - time.perf_counter(), 0.05) if np.isfinite(deadline) else 60.0)
    out = (lp.point(col, x_lb, x_ub), lp.basis()) if status == OPTIMAL else (None, None)
    if solved is not None and status in (OPTIMAL, INFEASIBLE):
        solved[key] = out
    return (*out, 1)


def sparsify(network: Network, x: np.ndarray, x_bar: np.ndarray, criterion: Criterion, margin: float,
             x_lb: np.ndarray, x_ub: np.ndarray, deadline: float = math.inf, tol: float = 1e-5) -> np.ndarray:
    """A point changing fewer pixels than ``x`` (a point meeting ``criterion``), for minimal L0: inside x's
    activation region, every pixel x leaves at x̄ is held there, and the changed ones are held at x̄ one at a
    time, smallest move first; a hold after which the region LP (minimal Σ|δ| with the criterion) is still
    feasible is kept, and the LP's point is the new point.  Unverified (the caller checks it); ``x`` itself
    if nothing could be held."""
    lp = region_lp_model(network, criterion, margin, x_bar, x_lb, x_ub)
    pattern = hidden_pattern(network, x)
    move = np.abs(x - x_bar)
    lp.pin_pixels(np.flatnonzero(move <= tol))
    best = x
    for i in np.flatnonzero(move > tol)[np.argsort(move[move > tol], kind="stable")]:
        if time.perf_counter() > deadline:
            break
        lp.pin_pixels(i)
        y, _, _ = _solve_region(lp, pattern, x_lb, x_ub, deadline)
        if y is None:
            lp.pin_pixels(i, pinned=False)
        else:
            best = y
    return best


def find_adversarial(network: Network, x_bar: np.ndarray, label: int, spec: ProblemSpec,
                     pool: ImagePool | np.ndarray | None = None, starts: tuple[str, ...] = ("greedy", "pool"),
                     time_limit: float = 10.0, n_pool: int = 5, deadline: float | None = None,
                     max_winners: int = 3, gradient: GradientOptions | None = GradientOptions()) -> PrimalResult:
    """The best verified adversarial point found from every start (``x`` None if none).  After
    ``time_limit`` no further start is improved once a point is known; nothing runs past ``deadline``
    (the instance's, `solvers.clock`), point or not.  An untargeted problem is tried towards the
    ``max_winners`` classes with the largest logits at x̄ (its criterion is one conjunction per class).
    On networks of at least ``gradient.min_hidden_units`` hidden units (None: never) the boundary attack
    `gradient.gradient_start`, seeded with the greedy and pool points, runs for ``gradient.share`` of each
    criterion's time and its point is polished first."""
    t0 = time.perf_counter()
    hard = math.inf if deadline is None else deadline
    soft = min(t0 + time_limit, hard)
    target = spec.target_for(label)
    x_bar = np.asarray(x_bar, dtype=np.float64)
    x_lb, x_ub = input_box(spec, len(x_bar), x_bar)
    conj = criteria(spec, label, network.n_outputs)
    if len(conj) > 1:
        y = network.forward(x_bar)
        conj = sorted(conj, key=lambda c: -y[c.winner])[:max_winners]
    best, best_l1, best_start, lps, rounds = None, np.inf, "", 0, 0
    attack = gradient is not None and gradient.runs_on(network)
    for n_done, criterion in enumerate(conj):
        now = time.perf_counter()
        if now > hard or (now > soft and best is not None):
            break
        # each conjunction gets an equal share of what is left of the soft limit
        share = now + (soft - now) / (len(conj) - n_done)
        initial: list[tuple[str, np.ndarray]] = []
        if "greedy" in starts:
            # beside the attack the flips get a third of the share (hundreds of flips took 1.5-3 s on VNN-COMP
            # 256x6 and left the attack no time); without it, as before, until the hard deadline
            stop = min(hard, now + (share - now) / 3) if attack else deadline
            g = greedy_start(network, x_bar, criterion, spec.margin, x_lb, x_ub, deadline=stop)
            if g is not None:
                initial.append(("greedy", g))
        if "pool" in starts and pool is not None and time.perf_counter() <= hard:
            initial += [("pool", s) for s in pool_starts(network, x_bar, criterion, spec.margin, pool, x_lb, x_ub,
                                                         n_pool)]
        if attack and time.perf_counter() <= hard:
            stop = min(hard, time.perf_counter() + gradient.share * max(share - time.perf_counter(), 0.0))
            g = gradient_start(network, x_bar, criterion, spec.margin, x_lb, x_ub, deadline=stop, options=gradient,
                               seeds=[x0 for _, x0 in initial])
            if g is not None:
                initial.insert(0, ("gradient", g))
        lp = (region_lp_model(network, criterion, spec.margin, x_bar, x_lb, x_ub)
              if initial and time.perf_counter() <= hard else None)
        solved: dict = {}     # the regions of this criterion's LP solved so far, shared by its starts
        for name, x0 in initial:
            now = time.perf_counter()
            if now > share and best is not None:
                break
            x = x0
            if lp is not None and now <= hard:    # past it, the starts themselves are still checked (a forward pass each)
                x, n_lps, n_rounds = improve_by_regions(network, x0, x_bar, lp, x_lb, x_ub, deadline=share,
                                                           solved=solved)
                lps += n_lps
                rounds += n_rounds
            for point in (x, x0):
                check = verify_witness(network, point, spec, x_bar, label, target, x_lb, x_ub)
                if check.verified and check.l1 < best_l1:
                    best, best_l1, best_start = check.x, check.l1, name
                    break
    return PrimalResult(best, float(best_l1), best is not None, time.perf_counter() - t0, lps, best_start, rounds)
