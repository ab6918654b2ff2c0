"""The exact MILP of a minimal adversarial example for a tree ensemble (Kantchelian et al. 2016).

Variables
  p[f, i]  binary "predicate": 1 iff x_f ≤ t_{f,i}, for every distinct threshold t_{f,1} < ... < t_{f,m}
           that the ensemble uses on feature f.  Ordering: p[f, i] ≤ p[f, i+1].  For thresholds ≥ x̄_f the
           variable is its complement r = 1 − p ("x_f > t"), so that the objective has no constant term
           (HiGHS' relative gap is measured on the objective it sees, without PuLP's dropped constant).
  l[t, v]  leaf v of tree t is reached, in [0, 1], Σ_v l[t, v] = 1.  For every inner node n on feature f
           with threshold t_{f,i}: Σ_{v left of n} l[t, v] ≤ p[f, i] and Σ_{v right of n} l[t, v] ≤ 1 − p[f, i].
           With binary predicates this leaves exactly one feasible leaf per tree — any other leaf v has a
           lowest common ancestor with the consistent leaf whose predicate closes v's side — so the leaf
           variables are integral without being declared binary (Kantchelian et al. declare them binary;
           the optimum is the same and the solver branches on the predicates only).
  scores   s_c = init_c + Σ_t weight_t Σ_v value[t, v, c] · l[t, v]

Distance.  The predicates of feature f fix an interval (t_{f,k}, t_{f,k+1}]; the point of that interval
nearest to x̄_f is x̄_f itself, or an end of the interval.  The witness puts the coordinate exactly where
the model's cost says: at ``down(t)`` = the largest float32 ≤ t to go left of t, at ``up(t)`` = the
smallest float32 > t to go right of t, so ``x ≤ t`` and ``x > t`` hold in float64 and after a cast to
float32 (scikit-learn's trees compare float32 inputs).  With u_1 < u_2 < ... the thresholds ≥ x̄_f and
l_1 > l_2 > ... those < x̄_f, the cost of feature f is linear in the predicates (telescoping):

  cost_f = Σ_k (up(u_k) − up(u_{k−1})) r[f, u_k] + Σ_k (down(l_{k−1}) − down(l_k)) p[f, l_k]

with up(u_0) = down(l_0) = x̄_f; every coefficient is ≥ 0 and the monotone predicates make the sum
telescope to |x_f − x̄_f|.  L1 minimises Σ_f cost_f, L∞ minimises d ≥ cost_f.  An input box [lb, ub]
(the pixel range, an L∞ cap) fixes the predicates whose other side is out of reach.

Criteria (``margin`` > 0 so that the point wins strictly, whatever the solver's tolerances):
  targeted    s_target ≥ s_j + margin for every j ≠ target
  untargeted  one binary z_j per class j ≠ label, Σ z_j = 1, s_j − s_label ≥ margin − M_j (1 − z_j)
              with M_j from the scores' ranges (Σ_t weight_t · (max − min) of the leaf values)
  inference   the predicates fixed at x̄ (a check: the selected leaves must be `TreeEnsemble.apply`'s)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pulp

from advmilp.errors import AdvmilpError
from advmilp.nn.trees import TreeEnsemble

NORMS = ("l1", "linf")
KINDS = ("targeted", "untargeted", "inference")


def up32(t: float) -> float:
    """The smallest float32 strictly greater than t (as a float64)."""
    f = np.float32(t)
    if float(f) <= t:
        f = np.nextafter(f, np.float32(np.inf))
    return float(f)


def down32(t: float) -> float:
    """The largest float32 ≤ t (as a float64)."""
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


@dataclass
class TreeFormulation:
    prob: pulp.LpProblem
    ensemble: TreeEnsemble
    x_bar: np.ndarray
    kind: str
    norm: str
    label: int | None
    target: int | None
    thresholds: dict[int, np.ndarray]              # feature → sorted distinct thresholds
    predicates: dict[int, list[tuple[pulp.LpVariable, bool]]]  # feature → (variable, is r = 1 − p), threshold order
    leaves: list[tuple[np.ndarray, list[pulp.LpVariable]]]   # per tree: leaf node ids, their variables
    scores: list[pulp.LpAffineExpression]
    n_binaries: int = 0
    fixed: int = 0                                  # predicates fixed by the input box
    extra: dict = field(default_factory=dict)

    def input_point(self, values: dict[str, float]) -> np.ndarray:
        """The witness the predicates describe: x̄, with each feature moved to the nearest point of its
        interval (down(t) / up(t), see the module docstring)."""
        x = np.array(self.x_bar, dtype=np.float64)
        for f, ts in self.thresholds.items():
            p = np.array([(values[v.name] > 0.5) != right for v, right in self.predicates[f]])
            xb = self.x_bar[f]
            left_of = ts[p]            # x ≤ t for these
            right_of = ts[~p]          # x > t for these
            hi = left_of.min() if len(left_of) else np.inf     # x ≤ hi
            lo = right_of.max() if len(right_of) else -np.inf  # x > lo
            if xb > hi:
                x[f] = down32(hi)
            elif xb <= lo:
                x[f] = up32(lo)
        return x

    def selected_leaves(self, values: dict[str, float]) -> np.ndarray:
        """The leaf of every tree the solution selects (the largest leaf variable)."""
        return np.array([ids[int(np.argmax([values[v.name] for v in vs]))] for ids, vs in self.leaves])

    def score_values(self, values: dict[str, float]) -> np.ndarray:
        return np.array([sum(c * values[v.name] for v, c in s.items()) + s.constant for s in self.scores])


def _score_ranges(ens: TreeEnsemble) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = ens.init.copy(), ens.init.copy()
    for w, t in zip(ens.weights, ens.trees):
        v = t.value[t.leaves]
        lo += np.minimum(w * v.min(axis=0), w * v.max(axis=0))
        hi += np.maximum(w * v.min(axis=0), w * v.max(axis=0))
    return lo, hi


def _subtree_leaves(tree, node: int) -> list[int]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if tree.feature[n] < 0:
            out.append(n)
        else:
            stack += [tree.right[n], tree.left[n]]
    return out


def build_tree_model(ens: TreeEnsemble, x_bar: np.ndarray, kind: str = "targeted", label: int | None = None,
                     target: int | None = None, norm: str = "l1", margin: float = 1e-4,
                     linf_cap: float | None = None, x_lb: float | np.ndarray = 0.0, x_ub: float | np.ndarray = 1.0,
                     name: str = "trees", l1_cap: float | None = None) -> TreeFormulation:
    """The MILP of the module docstring for ``x̄`` (``label`` its class; ``target`` for targeted);
    ``l1_cap`` adds Σ_f cost_f ≤ l1_cap (with ``norm="linf"``: the smallest L∞ within an L1 budget)."""
    if kind not in KINDS:
        raise AdvmilpError(f"tree ensembles: unknown problem {kind!r} (choose from {', '.join(KINDS)})")
    if norm not in NORMS:
        raise AdvmilpError(f"unknown norm {norm!r} (choose from {', '.join(NORMS)})")
    if kind == "targeted" and target is None:
        raise AdvmilpError("a targeted problem needs a target")
    if kind == "untargeted" and label is None:
        raise AdvmilpError("an untargeted problem needs the label")
    if not margin > 0:
        raise AdvmilpError(f"margin must be > 0 (got {margin})")
    x_bar = np.asarray(x_bar, dtype=np.float64).reshape(-1)
    if x_bar.size != ens.n_features:
        raise AdvmilpError(f"the input has {x_bar.size} features, the ensemble {ens.n_features}")
    lb = np.broadcast_to(np.asarray(x_lb, dtype=np.float64), x_bar.shape).copy()
    ub = np.broadcast_to(np.asarray(x_ub, dtype=np.float64), x_bar.shape).copy()
    if linf_cap is not None:
        lb, ub = np.maximum(lb, x_bar - linf_cap), np.minimum(ub, x_bar + linf_cap)
    sense = pulp.LpMinimize
    prob = pulp.LpProblem(name, sense)

    # predicates
    by_feature: dict[int, set] = {}
    for t in ens.trees:
        inner = t.feature >= 0
        for f, thr in zip(t.feature[inner], t.threshold[inner]):
            by_feature.setdefault(int(f), set()).add(float(thr))
    thresholds = {f: np.array(sorted(ts)) for f, ts in sorted(by_feature.items())}
    predicates: dict[int, list] = {}
    p_expr: dict[int, list] = {}
    n_bin = fixed = 0
    costs = []
    for f, ts in thresholds.items():
        xb = x_bar[f]
        ps, vs = [], []
        for i, thr in enumerate(ts):
            right = bool(thr >= xb)     # x̄ ≤ thr: the variable says "x > thr" (= 1 − p), else "x ≤ thr" (= p)
            if kind == "inference":
                lo = hi = 1 if xb <= thr else 0
            else:
                lo = 1 if up32(thr) > ub[f] else 0      # x > thr out of reach: x ≤ thr
                hi = 0 if down32(thr) < lb[f] else 1    # x ≤ thr out of reach: x > thr
                if lo > hi:
                    raise AdvmilpError(f"feature {f}: the input box [{lb[f]}, {ub[f]}] lies strictly inside "
                                       "a threshold's float32 gap")
            fixed += lo == hi
            n_bin += lo != hi
            v = prob.add_variable(f"{'r' if right else 'p'}_{f}_{i}", lowBound=1 - hi if right else lo,
                                  upBound=1 - lo if right else hi, cat=pulp.LpBinary if lo != hi else pulp.LpContinuous)
            vs.append((v, right))
            ps.append(1 - v if right else pulp.LpAffineExpression(v))
        for a, b in zip(ps, ps[1:]):
            prob += a <= b
        predicates[f] = vs
        terms, prev = [], xb
        for i in np.flatnonzero(ts >= xb):                    # u_1 < u_2 < ...: cost of x > u
            terms.append((vs[i][0], up32(ts[i]) - prev))
            prev = up32(ts[i])
        prev = xb
        for i in np.flatnonzero(ts < xb)[::-1]:               # l_1 > l_2 > ...: cost of x ≤ l
            terms.append((vs[i][0], prev - down32(ts[i])))
            prev = down32(ts[i])
        costs.append(pulp.lpSum(c * v for v, c in terms if c != 0))
        p_expr[f] = ps
    index = {f: {thr: i for i, thr in enumerate(ts)} for f, ts in thresholds.items()}

    # leaves
    leaves = []
    scores = [pulp.LpAffineExpression(constant=float(c)) for c in ens.init]
    for k, (w, t) in enumerate(zip(ens.weights, ens.trees)):
        ids = t.leaves
        lv = [prob.add_variable(f"l_{k}_{v}", lowBound=0, upBound=1) for v in ids]
        var_of = dict(zip(ids.tolist(), lv))
        prob += pulp.lpSum(lv) == 1
        for n in np.flatnonzero(t.feature >= 0):
            p = p_expr[int(t.feature[n])][index[int(t.feature[n])][float(t.threshold[n])]]
            prob += pulp.lpSum(var_of[v] for v in _subtree_leaves(t, int(t.left[n]))) <= p
            prob += pulp.lpSum(var_of[v] for v in _subtree_leaves(t, int(t.right[n]))) <= 1 - p
        for c in range(ens.n_classes):
            coef = w * t.value[ids, c]
            scores[c] += pulp.lpSum(float(a) * v for a, v in zip(coef, lv) if a != 0)
        leaves.append((ids, lv))

    # criterion and objective
    if kind == "targeted":
        for j in range(ens.n_classes):
            if j != target:
                prob += scores[target] - scores[j] >= margin
    elif kind == "untargeted":
        lo, hi = _score_ranges(ens)
        zs = []
        for j in range(ens.n_classes):
            if j == label:
                continue
            z = prob.add_variable(f"z_{j}", cat=pulp.LpBinary)
            M = float(hi[label] - lo[j] + margin)
            prob += scores[j] - scores[label] >= margin - M * (1 - z)
            zs.append(z)
        prob += pulp.lpSum(zs) == 1
        n_bin += len(zs)
    if l1_cap is not None:
        prob += pulp.lpSum(costs) <= l1_cap
    if kind == "inference" or norm == "l1":
        prob += pulp.lpSum(costs)
    else:
        d = prob.add_variable("d_inf", lowBound=0)
        for c in costs:
            prob += d >= c
        prob += d
    return TreeFormulation(prob, ens, x_bar, kind, norm, label, target, thresholds, predicates, leaves, scores,
                           n_bin, fixed)
