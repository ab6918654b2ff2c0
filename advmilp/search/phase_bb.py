"""Branch-and-bound over ReLU phases for the minimal-L1 targeted attack (method ``tight``).

The same problem as the tight MILP — min Σ|x − x̄| over x in the box with Σ|x − x̄| ≤ cap and the
targeted criterion on the logits — searched by branching on the *phase* of each unstable hidden
unit.  One HiGHS LP (`solvers`) lives for the whole search, built from the encoder table
(`encode.lp`, the same unit encoding as the thesis MILP), with columns

    p, m          x = x̄ + p − m  (one column per pixel and direction it can move)
    a, s, z       per hidden unit with L < 0 < U: pre = a − s,  a ≤ U·(1 − z),  s ≤ −L·z, the
                  phase z (1 inactive) relaxed to [0, 1] (its LP relaxation projects onto the
                  triangle); a stable unit gets its exact linear encoding and no z
    y             the logits (the output layer's pre-activations)

and rows: the units' rows (pre-activations written through the previous layer's columns), the
criterion rows on y, and the cap row Σ(p + m) ≤ cap.  A node fixes some units' phases, which only
changes column *bounds*:  active z = 0 (so s = 0, pre = a ≥ 0),  inactive z = 1 (so a = 0, pre =
−s ≤ 0),  free z ∈ [0, 1]; so every node LP is re-solved by dual simplex from its parent's basis in
a few pivots.  Ideal ReLU cuts (`cuts`) can be added at the root; they are valid for the whole search.

A node LP's optimum is a lower bound on every point of the node; a node whose free units all sit
on their activation's graph (a·s = 0) has an LP point that is a network point, so its bound is attained
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
from dataclasses import dataclass, field, replace

import numpy as np

from advmilp.bounds.compute import Bounds
from advmilp.encode.activations import encoder_for
from advmilp.encode.lp import NONE, EncodedLayer, LinearRows, encode_units, next_pre_map
from advmilp.nn.activations import ACTIVE, FREE, INACTIVE, make_activation
from advmilp.nn.network import Network
from advmilp.search.implications import chain_hull, first_layer_implications
from advmilp.search.options import SearchOptions
from advmilp.search.pricing import PixelPricing
from advmilp.search.problems import DISTANCE, LPObjective, PhaseProblem
from advmilp.solvers.highs import HighsLP
from advmilp.spec.rows import INFEASIBLE, LIMIT, OPTIMAL, TIME_LIMIT

LINEAR = make_activation("linear")
UNKNOWN = "unknown"    # the search's status when a node could not be settled
FOUND = "found"        # stopped at a point with value ≤ the problem's stop_at
# The first LP of a PhaseLP runs interior point (with crossover) from this many nonzeros up, simplex below.
# The thesis networks' LPs (first layers of 8-20 units: 13-32k nonzeros) solve in milliseconds by simplex,
# and the search's tree depends on the root's vertex: from the simplex vertex it had fewer nodes on 100 of
# their first 249 instances and more on 66 (DNN5 image 5: 9,347 against 40,051; benchmarks/RESULTS.md, tenth
# session); the VNN-COMP and ERAN networks' (256 or 100 first-layer units: 157-474k) need interior point.
IPM_MIN_NONZEROS = 100_000


@dataclass
class PhaseSearchResult:
    status: str                 # optimal | time_limit | limit (max_nodes) | infeasible (no point within the cap
    #                             and below the cutoff) | unknown | found (a point reached stop_at)
    x: np.ndarray | None        # best verified point (None if none)
    objective: float            # its value, problem.evaluate's (nan if none)
    bound: float                # proven lower bound on the optimum (inf if the cap excludes every point)
    nodes: int
    lps: int
    time_s: float
    binaries: int               # unstable hidden units at the root
    cuts: int = 0               # ideal ReLU cuts added


class PhaseLP:
    """The persistent node LP (see module docstring), built from the encoder table (`encode.lp`):
    rows ``G @ y >= h`` on the logits, Σ|x − x̄| ≤ cap, and the objective ``objective``."""

    def __init__(self, network: Network, bounds: Bounds, x_bar: np.ndarray, x_lb: np.ndarray, x_ub: np.ndarray,
                 G: np.ndarray, h: np.ndarray, cap: float | None, objective: LPObjective = DISTANCE,
                 price_pixels: bool = True):
        self.x_bar = x_bar
        up, down = x_ub - x_bar, x_bar - x_lb
        self.P, self.M = np.flatnonzero(up > 0), np.flatnonzero(down > 0)
        rows = LinearRows()
        pm = rows.add_cols(np.zeros(len(self.P) + len(self.M)), np.concatenate([up[self.P], down[self.M]]),
                           cost=1.0 if objective.l1 else 0.0)
        W1, b1 = network.layers[0].W, network.layers[0].b
        cols, coef, const = pm, np.hstack([W1[:, self.P], -W1[:, self.M]]), W1 @ x_bar + b1
        K = len(network.layers)
        # first-layer units with equal weight rows (`search.implications`): one shared range per chain
        self.implications = first_layer_implications(W1, b1) if K > 1 else None
        lower, upper = list(bounds.lower), list(bounds.upper)
        self.first_const = const           # the first layer's pre-activation at x̄ (the chains' offsets)
        if self.implications is not None and not self.implications.empty:
            lower[0], upper[0] = self.implications.shared_bounds(lower[0], upper[0], const)
        self.hidden: list[EncodedLayer] = []
        for k in range(K - 1):
            layer = encode_units(rows, cols, coef, const, lower[k], upper[k],
                                 encoder_for(network.layers[k].act), enforce_bounds=True)
            self.hidden.append(layer)
            cols, coef, const = next_pre_map(layer, network.layers[k + 1].W, network.layers[k + 1].b)
        if self.implications is not None and network.layers[0].act.slope == 0.0:    # each chain's ReLUs' hull
            self._chain_hull_rows(rows, self.hidden[0], self.first_const, lower[0], upper[0])
        # the criteria read the logits (a ReLU on the outputs changes nothing once y_d ≥ ε > 0)
        self.out = encode_units(rows, cols, coef, const, bounds.lower[K - 1], bounds.upper[K - 1], encoder_for(LINEAR))
        logits = self.out.cols["y"]
        for g, rhs in zip(np.atleast_2d(G), np.atleast_1d(h)):
            nz = np.flatnonzero(g)
            rows.add_row(logits[nz], g[nz], float(rhs), math.inf)
        if objective.c is not None:
            for j in np.flatnonzero(objective.c):
                rows.cost[logits[j]] += float(objective.c[j])
        if objective.linf:              # t ≥ every move p_i, m_i; minimise t
            t = rows.add_cols(np.array([0.0]), np.array([math.inf]), cost=1.0)
            for col in pm:
                rows.add_row(np.array([col, t[0]]), np.array([1.0, -1.0]), -math.inf, 0.0)
        if objective.A is not None:     # t ≥ A_r y − b_r for every row r; minimise t
            t = rows.add_cols(np.array([-math.inf]), np.array([math.inf]), cost=1.0)
            for a, rhs in zip(np.atleast_2d(objective.A), np.atleast_1d(objective.b)):
                nz = np.flatnonzero(a)
                rows.add_row(np.concatenate([logits[nz], t]), np.concatenate([a[nz], [-1.0]]), -math.inf, float(rhs))
        self.cap_row = rows.add_row(pm, np.ones(len(pm)), -math.inf, float(cap) if cap is not None else math.inf)
        self._pm, self._pm_hi = pm, np.concatenate([up[self.P], down[self.M]])
        self.cost = np.array(rows.cost)
        self._primal = objective.A is not None
        self._solved = False            # no solve yet: no basis
        self.lp = HighsLP()
        self.lp.add_cols(np.array(rows.col_lo), np.array(rows.col_hi), self.cost)
        # the pixel columns priced in on demand (`search.pricing`) where the objective is the L1 distance (what
        # was measured; `minimize` may change it later)
        distance = objective.l1 and not objective.linf and objective.c is None and objective.A is None
        self.pricing = (PixelPricing(len(pm), self._pm_hi, self.cost[pm], keep_rows={self.cap_row})
                        if price_pixels and distance and len(pm) and pm[0] == 0 else None)
        compressed = rows.compressed()
        self.lp.add_rows(*(self.pricing.withhold(*compressed, budget=cap if cap is not None else math.inf)
                          if self.pricing is not None else compressed))

        # flattened views over all hidden units (NONE where a unit has no such column or row)
        def flat(what: str, role: str) -> np.ndarray:
            return np.concatenate([getattr(layer, what)[role] for layer in self.hidden] or [np.zeros(0, np.int64)])

        self.Lf = np.concatenate([np.asarray(lower[k], np.float64) for k in range(K - 1)] or [np.zeros(0)])
        self.Uf = np.concatenate([np.asarray(upper[k], np.float64) for k in range(K - 1)] or [np.zeros(0)])
        self.af, self.sf, self.zf = flat("cols", "a"), flat("cols", "s"), flat("cols", "z")
        self.onf, self.offf = flat("rows", "on"), flat("rows", "off")
        self.branchable = self.zf != NONE            # the units with a phase to fix (a binary in the MILP)
        self.layer_of = np.concatenate([np.full(len(layer.encodings), k) for k, layer in enumerate(self.hidden)]
                                       or [np.zeros(0, np.int64)])     # each hidden unit's layer (0 first)
        self._L, self._U = self.Lf.copy(), self.Uf.copy()     # the bounds the big-M rows are written for
        # what the ideal ReLU cuts need: every branchable ReLU unit's input columns, weights, bias and box
        col_lo, col_hi = np.array(rows.col_lo), np.array(rows.col_hi)
        relu_units = np.concatenate([np.full(len(layer.encodings), network.layers[k].act.slope == 0.0)
                                     for k, layer in enumerate(self.hidden)] or [np.zeros(0, bool)])
        self._unit_inputs = {}
        j0 = 0
        for layer in self.hidden:
            for j in range(len(layer.encodings)):
                if self.branchable[j0 + j] and relu_units[j0 + j]:
                    nz = layer.pre_coef[j] != 0
                    c = layer.pre_cols[nz].astype(np.int32)
                    self._unit_inputs[j0 + j] = (c, layer.pre_coef[j, nz], col_lo[c], col_hi[c], float(layer.pre_const[j]))
            j0 += len(layer.encodings)
        self.n_cuts = 0

    def _chain_hull_rows(self, rows: LinearRows, first: EncodedLayer, const: np.ndarray, L, U) -> None:
        """The rows of every chain's hull (`implications.chain_hull`) over the first layer's bounds: the
        chain's shared input part z = pre_i − const_i lies in [max(L − const), min(U − const)] over its
        units; the units whose breakpoint lies inside (and with a phase column) join the hull, written
        with z = a_r − s_r − const_r through the first of them."""
        a, s_, zc = first.cols["a"], first.cols["s"], first.cols["z"]
        for chain in self.implications.chains:
            lo = float(np.max(np.asarray(L)[chain] - const[chain]))
            hi = float(np.min(np.asarray(U)[chain] - const[chain]))
            inside = [u for u in chain if zc[u] != NONE and lo < -const[u] < hi]
            _, first_of = np.unique(const[inside], return_index=True)     # equal offsets: one unit each
            inside = [inside[i] for i in sorted(first_of)]
            if len(inside) < 2:
                continue
            A, d = chain_hull(const[inside], lo, hi)
            r = inside[0]
            for row, rhs in zip(A, d):
                cols = np.concatenate([[a[r], s_[r]], a[inside[1:]]]).astype(np.int64)
                coef = np.concatenate([[row[0] + row[1], -row[0]], row[2:]])
                keep = coef != 0
                rows.add_row(cols[keep], coef[keep], -math.inf, float(rhs + row[0] * const[r]))

    def pin_pixels(self, pixels, pinned: bool = True) -> None:
        """Hold ``pixels`` at x̄ (their move columns' upper bounds 0), or free them again (``pinned`` False)."""
        pixels = np.atleast_1d(np.asarray(pixels, dtype=np.int64))
        cols = []
        for arr, offset in ((self.P, 0), (self.M, len(self.P))):
            k = np.minimum(np.searchsorted(arr, pixels), max(len(arr) - 1, 0))
            if len(arr):
                cols.append(offset + k[arr[k] == pixels])
        cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        if len(cols):
            upper = np.zeros(len(cols)) if pinned else self._pm_hi[cols]
            self.lp.set_col_bounds(self._pm[cols], np.zeros(len(cols)), upper)
            if self.pricing is not None:
                self.pricing.set_upper(cols, upper)

    def root_phases(self) -> np.ndarray:
        """Phase of every hidden unit at the root: the units with a binary free, the others fixed
        (their bounds make them stable; a linear unit counts as active)."""
        ph = np.where(self.Uf <= 0, INACTIVE, ACTIVE).astype(np.int8)
        ph[self.branchable] = FREE
        return ph

    def set_phases(self, ph: np.ndarray) -> None:
        """Phases over the root bounds."""
        self.set_node(ph, self.Lf, self.Uf)

    def set_node(self, ph: np.ndarray, L: np.ndarray, U: np.ndarray) -> None:
        """Phases ``ph`` and pre-activation bounds [L, U] of every hidden unit (node bounds may be
        tighter than the root's: their big-M rows are rewritten).  Only units with a binary change:
        active z = 0 (s = 0, pre = a ≥ max(L, 0)), inactive z = 1 (a = 0, pre = −s ≤ min(U, 0))."""
        b = self.branchable
        ph, L, U = ph[b], L[b], U[b]
        act, ina = ph == ACTIVE, ph == INACTIVE
        a_lo = np.where(act, np.maximum(L, 0.0), 0.0)
        a_hi = np.where(ina, 0.0, np.maximum(U, 0.0))
        s_lo = np.where(ina, np.maximum(-U, 0.0), 0.0)
        s_hi = np.where(act, 0.0, np.maximum(-L, 0.0))
        z_lo = np.where(ina, 1.0, 0.0)
        z_hi = np.where(act, 0.0, 1.0)
        cols = np.concatenate([self.af[b], self.sf[b], self.zf[b]]).astype(np.int32)
        self.lp.set_col_bounds(cols, np.concatenate([a_lo, s_lo, z_lo]), np.concatenate([a_hi, s_hi, z_hi]))
        changed = np.flatnonzero((L != self._L[b]) | (U != self._U[b]))
        if len(changed):    # the big-M rows of the new bounds: a + U·z ≤ U and s + L·z ≤ 0
            on, off, z = self.onf[b], self.offf[b], self.zf[b]
            for j in changed:
                self.lp.set_coeff(on[j], z[j], U[j])
                self.lp.set_coeff(off[j], z[j], L[j])
            self.lp.set_row_bounds(on[changed], np.full(len(changed), -math.inf), U[changed])
            self._L[b], self._U[b] = L, U

    def add_cuts(self, col: np.ndarray, free: np.ndarray, tol: float = 1e-6) -> int:
        """Add the most violated ideal ReLU cut (`cuts`, Anderson et al. 2020) of every free ReLU unit
        at the LP point ``col``; valid for the whole search (root input boxes).  Returns how many."""
        from advmilp.search.cuts import cut_coefficients, most_violated

        added = 0
        for j in np.flatnonzero(free):
            if j not in self._unit_inputs:
                continue
            cols, w, lo, hi, bias = self._unit_inputs[j]
            found = most_violated(w, bias, lo, hi, col[cols], col[self.af[j]], col[self.zf[j]])
            if found is None or found[1] <= tol * max(1.0, abs(bias)):
                continue
            in_I = found[0]
            coef, c_z, rhs = cut_coefficients(w, bias, lo, hi, in_I)
            idx = np.concatenate([[self.af[j]], cols[in_I], [self.zf[j]]]).astype(np.int32)
            vals = np.concatenate([[1.0], coef, [c_z]])
            if self.pricing is not None:      # (a first-layer unit's cut has pixel coefficients)
                idx, vals = self.pricing.add_row(self.lp.h.getNumRow(), idx, vals)
            self.lp.add_row(idx, vals, -math.inf, rhs)
            added += 1
        self.n_cuts += added
        return added

    def pre_and_violation(self, col: np.ndarray, ph: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """At the LP point ``col``: every hidden unit's pre-activation, and how far each free unit is
        off its activation's graph (min(a, s): both positive only off it; stable units count as on it)."""
        pre = np.concatenate([layer.pre_values(col) for layer in self.hidden] or [np.zeros(0)])
        a, s = self.unit_parts(col)
        return pre, np.where(self.branchable & (ph == FREE), np.minimum(a, s), 0.0)

    def unit_parts(self, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(a, s) of every hidden unit at the LP point ``col``: its pre-activation's positive and negative
        parts as the LP sets them (pre = a − s; 0 for units without a binary)."""
        a, s = np.zeros(len(self.Lf)), np.zeros(len(self.Lf))
        b = self.branchable
        a[b], s[b] = col[self.af[b]], col[self.sf[b]]
        return a, s

    def basis(self):
        """The LP's current basis (to restore a node's parent basis later)."""
        return self.lp.basis()

    def restore(self, basis) -> None:
        self.lp.restore(basis)

    def unit_duals(self) -> np.ndarray:
        """|dual| of every hidden unit's two big-M rows, summed, at the last LP optimum (0 for units
        without a binary)."""
        rd = self.lp.row_duals()
        out = np.zeros(len(self.Lf))
        b = self.branchable
        out[b] = np.abs(rd[self.onf[b]]) + np.abs(rd[self.offf[b]])
        return out

    def set_cap(self, cap: float) -> None:
        """Σ|x − x̄| ≤ cap (only points at least as good as the incumbent matter)."""
        self.lp.set_row_bounds(np.array([self.cap_row]), np.array([-math.inf]), np.array([float(cap)]))

    def solve(self, time_limit: float) -> tuple[str, float, np.ndarray | None]:
        """(status, objective, column values) of the LP under the current phases.  An LP with a slack
        objective (a free column t, no distance cost: very degenerate) is solved by primal simplex: HiGHS'
        dual simplex stalled there, from the slack basis (VNN-COMP 256x2 prop_0_0.03: 25,859 iterations
        in 60 s without an optimum; primal: 833 iterations, 0.5 s) and from a parent's basis too
        (prop_5_0.03, disjuncts 1 and 2: 10-11 nodes in 20 s, every node LP cut at 2 s; primal: proven
        in 2.3 and 1.9 s).  The distance LPs keep dual simplex from the parent's basis.  The first solve
        has no basis to start from; a large one (`IPM_MIN_NONZEROS`) runs interior point with crossover
        (VNN-COMP 256x4 prop_1_0.05's root LP, 3,400 columns, 367k nonzeros: 2.6 s against 79 s by primal
        simplex and no optimum in 120 s by dual; 256x4 prop_0_0.03: 0.6 s against 10.2 s; 256x2 prop_1_0.03:
        0.4 s against 1.6 s).  A small one keeps simplex: it takes milliseconds either way, and the search's
        tree from the simplex vertex was the smaller on most thesis instances (DNN5 image 5: 9,347 nodes
        against 40,051)."""
        ipm = not self._solved and self.lp.n_nonzeros >= IPM_MIN_NONZEROS
        end = time.perf_counter() + time_limit
        st, value = self.lp.run(time_limit, primal=self._primal, ipm=ipm)
        self._solved = True
        st, value = self._priced(st, value, end, self._primal)
        return st, value, (self.lp.values() if st == "optimal" else None)

    def minimize(self, cols: np.ndarray, vals: np.ndarray, deadline: float | None = None) -> tuple[str, float]:
        """min ``vals · x[cols]`` over the node's LP (every other cost zero: the objective stays so) by primal
        simplex from the current basis (after an objective change it stays primal feasible), the pixel
        columns priced in: (status, objective) as `solvers.highs.HighsLP.run`.  For bounds over the LP
        (`search.tighten`)."""
        if self.pricing is not None:     # the pixel columns' part of the new objective
            cols, vals = np.asarray(cols), np.asarray(vals, np.float64)
            pixel = cols < self.pricing.n
            cost = np.zeros(self.pricing.n)
            cost[cols[pixel]] = vals[pixel]
            self.pricing.set_cost(cost)
        st, value = self.lp.minimize(cols, vals, deadline=deadline)
        self._solved = True
        return self._priced(st, value, deadline if deadline is not None else math.inf, True)

    def _priced(self, st: str, value: float, end: float, primal: bool) -> tuple[str, float]:
        """The full LP's answer from the restricted one's (status ``st``, objective ``value``): pixel columns
        priced in and the LP solved again until none enters (`search.pricing`), until ``end``."""
        while self.pricing is not None:
            enter, value = self.pricing.price(self.lp, st, value)
            if enter is None:
                break
            # priced in at 0 with a negative reduced cost the basis stays primal feasible: primal simplex
            # (after an infeasible LP, dual simplex again)
            self.pricing.enter(self.lp, enter)
            st, value = self.lp.run(max(end - time.perf_counter(), 1e-3) if math.isfinite(end) else None,
                                    primal=primal or st == OPTIMAL)
        return st, value

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
    branched: tuple | None = field(default=None, compare=False)   # (unit, active, part): the parent's split
    #                                    that made this node, for `BranchingRule.observe` (None: the root, or
    #                                    a parent without an LP point)


@dataclass
class SearchProgress:
    """A running search's effort and proven bound, as of its last node: ``bound`` with the floor shared
    by a race, ``own`` that of its own tree alone (its open, pruned and unresolved nodes)."""
    nodes: int = 0
    lps: int = 0
    bound: float = -math.inf
    own: float = -math.inf


class SharedIncumbent:
    """What searches of one problem share when they race (`search_phases` with ``options.race``): the
    best verified point, its value, and the best proven lower bound any of them has reached."""

    def __init__(self, cutoff: float = math.inf, floor: float = -math.inf):
        self.best_x: np.ndarray | None = None
        self.best = cutoff
        self.floor = floor

    def prune_level(self, gap_rel: float) -> float:
        """The bound at which a node is settled: the incumbent's value less the relative gap (inf without one)."""
        return self.best - gap_rel * abs(self.best) if math.isfinite(self.best) else math.inf


def search_phases(network: Network, bounds: Bounds, problem: PhaseProblem, incumbent: np.ndarray | None = None,
                  options: SearchOptions = SearchOptions(), cutoff: float = math.inf,
                  floor: float = -math.inf) -> PhaseSearchResult:
    """Minimise ``problem``'s objective over its points (`search.problems`) by best-bound
    branch-and-bound over ReLU phases, diving on one child of every branched node (the child on the
    side of the unit's LP pre-activation).  ``incumbent``, if ``problem.evaluate`` accepts it, is the
    first best point; ``cutoff`` is a value known to be attained elsewhere (another disjunct's point):
    only better points are sought; ``floor`` a proven lower bound of the optimum from elsewhere (e.g.
    `bounds.crown.certified_radius`): an incumbent within the gap of it is optimal, and the reported bound
    is at least it.  A point with value ≤ ``problem.stop_at`` ends the search (status ``found``).
    Options: time limit, gap, node limit, root cut rounds, branching rule and a hand-off instant.

    With ``options.race`` (more branching rules), a search still open ``options.race_after`` seconds in is
    joined by one search per further rule over the same problem, one node at a time on the one thread,
    most of them to the search nearest to settling it (`RaceShares`): they share the incumbent, and each
    one's proven bound is a floor for the others, so the first to settle the problem settles it for all
    (`race_phases`)."""
    t0 = time.perf_counter()
    shared = SharedIncumbent(cutoff, floor)
    first = (_search_steps(network, bounds, problem, incumbent, options, shared, options.branching,
                           progress := SearchProgress()), progress)
    if not options.race:
        return _run_to_end(first[0])
    return race_phases(network, bounds, problem, options, shared, first, t0)


def _run_to_end(steps) -> PhaseSearchResult:
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


class RaceShares:
    """Which search of a race solves the next node: between two reviews each gets nodes in proportion to
    its weight (the one with the fewest nodes per weight since the review goes next, ties to the earlier),
    so equal weights are node for node in turn.  Every ``review_every`` nodes the weights follow the
    searches' own bounds: the one whose bound, rising at its rate over the last fifth of its nodes, would
    reach the incumbent in the fewest of its nodes leads and gets all but ``trailing_share`` per other
    search — times the leader's doubt, the nodes it projects to go over the nodes it has solved, when that
    exceeds one, up to equal weights: a projection far beyond the search's past is a guess (the bound of a
    search that closes the tree deepest first barely moves until the end, RESULTS.md); with no incumbent
    or no rising bound, equal weights.  Node counts, not seconds: from the same
    join the shares deal the same nodes on any machine (the join itself, ``race_after`` seconds in, is
    the one step that depends on the clock)."""

    def __init__(self, progress: list[SearchProgress], trailing_share: float, review_every: int = 64):
        if not 0.0 < trailing_share <= 1.0 / len(progress):
            raise ValueError(f"a trailing share of {trailing_share} among {len(progress)} searches")
        self.weights = [1.0] * len(progress)
        self.trailing = trailing_share
        self.review_every = review_every
        self.history: list[list[tuple[int, float]]] = [[] for _ in progress]
        self.since = [p.nodes for p in progress]

    def pick(self, progress: list[SearchProgress]) -> int:
        return min(range(len(progress)), key=lambda i: ((progress[i].nodes - self.since[i]) / self.weights[i], i))

    def review(self, progress: list[SearchProgress], target: float) -> None:
        """Re-weigh once ``review_every`` nodes were dealt since the last review, ``target`` the bound that
        settles the problem."""
        if sum(p.nodes for p in progress) - sum(self.since) < self.review_every:
            return
        self.since = [p.nodes for p in progress]
        left = []
        for p, past in zip(progress, self.history):
            if math.isfinite(p.own):
                past.append((p.nodes, p.own))
            left.append(self._nodes_to(past, target))
        leader = min(range(len(left)), key=left.__getitem__)
        if not math.isfinite(left[leader]):
            self.weights = [1.0] * len(progress)
        else:
            doubt = left[leader] / max(progress[leader].nodes, 1)
            share = min(1.0 / len(progress), self.trailing * max(1.0, doubt))
            self.weights = [share] * len(progress)
            self.weights[leader] = 1.0 - share * (len(progress) - 1)

    @staticmethod
    def _nodes_to(past: list[tuple[int, float]], target: float) -> float:
        """Nodes until the bound reaches ``target`` at the rate of the last fifth of the nodes (inf: no rate)."""
        if not past or not math.isfinite(target):
            return math.inf
        nodes, bound = past[-1]
        if bound >= target:
            return 0.0
        window = max(32, nodes // 5)
        then = next((h for h in reversed(past) if h[0] <= nodes - window), None)
        if then is None or bound <= then[1]:
            return math.inf
        return (target - bound) * (nodes - then[0]) / (bound - then[1])


def race_phases(network: Network, bounds: Bounds, problem: PhaseProblem, options: SearchOptions,
                shared: SharedIncumbent, first: tuple, t0: float) -> PhaseSearchResult:
    """Run the search ``first`` (its steps and progress) alone until ``options.race_after`` seconds after
    ``t0``, then with one search per rule of ``options.race`` (fresh trees over the same problem), one node at
    a time, as `RaceShares` deals them out.  Ends when one of them ends: settled (optimal, infeasible,
    found) — the others are then settled too — or out of time or nodes; the result has the shared point,
    the best bound any of them proved, and all their nodes."""
    searches = [first]
    join_at = t0 + options.race_after
    waiting = list(options.race)
    shares = None
    while True:
        if waiting and time.perf_counter() >= join_at:
            left = max(t0 + options.time_limit - time.perf_counter(), 0.0)
            opts = replace(options, time_limit=left)
            for rule in waiting:
                progress = SearchProgress()
                searches.append((_search_steps(network, bounds, problem, None, opts, shared, rule, progress), progress))
            waiting = []
            racers = [p for _, p in searches]
            shares = RaceShares(racers, options.race_trailing_share)
        if shares is None:
            i = 0
        else:
            shares.review(racers, shared.prune_level(options.gap_rel))
            i = shares.pick(racers)
        steps, progress = searches[i]
        try:
            next(steps)
        except StopIteration as stop:
            ended = stop.value
        else:
            shared.floor = max(shared.floor, progress.bound)
            continue
        for steps, _ in searches:          # the others stop where they are; their bounds still count
            steps.close()
        bound = max([shared.floor, ended.bound] + [p.bound for _, p in searches])
        if shared.best_x is not None:
            bound = min(bound, shared.best)
        status = ended.status
        if status == UNKNOWN and shared.best_x is not None and bound >= shared.prune_level(options.gap_rel):
            status = OPTIMAL
        return PhaseSearchResult(status, shared.best_x, shared.best if shared.best_x is not None else math.nan,
                                 bound, sum(p.nodes for _, p in searches), sum(p.lps for _, p in searches),
                                 time.perf_counter() - t0, ended.binaries, ended.cuts)


def _search_steps(network: Network, bounds: Bounds, problem: PhaseProblem, incumbent: np.ndarray | None,
                  options: SearchOptions, shared: SharedIncumbent, rule, progress: SearchProgress):
    """The search of `search_phases` with branching ``rule``, as a generator that yields after every node
    (its proven bound in ``progress``) and returns its `PhaseSearchResult`."""
    t0 = time.perf_counter()
    deadline = t0 + options.time_limit
    x_lb, x_ub = problem.x_lb, problem.x_ub
    distance = problem.objective is DISTANCE or (problem.objective.l1 and problem.objective.c is None
                                                 and problem.objective.A is None)
    lp = PhaseLP(network, bounds, np.asarray(problem.x_bar, dtype=np.float64), x_lb, x_ub, problem.G, problem.h,
                 problem.cap, problem.objective)
    lp_cap = problem.cap if problem.cap is not None else math.inf
    rule = rule.for_search(len(lp.Lf))

    def follow_cap() -> None:
        """Σ|x − x̄| ≤ the incumbent's value in the LP (the incumbent may come from a racing search)."""
        nonlocal lp_cap
        if distance and shared.best < lp_cap:
            lp_cap = shared.best
            lp.set_cap(lp_cap)

    def offer(x) -> bool:
        """Make x the incumbent if it verifies and is better; True if it did."""
        ok, value, xc = problem.evaluate(x)
        if ok and value < shared.best:
            shared.best_x, shared.best = xc, value
            follow_cap()
            return True
        return False

    if incumbent is not None:
        offer(incumbent)
    root = lp.root_phases()
    binaries = int((root == FREE).sum())
    # first-layer units with equal weight rows: one's phase fixes part of the others' (`search.implications`)
    chains = lp.implications
    heap: list[Node] = []
    counter = itertools.count()
    unresolved = math.inf    # least bound of nodes closed without a verified point
    pruned = math.inf        # least bound of nodes pruned against the incumbent (>= incumbent − gap)
    status = OPTIMAL

    def prune_level() -> float:
        return shared.prune_level(options.gap_rel)

    def settled() -> bool:      # the incumbent is within the gap of the proven floor
        return shared.best_x is not None and shared.floor >= prune_level()

    def own_bound(open_node: float = math.inf) -> float:
        """The least bound of what this search has not settled (open nodes, ``open_node`` too)."""
        least_open = heap[0].bound if heap else math.inf          # (the heap is ordered by bound)
        return min(shared.best, least_open, open_node, unresolved, pruned)

    def proven_bound(open_node: float = math.inf) -> float:
        """`own_bound`, at least the floor."""
        return max(own_bound(open_node), shared.floor)

    def node_limit() -> float:
        left = deadline - time.perf_counter()
        return left if options.node_time_limit is None else min(left, options.node_time_limit)

    handoff = options.handoff_at
    node: Node | None = Node(-math.inf, next(counter), root, 0)     # the node solved next
    while node is not None or heap:
        progress.own = own_bound(node.bound if node is not None else math.inf)
        progress.bound = max(progress.own, shared.floor)
        yield
        follow_cap()
        if shared.best_x is not None and shared.best <= problem.stop_at:
            if node is not None:
                heapq.heappush(heap, node)
            status = FOUND
            break
        if settled():
            heap, node, pruned = [], None, min(pruned, shared.floor)
            break
        if node is None:                   # best bound first
            node = heapq.heappop(heap)
            if node.bound >= prune_level():
                pruned = min(pruned, node.bound)
                node = None
                continue
            if node.basis is not None:     # start from the parent's optimal basis
                lp.restore(node.basis)
        if handoff is not None and progress.nodes and time.perf_counter() > handoff:     # (judged from the root's LP on)
            handoff = None
            best = shared.best
            if math.isfinite(best) and best - proven_bound(node.bound) > options.handoff_gap * abs(best):
                heapq.heappush(heap, node)
                status = TIME_LIMIT
                break
        if time.perf_counter() > deadline or (options.max_nodes is not None and progress.nodes >= options.max_nodes):
            heapq.heappush(heap, node)     # still open: its bound counts
            status = TIME_LIMIT if time.perf_counter() > deadline else LIMIT
            break
        ph, depth, parent_bound, branched = node.phases, node.depth, node.bound, node.branched
        node = None

        # the node's LP (with ideal cuts at the root)
        lp.set_phases(ph)
        st, obj, col = lp.solve(node_limit())
        progress.nodes += 1
        progress.lps += 1
        for _ in range(options.cut_rounds if depth == 0 else 0):
            if not (st == OPTIMAL and obj < prune_level()) or time.perf_counter() > deadline:
                break
            if not lp.add_cuts(col, ph == FREE):
                break
            st, obj, col = lp.solve(node_limit())
            progress.lps += 1
        if branched is not None:           # what the split gained, for a rule that learns
            if st == OPTIMAL:
                rule.observe(*branched[:2], obj - parent_bound, branched[2])
            elif st == INFEASIBLE and math.isfinite(prune_level()):
                rule.observe(*branched[:2], prune_level() - parent_bound, branched[2])
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
            j, go_active, parts = int(np.flatnonzero(ph == FREE)[0]), True, None
        else:
            point = lp.point(col, x_lb, x_ub)
            offer(point)
            y, viol = lp.pre_and_violation(col, ph)
            tol = 1e-9 * max(1.0, float(np.abs(y).max(initial=0.0)))
            j = rule.select(lp, col, viol, tol, lp.Lf, lp.Uf)
            if viol[j] <= tol:
                # every unit on its ReLU: the LP point is a network point with objective obj
                if not (shared.best_x is not None and shared.best <= obj + 1e-6 * max(1.0, abs(obj))):
                    unresolved = min(unresolved, obj)
                continue
            go_active = bool(y[j] > 0)
            a_part, s_part = lp.unit_parts(col)
            parts = {True: float(s_part[j]), False: float(a_part[j])}     # the column each phase's fix zeroes
        if obj >= prune_level():           # the point just verified may have lowered the level
            pruned = min(pruned, obj)
            continue

        # two children with this node's bound: one queued, one dived into
        dive, other = ph.copy(), ph.copy()
        dive[j], other[j] = (ACTIVE, INACTIVE) if go_active else (INACTIVE, ACTIVE)
        if chains is not None and not chains.empty:
            chains.propagate(dive, j)
            chains.propagate(other, j)
        dive_split = other_split = None
        if parts is not None:
            dive_split, other_split = (j, go_active, parts[go_active]), (j, not go_active, parts[not go_active])
        heapq.heappush(heap, Node(obj, next(counter), other, depth + 1, lp.basis(), other_split))
        node = Node(obj, next(counter), dive, depth + 1, None, dive_split)

    bound = proven_bound()
    if shared.best_x is not None:    # (a floor proven for the model's margin rows may pass a point within the margin)
        bound = min(bound, shared.best)
    if status == OPTIMAL and bound < prune_level():
        status = UNKNOWN    # a node could not be settled (LP not solved, or its point failed the check)
    if status == OPTIMAL and shared.best_x is None:
        status = INFEASIBLE
    progress.bound = bound
    return PhaseSearchResult(status, shared.best_x, shared.best if shared.best_x is not None else math.nan, bound,
                             progress.nodes, progress.lps,
                             time.perf_counter() - t0, binaries, lp.n_cuts)
