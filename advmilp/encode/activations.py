"""The encoder table: how one unit of each activation becomes columns and rows.

This is the one place that knows how a unit is written as linear constraints (OMLT's layer →
encoder table, gurobi-machinelearning's activation objects).  Every model builder takes its units
from here: the thesis MILP in PuLP (`encode.milp`), the persistent phase-search LP and the
heuristic's region LPs (`encode.lp`, used by `search.phase_bb`), and the L1-ball relaxation
(`bounds.ball`).  Adding an activation = one forward rule in `advmilp.nn.activations` + one entry
in `ENCODERS` below.

A unit j of layer k has the pre-activation ``pre = W_j a^(k−1) + b_j`` with bounds [L, U].  Its
**exact** encoding (thesis §3.1, eqs. 5–8, big-M from the unit's own bounds) for an activation
``act(y) = y (y ≥ 0), slope·y (y ≤ 0)``:

    L < 0 < U:   pre = a − s,   0 ≤ a ≤ U (1 − z),   0 ≤ s ≤ −L z,   z ∈ {0, 1},
                 value = a − slope·s        (z = 1: inactive, a = 0;  z = 0: active, s = 0)
    L ≥ 0:       pre = a,  a ∈ [0, U]       (stably active, no binary)
    U ≤ 0:       relu: the constant 0 (no column);  otherwise y = slope·pre
    linear:      y = pre,  y ∈ [L, U]

Its **relaxation** (the convex hull of the graph over [L, U], one column y, no binary) for the
unstable case: y ≥ pre, y ≥ slope·pre, and the chord y ≤ slope·L + (U − slope·L)/(U − L)·(pre − L)
(for ReLU: the triangle y ≥ 0, y ≥ pre, y ≤ U (pre − L)/(U − L)).

Encodings are plain data: columns (role, bounds, binary?) and rows over the names ``pre`` and the
column roles; the builders turn them into PuLP variables or HiGHS arrays.  The column roles
double as variable names (``a_k_j``, ``s_k_j``, ``z_k_j``, ``y_k_j``) and the row roles as
constraint names (``relu_k_j``, ``on_k_j``, ``off_k_j``, ``act_k_j``, ``lin_k_j``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advmilp.errors import AdvmilpError
from advmilp.nn.activations import Activation

INF = float("inf")


@dataclass(frozen=True)
class Column:
    role: str                 # a | s | z | y
    lo: float
    hi: float
    binary: bool = False


@dataclass(frozen=True)
class Row:
    role: str                                 # relu | on | off | act | lin | ge | chord
    coefs: tuple[tuple[str, float], ...]      # over "pre" and the column roles
    lo: float
    hi: float


@dataclass(frozen=True)
class UnitEncoding:
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    value: tuple[tuple[str, float], ...]      # the unit's output as a combination of its columns (() = 0)

    @property
    def binary(self) -> bool:
        return any(c.binary for c in self.columns)


@dataclass(frozen=True)
class TwoPieceEncoder:
    """Encoder of ``act(y) = y (y ≥ 0), slope·y (y ≤ 0)``: linear (slope 1), ReLU (0), leaky ReLU."""

    activation: Activation

    @property
    def slope(self) -> float:
        return self.activation.slope

    def values(self, pre: float) -> dict[str, float]:
        """The value of every column role when the unit's pre-activation is ``pre`` (a warm start;
        an encoding uses some of them)."""
        return {"a": max(pre, 0.0), "s": max(-pre, 0.0), "z": 1.0 if pre < 0 else 0.0,
                "y": float(self.activation(np.float64(pre)))}

    def exact(self, L: float, U: float, enforce_bounds: bool = False) -> UnitEncoding:
        """The big-M MILP encoding of a unit with pre-activation bounds [L, U] (see module docstring).

        ``enforce_bounds`` also imposes L ≤ pre ≤ U where the encoding does not imply it (a stable
        unit: active gets a ≥ L, inactive ReLU a row ``L ≤ pre ≤ U``).  Valid, since the bounds hold
        at every feasible point; it only tightens the LP relaxation of the layers before (the
        phase search's LP uses it; the thesis model does not)."""
        L, U = float(L), float(U)
        if L > U:
            raise AdvmilpError(f"invalid bounds [{L}, {U}]")
        alpha = self.slope
        if alpha == 1.0:
            return UnitEncoding((Column("y", L, U),), (Row("lin", (("pre", 1.0), ("y", -1.0)), 0.0, 0.0),), (("y", 1.0),))
        if U <= 0:
            if alpha == 0.0:
                return UnitEncoding((), (Row("bound", (("pre", 1.0),), L, U),) if enforce_bounds else (), ())
            return UnitEncoding((Column("y", alpha * L, alpha * U),),
                                (Row("act", (("pre", alpha), ("y", -1.0)), 0.0, 0.0),), (("y", 1.0),))
        if L >= 0:
            return UnitEncoding((Column("a", L if enforce_bounds else 0.0, U),),
                                (Row("act", (("pre", 1.0), ("a", -1.0)), 0.0, 0.0),), (("a", 1.0),))
        value = (("a", 1.0),) if alpha == 0.0 else (("a", 1.0), ("s", -alpha))
        return UnitEncoding(
            (Column("a", 0.0, U), Column("s", 0.0, -L), Column("z", 0.0, 1.0, binary=True)),
            (Row("relu", (("pre", 1.0), ("a", -1.0), ("s", 1.0)), 0.0, 0.0),   # pre = a − s
             Row("on", (("a", 1.0), ("z", U)), -INF, U),                        # z = 1 → a ≤ 0
             Row("off", (("s", 1.0), ("z", L)), -INF, 0.0)),                    # z = 0 → s ≤ 0
            value)

    def relaxation(self, L: float, U: float) -> UnitEncoding:
        """The convex hull of the unit's graph over [L, U] in one output column y (no binary)."""
        L, U = float(L), float(U)
        alpha = self.slope
        lo, hi = self.activation.interval(np.array(L), np.array(U))
        y = Column("y", float(lo), float(hi))
        if alpha == 1.0 or L >= 0:
            return UnitEncoding((y,), (Row("act", (("pre", 1.0), ("y", -1.0)), 0.0, 0.0),), (("y", 1.0),))
        if U <= 0:
            if alpha == 0.0:
                return UnitEncoding((y,), (), (("y", 1.0),))      # fixed to 0 by its column bounds
            return UnitEncoding((y,), (Row("act", (("pre", alpha), ("y", -1.0)), 0.0, 0.0),), (("y", 1.0),))
        chord = (U - alpha * L) / (U - L)
        rows = [Row("ge", (("pre", -1.0), ("y", 1.0)), 0.0, INF)]                          # y ≥ pre
        if alpha > 0.0:
            rows.append(Row("ge_neg", (("pre", -alpha), ("y", 1.0)), 0.0, INF))           # y ≥ slope·pre
        rows.append(Row("chord", (("pre", -chord), ("y", 1.0)), -INF, alpha * L - chord * L))
        return UnitEncoding((y,), tuple(rows), (("y", 1.0),))


ENCODERS: dict[str, type[TwoPieceEncoder]] = {
    "relu": TwoPieceEncoder,
    "leaky_relu": TwoPieceEncoder,
    "linear": TwoPieceEncoder,
}


def encoder_for(activation: Activation) -> TwoPieceEncoder:
    """The encoder of an activation (one table entry per activation name)."""
    try:
        return ENCODERS[activation.name](activation)
    except KeyError:
        raise AdvmilpError(f"no MILP encoder for activation {activation.name!r}") from None
