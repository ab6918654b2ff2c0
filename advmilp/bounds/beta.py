"""β-CROWN: backward linear bounds over a batch of ReLU-split domains (Wang et al. 2021, "Beta-CROWN:
Efficient Bound Propagation with Per-neuron Split Constraints").

A *domain* is the input box with some hidden units' phases fixed: split active (``z_j ≥ 0``, the unit
is the identity there) or split inactive (``z_j ≤ 0``, the unit is ``slope·z_j``).  Every other unit keeps
the root's pre-activation bounds [L, U] and, if unstable, CROWN's relaxation (`crown.relaxation_lines`:
the chord above, a line of slope α ∈ [slope, 1] below).  The split constraints themselves enter as
Lagrangian terms: for any β ≥ 0,

    max C·z_K  ≤  max over the relaxation of  C·z_K + Σ_j β_j·s_j·z_j      (s_j = +1 active, −1 inactive)

because ``s_j·z_j ≥ 0`` on the domain; back-substitution then adds β_j·s_j to the coefficient of z_j.
Every α in [slope, 1] and every β ≥ 0 gives a valid bound, so both are optimised by projected gradient
steps (`search.split_bab`); with the optimal ones the bound equals the LP relaxation of the domain
over the same [L, U] (the paper's Theorem 3.1).

Everything is batched: row i of ``C`` is bounded over domain i (its own phases, α and β), so one
bound pass over N domains is one matrix product per layer with N rows.  Units are indexed over all
hidden layers at once (``offsets``): arrays of shape (N, H), H the number of hidden units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advmilp.bounds.crown import relaxation_lines
from advmilp.nn.activations import ACTIVE, FREE
from advmilp.nn.network import Network


def hidden_offsets(network: Network) -> list[int]:
    """Start of every hidden layer's units in the flat (…, H) arrays, and H at the end."""
    sizes = [len(layer.b) for layer in network.layers[:-1]]
    return list(np.concatenate([[0], np.cumsum(sizes)]).astype(int))


@dataclass
class SplitBound:
    value: np.ndarray                   # (N,) upper bound of C_i·z_K over domain i
    x: np.ndarray                       # (N, n0) the box point where the final linear function is largest
    scores: np.ndarray                  # (N, H) per free unstable unit: what its relaxation's intercept costs
    #                                     the bound (BaBSR's score: max(A_j, 0)·intercept_j); 0 elsewhere
    grad_alpha: np.ndarray | None = None   # (N, H) d value / d α (free unstable units only)
    grad_beta: np.ndarray | None = None    # (N, H) d value / d β (split units only)


class SplitRelaxation:
    """The root's bounds of every hidden unit, and what a domain's phases make of them."""

    def __init__(self, network: Network, lower: list, upper: list):
        self.network = network
        self.offsets = hidden_offsets(network)
        K = len(network.layers) - 1
        L = np.concatenate([np.asarray(lower[k], np.float64) for k in range(K)] or [np.zeros(0)])
        U = np.concatenate([np.asarray(upper[k], np.float64) for k in range(K)] or [np.zeros(0)])
        slope = np.concatenate([np.full(len(network.layers[k].b), network.layers[k].act.slope) for k in range(K)]
                               or [np.zeros(0)])
        piecewise = np.concatenate([np.full(len(network.layers[k].b), network.layers[k].act.piecewise)
                                    for k in range(K)] or [np.zeros(0, bool)])
        self.L, self.U, self.slope = L, U, slope
        self.unstable = piecewise & (L < 0) & (U > 0)      # the units a domain may split
        self.stable_active = ~piecewise | (L >= 0)
        # CROWN's lines (used on free unstable units only): the chord above, the adaptive slope below
        self._crown_alpha, _, self.chord, self.chord_icpt = relaxation_lines(slope, L, U)
        self.weights = [(layer.W, layer.b) for layer in network.layers]
        self.dtype = np.float64

    def as_float32(self) -> "SplitRelaxation":
        """The same relaxation in float32 (half the work per product) — for *searching* α and β only: a
        bound that decides anything is computed in float64 (`search.split_bab`)."""
        other = object.__new__(SplitRelaxation)
        other.__dict__.update(self.__dict__)
        for name in ("L", "U", "slope", "chord", "chord_icpt"):
            setattr(other, name, getattr(self, name).astype(np.float32))
        other.weights = [(W.astype(np.float32), b.astype(np.float32)) for W, b in self.weights]
        other.dtype = np.float32
        return other

    @property
    def H(self) -> int:
        return len(self.L)

    def crown_alpha(self) -> np.ndarray:
        """CROWN's adaptive lower slopes (1 if U ≥ −L else the activation's slope), (H,)."""
        return self._crown_alpha

    def lines(self, phases: np.ndarray) -> "DomainLines":
        """What the domains' ``phases`` (N, H) make of every unit (`DomainLines`)."""
        act = self.stable_active | (phases == ACTIVE)
        free = self.unstable & (phases == FREE)
        one = self.dtype(1.0)
        flat = np.where(act, one, self.slope)                          # stable or split: one line
        return DomainLines(free, flat, np.where(free, self.chord, flat), np.where(free, self.chord_icpt, 0).astype(self.dtype),
                           phases.astype(self.dtype))


@dataclass
class DomainLines:
    """Per domain and unit (N, H): free unstable units, the one line of the others (slope), the upper line
    (slope, intercept) and the split sign (+1, −1, 0).  The lower slope is α on free units, else ``flat``."""
    free: np.ndarray
    flat: np.ndarray
    up_s: np.ndarray
    up_i: np.ndarray
    sign: np.ndarray

    def lower(self, alpha: np.ndarray) -> np.ndarray:
        return np.where(self.free, alpha, self.flat)


def split_upper_bound(relax: SplitRelaxation, C: np.ndarray, x_lb: np.ndarray, x_ub: np.ndarray,
                      phases: np.ndarray, alpha: np.ndarray, beta: np.ndarray, gradient: bool = False,
                      lines: DomainLines | None = None) -> SplitBound:
    """An upper bound of ``C[i]·z_K`` (z_K the last layer's pre-activations) over domain i, for every i:
    its ``phases`` (N, H) of ACTIVE / INACTIVE / FREE, lower slopes ``alpha`` (N, H; used on free
    unstable units, each in [slope, 1]) and multipliers ``beta`` (N, H; used on split units, each ≥ 0).
    With ``gradient``, also the bound's gradient with respect to α and β (reverse mode through the same
    products; the maximum over the box differentiated at its maximiser).  ``lines``: ``relax.lines(phases)``
    if already made (the phases do not change while α and β are optimised).  Computed in ``relax.dtype``."""
    off = relax.offsets
    K = len(relax.weights) - 1
    dt = relax.dtype
    ln = lines if lines is not None else relax.lines(phases)
    up_s, up_i, sign = ln.up_s, ln.up_i, ln.sign
    lo_s = ln.lower(alpha.astype(dt, copy=False))
    beta = beta.astype(dt, copy=False)
    W, b = relax.weights[K]
    C = C.astype(dt, copy=False)
    A, c = C @ W, C @ b
    scores = np.zeros(up_s.shape, dt)
    trace = []
    for j in range(K - 1, -1, -1):
        s = slice(off[j], off[j + 1])
        pos, neg = np.maximum(A, 0), np.minimum(A, 0)
        D = pos * up_s[:, s] + neg * lo_s[:, s] + beta[:, s] * sign[:, s]
        icpt = pos * up_i[:, s]
        scores[:, s] = icpt
        c = c + icpt.sum(axis=1)
        if gradient:
            trace.append((j, A))
        W, b = relax.weights[j]
        A, c = D @ W, c + D @ b
    x = np.where(A > 0, x_ub[None, :], x_lb[None, :])
    value = np.einsum("ij,ij->i", A, x.astype(dt, copy=False)) + c
    out = SplitBound(value, x, scores)
    if not gradient:
        return out
    g_alpha, g_beta = np.zeros(up_s.shape, dt), np.zeros(up_s.shape, dt)
    g_A = x.astype(dt)
    for j, A_j in reversed(trace):
        s = slice(off[j], off[j + 1])
        W, b = relax.weights[j]
        g_D = g_A @ W.T + b[None, :]
        g_beta[:, s] = g_D * sign[:, s]
        g_alpha[:, s] = np.where(ln.free[:, s], g_D * np.minimum(A_j, 0), 0)
        up = A_j > 0
        g_A = g_D * np.where(up, up_s[:, s], lo_s[:, s]) + np.where(up, up_i[:, s], 0)
    out.grad_alpha, out.grad_beta = g_alpha, g_beta
    return out
