"""Branching rules of the phase search: which free unit a node splits into its two phases.

A rule is a class (as α,β-CROWN's ``branching_heuristics`` are) with one method to write,
`BranchingRule.compute_scores`: a score per hidden unit at the node's LP optimum, from what the
node LP exposes (`PhaseLP.unit_duals`, `PhaseLP.unit_parts`) and the units' pre-activation bounds.
`select` picks the best-scored unit among those off their activation and falls back to the largest
violation.  A rule never reads the LP's columns itself: PhaseLP's layout is its own.  A rule that
learns from the search (`PseudocostBranching`) hears every child's LP through `observe`, and
`for_search` gives each search its own copy.  The search takes its rule from
`SearchOptions.branching`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class BranchingRule(ABC):
    """How the phase search chooses the unit to branch on."""

    def for_search(self, n_units: int) -> BranchingRule:
        """The rule one search over ``n_units`` hidden units uses: itself if it keeps no state."""
        return self

    def observe(self, unit: int, active: bool, gain: float, part: float) -> None:
        """Hear a child's LP: fixing ``unit`` (to its ``active`` phase, or inactive) zeroed the LP column
        of size ``part`` the parent's point had there (s if active, a if inactive) and raised the bound
        by ``gain``.  Nothing by default."""

    @abstractmethod
    def compute_scores(self, lp, col: np.ndarray, viol: np.ndarray, tol: float, L: np.ndarray,
                       U: np.ndarray) -> np.ndarray:
        """A score for every hidden unit at the last LP optimum ``col`` of ``lp`` (a `PhaseLP`): higher
        is a better unit to branch on, −1 for the units that are on their activation (``viol ≤ tol``).
        ``viol``: how far each unit's LP point is off its activation's graph; [L, U]: the units'
        pre-activation bounds."""

    def select(self, lp, col: np.ndarray, viol: np.ndarray, tol: float, L: np.ndarray, U: np.ndarray) -> int:
        """The unit to branch on: the best score among the units off their activation, the largest
        violation if no score is positive.  If no unit is off (``viol ≤ tol`` everywhere) the
        returned unit is off by at most ``tol``: the caller sees that the node needs no branching."""
        if not (viol > tol).any():
            return int(np.argmax(viol))
        score = self.compute_scores(lp, col, viol, tol, L, U)
        return int(np.argmax(score)) if score.max() > 0 else int(np.argmax(viol))


def dual_height(lp, L: np.ndarray, U: np.ndarray) -> np.ndarray:
    """|dual of each unit's big-M rows| × its triangle height −U·L/(U−L) (0 for stable units)."""
    height = np.where((L < 0) & (U > 0), -U * L / np.maximum(U - L, 1e-300), 0.0)
    return lp.unit_duals() * height


class DualHeightBranching(BranchingRule):
    """|dual of the unit's big-M rows| × triangle height −U·L/(U−L): an estimate of how much the
    bound rises when the unit's relaxation is removed.

    Measured on 30 DNN1 images against the largest violation alone: 48 vs 83 nodes on average,
    0.032 vs 0.055 s; static triangle height, earliest layer first and normalised violation were
    worse still (135-193 nodes; benchmarks/RESULTS.md)."""

    def compute_scores(self, lp, col: np.ndarray, viol: np.ndarray, tol: float, L: np.ndarray,
                       U: np.ndarray) -> np.ndarray:
        return np.where(viol > tol, dual_height(lp, L, U), -1.0)


class DeepestLayerBranching(BranchingRule):
    """The largest violation among the units of the deepest hidden layer that has a unit off its
    activation.

    Where the LP bound is 0 over most of the tree (the relaxation reaches the criterion without moving
    the input: every dual 0, so `DualHeightBranching` falls back to the largest violation anywhere) the
    nodes are closed by infeasibility, and fixing the units next to the logits first makes the criterion
    rows bite soonest: the replication's ten DNN3 6 → 1 instances (optimal L1 37-43), 300 s time-outs by
    dual × height, are proven in 1.2-2.3 s (688-1,584 nodes; earliest layer first: 3.1-3.6 after 60 s).
    Elsewhere it loses as often as it wins (DNN4, seven images at 120 s), hence a race of the two in the
    tight pipeline (benchmarks/RESULTS.md)."""

    def compute_scores(self, lp, col: np.ndarray, viol: np.ndarray, tol: float, L: np.ndarray,
                       U: np.ndarray) -> np.ndarray:
        off = viol > tol
        deepest = lp.layer_of[off].max()
        return np.where(off & (lp.layer_of == deepest), viol, -1.0)


class PseudocostBranching(BranchingRule):
    """Pseudocosts (Bénichou et al. 1971; 'reliability branching', Achterberg, Koch & Martin 2005), per
    ReLU unit: Ψ[d, j], the mean bound gain per unit of the LP column that fixing j to phase d zeroes (s
    when fixed active, a when inactive) over the children seen so far (`observe`; an infeasible child
    counts as a gain up to the prune level).  At a node with LP point (a, s) the predicted gains are
    q_act = Ψ[active, j]·s_j and q_in = Ψ[inactive, j]·a_j, and the score is their product (each at least
    1e-6), SCIP's product rule.  A direction with fewer than ``reliable`` observations is predicted by
    dual × height (`DualHeightBranching`) instead; if every unit off its activation is predicted to gain
    nothing, the scores are 0 and `select` takes the largest violation (without that fallback the
    product ranks such nodes by the 1e-6 floors alone: thesis DNN5 images 0, 2, 3, 4, 6, 7 searched alone
    took 22,415 nodes against 6,293 with it, and 7,110 by dual × height).

    In the tight pipeline's race against dual × height (benchmarks/RESULTS.md, twenty-second session):
    thesis 100-image benchmark, mean nodes DNN4 1,042 → 641, DNN5 6,541 → 4,122; the replication's DNN5
    proven 70 → 75 % (+17 infeasible), mean 69.1 → 40.1 s; the same optima."""

    def __init__(self, reliable: int = 4):
        self.reliable = reliable
        self._gain = self._count = None

    def for_search(self, n_units: int) -> PseudocostBranching:
        fresh = PseudocostBranching(self.reliable)
        fresh._gain, fresh._count = np.zeros((2, n_units)), np.zeros((2, n_units), dtype=np.int64)
        return fresh

    def observe(self, unit: int, active: bool, gain: float, part: float) -> None:
        if self._gain is None:
            raise RuntimeError("PseudocostBranching.observe before for_search: the rule has no table")
        if part > 1e-9:
            self._gain[int(active), unit] += max(gain, 0.0) / part
            self._count[int(active), unit] += 1

    def pseudocosts(self) -> tuple[np.ndarray, np.ndarray]:
        """(Ψ, observations): Ψ[1] the mean gain per unit of s of fixing a unit active, Ψ[0] per unit of a
        of fixing it inactive (0 where unobserved)."""
        return self._gain / np.maximum(self._count, 1), self._count.copy()

    def compute_scores(self, lp, col: np.ndarray, viol: np.ndarray, tol: float, L: np.ndarray,
                       U: np.ndarray) -> np.ndarray:
        if self._gain is None:
            raise RuntimeError("PseudocostBranching used before for_search: the rule has no table")
        a, s = lp.unit_parts(col)
        psi, count = self.pseudocosts()
        fallback = dual_height(lp, L, U)
        q_act = np.where(count[1] >= self.reliable, psi[1] * s, fallback)
        q_in = np.where(count[0] >= self.reliable, psi[0] * a, fallback)
        off = viol > tol
        if not ((q_act[off] > 0) | (q_in[off] > 0)).any():
            return np.where(off, 0.0, -1.0)
        return np.where(off, np.maximum(q_act, 1e-6) * np.maximum(q_in, 1e-6), -1.0)
