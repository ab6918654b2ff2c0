"""Phase implications between first-layer units that read the input through the same weights.

Two first-layer units u, v with equal weight rows differ by a constant: pre_v = pre_u + (b_v − b_u) at
every input.  So u active (pre_u ≥ 0) makes every such v with b_v ≥ b_u active, and u inactive makes
every v with b_v ≤ b_u inactive — exactly, no point of the node is lost.

Where it matters: the network of one perturbation δ shared by k images (`methods.universal`) repeats the
first layer k times with biases W·x̄_i + b, so each of its first-layer units comes in a chain of k whose
phases can take k + 1 patterns, not 2^k; the phase search fixing one unit of a chain fixes the part of
the chain it implies instead of branching on each of them.  The node LP (`phase_bb.PhaseLP`) also gives
a chain's units one common pre-activation range (`shared_bounds`) and gets the convex hull of the chain's
ReLUs (`chain_hull`), which the units' separate triangle relaxations do not imply; the tightening
(`search.tighten`) bounds one unit per chain and shifts the result to the others.  A network without
equal rows has no chain, and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advmilp.nn.activations import ACTIVE, FREE, INACTIVE


@dataclass(frozen=True)
class PhaseImplications:
    above: dict      # flat unit index -> the units of its chain with a bias ≥ its own (active with it)
    below: dict      # ... with a bias ≤ its own (inactive with it)
    chains: tuple = ()   # every chain's units in the order of their biases

    @property
    def empty(self) -> bool:
        return not self.above

    def shared_bounds(self, lower: np.ndarray, upper: np.ndarray, const: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pre-activation bounds of the layer with every chain's units given their common range: the
        chain's shared part z = pre_i − const_i lies in every unit's [L_i − const_i, U_i − const_i], so in
        their intersection (copies; a chain whose intersection is empty is left as it was)."""
        lower, upper = np.array(lower, dtype=np.float64), np.array(upper, dtype=np.float64)
        for chain in self.chains:
            lo, hi = np.max(lower[chain] - const[chain]), np.min(upper[chain] - const[chain])
            if lo <= hi:
                lower[chain] = np.maximum(lower[chain], lo + const[chain])
                upper[chain] = np.minimum(upper[chain], hi + const[chain])
        return lower, upper

    def propagate(self, phases: np.ndarray, unit: int) -> np.ndarray:
        """Fix in ``phases`` (in place) the free units that ``unit``'s phase implies; returns ``phases``."""
        side = {ACTIVE: self.above, INACTIVE: self.below}.get(int(phases[unit]), {})
        implied = side.get(unit)
        if implied is not None:
            phases[implied[phases[implied] == FREE]] = phases[unit]
        return phases


def first_layer_implications(W: np.ndarray, b: np.ndarray) -> PhaseImplications:
    """The chains of a first (hidden) layer with weights ``W`` (units × inputs) and biases ``b``: units
    whose weight rows are equal bit for bit.  Flat unit indices are the layer's own (the first layer's
    units come first in the search's flat order)."""
    W = np.ascontiguousarray(np.asarray(W, dtype=np.float64))
    b = np.asarray(b, dtype=np.float64)
    groups: dict[bytes, list[int]] = {}
    for j in range(W.shape[0]):
        groups.setdefault(W[j].tobytes(), []).append(j)
    above, below, chains = {}, {}, []
    for units in groups.values():
        if len(units) < 2:
            continue
        units = np.asarray(units)
        chains.append(units[np.argsort(b[units], kind="stable")])
        for u in units:
            others = units[units != u]
            above[int(u)] = others[b[others] >= b[u]]
            below[int(u)] = others[b[others] <= b[u]]
    return PhaseImplications(above, below, tuple(chains))


def chain_hull(offsets: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """The convex hull of {(z, relu(z + c_1), …, relu(z + c_k)) : lo ≤ z ≤ hi}, for offsets ``c`` whose
    breakpoints −c_i lie strictly inside (lo, hi) and differ: rows ``A @ (z, y_1, …, y_k) ≤ d``.

    The curve is linear between its k + 2 vertices (z = lo, the breakpoints, hi), so its hull is the
    simplex of those vertices, with one facet opposite each.  Each facet's right-hand side is the largest
    value its normal takes at the vertices, so every row holds on the whole curve whatever the rounding
    of the normal (a poorly conditioned facet is only weaker).  One unit (k = 1) gives its triangle."""
    c = np.asarray(offsets, dtype=np.float64)
    ts = np.concatenate([[lo], np.sort(-c), [hi]])
    V = np.column_stack([ts, np.maximum(ts[:, None] + c[None, :], 0.0)])     # (k + 2) × (k + 1)
    scale = np.abs(V).max(axis=0)
    scale[scale == 0] = 1.0
    Vs = V / scale                      # columns scaled to 1: the normals' conditioning
    rows, rhs = [], []
    for m in range(len(V)):
        others = np.delete(Vs, m, axis=0)
        # the normal n with n · (v − v_0) = 0 for every other vertex: the last right singular vector
        _, _, vt = np.linalg.svd(others[1:] - others[0])
        n = vt[-1]
        if n @ Vs[m] > n @ others[0]:   # the facet's side with vertex m
            n = -n
        n = n / scale                   # back to the unscaled coordinates
        n = n / np.abs(n).max()
        rows.append(n)
        rhs.append(float((V @ n).max()))
    return np.array(rows), np.array(rhs)
