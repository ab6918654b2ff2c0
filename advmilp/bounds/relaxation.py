"""Bounds tightened on the tight MILP's own LP relaxation (criterion, L1 cap and ideal cuts).

The L1-ball bounds (`ball`) hold for every point of S_U.  The MILP only needs bounds that
hold for its *feasible* points: inside S_U **and** adversarial (the target criteria on the
logits).  Maximising and minimising each unstable unit's pre-activation over the LP relaxation
of that MILP — with the ideal ReLU cuts already separated at its root — therefore gives valid
bounds that are tighter than the ball's: some units become stable (one binary fewer each) and
the remaining big-Ms shrink.  Every solution of the MILP, in particular its optimum, satisfies
them, so the optimum is unchanged.  A unit's pre-activation is a_j − s_j in the big-M encoding
(`formulation.encode_layer`).  LP optima are widened outward like every other solver bound.

What it buys is narrower big-Ms more than fewer binaries: on the four hardest DNN5 images
(1, 47, 80, 100) three passes took 2.4-5.0 s, shrank the unstable units' summed bound width by
20-31 % and stabilised 0, 0, 0 and 1 unit; on DNN4 images of 5-170 s it made HiGHS 1.1-2× faster
(benchmarks/RESULTS.md, "What each lever contributed").
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from advmilp.bounds.compute import Bounds, widen
from advmilp.encode.milp import Formulation
from advmilp.solvers.clock import expired
from advmilp.solvers.pulp import relaxation_lp
from advmilp.spec.rows import OPTIMAL


def tighten_on_relaxation(form: Formulation, bounds: Bounds, deadline: float | None = None) -> tuple[Bounds, int]:
    """Bounds of the hidden units of ``form`` (built with ``bounds``) over its LP relaxation.

    Returns the tightened bounds (never looser than ``bounds``) and the number of LPs solved.  At
    ``deadline`` (`solvers.clock`) it stops: the units bounded so far keep their new bounds, the
    others ``bounds`` — both valid, so the result is sound."""
    if expired(deadline):
        return bounds, 0
    lp, index = relaxation_lp(form.prob)
    lower = [np.array(v, dtype=np.float64) for v in bounds.lower]
    upper = [np.array(v, dtype=np.float64) for v in bounds.upper]
    n_lps = 0
    for k, layer in enumerate(form.layers[:-1]):        # hidden layers; the output is linear
        for j, u in enumerate(layer):
            if u.z is None or u.a is None or u.s is None:
                continue                                 # stable: no binary, nothing to gain
            if expired(deadline):
                break
            cols = np.array([index[u.a.name], index[u.s.name]], dtype=np.int32)
            st, neg_max = lp.minimize(cols, np.array([-1.0, 1.0]), deadline=deadline)     # − max (a − s)
            n_lps += 1
            if st == OPTIMAL:
                upper[k][j] = min(upper[k][j], -neg_max + widen(neg_max))
            if upper[k][j] <= 0:
                continue                                 # stably inactive: the lower side is unused
            st, low = lp.minimize(cols, np.array([1.0, -1.0]), deadline=deadline)
            n_lps += 1
            if st == OPTIMAL:
                lower[k][j] = max(lower[k][j], low - widen(low))
            upper[k][j] = max(upper[k][j], lower[k][j])
    params = {**bounds.params, "relaxation_tightened": True}
    return replace(bounds, lower=lower, upper=upper, params=params), n_lps
