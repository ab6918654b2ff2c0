"""Intermediate bounds refined unit by unit by the β-CROWN search (α,β-CROWN's ``bab-refine`` and
ERAN's RefinePoly bound early units by MILP; here the split search does it, with no solver).

Bounds from backward propagation (α-CROWN, `bounds.crown`) loosen with depth: every layer relaxes the
units the previous one left unstable, and the widths compound.  On ERAN's 9x200 network (VNN-COMP
2021, ε 0.015) the root leaves 39 of layer 2's units unstable and 184 of layer 7's, and no disjunct of
the hard specifications closes.  A unit's pre-activation over the box is the single output of the
network truncated at that unit, so its least and largest value are what `split_bab.prove_disjunct`
bounds: a short search per side (rows ``z ≥ 0`` and ``−z ≥ 0``, candidate points refused so the search
only tightens) proves a bound at every stop, never looser than the relaxation it starts from.  Layers
are refined in order from the second hidden layer (the first is exact over a box), each refined layer
re-propagated into the later ones by α-CROWN with the refined bounds as its base.

Sound by construction: the search's bound is valid for every domain it leaves open, it starts from
bounds valid over the box, and `crown_bounds` intersects, never widens, its base.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from advmilp.bounds.compute import Bounds, widen
from advmilp.bounds.crown import AlphaOptions, crown_bounds
from advmilp.nn.network import Network
from advmilp.search.split_bab import prove_disjunct
from advmilp.solvers.clock import expired


@dataclass(frozen=True)
class RefineOptions:
    unit_time: float = 0.3          # seconds of search per side of one unit (ERAN 9x200, spec 2697: layer 2's
    #                                 39 unstable units to 29 in 23 s; benchmarks/RESULTS.md)


def truncated_at(network: Network, k: int, j: int) -> Network:
    """Hidden layers 0..k−1 of ``network`` and, as its one linear output, unit ``j`` of layer ``k``'s
    pre-activation."""
    layers = network.layers
    return Network.from_arrays([layer.W for layer in layers[:k]] + [layers[k].W[j:j + 1]],
                               [layer.b for layer in layers[:k]] + [layers[k].b[j:j + 1]],
                               [layer.activation for layer in layers[:k]] + ["linear"],
                               slopes=[layer.slope for layer in layers[:k]] + [None])


def refine_layer(network: Network, bounds: Bounds, k: int, x_lb: np.ndarray, x_ub: np.ndarray,
                 options: RefineOptions = RefineOptions(),
                 deadline: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Layer ``k``'s pre-activation bounds (0-based, k ≥ 1) with every unit that ``bounds`` leaves
    unstable bounded again by two short β-CROWN searches over the box, on the bounds of layers < k."""
    L, U = bounds.lower[k].copy(), bounds.upper[k].copy()
    if not network.layers[k].act.piecewise:
        return L, U
    lower, upper = bounds.lower[:k], bounds.upper[:k]
    for j in np.flatnonzero((L < 0) & (U > 0)):
        sub = truncated_at(network, k, int(j))
        for sign in (1.0, -1.0):        # min z_j, then min −z_j = −max z_j
            if expired(deadline):
                return L, U
            stop = time.perf_counter() + options.unit_time
            r = prove_disjunct(sub, lower, upper, np.array([[sign]]), np.zeros(1), x_lb, x_ub, lambda x: False,
                               deadline=stop if deadline is None else min(stop, deadline), tol=0.0)
            if not np.isfinite(r.bound):
                continue
            if sign > 0:
                L[j] = max(L[j], r.bound - widen(r.bound))
            else:
                U[j] = min(U[j], -r.bound + widen(-r.bound))
            if L[j] >= 0 or U[j] <= 0:   # stable: the other side cannot change that
                break
    return L, U


def refine_bounds(network: Network, bounds: Bounds, x_lb: np.ndarray, x_ub: np.ndarray,
                  options: RefineOptions = RefineOptions(), deadline: float | None = None,
                  enough: Callable[[Bounds], bool] | None = None,
                  say: Callable[[str], None] | None = None) -> Bounds:
    """``bounds`` (valid over the box [x_lb, x_ub]) refined layer by layer from the second hidden layer
    (`refine_layer`), each refined layer re-propagated into the later ones by α-CROWN; stops at
    ``deadline``, or as soon as ``enough(bounds)`` says the bounds so far suffice."""
    t0 = time.perf_counter()
    x_lb, x_ub = np.asarray(x_lb, np.float64), np.asarray(x_ub, np.float64)
    for k in range(1, len(network.layers) - 1):
        if expired(deadline):
            break
        L, U = refine_layer(network, bounds, k, x_lb, x_ub, options, deadline)
        before = bounds.stable_counts()[k][2]
        base = replace(bounds, lower=bounds.lower[:k] + [L] + bounds.lower[k + 1:],
                       upper=bounds.upper[:k] + [U] + bounds.upper[k + 1:])
        bounds = crown_bounds(network, x_lb, x_ub, base=base, alpha=AlphaOptions(), deadline=deadline)
        bounds.method, bounds.params = "refined", {**bounds.params, "refined_layers": k}
        if say:
            after = [unstable for _, _, unstable in bounds.stable_counts()]
            say(f"refined layer {k + 1}: {before} -> {after[k]} unstable units; unstable per layer now {after} "
                f"({time.perf_counter() - t0:.1f} s)")
        if enough is not None and enough(bounds):
            break
    bounds.time_s = time.perf_counter() - t0
    return bounds
