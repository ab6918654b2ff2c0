"""Branch-and-bound over ReLU phases for the minimal-L1 targeted attack (method ``tight``).

The same problem as the tight MILP — min Σ|x − x̄| over x in the box with Σ|x − x̄| ≤ cap and the
targeted criterion on the logits — searched by branching on the *phase* of each unstable hidden
unit.  One HiGHS LP (`solvers.highs.HighsLP`) lives for the whole search, with columns

    p, m          x = x̄ + p − m  (one column per pixel and direction it can move)
    y_k, a_k, z_k pre-activation, post-activation and phase (z = 1 inactive, relaxed to [0, 1]) of
                  every hidden unit; y of the output layer (logits)

and rows  y_1 = W_1 (x̄ + p − m) + b_1,  y_k = W_k a_(k−1) + b_k,  the criterion rows, the cap
row, and per hidden unit  a ≥ y,  a + U·z ≤ U,  a − y + L·z ≤ 0  (the big-M unit; its LP
relaxation projects onto the triangle).  A node fixes some units' phases, which only changes
column *bounds*:  active z = 0 (so a = y ≥ 0),  inactive z = 1 (so a = 0, y ≤ 0),  free z ∈ [0, 1];
so every node LP is re-solved by dual simplex from its parent's basis in a few pivots.  Ideal ReLU
cuts (`cuts`) can be added at the root; they are valid for the whole search.

A node LP's optimum is a lower bound on every point of the node; a node whose free units all sit
on the ReLU (a = max(y, 0)) has an LP point that is a network point, so its bound is attained
there.  Every candidate point is checked with the float64 forward pass (`verify`) before it becomes
the incumbent; the reported bound is the least bound over the open nodes, the pruned nodes and the
nodes closed without a verified point, so it is a proven bound on the optimum (within HiGHS'
tolerances, like a MILP dual bound).

Why: HiGHS' MILP machinery (cut separation, propagation over the 1,568 pixel columns, strong
branching) costs more per node than these warm LP re-solves (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from advmilp.bounds.compute import Bounds
from advmilp.nn.network import Network
from advmilp.search.options import SearchOptions
from advmilp.solvers.highs import HighsLP
from advmilp.spec.problems import ProblemSpec
from advmilp.spec.rows import INFEASIBLE, LIMIT, OPTIMAL, TIME_LIMIT
from advmilp.spec.verify import verify_witness

ACTIVE, INACTIVE, FREE = 1, -1, 0
UNKNOWN = "unknown"    # the search's status when a node could not be settled


@dataclass
class PhaseSearchResult:
    status: str                 # optimal | time_limit | limit (max_nodes) | infeasible (no point within the cap) | unknown
    x: np.ndarray | None        # best verified point (None if none)
    objective: float            # its L1 distance (nan if none)
    bound: float                # proven lower bound on the optimum (inf if the cap excludes every point)
    nodes: int
    lps: int
    time_s: float
    binaries: int               # unstable hidden units at the root
    cuts: int = 0               # ideal ReLU cuts added


class PhaseLP:
    """The persistent node LP (see module docstring)."""

    def __init__(self, network: Network, bounds: Bounds, spec: ProblemSpec, x_bar: np.ndarray, target: int,
                 x_lb: np.ndarray, x_ub: np.ndarray, cap: float | None):
        self.lp = HighsLP()
        inf = math.inf
        self.x_bar = x_bar
        up, down = x_ub - x_bar, x_bar - x_lb
        self.P, self.M = np.flatnonzero(up > 0), np.flatnonzero(down > 0)
        nP, nM = len(self.P), len(self.M)
        K = len(network.layers)
        hidden = [k for k in range(K - 1)]
        if any(network.layers[k].activation != "relu" for k in hidden) or network.layers[-1].activation == "relu":
            raise ValueError("phase search needs ReLU hidden layers and a linear output layer")
        col_lo = [np.zeros(nP + nM)]
        col_hi = [np.concatenate([up[self.P], down[self.M]])]
        n = nP + nM
        self.y_cols, self.a_cols, self.z_cols = [], [], []
        for k in hidden:
            L, U = bounds.lower[k], bounds.upper[k]
            w = len(L)
            self.y_cols.append(np.arange(n, n + w)); n += w
            self.a_cols.append(np.arange(n, n + w)); n += w
            self.z_cols.append(np.arange(n, n + w)); n += w
            col_lo += [L, np.zeros(w), np.zeros(w)]
            col_hi += [U, np.maximum(U, 0.0), np.ones(w)]
        L, U = bounds.lower[K - 1], bounds.upper[K - 1]
        self.out_cols = np.arange(n, n + len(L)); n += len(L)
        col_lo.append(L); col_hi.append(U)
        self.n_cols = n
        cost = self.cost = np.zeros(n)
        cost[:nP + nM] = 1.0
        self.lp.add_cols(np.concatenate(col_lo), np.concatenate(col_hi), cost)

        rows: list[tuple[np.ndarray, np.ndarray, float, float]] = []   # (cols, vals, lo, hi)
        W1, b1 = network.layers[0].W, network.layers[0].b
        base1 = W1 @ x_bar + b1
        for j in range(W1.shape[0]):
            vals = np.concatenate([W1[j, self.P], -W1[j, self.M]])
            nz = vals != 0
            rows.append((np.append(np.arange(nP + nM)[nz], self.y_cols[0][j]), np.append(vals[nz], -1.0),
                         -base1[j], -base1[j]))
        for k in range(1, K):
            W, b = network.layers[k].W, network.layers[k].b
            ycols = self.y_cols[k] if k < K - 1 else self.out_cols
            for j in range(W.shape[0]):
                nz = W[j] != 0
                rows.append((np.append(self.a_cols[k - 1][nz], ycols[j]), np.append(W[j, nz], -1.0), -b[j], -b[j]))
        self.ge_rows, self.on_rows, self.off_rows = [], [], []
        self.L, self.U = [], []
        for k in hidden:
            L, U = bounds.lower[k].astype(np.float64), bounds.upper[k].astype(np.float64)
            self.L.append(L); self.U.append(U)
            ge, on, off = [], [], []
            for j in range(len(L)):
                a, y, z = self.a_cols[k][j], self.y_cols[k][j], self.z_cols[k][j]
                ge.append(len(rows))
                rows.append((np.array([a, y]), np.array([1.0, -1.0]), 0.0, inf))               # a ≥ y
                on.append(len(rows))
                rows.append((np.array([a, z]), np.array([1.0, U[j]]), -inf, U[j]))            # z = 1 → a ≤ 0
                off.append(len(rows))
                rows.append((np.array([a, y, z]), np.array([1.0, -1.0, L[j]]), -inf, 0.0))    # z = 0 → a ≤ y
            self.ge_rows.append(np.array(ge, dtype=np.int64))
            self.on_rows.append(np.array(on, dtype=np.int64))
            self.off_rows.append(np.array(off, dtype=np.int64))
        n_out = len(self.out_cols)
        for j in range(n_out):
            if j != target:
                rows.append((self.out_cols[[target, j]], np.array([1.0, -spec.ratio]), spec.margin, inf))
        rows.append((self.out_cols[[target]], np.array([1.0]), spec.epsilon + spec.margin, inf))
        self.cap_row = len(rows)
        rows.append((np.arange(nP + nM), np.ones(nP + nM), -inf, float(cap) if cap is not None else inf))
        starts = np.cumsum([0] + [len(r[0]) for r in rows[:-1]]).astype(np.int32)
        idx = np.concatenate([r[0] for r in rows]).astype(np.int32)
        val = np.concatenate([r[1] for r in rows]).astype(np.float64)
        rlo = np.array([r[2] for r in rows], dtype=np.float64)
        rhi = np.array([r[3] for r in rows], dtype=np.float64)
        self.lp.add_rows(rlo, rhi, starts, idx, val)
        # flattened views over all hidden units
        self.Lf, self.Uf = np.concatenate(self.L), np.concatenate(self.U)
        self.yf, self.af = np.concatenate(self.y_cols), np.concatenate(self.a_cols)
        self.zf = np.concatenate(self.z_cols)
        self.onf, self.offf = np.concatenate(self.on_rows), np.concatenate(self.off_rows)
        self._L, self._U = self.Lf.copy(), self.Uf.copy()     # the bounds the big-M rows are written for
        # what the ideal cuts need: every hidden unit's input columns, weights, bias and input box
        self._unit_inputs = []
        for k in hidden:
            W = network.layers[k].W
            for j in range(W.shape[0]):
                if k == 0:
                    cols = np.arange(nP + nM)
                    w = np.concatenate([W[j, self.P], -W[j, self.M]])
                    box_lo, box_hi, bias = np.zeros(nP + nM), col_hi[0], float(base1[j])
                else:
                    cols = self.a_cols[k - 1]
                    w = W[j].astype(np.float64)
                    box_lo, box_hi, bias = np.zeros(len(cols)), np.maximum(self.U[k - 1], 0.0), float(network.layers[k].b[j])
                nz = w != 0
                self._unit_inputs.append((cols[nz].astype(np.int32), w[nz], box_lo[nz], box_hi[nz], bias))
        self.n_cuts = 0
        self.offsets = np.cumsum([0] + [len(L) for L in self.L])

    def root_phases(self) -> np.ndarray:
        """Phase of every hidden unit implied by the bounds (stable units fixed, the rest free)."""
        ph = np.zeros(len(self.Lf), dtype=np.int8)
        ph[self.Lf >= 0] = ACTIVE
        ph[self.Uf <= 0] = INACTIVE
        return ph

    def set_phases(self, ph: np.ndarray) -> None:
        """Phases over the root bounds."""
        self.set_node(ph, self.Lf, self.Uf)

    def set_node(self, ph: np.ndarray, L: np.ndarray, U: np.ndarray) -> None:
        """Phases ``ph`` and pre-activation bounds [L, U] of every hidden unit (node bounds may be
        tighter than the root's: their big-M rows are rewritten)."""
        act, ina = ph == ACTIVE, ph == INACTIVE
        y_lo = np.where(act, np.maximum(L, 0.0), L)
        y_hi = np.where(ina, np.minimum(U, 0.0), U)
        a_hi = np.where(ina, 0.0, np.maximum(U, 0.0))
        z_lo = np.where(ina, 1.0, 0.0)
        z_hi = np.where(act, 0.0, 1.0)
        n = len(ph)
        cols = np.concatenate([self.yf, self.af, self.zf]).astype(np.int32)
        self.lp.set_col_bounds(cols, np.concatenate([y_lo, np.zeros(n), z_lo]), np.concatenate([y_hi, a_hi, z_hi]))
        changed = np.flatnonzero((L != self._L) | (U != self._U))
        if len(changed):    # the big-M rows of the new bounds: a + U·z ≤ U and a − y + L·z ≤ 0
            for j in changed:
                self.lp.set_coeff(self.onf[j], self.zf[j], U[j])
                self.lp.set_coeff(self.offf[j], self.zf[j], L[j])
            self.lp.set_row_bounds(self.onf[changed], np.full(len(changed), -math.inf), U[changed])
            self._L, self._U = L.copy(), U.copy()

    def add_cuts(self, col: np.ndarray, free: np.ndarray, tol: float = 1e-6) -> int:
        """Add the most violated ideal ReLU cut (`cuts`, Anderson et al. 2020) of every free unit at the
        LP point ``col``; valid for the whole search (root input boxes).  Returns how many."""
        from advmilp.search.cuts import cut_coefficients, most_violated

        added = 0
        for j in np.flatnonzero(free):
            cols, w, lo, hi, bias = self._unit_inputs[j]
            found = most_violated(w, bias, lo, hi, col[cols], col[self.af[j]], col[self.zf[j]])
            if found is None or found[1] <= tol * max(1.0, abs(bias)):
                continue
            in_I = found[0]
            coef, c_z, rhs = cut_coefficients(w, bias, lo, hi, in_I)
            idx = np.concatenate([[self.af[j]], cols[in_I], [self.zf[j]]]).astype(np.int32)
            self.lp.add_row(idx, np.concatenate([[1.0], coef, [c_z]]), -math.inf, rhs)
            added += 1
        self.n_cuts += added
        return added

    def pre_and_violation(self, col: np.ndarray, ph: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """At the LP point ``col``: every hidden unit's pre-activation, and how far each free unit is
        off its activation's graph (0 = on it; stable units count as on it)."""
        y, a = col[self.yf], col[self.af]
        return y, np.where(ph == FREE, a - np.maximum(y, 0.0), 0.0)

    def basis(self):
        """The LP's current basis (to restore a node's parent basis later)."""
        return self.lp.basis()

    def restore(self, basis) -> None:
        self.lp.restore(basis)

    def unit_duals(self) -> np.ndarray:
        """|dual| of every hidden unit's two big-M rows, summed, at the last LP optimum."""
        rd = self.lp.row_duals()
        return np.abs(rd[self.onf]) + np.abs(rd[self.offf])

    def set_cap(self, cap: float) -> None:
        """Σ|x − x̄| ≤ cap (only points at least as good as the incumbent matter)."""
        self.lp.set_row_bounds(np.array([self.cap_row]), np.array([-math.inf]), np.array([float(cap)]))

    def solve(self, time_limit: float) -> tuple[str, float, np.ndarray | None]:
        """(status, objective, column values) of the LP under the current phases."""
        st, value = self.lp.run(time_limit)
        return st, value, (self.lp.values() if st == "optimal" else None)

    def point(self, col: np.ndarray, x_lb: np.ndarray, x_ub: np.ndarray) -> np.ndarray:
        x = self.x_bar.copy()
        nP = len(self.P)
        x[self.P] += col[:nP]
        x[self.M] -= col[nP:nP + len(self.M)]
        return np.clip(x, x_lb, x_ub)


@dataclass(order=True)
class Node:
    """An open node of the search: the phases it fixes, ordered by its parent's LP bound (a lower
    bound on every point of the node until its own LP is solved), ties by creation order."""

    bound: float
    counter: int
    phases: np.ndarray = field(compare=False)
    depth: int = field(compare=False)
    basis: object = field(default=None, compare=False)   # the parent's optimal basis (None: keep the LP's)


def search_phases(network: Network, bounds: Bounds, spec: ProblemSpec, x_bar: np.ndarray, label: int,
                  x_lb: np.ndarray, x_ub: np.ndarray, cap: float | None, incumbent: np.ndarray | None = None,
                  options: SearchOptions = SearchOptions()) -> PhaseSearchResult:
    """Minimise Σ|x − x̄| over the targeted-adversarial points in [x_lb, x_ub] with Σ|x − x̄| ≤ cap, by
    best-bound branch-and-bound over ReLU phases, diving on one child of every branched node (the
    child on the side of the unit's LP pre-activation); ``incumbent``, if it verifies, is the first
    best point.  Options: time limit, gap, node limit, root cut rounds and branching rule."""
    t0 = time.perf_counter()
    deadline = t0 + options.time_limit
    target = spec.target_for(label)
    x_bar = np.asarray(x_bar, dtype=np.float64)
    lp = PhaseLP(network, bounds, spec, x_bar, target, x_lb, x_ub, cap)
    best_x, best = None, math.inf
    if incumbent is not None:
        chk = verify_witness(network, incumbent, spec, x_bar, label, target, x_lb, x_ub)
        if chk.verified:
            best_x, best = chk.x, chk.l1
            if cap is None or best < cap:
                lp.set_cap(best)
    root = lp.root_phases()
    binaries = int((root == FREE).sum())
    heap: list[Node] = []
    counter = itertools.count()
    unresolved = math.inf    # least bound of nodes closed without a verified point
    pruned = math.inf        # least bound of nodes pruned against the incumbent (>= incumbent − gap)
    nodes = lps = 0
    status = OPTIMAL

    def prune_level() -> float:
        return best - options.gap_rel * abs(best) if math.isfinite(best) else math.inf

    node: Node | None = Node(-math.inf, next(counter), root, 0)     # the node solved next
    while node is not None or heap:
        if node is None:                   # best bound first
            node = heapq.heappop(heap)
            if node.bound >= prune_level():
                pruned = min(pruned, node.bound)
                node = None
                continue
            if node.basis is not None:     # start from the parent's optimal basis
                lp.restore(node.basis)
        if time.perf_counter() > deadline or (options.max_nodes is not None and nodes >= options.max_nodes):
            heapq.heappush(heap, node)     # still open: its bound counts
            status = TIME_LIMIT if time.perf_counter() > deadline else LIMIT
            break
        ph, depth, parent_bound = node.phases, node.depth, node.bound
        node = None

        # the node's LP (with ideal cuts at the root)
        lp.set_phases(ph)
        st, obj, col = lp.solve(deadline - time.perf_counter())
        nodes += 1
        lps += 1
        for _ in range(options.cut_rounds if depth == 0 else 0):
            if not (st == OPTIMAL and obj < prune_level()) or time.perf_counter() > deadline:
                break
            if not lp.add_cuts(col, ph == FREE):
                break
            st, obj, col = lp.solve(deadline - time.perf_counter())
            lps += 1
        if st == INFEASIBLE:
            continue
        if st != OPTIMAL:                  # LP not solved: the parent's bound stands, branch blind
            if not (ph == FREE).any():
                unresolved = -math.inf
                continue
            obj, col = parent_bound, None
        if obj >= prune_level():
            pruned = min(pruned, obj)
            continue

        # the LP point: a candidate incumbent, and the unit to branch on
        if col is None:
            j, go_active = int(np.flatnonzero(ph == FREE)[0]), True
        else:
            chk = verify_witness(network, lp.point(col, x_lb, x_ub), spec, x_bar, label, target, x_lb, x_ub)
            if chk.verified and chk.l1 < best:
                best_x, best = chk.x, chk.l1
                lp.set_cap(best)
            y, viol = lp.pre_and_violation(col, ph)
            tol = 1e-9 * max(1.0, float(np.abs(y).max(initial=0.0)))
            j = options.branching.select(lp, viol, tol, lp.Lf, lp.Uf)
            if viol[j] <= tol:
                # every unit on its ReLU: the LP point is a network point with objective obj
                if not (chk.verified and chk.l1 <= obj + 1e-6 * max(1.0, obj)):
                    unresolved = min(unresolved, obj)
                continue
            go_active = y[j] > 0
        if obj >= prune_level():           # the point just verified may have lowered the level
            pruned = min(pruned, obj)
            continue

        # two children with this node's bound: one queued, one dived into
        dive, other = ph.copy(), ph.copy()
        dive[j], other[j] = (ACTIVE, INACTIVE) if go_active else (INACTIVE, ACTIVE)
        heapq.heappush(heap, Node(obj, next(counter), other, depth + 1, lp.basis()))
        node = Node(obj, next(counter), dive, depth + 1)

    bound = min(best, min((n.bound for n in heap), default=math.inf), unresolved, pruned)
    if status == OPTIMAL and bound < prune_level():
        status = UNKNOWN    # a node could not be settled (LP not solved, or its point failed the check)
    if status == OPTIMAL and not math.isfinite(best):
        status = INFEASIBLE
    return PhaseSearchResult(status, best_x, best if math.isfinite(best) else math.nan, bound, nodes, lps,
                             time.perf_counter() - t0, binaries, lp.n_cuts)
