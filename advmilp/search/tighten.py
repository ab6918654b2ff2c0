"""Bounds tightened over a search problem's own LP (the phase search's root LP: criteria, cap, box).

The bounds a search starts from hold for every point of its input set (the box, the L1 ball).  The search
only needs bounds that hold for its *feasible* points: inside that set **and** meeting the criterion rows
``G y ≥ h`` with ‖x − x̄‖₁ ≤ cap.  Minimising and maximising each unstable unit's pre-activation over the
LP relaxation of that problem (`phase_bb.PhaseLP`, every unit on its triangle) therefore gives valid bounds
that are tighter than the set's: some units become stable and the others' relaxations narrower, which
every later unit's bound and every node LP of the search inherit.  Units are bounded in layer order on one
LP whose big-M rows are rewritten after each unit (`PhaseLP.set_node`), so a unit's new bounds already
tighten the next ones'; passes repeat while the unstable units' summed width still falls by 5 %.  Ideal
ReLU cuts (`PhaseLP.add_cuts`) separated at the root LP first make that LP, and so every bound, tighter.  LP
optima are widened outward like every other solver bound (`bounds.compute.widen`).  It works on any
`PhaseProblem`: one image's minimal-distance problem (`methods.tight`), or the stacked network of a universal
perturbation, where the criteria of every image together bound the shared δ far more than the ball does
(`methods.universal`; benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from advmilp.bounds.compute import Bounds, tightening_stalled, unstable_widths, widen
from advmilp.nn.network import Network
from advmilp.search.phase_bb import PhaseLP
from advmilp.search.problems import PhaseProblem
from advmilp.solvers.clock import expired, time_left
from advmilp.spec.rows import INFEASIBLE, OPTIMAL


def tighten_over_problem(network: Network, bounds: Bounds, problem: PhaseProblem, passes: int = 3,
                         deadline: float | None = None, cut_rounds: int = 0) -> tuple[Bounds, bool]:
    """``bounds`` tightened over the LP relaxation of ``problem`` (see the module docstring), with up to
    ``cut_rounds`` rounds of ideal cuts at its root; at most ``passes`` passes, no LP after ``deadline``
    (what is tightened by then is kept: it is valid).  Returns (bounds, infeasible): ``infeasible`` when
    that LP has no point at all, so neither has the problem."""
    sizes = [len(v) for v in bounds.lower[:-1]]
    offsets = np.cumsum([0] + sizes)

    def solve_limit() -> float:     # the root LP's time: what is left of the deadline (at least a little)
        return max(time_left(deadline), 0.05) if deadline is not None else 60.0

    for _ in range(passes):
        if expired(deadline):
            break
        lp = PhaseLP(network, bounds, problem.x_bar, problem.x_lb, problem.x_ub, problem.G, problem.h,
                     problem.cap, problem.objective)
        phases = lp.root_phases()
        lp.set_phases(phases)
        status, _, col = lp.solve(solve_limit())
        for _ in range(cut_rounds):
            if status != OPTIMAL or expired(deadline) or not lp.add_cuts(col, lp.branchable):
                break
            status, _, col = lp.solve(solve_limit())
        if status == INFEASIBLE:
            return bounds, True
        if status != OPTIMAL:
            break
        L, U = lp.Lf.copy(), lp.Uf.copy()
        chains, shifted = lp.implications, set()
        for j in np.flatnonzero(lp.branchable):
            if expired(deadline):
                break
            if j in shifted:        # a chain's units share one LP up to a constant: bounded with the first
                continue
            cols = np.array([lp.af[j], lp.sf[j]])
            st, neg_max = lp.minimize(cols, np.array([-1.0, 1.0]), deadline=deadline)     # − max (a − s)
            if st == INFEASIBLE:
                return bounds, True
            if st == OPTIMAL:
                U[j] = min(U[j], -neg_max + widen(neg_max))
            if U[j] > 0:
                st, low = lp.minimize(cols, np.array([1.0, -1.0]), deadline=deadline)
                if st == OPTIMAL:
                    L[j] = max(L[j], low - widen(low))
            U[j] = max(U[j], L[j])
            if chains is not None and j in chains.above:     # the rest of its chain by the shift (rounded in
                #                                                 ulps, far inside the bounds' widening)
                c = lp.first_const
                members = np.concatenate([chains.above[j], chains.below[j]])
                L[members] = np.maximum(L[members], L[j] - c[j] + c[members])
                U[members] = np.minimum(U[members], U[j] - c[j] + c[members])
                U[members] = np.maximum(U[members], L[members])
                shifted.update(int(m) for m in members)
            lp.set_node(phases, L, U)
        before = unstable_widths(bounds, network)
        bounds = replace(bounds, lower=[L[offsets[k]:offsets[k + 1]] for k in range(len(sizes))] + [bounds.lower[-1]],
                         upper=[U[offsets[k]:offsets[k + 1]] for k in range(len(sizes))] + [bounds.upper[-1]],
                         params={**bounds.params, "tightened_over_problem": True})
        if tightening_stalled(before, unstable_widths(bounds, network)):
            break
    return bounds, False
