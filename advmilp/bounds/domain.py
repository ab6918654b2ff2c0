"""Bounds of every pre-activation over one *domain* of the phase search: the input set (the box, or
the L1 ball S_r inside it) with some hidden units' phases fixed.

A unit fixed active has pre ≥ 0 on the domain, one fixed inactive pre ≤ 0; writing that into the
root's bounds ([max(L, 0), U] or [L, min(U, 0)]) makes the unit *stable* for backward linear
propagation (`crown.crown_bounds`): its relaxation is its exact line on the domain.  Each later layer
is then bounded by CROWN through those bounds and intersected with them, so the domain's bounds are
never looser than the root's and every later unit sees its predecessors' tightened bounds.  What
that proves:

* a free unit whose domain bounds no longer straddle 0 is stable on the domain (an *implied* phase);
* a unit whose domain bounds cross (L > U) — e.g. one fixed active whose upper bound fell below 0 —
  or a criterion row ``G y ≥ h`` whose upper bound over the domain is below h: the domain holds no
  point meeting the criterion, and the node is closed without an LP.

This is the phase search's counterpart of a MILP solver's node propagation (Gurobi's few thousand
nodes on the replication's DNN3 6 → 1 instances, where HiGHS' MILP and the phase search without it
stall: benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advmilp.bounds.compute import Bounds
from advmilp.bounds.crown import crown_bounds, criterion_upper
from advmilp.nn.activations import ACTIVE, FREE, INACTIVE
from advmilp.nn.network import Network


@dataclass
class DomainBounds:
    empty: bool                  # proven: no point of the domain meets the criterion (or the phases)
    lower: np.ndarray | None     # flat (H,) pre-activation bounds of every hidden unit on the domain
    upper: np.ndarray | None
    phases: np.ndarray | None    # the domain's phases with the implied ones added


def domain_bounds(network: Network, lower: np.ndarray, upper: np.ndarray, phases: np.ndarray,
                  x_lb: np.ndarray, x_ub: np.ndarray, x_bar: np.ndarray | None = None,
                  radius: float | None = None, G: np.ndarray | None = None,
                  h: np.ndarray | None = None, output: tuple[np.ndarray, np.ndarray] | None = None) -> DomainBounds:
    """The bounds of a domain (see the module docstring).  ``lower``/``upper``: flat (H,) root bounds of
    every hidden unit (valid over the input set); ``phases``: (H,) ACTIVE / INACTIVE / FREE (stable
    units may carry either); the input set is [x_lb, x_ub], cut by Σ|x − x̄| ≤ ``radius`` if given;
    ``G``, ``h``: criterion rows on the logits; ``output``: the logits' root bounds (default: none)."""
    K = len(network.layers) - 1
    sizes = [len(network.layers[k].b) for k in range(K)]
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    piecewise = np.concatenate([np.full(n, network.layers[k].act.piecewise) for k, n in enumerate(sizes)]
                               or [np.zeros(0, bool)])
    L, U = np.asarray(lower, np.float64).copy(), np.asarray(upper, np.float64).copy()
    act, ina = piecewise & (phases == ACTIVE), piecewise & (phases == INACTIVE)
    L[act] = np.maximum(L[act], 0.0)
    U[ina] = np.minimum(U[ina], 0.0)
    if (L > U).any():
        return DomainBounds(True, None, None, None)
    n_out = len(network.layers[-1].b)
    out_lo, out_up = output if output is not None else (np.full(n_out, -np.inf), np.full(n_out, np.inf))
    base = Bounds([L[offs[k]:offs[k + 1]] for k in range(K)] + [np.asarray(out_lo, np.float64)],
                  [U[offs[k]:offs[k + 1]] for k in range(K)] + [np.asarray(out_up, np.float64)], "domain")
    b = crown_bounds(network, x_lb, x_ub, x_bar=x_bar if radius is not None else None, radius=radius, base=base)
    if b.params.get("empty"):
        return DomainBounds(True, None, None, None)
    Ln = np.concatenate(b.lower[:K] or [np.zeros(0)])
    Un = np.concatenate(b.upper[:K] or [np.zeros(0)])
    if G is not None and (criterion_upper(network, b.lower[:K], b.upper[:K], G, x_lb, x_ub,
                                          x_bar if radius is not None else None, radius) < h).any():
        return DomainBounds(True, None, None, None)
    ph = phases.copy()
    free = piecewise & (ph == FREE)
    ph[free & (Un <= 0)] = INACTIVE
    ph[free & (Ln >= 0)] = ACTIVE
    return DomainBounds(False, Ln, Un, ph)
