"""Branching rules of the phase search: which free unit a node splits into its two phases.

A rule is a class (as α,β-CROWN's ``branching_heuristics`` are) with one method to write,
`BranchingRule.compute_scores`: a score per hidden unit at the node's LP optimum, from what the
node LP exposes (`PhaseLP.unit_duals`) and the units' pre-activation bounds.  `select` picks the
best-scored unit among those off their activation and falls back to the largest violation.  A rule
never reads the LP's columns: PhaseLP's layout is its own.  The search takes its rule from
`SearchOptions.branching`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class BranchingRule(ABC):
    """How the phase search chooses the unit to branch on."""

    @abstractmethod
    def compute_scores(self, lp, viol: np.ndarray, tol: float, L: np.ndarray, U: np.ndarray) -> np.ndarray:
        """A score for every hidden unit at the last LP optimum of ``lp`` (a `PhaseLP`): higher is a
        better unit to branch on, −1 for the units that are on their activation (``viol ≤ tol``).
        ``viol``: how far each unit's LP point is off its activation's graph; [L, U]: the units'
        pre-activation bounds."""

    def select(self, lp, viol: np.ndarray, tol: float, L: np.ndarray, U: np.ndarray) -> int:
        """The unit to branch on: the best score among the units off their activation, the largest
        violation if no score is positive.  If no unit is off (``viol ≤ tol`` everywhere) the
        returned unit is off by at most ``tol``: the caller sees that the node needs no branching."""
        if not (viol > tol).any():
            return int(np.argmax(viol))
        score = self.compute_scores(lp, viol, tol, L, U)
        return int(np.argmax(score)) if score.max() > 0 else int(np.argmax(viol))


class DualHeightBranching(BranchingRule):
    """|dual of the unit's big-M rows| × triangle height −U·L/(U−L): an estimate of how much the
    bound rises when the unit's relaxation is removed.

    Measured on 30 DNN1 images against the largest violation alone: 48 vs 83 nodes on average,
    0.032 vs 0.055 s; static triangle height, earliest layer first and normalised violation were
    worse still (135-193 nodes; benchmarks/RESULTS.md)."""

    def compute_scores(self, lp, viol: np.ndarray, tol: float, L: np.ndarray, U: np.ndarray) -> np.ndarray:
        height = np.where((L < 0) & (U > 0), -U * L / np.maximum(U - L, 1e-300), 0.0)
        return np.where(viol > tol, lp.unit_duals() * height, -1.0)


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

    def compute_scores(self, lp, viol: np.ndarray, tol: float, L: np.ndarray, U: np.ndarray) -> np.ndarray:
        off = viol > tol
        deepest = lp.layer_of[off].max()
        return np.where(off & (lp.layer_of == deepest), viol, -1.0)
