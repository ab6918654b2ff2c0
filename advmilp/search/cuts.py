"""Ideal ReLU cuts (Anderson, Huchette, Ma, Tjandraatmadja, Vielma 2020), added at the root.

For a unit y = max(0, w·x + b) with inputs in a box l ≤ x ≤ u and the big-M encoding's
binary z (z = 1: inactive, as in `formulation`), the convex hull of the unit's graph is
described by, for every subset I of its inputs,

    y ≤ Σ_{i∈I} w_i (x_i − L̆_i z) + (b + Σ_{i∉I} w_i Ŭ_i)(1 − z),

with L̆_i = l_i, Ŭ_i = u_i where w_i ≥ 0 and the other way round where w_i < 0.  Every such
inequality is valid for all integer points (z = 1: Σ_I w_i (x_i − L̆_i) ≥ 0; z = 0:
Σ_{i∉I} w_i x_i ≤ Σ_{i∉I} w_i Ŭ_i), so adding them never changes the optimum.  The most violated
one at a point (x*, y*, z*) is found in linear time: i ∈ I iff w_i (x*_i − L̆_i z*) <
w_i Ŭ_i (1 − z*).  `add_ideal_cuts` separates them at the LP relaxation for a few rounds and
adds the violated ones to the PuLP model as ordinary rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pulp

from advmilp.encode.milp import Formulation
from advmilp.solvers.clock import expired
from advmilp.solvers.pulp import relaxation_lp
from advmilp.spec.rows import OPTIMAL


@dataclass(frozen=True)
class UnitData:
    """One unstable unit: its output y, binary z, input variables with weights and box."""

    y: pulp.LpVariable
    z: pulp.LpVariable
    inputs: list[pulp.LpVariable]
    w: np.ndarray
    b: float
    lo: np.ndarray
    up: np.ndarray


def unstable_units(form: Formulation) -> list[UnitData]:
    """The units of the model that carry a binary, with their input expressions."""
    units = []
    for layer in form.layers:
        for u in layer:
            if u.z is None or u.a is None:
                continue
            items = [(v, c) for v, c in u.pre.items() if c != 0.0]
            inputs = [v for v, _ in items]
            units.append(UnitData(
                u.a, u.z, inputs, np.array([c for _, c in items], dtype=np.float64), float(u.pre.constant),
                np.array([v.lowBound for v in inputs], dtype=np.float64),
                np.array([v.upBound for v in inputs], dtype=np.float64)))
    return units


def _box_ends(w: np.ndarray, lo: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L̆, Ŭ): the input box ends at which w_i x_i is smallest and largest."""
    return np.where(w >= 0, lo, up), np.where(w >= 0, up, lo)


def most_violated(w: np.ndarray, b: float, lo: np.ndarray, up: np.ndarray, x: np.ndarray, y: float,
                  z: float) -> tuple[np.ndarray, float] | None:
    """(mask of I, violation) of the most violated ideal inequality at (x, y, z), or None."""
    Lb, Ub = _box_ends(w, lo, up)
    left = w * (x - Lb * z)
    right = w * Ub * (1.0 - z)
    in_I = left < right
    rhs = float(np.where(in_I, left, right).sum() + b * (1.0 - z))
    violation = y - rhs
    return (in_I, violation) if violation > 0 else None


def cut_coefficients(w: np.ndarray, b: float, lo: np.ndarray, up: np.ndarray, in_I: np.ndarray):
    """The inequality for subset I as  y − Σ_I w_i x_i + c_z z ≤ rhs;  returns (−w on I, c_z, rhs)."""
    Lb, Ub = _box_ends(w, lo, up)
    rhs = b + float((w[~in_I] * Ub[~in_I]).sum())
    c_z = float((w[in_I] * Lb[in_I]).sum()) + rhs
    return -w[in_I], c_z, rhs


def add_ideal_cuts(form: Formulation, rounds: int = 20, tol: float = 1e-6, deadline: float | None = None) -> int:
    """Separate ideal ReLU cuts at the LP relaxation of ``form`` (at most ``rounds`` rounds of at
    most one cut per unit) and add them to ``form.prob``; returns how many were added.  No round
    starts after ``deadline`` (`solvers.clock`); the cuts found so far are kept (each is valid)."""
    units = unstable_units(form)
    if not units or expired(deadline):
        return 0
    lp, index = relaxation_lp(form.prob)
    cols = [np.array([index[v.name] for v in u.inputs], dtype=np.int32) for u in units]
    added = []
    for _ in range(rounds):
        if expired(deadline) or lp.run(deadline=deadline)[0] != OPTIMAL:   # dual simplex: the basis stays
            break                                                           # dual feasible after added cuts
        sol = lp.values()
        new = 0
        for u, c in zip(units, cols):
            found = most_violated(u.w, u.b, u.lo, u.up, sol[c], sol[index[u.y.name]], sol[index[u.z.name]])
            if found is None or found[1] <= tol * max(1.0, abs(u.b)):
                continue
            in_I = found[0]
            coef, c_z, rhs = cut_coefficients(u.w, u.b, u.lo, u.up, in_I)
            lp.add_row(np.concatenate([[index[u.y.name]], c[in_I], [index[u.z.name]]]),
                       np.concatenate([[1.0], coef, [c_z]]), -np.inf, rhs)
            added.append((u, in_I, coef, c_z, rhs))
            new += 1
        if not new:
            break
    for n, (u, in_I, coef, c_z, rhs) in enumerate(added):
        chosen = [v for v, keep in zip(u.inputs, in_I) if keep]
        terms = [(u.y, 1.0), (u.z, c_z)] + [(v, float(a)) for v, a in zip(chosen, coef)]
        form.prob += (pulp.LpAffineExpression(terms) <= rhs), f"ideal_{n}"
    return len(added)
