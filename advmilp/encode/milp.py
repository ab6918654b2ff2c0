"""The 0-1 MILP of Fischetti & Jo (thesis §3.1, eqs. 5–17), built with PuLP.  No solving here.

Notation (thesis): layer k = 1..K has pre-activation ``W^k a^(k-1) + b^k``; every unit j gets

    W_j a^(k-1) + b_j = a_j − s_j,   0 ≤ a_j ≤ U_j (1 − z_j),   0 ≤ s_j ≤ −L_j z_j,   z_j ∈ {0,1}

where ``[L_j, U_j]`` bounds the pre-activation (from `bounds`).  This is the big-M form of the
indicator constraints z = 1 → a ≤ 0, z = 0 → s ≤ 0, with M taken from the unit's own bounds;
never a constant.  A unit proven inactive (U ≤ 0) is the constant 0 and gets no variables; a
unit proven active (L ≥ 0) gets ``a = W_j a^(k-1) + b_j`` and no binary.

Inputs ``a^0 = x ∈ [lb0, ub0]`` (pixels in [0, 1], narrowed by an L∞ cap).  Distance
variables ``d_j ≥ |x_j − x̄_j|`` (eq. 16–17) and objective min Σ d_j (eq. 14).

Output criteria, with ``o`` the output values (ReLU'd if ``spec.output_relu``, else logits):
targeted  o_d − ratio·o_j ≥ margin (j ≠ d) and o_d ≥ epsilon + margin (eq. 15 + the ε that
keeps the all-zero output from "fooling" the ratio).  Given o_d ≥ ε > 0,
relu(y_d) ≥ ratio·relu(y_j) ⇔ y_d ≥ ratio·y_j, so ``output_relu: false`` is exact.
untargeted  one binary q_j per j ≠ t, Σ q_j = 1, q_j = 1 → o_t ≤ factor·o_j − margin and
o_j ≥ epsilon + margin (big-M from the output bounds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pulp

from advmilp.encode.activations import TwoPieceEncoder, encoder_for
from advmilp.errors import AdvmilpError
from advmilp.nn.activations import Activation, make_activation
from advmilp.nn.network import Network
from advmilp.spec.problems import ProblemSpec, input_box, targeted_criterion


RELU = make_activation("relu")   # the thesis' ReLU split on the output layer (output_relu)


@dataclass
class Unit:
    """One encoded unit: its pre-activation expression, its columns by role (`encode.activations`:
    a, s, z, y) and its output as a combination of them (empty: the constant 0)."""

    pre: pulp.LpAffineExpression
    columns: dict[str, pulp.LpVariable]
    value: list[tuple[pulp.LpVariable, float]]
    lower: float = -np.inf   # bounds of the output value of this unit (a, or the logit)
    upper: float = np.inf
    encoder: TwoPieceEncoder | None = None

    @property
    def a(self) -> pulp.LpVariable | None:
        """The variable holding the unit's output when it is one variable (None for the constant 0)."""
        if len(self.value) == 1 and self.value[0][1] == 1.0:
            return self.value[0][0]
        return None

    @property
    def s(self) -> pulp.LpVariable | None:
        return self.columns.get("s")

    @property
    def z(self) -> pulp.LpVariable | None:
        return self.columns.get("z")

    def expression(self) -> pulp.LpAffineExpression:
        """The unit's output as an expression (0 for a constant-zero unit)."""
        return pulp.LpAffineExpression(self.value, constant=0.0)


@dataclass
class Formulation:
    prob: pulp.LpProblem
    network: Network
    spec: ProblemSpec
    x: list[pulp.LpVariable]
    layers: list[list[Unit]]                    # encoded layers 1..n (index 0 = layer 1)
    d: list[pulp.LpVariable] | None = None
    q: dict[int, pulp.LpVariable] = field(default_factory=dict)
    x_bar: np.ndarray | None = None
    label: int | None = None
    target: int | None = None
    x_lb: np.ndarray | None = None
    x_ub: np.ndarray | None = None

    @property
    def n_binaries(self) -> int:
        return sum(1 for v in self.prob.variables() if v.cat == pulp.LpBinary or v.cat == pulp.LpInteger)

    @property
    def outputs(self) -> list[Unit]:
        return self.layers[-1]

    p: dict[int, pulp.LpVariable] = field(default_factory=dict)   # split distance: x = x̄ + p − m
    m: dict[int, pulp.LpVariable] = field(default_factory=dict)

    def input_point(self, values: dict[str, float]) -> np.ndarray:
        """The input x of a solution; an input in no constraint (zero weights) stays at x̄."""
        if not self.x:
            x = self.x_bar.copy()
            for i, v in self.p.items():
                x[i] += values.get(v.name, 0.0)
            for i, v in self.m.items():
                x[i] -= values.get(v.name, 0.0)
            return x
        rest = self.x_bar if self.x_bar is not None else self.x_lb
        return np.array([values.get(v.name, r) for v, r in zip(self.x, rest)], dtype=np.float64)

    def assignment(self, x: np.ndarray) -> dict[str, float]:
        """Values of every model variable at input x (a warm start for the solver)."""
        x = np.clip(np.asarray(x, dtype=np.float64), self.x_lb, self.x_ub)
        values: dict[str, float] = {v.name: float(xi) for v, xi in zip(self.x, x)}
        for i, v in self.p.items():
            values[v.name] = float(max(x[i] - self.x_bar[i], 0.0))
        for i, v in self.m.items():
            values[v.name] = float(max(self.x_bar[i] - x[i], 0.0))
        if self.d is not None:
            for v, di in zip(self.d, np.abs(x - self.x_bar)):
                values[v.name] = float(di)
        pres = self.network.preactivations(x)
        for units, pre in zip(self.layers, pres):
            for u, p in zip(units, pre):
                if u.columns:
                    col_values = u.encoder.values(float(p))
                    for role, v in u.columns.items():
                        values[v.name] = col_values[role]
        if self.q:
            out = pres[-1] if not self.spec.output_relu else np.maximum(pres[-1], 0)
            best = max(self.q, key=lambda j: out[j])
            for j, v in self.q.items():
                values[v.name] = 1.0 if j == best else 0.0
        return values


def _affine(weights: np.ndarray, inputs: list, bias: float) -> pulp.LpAffineExpression:
    """Σ_i w_i·input_i + bias; each input is a list of (variable, coefficient) terms ([] = the constant 0)."""
    terms = [(v, float(w) * c) for terms_i, w in zip(inputs, weights) if w != 0.0 for v, c in terms_i]
    return pulp.LpAffineExpression(terms, constant=float(bias))


def _add_row(prob: pulp.LpProblem, expr: pulp.LpAffineExpression, lo: float, hi: float, name: str) -> None:
    if lo == hi:
        prob += (expr == lo), name
    elif np.isfinite(hi):
        if np.isfinite(lo):
            prob += (expr >= lo), name + "_lo"
        prob += (expr <= hi), name
    else:
        prob += (expr >= lo), name


def encode_layer(prob: pulp.LpProblem, layer_index: int, W: np.ndarray, b: np.ndarray,
                 inputs: list, lower: np.ndarray, upper: np.ndarray, activation: Activation) -> list[Unit]:
    """Add one layer's units to ``prob`` with their exact encoding from the encoder table
    (`encode.activations`); ``layer_index`` is 1-based (names only); ``inputs`` are the previous
    units' output terms."""
    units = []
    k = layer_index
    encoder = encoder_for(activation)
    for j in range(W.shape[0]):
        pre = _affine(W[j], inputs, b[j])
        L, U = float(lower[j]), float(upper[j])
        if L > U:
            raise AdvmilpError(f"invalid bounds for unit {j} of layer {k}: [{L}, {U}]")
        enc = encoder.exact(L, U)
        cols = {c.role: prob.add_variable(f"{c.role}_{k}_{j}", lowBound=c.lo, upBound=c.hi,
                                          cat=pulp.LpBinary if c.binary else pulp.LpContinuous)
                for c in enc.columns}
        for row in enc.rows:
            expr = pulp.LpAffineExpression([(cols[r], c) for r, c in row.coefs if r != "pre"])
            coef_pre = dict(row.coefs).get("pre", 0.0)
            if coef_pre:
                expr = pre * coef_pre + expr if coef_pre != 1.0 else pre + expr
            _add_row(prob, expr, row.lo, row.hi, f"{row.role}_{k}_{j}")
        lo_v, hi_v = activation.interval(np.array(L), np.array(U)) if enc.columns else (0.0, 0.0)
        units.append(Unit(pre, cols, [(cols[r], c) for r, c in enc.value], float(lo_v), float(hi_v), encoder))
    return units


def encode_network(prob: pulp.LpProblem, network: Network, bounds, x: list,
                   n_layers: int, output_relu: bool = True,
                   first: tuple[np.ndarray, np.ndarray] | None = None) -> list[list[Unit]]:
    """Encode layers 1..n_layers; hidden layers get the ReLU split, the output layer
    (if included) the ReLU split when ``output_relu`` else a linear variable.
    ``first = (W, b)`` replaces layer 1's weights (inputs ``x`` then match its columns)."""
    layers: list[list[Unit]] = []
    inputs: list = [[(v, 1.0)] for v in x]
    K = len(network.layers)
    for k in range(1, n_layers + 1):
        layer = network.layers[k - 1]
        W, b = first if (k == 1 and first is not None) else (layer.W, layer.b)
        act = RELU if (k == K and output_relu) else layer.act
        units = encode_layer(prob, k, W, b, inputs, bounds.lower[k - 1], bounds.upper[k - 1], act)
        layers.append(units)
        inputs = [u.value for u in units]
    return layers


def build_model(network: Network, bounds, spec: ProblemSpec, x_bar: np.ndarray | None = None,
                label: int | None = None, name: str = "advmilp",
                lb0: float = 0.0, ub0: float = 1.0, l1_cap: float | None = None,
                split_distance: bool = False) -> Formulation:
    """The complete MILP for one instance (network + bounds + spec + image).

    ``l1_cap`` adds Σ d_j ≤ l1_cap: valid whenever a feasible point at that distance is known.
    ``split_distance`` (distance-minimising specs only) writes x = x̄ + p − m with p, m ≥ 0
    and minimises Σ(p + m) instead of the thesis' d_j ≥ |x_j − x̄_j| rows: the same optimum
    with 1,568 fewer rows, and no variable for a pixel that cannot move in that direction.
    """
    if split_distance and spec.minimises_distance:
        return _build_split_model(network, bounds, spec, x_bar, label, name, lb0, ub0, l1_cap)
    if spec.needs_image and (x_bar is None or label is None):
        raise AdvmilpError(f"problem {spec.kind!r} needs an image and its label")
    n0, K = network.n_inputs, len(network.layers)
    x_bar = None if x_bar is None else np.asarray(x_bar, dtype=np.float64).reshape(-1)
    sense = pulp.LpMinimize if spec.minimises_distance or spec.kind == "inference" else pulp.LpMaximize
    prob = pulp.LpProblem(name, sense)
    lb, ub = input_box(spec, n0, x_bar, lb0, ub0)
    x = [prob.add_variable(f"x_{i}", lowBound=float(lb[i]), upBound=float(ub[i])) for i in range(n0)]

    n_layers = K
    if spec.kind == "feature" and spec.objective == "hidden":
        if not 1 <= spec.layer < K:
            raise AdvmilpError(f"layer {spec.layer} is not a hidden layer (1..{K - 1})")
        if not 0 <= spec.unit < network.sizes[spec.layer]:
            raise AdvmilpError(f"unit {spec.unit} out of range for layer {spec.layer} ({network.sizes[spec.layer]} units)")
        n_layers = spec.layer
    layers = encode_network(prob, network, bounds, x, n_layers, spec.output_relu)
    form = Formulation(prob, network, spec, x, layers, x_bar=x_bar, label=label,
                       target=spec.target_for(label) if label is not None else spec.target,
                       x_lb=lb, x_ub=ub)
    outs = layers[-1]

    if spec.kind in ("targeted", "untargeted", "max-target"):
        d = [prob.add_variable(f"d_{i}", lowBound=0, upBound=float(max(x_bar[i] - lb[i], ub[i] - x_bar[i])))
             for i in range(n0)]
        for i in range(n0):
            prob += (d[i] - x[i] >= -x_bar[i]), f"dpos_{i}"
            prob += (d[i] + x[i] >= x_bar[i]), f"dneg_{i}"
        form.d = d
        l1 = pulp.LpAffineExpression([(v, 1.0) for v in d])
        if spec.minimises_distance:
            _add_distance(form, {i: pulp.LpAffineExpression([(d[i], 1.0)]) for i in range(n0)},
                          {i: float(max(x_bar[i] - lb[i], ub[i] - x_bar[i])) for i in range(n0)}, l1_cap)
        else:
            prob += (l1 <= spec.l1_budget - spec.margin), "l1_budget"

    if spec.kind == "targeted":
        _add_targeted(form, label)
    elif spec.kind in ("untargeted", "max-target"):
        _add_misclassification(form, label)
        if spec.kind == "max-target":
            prob += outs[form.target].expression()
    elif spec.kind == "feature":
        if spec.objective == "hidden":
            prob += outs[spec.unit].expression()
        else:
            if not 0 <= spec.unit < network.n_outputs:
                raise AdvmilpError(f"output unit {spec.unit} out of range (0..{network.n_outputs - 1})")
            obj = outs[spec.unit].expression()
            if spec.objective == "diff":
                for j in range(network.n_outputs):
                    if j != spec.unit:
                        obj = obj - outs[j].expression()
            prob += obj
    elif spec.kind == "inference":
        prob += pulp.LpAffineExpression(constant=0.0)
    return form


def _build_split_model(network: Network, bounds, spec: ProblemSpec, x_bar, label, name, lb0, ub0,
                       l1_cap) -> Formulation:
    x_bar = np.asarray(x_bar, dtype=np.float64).reshape(-1)
    n0 = network.n_inputs
    prob = pulp.LpProblem(name, pulp.LpMinimize)
    lb, ub = input_box(spec, n0, x_bar, lb0, ub0)
    up, down = ub - x_bar, x_bar - lb
    P = np.flatnonzero(up > 0)
    M = np.flatnonzero(down > 0)
    p = {int(i): prob.add_variable(f"p_{i}", lowBound=0, upBound=float(up[i])) for i in P}
    m = {int(i): prob.add_variable(f"m_{i}", lowBound=0, upBound=float(down[i])) for i in M}
    W1, b1 = network.layers[0].W, network.layers[0].b
    first = (np.hstack([W1[:, P], -W1[:, M]]), W1 @ x_bar + b1)
    inputs = list(p.values()) + list(m.values())
    layers = encode_network(prob, network, bounds, inputs, len(network.layers), spec.output_relu, first=first)
    form = Formulation(prob, network, spec, [], layers, x_bar=x_bar, label=label,
                       target=spec.target_for(label), x_lb=lb, x_ub=ub, p=p, m=m)
    moves = {int(i): pulp.LpAffineExpression([(p[int(i)], 1.0)] + ([(m[int(i)], 1.0)] if int(i) in m else []))
             for i in P}
    moves.update({int(i): pulp.LpAffineExpression([(m[int(i)], 1.0)]) for i in M if int(i) not in p})
    _add_distance(form, moves, {i: float(max(up[i], down[i])) for i in moves}, l1_cap)
    if spec.kind == "targeted":
        _add_targeted(form, label)
    else:
        _add_misclassification(form, label)
    return form


def _add_distance(form: Formulation, moves: dict[int, pulp.LpAffineExpression], reach: dict[int, float],
                  l1_cap: float | None) -> None:
    """The objective of a distance problem over the pixels' moves |x_i − x̄_i| (``moves``, each at most
    ``reach[i]``): Σ moves (``l1``), t ≥ every move (``linf``), or Σ c_i with binaries c_i ≥ move_i /
    reach_i (``l0``: pixel i changes only if c_i = 1); the spec's caps on the others; ``l1_cap`` (an
    incumbent's distance, valid for the L1 objective only) as Σ moves ≤ l1_cap."""
    spec, prob = form.spec, form.prob
    l1 = pulp.lpSum(moves.values())
    changed = {}
    if spec.norm == "l0" or spec.l0_cap is not None:
        for i, move in moves.items():
            if reach[i] > 0:
                changed[i] = prob.add_variable(f"c_{i}", cat=pulp.LpBinary)
                prob += (move - reach[i] * changed[i] <= 0), f"changed_{i}"
    if spec.norm == "l1":
        prob += l1
        if l1_cap is not None:
            prob += (l1 <= l1_cap), "l1_cap"
    elif spec.norm == "linf":
        t = prob.add_variable("t_linf", lowBound=0, upBound=max(reach.values(), default=0.0))
        for i, move in moves.items():
            prob += (move - t <= 0), f"linf_{i}"
        prob += pulp.LpAffineExpression([(t, 1.0)])
    else:
        prob += pulp.lpSum(changed.values())
    if spec.l1_cap is not None:
        prob += (l1 <= spec.l1_cap - spec.margin), "spec_l1_cap"
    if spec.l0_cap is not None:
        prob += (pulp.lpSum(changed.values()) <= spec.l0_cap), "spec_l0_cap"


def _add_targeted(form: Formulation, label: int) -> None:
    spec, prob, outs, t = form.spec, form.prob, form.outputs, form.target
    if not 0 <= t < form.network.n_outputs or t == label:
        raise AdvmilpError(f"target {t} must be an output other than the label {label}")
    G, h = targeted_criterion(spec, t, form.network.n_outputs)
    names = [f"ratio_{j}" for j in range(form.network.n_outputs) if j != t] + ["target_min"]
    for g, rhs, name in zip(G, h, names):
        expr = pulp.LpAffineExpression([(v, g[j] * c) for j in np.flatnonzero(g) for v, c in outs[j].value])
        prob += (expr >= rhs + spec.margin), name


def _add_misclassification(form: Formulation, label: int) -> None:
    """Some output j ≠ label has o_j ≥ ε and o_label ≤ factor·o_j (one binary q_j per j)."""
    spec, prob, outs = form.spec, form.prob, form.outputs
    t = label
    for j in range(len(outs)):
        if j == t or outs[j].upper < spec.epsilon + spec.margin:
            continue  # output j can never reach epsilon: not a candidate
        form.q[j] = prob.add_variable(f"q_{j}", cat=pulp.LpBinary)
    if not form.q:
        prob += (pulp.LpAffineExpression(constant=1.0) <= 0), "no_candidate"
        return
    prob += (pulp.lpSum(form.q.values()) == 1), "one_winner"
    ot = outs[t]
    for j, q in form.q.items():
        oj = outs[j]
        m1 = max(0.0, ot.upper - spec.factor * oj.lower + spec.margin)
        prob += (ot.expression() - spec.factor * oj.expression() + m1 * q <= m1 - spec.margin), f"beat_{j}"
        m2 = max(0.0, spec.epsilon + spec.margin - oj.lower)
        prob += (oj.expression() - m2 * q >= spec.epsilon + spec.margin - m2), f"win_min_{j}"


def build_preactivation_model(network: Network, bounds, k: int, lb0=0.0, ub0=1.0,
                              x_lb: np.ndarray | None = None, x_ub: np.ndarray | None = None,
                              name: str = "bound"):
    """Layers 1..k−1 encoded (ReLU split, with ``bounds``), plus the pre-activation expressions
    of layer k: maximise / minimise each to bound that unit (thesis §3.1.4)."""
    n0 = network.n_inputs
    lb = np.full(n0, lb0) if x_lb is None else x_lb
    ub = np.full(n0, ub0) if x_ub is None else x_ub
    prob = pulp.LpProblem(name, pulp.LpMaximize)
    x = [prob.add_variable(f"x_{i}", lowBound=float(lb[i]), upBound=float(ub[i])) for i in range(n0)]
    layers = encode_network(prob, network, bounds, x, k - 1)
    inputs = [u.value for u in layers[-1]] if layers else [[(v, 1.0)] for v in x]
    layer = network.layers[k - 1]
    pres = [_affine(layer.W[j], inputs, layer.b[j]) for j in range(layer.W.shape[0])]
    return prob, pres
