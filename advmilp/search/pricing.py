"""Pixel columns priced into the node LP only when they can improve it (column generation).

The node LP of the phase search (`phase_bb.PhaseLP`) has a move column per pixel and direction (p, m:
x = x̄ + p − m), and every first-layer row holds a coefficient on each of them: on the replication's DNN4
(20 first-layer units) ~19,000 of the LP's ~23,000 nonzeros.  Yet at a node LP's optimum only a handful of
pixels move (2-9 on average), and over a whole search of thousands of nodes 30-180 of the ~750 pixel columns
ever do.  HiGHS' every ``run()`` costs time in proportion to the nonzeros (it assesses the whole model,
RESULTS.md), and so does every pricing step of its simplex.  So the LP given to HiGHS holds the pixel
columns' coefficients in the first-layer rows only for the columns that have been *priced in*; the others
keep their column (bounds, cost and the cap row's coefficient) with nothing in those rows, so they stay at
0, and their full coefficients are kept here as a dense block ``A`` (withheld rows × pixel columns).

After each solve the columns left out are priced against the full matrix:

- optimal: the full reduced cost of a left-out column j is ``c_j − yᵀA_j`` over all its coefficients, loaded
  or withheld (``y`` HiGHS' row duals; its convention: reduced cost = c − Aᵀy).
  Any below ``−PRICE_TOL`` enter (most negative first) and the LP is solved again; when none does, the
  restricted optimum is returned less ``Σ_j min(0, d_j)·u_j`` over the left-out columns (at most
  ``PRICE_TOL`` each): a Lagrangian bound, valid for the full LP, so the node bound stays a proven
  bound whatever the tolerance.
- infeasible: HiGHS' dual ray y certifies it: with ``r = Aᵀy``, the maximum of ``yᵀAx`` over the column
  box, ``Σ_j max(r_j·l_j, r_j·u_j)``, is below the least ``yᵀ(row activity)`` the row bounds allow (the
  orientation HiGHS returns, `tests/search/test_pricing.py`).  A left-out column (l = 0) adds
  ``max(0, r_j·u_j)`` to that maximum, so only one with ``r_j > 0`` can weaken the certificate, and it breaks
  only if those rises together reach its gap (`certificate_gap`, read from the LP's rows on the ray's support).
  If they cannot, the full LP is infeasible too; else the fewest columns that leave the rest short of the gap
  enter and the LP is solved again.  Without a ray, every left-out column enters.

Either way the answer is the full LP's, and each round adds at least one column, so it ends.  The same holds for
any objective (`phase_bb.PhaseLP.minimize`, the tightening's: a unit's pre-activation, the pixel columns at
cost 0): the reduced costs are taken against the costs of the moment.

Measured (benchmarks/RESULTS.md, twenty-fifth session): a node LP run 1.56 → 1.07 ms on the replication's DNN4
(iterations unchanged); the thesis' 100-image benchmark DNN2-DNN5 2-15 % faster, the replication's DNN3 / DNN4 /
DNN5 8 / 15 / 19 %.  Not kept: holding the cap out of the LP (comparing the optimum with it instead) — the LPs ran
to optimality where the cap had ended them as infeasible, 60 % more iterations a run.
"""

from __future__ import annotations

import numpy as np

from advmilp.solvers.highs import HighsLP
from advmilp.spec.rows import INFEASIBLE, OPTIMAL

RAY_ZERO = 1e-12       # dual ray entries below this fraction of its largest are zero (noise)
GAP_TOL = 1e-9         # a certificate holds if its gap exceeds what the left-out columns add by this × its scale
PRICE_TOL = 1e-7       # HiGHS' dual feasibility tolerance: a reduced cost above −this does not enter
SEED_PER_ROW = 16      # without a budget (region LPs), the seed: the largest |coefficient|·room of each withheld row
ENTER_PER_ROUND = 4   # at most this many columns enter per pricing round (most attractive first)


class PixelPricing:
    """The pixel columns ``0 .. n_cols−1`` of a row-built LP, priced in on demand (module docstring).

    Built from the LP's rows in compressed form before they are loaded into HiGHS (`withhold` then
    gives the rows to load), with each column's upper bound ``upper`` and cost ``cost``; ``keep_rows`` are rows whose pixel
    coefficients are always loaded (the cap row Σ(p + m) ≤ cap)."""

    def __init__(self, n_cols: int, upper: np.ndarray, cost: np.ndarray, keep_rows: set[int] = frozenset()):
        self.n = n_cols
        self.cost = np.asarray(cost, np.float64).copy()          # the pixel columns' costs
        self.upper = np.asarray(upper, np.float64).copy()      # current upper bounds (pinned pixels: 0)
        self.keep_rows = set(keep_rows)
        self.active = np.zeros(n_cols, dtype=bool)
        self.rows: list[int] = []                   # the LP's rows whose pixel coefficients are withheld
        self.A = np.zeros((0, n_cols))              # their full pixel coefficients
        self.kept: list[int] = []                   # the keep_rows that hold pixel coefficients
        self.K = np.zeros((0, n_cols))              # theirs (all loaded)
        self.priced = 0                             # columns priced in after the seed
        self._left: tuple | None = None             # the left-out columns' view (`_left_out`), until a change
        self.kept_infeasible = 0                    # infeasible LPs whose certificate held over the full columns

    def withhold(self, lo, hi, starts, index, value, budget: float = np.inf):
        """The compressed rows ``(lo, hi, starts, index, value)`` to load into HiGHS: the seed columns' pixel
        coefficients kept (`_seed`, for an LP whose columns' moves sum to at most ``budget``), the others
        withheld (recorded here)."""
        n_rows = len(lo)
        ends = np.append(starts[1:], len(index)).astype(np.int64)
        row_of = np.repeat(np.arange(n_rows), ends - starts)
        pixel = index < self.n
        with_pixels = np.unique(row_of[pixel])
        kept = np.array([r for r in with_pixels if r in self.keep_rows], dtype=np.int64)
        withheld_rows = np.array([r for r in with_pixels if r not in self.keep_rows], dtype=np.int64)
        self.rows, self.A = withheld_rows.tolist(), self._dense(withheld_rows, row_of, pixel, index, value, n_rows)
        self.kept, self.K = kept.tolist(), self._dense(kept, row_of, pixel, index, value, n_rows)
        sel = pixel & np.isin(row_of, withheld_rows)
        self.active[self._seed(budget)] = True
        self._left = None
        keep = ~sel | self.active[np.where(sel, index, 0)]
        new_starts = np.concatenate([[0], np.cumsum(np.bincount(row_of[keep], minlength=n_rows))[:-1]]).astype(np.int32)
        return lo, hi, new_starts, index[keep].astype(np.int32), value[keep]

    def _dense(self, rows: np.ndarray, row_of, pixel, index, value, n_rows: int) -> np.ndarray:
        """The pixel coefficients of ``rows`` as a dense block (len(rows) × pixel columns)."""
        pos = np.full(n_rows, -1)
        pos[rows] = np.arange(len(rows))
        sel = pixel & (pos[row_of] >= 0)
        out = np.zeros((len(rows), self.n))
        np.add.at(out, (pos[row_of[sel]], index[sel]), value[sel])
        return out

    def _seed(self, budget: float) -> np.ndarray:
        """The columns priced in from the start: for every withheld row and each direction, the columns with
        the largest coefficients in that direction until their room sums to ``budget`` (the L1 cap) — the
        support of the row's extreme values over the ball, a fractional knapsack (`bounds.ball`) — or, with no
        finite budget, the ``SEED_PER_ROW`` largest |coefficient| × room."""
        if not len(self.rows):
            return np.zeros(0, np.int64)
        if not np.isfinite(budget):
            gain = np.abs(self.A) * self.upper[None, :]
            k = min(SEED_PER_ROW, self.n)
            top = np.argpartition(-gain, k - 1, axis=1)[:, :k]
            return np.unique(top[np.take_along_axis(gain, top, axis=1) > 0])
        seed = []
        room = self.upper[None, :]
        for side in (self.A, -self.A):
            gain = np.where((side > 0) & (room > 0), side, 0.0)
            order = np.argsort(-gain, axis=1, kind="stable")
            room_sorted = np.take_along_axis(np.broadcast_to(room, gain.shape), order, axis=1)
            # a column is taken while the room before it is short of the budget (and its gain positive)
            take = (np.cumsum(room_sorted, axis=1) - room_sorted < budget) & (np.take_along_axis(gain, order, axis=1) > 0)
            seed.append(order[take])
        return np.unique(np.concatenate(seed))

    def add_row(self, row: int, cols: np.ndarray, coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A row (LP index ``row``) about to be added: records its pixel coefficients, returns the entries to
        give HiGHS (those of the other columns and of the pixel columns priced in)."""
        cols, coef = np.asarray(cols), np.asarray(coef, np.float64)
        pixel = cols < self.n
        if not pixel.any():
            return cols, coef
        full = np.zeros(self.n)
        np.add.at(full, cols[pixel], coef[pixel])
        self.rows.append(int(row))
        self.A = np.vstack([self.A, full])
        self._left = None
        keep = ~pixel | self.active[np.where(pixel, cols, 0)]
        return cols[keep], coef[keep]

    def set_upper(self, cols: np.ndarray, upper: np.ndarray) -> None:
        self.upper[cols] = upper
        self._left = None

    def set_cost(self, cost: np.ndarray) -> None:
        """The pixel columns' costs of the LP's objective from now on."""
        self.cost = np.asarray(cost, np.float64).copy()
        self._left = None

    def _left_out(self) -> tuple:
        """(columns left out that could move, their withheld block, their kept block, costs, upper bounds, the
        withheld rows, the kept rows), cached until a column enters or a bound, cost or row changes."""
        if self._left is None:
            idx = np.flatnonzero(~self.active & (self.upper > 0))
            self._left = (idx, self.A[:, idx], self.K[:, idx], self.cost[idx], self.upper[idx],
                          np.asarray(self.rows, np.int64), np.asarray(self.kept, np.int64))
        return self._left

    def price(self, lp: HighsLP, status: str, value: float) -> tuple[np.ndarray | None, float]:
        """After a solve with ``status`` and objective ``value``: (columns to price in, None if the answer
        stands), and the value to report (the Lagrangian bound when it stands and is optimal)."""
        idx, A, K, cost, upper, rows, kept = self._left_out()
        if not len(idx) or not len(rows):
            return None, value
        if status == OPTIMAL:
            y = lp.row_duals()
            d = cost - y[rows] @ A - y[kept] @ K
            enter = np.flatnonzero(d < -PRICE_TOL)
            if not len(enter):
                return None, value + float(np.minimum(d, 0.0) @ upper)
            return idx[enter[np.argsort(d[enter], kind="stable")][:ENTER_PER_ROUND]], value
        if status == INFEASIBLE:
            has, ray = lp.dual_ray()
            if not has:
                return idx, value
            ray = np.where(np.abs(ray) > RAY_ZERO * np.abs(ray).max(initial=0.0), ray, 0.0)
            loaded = ray[kept] @ K                                       # (the kept rows' part is in the LP already)
            r = ray[rows] @ A + loaded                                   # the ray's reduced costs over the full columns
            # what each left-out column adds to max r·x (a fall only helps)
            rise = np.maximum(np.maximum(r * upper, 0.0) - np.maximum(loaded * upper, 0.0), 0.0)
            if rise.sum() <= RAY_ZERO * np.abs(ray).max(initial=0.0):
                self.kept_infeasible += 1
                return None, value           # no left-out column changes HiGHS' certificate (most infeasible LPs)
            gap, scale = certificate_gap(lp, ray)     # (HiGHS builds the rows for it: ~0.8 ms on DNN5)
            slack = gap - rise.sum()
            if slack > GAP_TOL * scale:
                self.kept_infeasible += 1
                return None, value           # the certificate holds with every column: the full LP is infeasible
            order = np.flatnonzero(rise > 0)
            order = order[np.argsort(-rise[order], kind="stable")]
            if np.isfinite(gap):             # the fewest columns that leave the rest short of the gap
                rest = rise.sum() - np.cumsum(rise[order])
                order = order[:int(np.searchsorted(-rest, -(gap - GAP_TOL * scale), side="right")) + 1]
            return idx[order[:ENTER_PER_ROUND]], value
        return None, value

    def enter(self, lp: HighsLP, cols: np.ndarray) -> None:
        """Load the withheld coefficients of ``cols`` into the LP."""
        for j in cols:
            for i in np.flatnonzero(self.A[:, j]):
                lp.set_coeff(self.rows[i], int(j), float(self.A[i, j]))
        self.active[cols] = True
        self.priced += len(cols)
        self._left = None


def certificate_gap(lp: HighsLP, ray: np.ndarray) -> tuple[float, float]:
    """(gap, scale): how far the dual ray ``ray`` proves the LP infeasible — the least ``ray·(row activity)``
    the row bounds allow less the largest ``(Aᵀray)·x`` over the column bounds, > 0 for a certificate, -inf if
    an infinite bound makes it none — and the sum of the magnitudes of both sides' terms, from the LP's rows
    on the ray's support."""
    supp = np.flatnonzero(ray).astype(np.int32)
    if not len(supp):
        return -np.inf, 0.0
    y = ray[supp]
    _, _, lo, hi, _ = lp.h.getRows(len(supp), supp)
    _, start, index, value = lp.h.getRowsEntries(len(supp), supp)
    counts = np.diff(np.append(np.asarray(start), len(index)))
    r = np.zeros(lp.n_cols)
    np.add.at(r, np.asarray(index), np.asarray(value) * np.repeat(y, counts))
    cols = np.flatnonzero(r).astype(np.int32)
    _, _, _, c_lo, c_hi, _ = lp.h.getCols(len(cols), cols)
    rc = r[cols]
    with np.errstate(invalid="ignore"):
        least = np.minimum(y * np.asarray(lo), y * np.asarray(hi))
        most = np.maximum(rc * np.asarray(c_lo), rc * np.asarray(c_hi))
    gap = least.sum() - most.sum()
    if not np.isfinite(gap):
        return -np.inf, 0.0
    return float(gap), float(np.abs(least).sum() + np.abs(most).sum())
