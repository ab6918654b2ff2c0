"""What one phase search solves: a `PhaseProblem` (the data of one conjunctive problem over a box).

The phase search (`phase_bb.search_phases`) minimises an `LPObjective` over the points x of a box
[x_lb, x_ub] whose logits y meet the rows ``G @ y >= h`` (one conjunction: a `spec.problems.Criterion`
with the model's margin added), optionally with Σ|x − x̄| ≤ cap.  Its candidates are judged by the
problem's own ``evaluate``, never by the LP: ``evaluate(x) -> (ok, value, x)`` re-checks a point with
forward passes (float64 and float32) and gives the objective's exact value there.

The problem kinds are entries here, not branches in the search:

distance   min Σ|x − x̄| or max|x − x̄|         targeted / untargeted (one search per winning class)
output     min −y_t  with Σ|x − x̄| ≤ budget   max-target (maximise one logit under an L1 budget)
violation  min max_r (A_r y − b_r)             VNN-LIB: a disjunct is violated iff the value is ≤ 0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from advmilp.errors import AdvmilpError
from advmilp.nn.network import Network
from advmilp.spec.problems import Criterion, ProblemSpec
from advmilp.spec.verify import verify_witness


@dataclass(frozen=True)
class LPObjective:
    """What the node LPs minimise: Σ|x − x̄| (``l1``), plus ``c·y`` on the logits, plus the largest
    slack max_r (A_r y − b_r) (a free column t with A y − t ≤ b, minimised)."""

    l1: bool = True
    linf: bool = False                  # + the largest move max_i |x_i − x̄_i| (a column t ≥ every p_i, m_i)
    c: np.ndarray | None = None
    A: np.ndarray | None = None
    b: np.ndarray | None = None


DISTANCE = LPObjective()


@dataclass(frozen=True)
class PhaseProblem:
    x_bar: np.ndarray                   # the reference point (the image); the LP's columns are x − x̄
    x_lb: np.ndarray
    x_ub: np.ndarray
    G: np.ndarray                       # rows G y ≥ h on the logits (margins included)
    h: np.ndarray
    evaluate: Callable[[np.ndarray], tuple[bool, float, np.ndarray]] = field(repr=False)
    objective: LPObjective = DISTANCE
    cap: float | None = None            # Σ|x − x̄| ≤ cap
    stop_at: float = -math.inf          # a verified point with value ≤ this settles the question: stop


def distance_problem(network: Network, spec: ProblemSpec, x_bar: np.ndarray, label: int, x_lb: np.ndarray,
                     x_ub: np.ndarray, criterion: Criterion, cap: float | None = None) -> PhaseProblem:
    """Minimal distance (the spec's norm: Σ|x − x̄| or max|x − x̄|) with ``criterion`` imposed (plus the
    spec's margin) and Σ|x − x̄| ≤ ``cap`` (an L1 incumbent's) and the spec's ``l1_cap``; a candidate
    counts if it meets the *spec* exactly (`spec.verify`: for untargeted, any winning class)."""
    if spec.norm not in ("l1", "linf"):
        raise AdvmilpError(f"the phase search minimises the l1 or linf distance, not {spec.norm}")
    target = spec.target_for(label)
    if spec.l1_cap is not None:
        cap = min(cap if cap is not None else math.inf, spec.l1_cap - spec.margin)

    def evaluate(x):
        chk = verify_witness(network, x, spec, x_bar, label, target, x_lb, x_ub)
        return chk.verified, chk.distance(spec), chk.x

    objective = DISTANCE if spec.norm == "l1" else LPObjective(l1=False, linf=True)
    return PhaseProblem(x_bar, x_lb, x_ub, criterion.G, criterion.h + spec.margin, evaluate, objective, cap)


def output_problem(network: Network, spec: ProblemSpec, x_bar: np.ndarray, label: int, x_lb: np.ndarray,
                   x_ub: np.ndarray, criterion: Criterion, relu: bool = False) -> PhaseProblem:
    """Max-target: maximise the logit of ``spec.target`` (minimise −y_t) with ``criterion`` and
    Σ|x − x̄| ≤ l1_budget − margin; a candidate counts if it meets the spec exactly (criterion and budget).

    ``relu``: the objective is the output after a ReLU, max(y_t, 0) (the model's output layer has one): a
    point with y_t ≤ 0 is worth 0, so once any point is known every node whose LP proves y_t ≤ 0 is pruned
    (the LP still minimises −y_t, a lower bound of −max(y_t, 0) where it is below 0).  Where no point has
    y_t > 0 this is the difference between a proof and a gap: on DNN5 image 21, output 7, the nine
    searches prove it in 197 s in all, against a bound of 31.6 at 300 s on −y_t (benchmarks/RESULTS.md)."""
    t = spec.target
    c = np.zeros(network.n_outputs)
    c[t] = -1.0

    def evaluate(x):
        chk = verify_witness(network, x, spec, x_bar, label, t, x_lb, x_ub)
        value = -float(network.forward(chk.x)[t])
        return chk.verified, (min(value, 0.0) if relu else value), chk.x

    return PhaseProblem(x_bar, x_lb, x_ub, criterion.G, criterion.h + spec.margin, evaluate,
                        LPObjective(l1=False, c=c), spec.l1_budget - spec.margin)
