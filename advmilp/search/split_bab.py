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
The box point where each child's final linear function is largest is checked too: a point meeting
the constraints ends the search (after the caller's check in float64 and float32).

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

from advmilp.bounds.beta import ACTIVE, FREE, INACTIVE, SplitRelaxation, split_upper_bound
from advmilp.bounds.compute import widen
from advmilp.nn.network import Network
from advmilp.solvers.clock import expired, time_left

HOLDS, VIOLATED, UNKNOWN = "holds", "violated", "unknown"


@dataclass(frozen=True)
class SplitBabOptions:
    batch: int = 64                 # domains split per step (their 2·batch children bounded at once)
    iterations: int = 8             # α,β Adam steps per batch of children
    root_iterations: int = 40       # ... at the root
    lr_alpha: float = 0.1
    lr_beta: float = 0.05
    max_domains: int = 200_000      # open domains kept at most (beyond: unknown)


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


def _optimise(relax: SplitRelaxation, C: np.ndarray, x_lb, x_ub, phases: np.ndarray, alpha: np.ndarray,
              beta: np.ndarray, iterations: int, options: SplitBabOptions, deadline: float | None,
              on_points: Callable[[np.ndarray], bool]):
    """Projected Adam on α (in [slope, 1], free unstable units) and β (≥ 0, split units) of every row:
    (best value per row, its α, β and scores); stops early when ``on_points`` (called with every pass's
    box maximisers) returns True.  Returns None then."""
    free = relax.unstable[None, :] & (phases == FREE)
    split = phases != FREE
    floor = relax.slope[None, :]
    best = np.full(len(C), np.inf)
    best_a, best_b, best_s = alpha.copy(), beta.copy(), np.zeros(alpha.shape)
    m_a = v_a = m_b = v_b = 0.0
    for it in range(iterations + 1):
        last = it == iterations or expired(deadline)
        r = split_upper_bound(relax, C, x_lb, x_ub, phases, alpha, beta, gradient=not last)
        better = r.value < best
        best[better] = r.value[better]
        best_a[better], best_b[better], best_s[better] = alpha[better], beta[better], r.scores[better]
        if (it == 0 or last) and on_points(r.x):
            return None
        if last:
            break
        t = it + 1
        g_a, g_b = r.grad_alpha * free, r.grad_beta * split
        m_a, v_a = 0.9 * m_a + 0.1 * g_a, 0.999 * v_a + 0.001 * g_a * g_a
        m_b, v_b = 0.9 * m_b + 0.1 * g_b, 0.999 * v_b + 0.001 * g_b * g_b
        step_a = (m_a / (1 - 0.9 ** t)) / (np.sqrt(v_a / (1 - 0.999 ** t)) + 1e-8)
        step_b = (m_b / (1 - 0.9 ** t)) / (np.sqrt(v_b / (1 - 0.999 ** t)) + 1e-8)
        alpha = np.where(free, np.clip(alpha - options.lr_alpha * step_a, floor, 1.0), alpha)
        beta = np.where(split, np.maximum(beta - options.lr_beta * step_b, 0.0), beta)
    return best, best_a, best_b, best_s


REGION_LP_S = 5.0      # at most this long for the LP of a domain with every unit split


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
    C_root = -G
    alpha0 = np.tile(relax.crown_alpha(), (R, 1))
    phases0 = np.zeros((R, H), np.int8)
    out = _optimise(relax, C_root, x_lb, x_ub, phases0, alpha0, np.zeros((R, H)), options.root_iterations,
                    options, deadline, on_points)

    def result(status, bound, why=""):
        return SplitBabResult(status, bound, found[0] if found else None, domains, depth,
                              time.perf_counter() - t0, why)

    if out is None:
        return result(VIOLATED, -math.inf)
    val, a, b, s = out
    m = margins(val)[0]
    if m.max() > tol:
        return result(HOLDS, float(m.max()))
    counter = itertools.count()
    heap: list[tuple[float, int, _Domain]] = []
    best_row = int(m.argmax())
    heapq.heappush(heap, (float(m.max()), next(counter),
                          _Domain(np.zeros(H, np.int8), a.astype(np.float32), b.astype(np.float32),
                                  s[best_row].astype(np.float32), 0)))
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
        children: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, float]] = []
        for margin, _, d in parents:
            open_units = relax.unstable & (d.phases == FREE)
            if not open_units.any():        # one linear region: its LP decides it
                status, t, x = region_lp(relax, d.phases, G, h, x_lb, x_ub, deadline)
                if status == "infeasible" or (status == "optimal" and t > tol):
                    proven_min = min(proven_min, max(t, margin))
                elif status == "optimal" and on_points(np.clip(x, x_lb, x_ub)[None, :]):
                    return result(VIOLATED, -math.inf)
                else:
                    stuck = min(stuck, margin)
                continue
            score = np.where(open_units, d.scores, -np.inf)
            j = int(score.argmax())
            if not score[j] > 0:     # no intercept to remove: the widest free unit
                j = int(np.where(open_units, relax.U - relax.L, -np.inf).argmax())
            for phase in (ACTIVE, INACTIVE):
                ph = d.phases.copy()
                ph[j] = phase
                children.append((ph, d.alpha, d.beta, d.depth + 1, margin))
        if not children:
            continue
        n = len(children)
        phases = np.repeat(np.stack([c[0] for c in children]), R, axis=0)
        alpha = np.concatenate([c[1] for c in children]).astype(np.float64)
        beta = np.concatenate([c[2] for c in children]).astype(np.float64)
        C = np.tile(C_root, (n, 1))
        out = _optimise(relax, C, x_lb, x_ub, phases, alpha, beta, options.iterations, options, deadline, on_points)
        domains += n
        if out is None:
            return result(VIOLATED, -math.inf)
        val, a, b, s = out
        m = margins(val)                                   # (n, R)
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
