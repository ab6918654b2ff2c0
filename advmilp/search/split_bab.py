"""Branch-and-bound over ReLU splits with β-CROWN bounds, batched (`bounds.beta`): a proof that no
point of a box meets a conjunction of linear output constraints, or a point that does.

The question is `verify`'s for one disjunct: is there an x in [x_lb, x_ub] with ``G y(x) ≤ h`` (every
row), y the logits?  A *domain* (the box with some unstable units' phases fixed) is ruled out when a
lower bound of some row's slack ``G_r y − h_r`` over it is above ``tol``; its bound is β-CROWN's (the
root's pre-activation bounds kept, the split constraints as Lagrangian terms β), with the lower slopes α
and the multipliers β of every row optimised by a few projected Adam steps, started from its parent's.
Each step takes the ``batch`` open domains with the least margin, splits each on the free unstable unit
whose relaxation costs its best row the most (BaBSR's intercept score, Bunel et al. 2020), and bounds
the 2·batch children in one pass — a matrix product per layer over all of them — so no LP is solved.
The box point where each child's final linear function is largest is checked too, and for up to a
tenth of the time a local search through linear regions starts from the best child's (`descend_regions`:
region LPs, each region's optimum on a boundary leading to the next): a point meeting the constraints
ends the search (after the caller's check in float64 and float32).

Why beside the LP phase search (`phase_bb`): on the VNN-COMP 256x4 instances the phase search's node
LPs (3,400 columns) take 0.1–3 s each, and a few hundred nodes in 300 s do not close the gap; a batch
of 128 domains costs about what one such LP costs (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from advmilp.bounds.beta import SplitRelaxation, split_upper_bound
from advmilp.bounds.compute import widen
from advmilp.nn.activations import ACTIVE, FREE, INACTIVE
from advmilp.nn.network import Network
from advmilp.solvers.clock import expired, time_left

HOLDS, VIOLATED, UNKNOWN = "holds", "violated", "unknown"


@dataclass(frozen=True)
class SplitBabOptions:
    batch: int = 64                 # domains split per step (their 2·batch children bounded at once)
    iterations: int = 8             # α,β Adam steps per batch of children
    root_iterations: int = 40       # ... at the root (nothing split: α only; α-CROWN's larger step there
    #                                 was measured and dropped: RESULTS.md)
    lr_alpha: float = 0.005         # small steps: a child starts from its parent's α and β, which larger
    lr_beta: float = 0.005          # steps throw away (VNN-COMP 256x4 prop_0_0.03, 6 disjuncts at 30 s each:
    #                                 lr 0.1/0.05 proved 1, 0.02 3, 0.01 5, 0.005 all 6 in 0.3–0.9 s; RESULTS.md)
    max_domains: int = 200_000      # open domains kept at most (beyond: unknown)
    candidates: int = 8             # units tried per domain by the branching (1: BaBSR's score alone)


@dataclass
class SplitBabResult:
    status: str                     # holds | violated | unknown
    bound: float                    # a proven lower bound of min over the box of max_r (G_r y − h_r)
    x: np.ndarray | None            # violated: the point (it passed ``is_counterexample``)
    domains: int                    # domains bounded
    depth: int                      # most splits in one domain
    time_s: float
    why: str = ""                   # unknown: time limit | domain limit | a linear region left undecided


@dataclass
class _Domain:
    phases: np.ndarray              # (H,) int8
    alpha: np.ndarray               # (R, H) float32
    beta: np.ndarray                # (R, H) float32
    scores: np.ndarray              # (H,) float32: the best row's BaBSR scores
    depth: int


def _optimise(relax: SplitRelaxation, relax32: SplitRelaxation, C: np.ndarray, x_lb, x_ub, phases: np.ndarray,
              alpha: np.ndarray, beta: np.ndarray, iterations: int, lr: tuple[float, float],
              deadline: float | None, on_points: Callable[[np.ndarray], bool]):
    """Projected Adam on α (in [slope, 1], free unstable units) and β (≥ 0, split units) of every row, in
    float32 (``relax32``); then one float64 pass with each row's best α and β gives the bounds that count:
    (value per row, α, β, scores).  Returns None as soon as ``on_points`` (called with the box maximisers
    of the first and the last pass) returns True."""
    lines = relax32.lines(phases)
    free, split = lines.free, phases != FREE
    floor = relax32.slope[None, :]
    alpha, beta = alpha.astype(np.float32), beta.astype(np.float32)
    best = np.full(len(C), np.inf, np.float32)
    best_a, best_b = alpha.copy(), beta.copy()
    m_a = v_a = m_b = v_b = np.float32(0.0)
    for it in range(iterations):
        if expired(deadline):
            break
        r = split_upper_bound(relax32, C, x_lb, x_ub, phases, alpha, beta, gradient=True, lines=lines)
        better = r.value < best
        best[better] = r.value[better]
        best_a[better], best_b[better] = alpha[better], beta[better]
        if it == 0 and on_points(r.x):
            return None
        t = it + 1
        g_a, g_b = r.grad_alpha * free, r.grad_beta * split
        m_a, v_a = 0.9 * m_a + 0.1 * g_a, 0.999 * v_a + 0.001 * g_a * g_a
        m_b, v_b = 0.9 * m_b + 0.1 * g_b, 0.999 * v_b + 0.001 * g_b * g_b
        step_a = (m_a / (1 - 0.9 ** t)) / (np.sqrt(v_a / (1 - 0.999 ** t)) + 1e-8)
        step_b = (m_b / (1 - 0.9 ** t)) / (np.sqrt(v_b / (1 - 0.999 ** t)) + 1e-8)
        alpha = np.where(free, np.clip(alpha - lr[0] * step_a, floor, 1.0), alpha).astype(np.float32)
        beta = np.where(split, np.maximum(beta - lr[1] * step_b, 0.0), beta).astype(np.float32)
    if iterations:
        r = split_upper_bound(relax32, C, x_lb, x_ub, phases, alpha, beta, lines=lines)
        better = r.value < best
        best_a[better], best_b[better] = alpha[better], beta[better]
    final = split_upper_bound(relax, C, x_lb, x_ub, phases, best_a.astype(np.float64), best_b.astype(np.float64))
    if on_points(final.x):
        return None
    return final.value, best_a, best_b, final.scores, final.x


REGION_LP_S = 5.0      # at most this long for the LP of a domain with every unit split
REGION_SHARE = 0.1     # at most this share of the search's time in the region LPs that look for points,
REGION_MIN_S = 0.1     # ... started once that share has grown to this many seconds


def region_lp(relax: SplitRelaxation, phases: np.ndarray, G: np.ndarray, h: np.ndarray, x_lb: np.ndarray,
              x_ub: np.ndarray, deadline: float | None = None) -> tuple[str, float, np.ndarray | None]:
    """A domain with every unstable unit split is one linear region, where the network is affine: the LP
    min t over x in the box with ``G_r y(x) − h_r ≤ t`` and every split's sign ``s_j z_j(x) ≥ 0`` gives
    the exact least slack there.  (status, t*, the LP's x) — status optimal, infeasible (no point of
    the box in the region) or what `HighsLP.run` says."""
    from advmilp.solvers.highs import HighsLP

    net, off = relax.network, relax.offsets
    n0 = net.n_inputs
    M, c = np.eye(n0), np.zeros(n0)
    rows, lo = [], []
    for k, layer in enumerate(net.layers[:-1]):
        Mz, cz = layer.W @ M, layer.W @ c + layer.b
        ph = phases[off[k]:off[k + 1]].astype(np.float64)
        sel = ph != FREE
        if sel.any():                                    # s_j (Mz_j x + cz_j) ≥ 0
            rows.append(np.hstack([ph[sel, None] * Mz[sel], np.zeros((int(sel.sum()), 1))]))
            lo.append(-ph[sel] * cz[sel])
        act = relax.stable_active[off[k]:off[k + 1]] | (ph == ACTIVE)
        d = np.where(act, 1.0, relax.slope[off[k]:off[k + 1]])
        M, c = d[:, None] * Mz, d * cz
    last = net.layers[-1]
    My, cy = last.W @ M, last.W @ c + last.b
    rows.append(np.hstack([G @ My, -np.ones((len(G), 1))]))          # G_r y − h_r − t ≤ 0
    A = np.vstack(rows)
    lo_all = np.concatenate(lo + [np.full(len(G), -np.inf)])
    hi_all = np.concatenate([np.full(len(A) - len(G), np.inf), h - G @ cy])
    lp = HighsLP()
    lp.add_cols(np.concatenate([x_lb, [-np.inf]]), np.concatenate([x_ub, [np.inf]]),
                np.concatenate([np.zeros(n0), [1.0]]))
    nz = A != 0
    starts = np.concatenate([[0], np.cumsum(nz.sum(axis=1))[:-1]])
    lp.add_rows(lo_all, hi_all, starts, np.nonzero(nz)[1], A[nz])
    status, value = lp.run(min(REGION_LP_S, max(time_left(deadline), 0.0)), primal=True)
    return status, value, (lp.values()[:n0] if status == "optimal" else None)


def descend_regions(relax: SplitRelaxation, x: np.ndarray, G: np.ndarray, h: np.ndarray, x_lb: np.ndarray,
                    x_ub: np.ndarray, deadline: float | None = None, steps: int = 20) -> tuple[float, np.ndarray]:
    """A local search for a point meeting ``G y ≤ h``: the region LP (`region_lp`) of x's activation pattern
    gives the least slack t in x's linear region, at a point x' on some units' boundaries (z_j = 0); x' lies
    in the neighbouring region where those units' phases are flipped too, and the network is continuous,
    so that region's least slack is at most t.  Repeated while t falls (at most ``steps`` LPs).  (t, x')."""
    tight_tol = 1e-7
    net = relax.network
    best_t, best_x = math.inf, x
    z = np.concatenate(net.preactivations(x)[:-1])
    phases = np.where(relax.unstable, np.where(z >= 0, ACTIVE, INACTIVE), FREE).astype(np.int8)
    for _ in range(steps):
        if expired(deadline):
            break
        status, t, x_new = region_lp(relax, phases, G, h, x_lb, x_ub, deadline)
        if status != "optimal" or t >= best_t - 1e-9:
            break
        best_t, best_x = t, x_new
        if t <= 0:
            break
        z = np.concatenate(net.preactivations(x_new)[:-1])
        tight = relax.unstable & (np.abs(z) <= tight_tol * np.maximum(1.0, np.abs(relax.U - relax.L)))
        if not tight.any():
            break
        phases = phases.copy()
        phases[tight] = -phases[tight]
    return best_t, best_x


def _choose_units(relax: SplitRelaxation, C_root: np.ndarray, h: np.ndarray, x_lb, x_ub, doms: list,
                  candidates: int) -> list[int]:
    """The unit to split in each domain: filtered smart branching (α,β-CROWN's FSB): the ``candidates``
    free units with the largest BaBSR scores, each split both ways and bounded once with the parent's
    α and β (one batched pass over them all, in ``relax``'s precision: a choice, not a proof), the one
    whose worse child has the best margin chosen."""
    if not doms:
        return []
    R, H = C_root.shape[0], relax.H
    k = candidates
    cand = np.empty((len(doms), k), np.int64)
    for p, d in enumerate(doms):
        open_units = relax.unstable & (d.phases == FREE)
        score = np.where(open_units, d.scores.astype(np.float64), -np.inf)
        width = np.where(open_units, relax.U - relax.L, -np.inf)
        order = np.lexsort((-width, -score))              # by score, ties (zero scores) by width
        order = order[open_units[order]][:k]
        cand[p] = np.resize(order, k)                       # (fewer open units than k: repeated)
    if k == 1:
        return cand[:, 0].tolist()
    n = len(doms) * k * 2
    phases = np.repeat(np.stack([d.phases for d in doms]), k * 2, axis=0)        # (n, H)
    rows = np.arange(n)
    phases[rows, np.repeat(cand.reshape(-1), 2)] = np.tile([ACTIVE, INACTIVE], len(doms) * k)
    phases = np.repeat(phases, R, axis=0)
    alpha = np.repeat(np.stack([d.alpha for d in doms]), k * 2, axis=0).reshape(n * R, H)
    beta = np.repeat(np.stack([d.beta for d in doms]), k * 2, axis=0).reshape(n * R, H)
    value = split_upper_bound(relax, np.tile(C_root, (n, 1)), x_lb, x_ub, phases, alpha, beta).value
    m = (-value.reshape(len(doms), k, 2, R) - h).max(axis=3).min(axis=2)        # (domains, candidates)
    return cand[np.arange(len(doms)), m.argmax(axis=1)].tolist()


def prove_disjunct(network: Network, lower: list, upper: list, G: np.ndarray, h: np.ndarray,
                   x_lb: np.ndarray, x_ub: np.ndarray, is_counterexample: Callable[[np.ndarray], bool],
                   deadline: float | None = None, options: SplitBabOptions = SplitBabOptions(),
                   tol: float = 1e-5) -> SplitBabResult:
    """Is there an x in the box with ``G y(x) ≤ h``?  (y the last layer's pre-activations; ``lower``,
    ``upper`` valid bounds of every hidden layer's pre-activations over the box.)  ``holds`` when every
    domain has a row whose slack is proven above ``tol``; ``violated`` at the first candidate point that
    meets every row in float64 and that ``is_counterexample`` accepts; else ``unknown``."""
    t0 = time.perf_counter()
    G = np.atleast_2d(np.asarray(G, np.float64))
    h = np.atleast_1d(np.asarray(h, np.float64))
    R = len(G)
    relax = SplitRelaxation(network, lower, upper)
    relax32 = relax.as_float32()
    H = relax.H
    found: list[np.ndarray] = []

    def on_points(X: np.ndarray) -> bool:
        """Any of these points meeting every row (float64 forward pass), accepted by the caller?"""
        Y = network.forward(X)
        meets = np.all(Y @ G.T <= h, axis=1)
        for i in np.flatnonzero(meets):
            if is_counterexample(X[i]):
                found.append(X[i].copy())
                return True
        return False

    def margins(values: np.ndarray) -> np.ndarray:
        """Per row of a domain: a lower bound of G_r y − h_r from an upper bound of −G_r y."""
        m = -values.reshape(-1, R) - h[None, :]
        return m - widen(m)

    domains, depth = 1, 0
    if expired(deadline):
        return SplitBabResult(UNKNOWN, -math.inf, None, 0, 0, 0.0, "time limit")
    C_root = -G
    alpha0 = np.tile(relax.crown_alpha(), (R, 1))
    phases0 = np.zeros((R, H), np.int8)
    out = _optimise(relax, relax32, C_root, x_lb, x_ub, phases0, alpha0, np.zeros((R, H)), options.root_iterations,
                    (options.lr_alpha, 0.0), deadline, on_points)

    def result(status, bound, why=""):
        return SplitBabResult(status, bound, found[0] if found else None, domains, depth,
                              time.perf_counter() - t0, why)

    if out is None:
        return result(VIOLATED, -math.inf)
    val, a, b, s, _ = out
    m = margins(val)[0]
    if m.max() > tol:
        return result(HOLDS, float(m.max()))
    counter = itertools.count()
    heap: list[tuple[float, int, _Domain]] = []
    best_row = int(m.argmax())
    heapq.heappush(heap, (float(m.max()), next(counter),
                          _Domain(np.zeros(H, np.int8), a.astype(np.float32), b.astype(np.float32),
                                  s[best_row].astype(np.float32), 0)))
    lp_s = 0.0                  # time spent in region LPs for points
    proven_min = math.inf       # the least margin of the domains ruled out
    stuck = math.inf            # the least margin of domains with nothing left to split
    why = ""
    while heap:
        if expired(deadline):
            why = "time limit"
            break
        if len(heap) > options.max_domains:
            why = "domain limit"
            break
        parents = [heapq.heappop(heap) for _ in range(min(options.batch, len(heap)))]
        splittable = []
        for margin, _, d in parents:
            if (relax.unstable & (d.phases == FREE)).any():
                splittable.append((margin, d))
                continue
            status, t, x = region_lp(relax, d.phases, G, h, x_lb, x_ub, deadline)   # one linear region
            if status == "infeasible" or (status == "optimal" and t > tol):
                proven_min = min(proven_min, max(t, margin))
            elif status == "optimal" and on_points(np.clip(x, x_lb, x_ub)[None, :]):
                return result(VIOLATED, -math.inf)
            else:
                stuck = min(stuck, margin)
        units = _choose_units(relax32, C_root, h, x_lb, x_ub, [d for _, d in splittable], options.candidates)
        children: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, float]] = []
        for (margin, d), j in zip(splittable, units):
            for phase in (ACTIVE, INACTIVE):
                ph = d.phases.copy()
                ph[j] = phase
                children.append((ph, d.alpha, d.beta, d.depth + 1, margin))
        if not children:
            continue
        n = len(children)
        phases = np.repeat(np.stack([c[0] for c in children]), R, axis=0)
        alpha = np.concatenate([c[1] for c in children])
        beta = np.concatenate([c[2] for c in children])
        C = np.tile(C_root, (n, 1))
        out = _optimise(relax, relax32, C, x_lb, x_ub, phases, alpha, beta, options.iterations,
                        (options.lr_alpha, options.lr_beta), deadline, on_points)
        domains += n
        if out is None:
            return result(VIOLATED, -math.inf)
        val, a, b, s, points = out
        m = margins(val)                                   # (n, R)
        t_lp = time.perf_counter()
        allowance = REGION_SHARE * (t_lp - t0) - lp_s
        if allowance > REGION_MIN_S:     # a point: a local search through regions from the best child's
            i = int(m.max(axis=1).argmin())
            x = points[i * R + int(m[i].argmax())]
            stop = t_lp + allowance if deadline is None else min(deadline, t_lp + allowance)
            t, x = descend_regions(relax, x, G, h, x_lb, x_ub, stop)
            lp_s += time.perf_counter() - t_lp
            if t <= 0 and on_points(np.clip(x, x_lb, x_ub)[None, :]):
                return result(VIOLATED, -math.inf)
        for i, (ph, _, _, dep, inherited) in enumerate(children):
            depth = max(depth, dep)
            top = max(float(m[i].max()), inherited)       # (the parent's bound holds on its children)
            if top > tol:
                proven_min = min(proven_min, top)
                continue
            r = int(m[i].argmax())
            rows = slice(i * R, (i + 1) * R)
            heapq.heappush(heap, (top, next(counter), _Domain(ph, a[rows].astype(np.float32),
                                                              b[rows].astype(np.float32),
                                                              s[i * R + r].astype(np.float32), dep)))
    open_min = min((e[0] for e in heap), default=math.inf)
    bound = min(open_min, stuck, proven_min)
    if not heap and stuck == math.inf:
        return result(HOLDS, bound)
    return result(UNKNOWN, bound, why or "a linear region left undecided")
