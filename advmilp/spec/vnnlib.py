"""VNN-LIB: the specification format of VNN-COMP, read into a problem advmilp can decide.

A VNN-LIB file declares inputs ``X_i`` and outputs ``Y_j``, bounds every input (a box) and asserts
output constraints that describe a **violation**: the property holds (``unsat``) if no input in the
box makes the asserted output constraints true, and is violated (``sat``) otherwise, with a
counterexample.  The output part is a disjunction of conjunctions of linear inequalities.

Supported (the subset VNN-COMP's MNIST, ERAN and ACAS-style benchmarks use):

- ``(declare-const X_i Real)``, ``(declare-const Y_j Real)``
- input bounds ``(assert (<= X_i c))`` / ``(assert (>= X_i c))`` (also inside a top-level ``and``)
- output constraints ``(<= a b)``, ``(>= a b)`` where a, b are ``Y_j``, numbers, or linear terms
  ``(+ t ...)``, ``(- t t)``, ``(- t)``, ``(* c t)``; several top-level asserts are a conjunction;
  ``(assert (or (and ...) ...))`` a disjunction.

Anything else (constraints mixing X and Y, disjunctive input sets, ``<``/``>`` strict inequalities,
other theories) is refused with one error line naming the file and the construct.

A `VnnlibProperty` keeps the box and the disjuncts as ``(G, h)`` pairs: disjunct d is violated at
an output y iff ``G_d @ y <= h_d`` holds row by row.

`export_vnnlib` writes VNN-COMP benchmark folders (``onnx/``, ``vnnlib/``, ``instances.csv``) of L∞
robustness properties around test images, so other verifiers can run advmilp's instances; their
properties are built as pairs ``(i, j)`` meaning ``Y_i >= Y_j`` (`build_property`), written as such and
read back by `read_vnnlib` like any other file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advmilp.errors import AdvmilpError
from advmilp.nn.interchange import export_onnx
from advmilp.nn.network import Network

NORMS = ("linf", "l1")

_VAR = re.compile(r"^([XY])_(\d+)$")


@dataclass(frozen=True)
class VnnlibProperty:
    x_lb: np.ndarray
    x_ub: np.ndarray
    disjuncts: tuple[tuple[np.ndarray, np.ndarray], ...]     # (G, h): violated iff G @ y <= h
    n_outputs: int
    source: str = ""

    def violated_by(self, y: np.ndarray) -> bool:
        """Whether the output ``y`` satisfies some disjunct (exactly, no tolerance)."""
        return any(bool(np.all(G @ y <= h)) for G, h in self.disjuncts)

    def margin(self, y: np.ndarray) -> float:
        """min over disjuncts of max over rows of (G y − h): ≤ 0 iff ``y`` violates the property."""
        return float(min(np.max(G @ y - h) for G, h in self.disjuncts))


def _parse_sexprs(text: str) -> list:
    tokens = re.findall(r"\(|\)|[^\s()]+", re.sub(r";[^\n]*", "", text))
    stack: list[list] = []
    top: list = []
    for tok in tokens:
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if not stack:
                raise AdvmilpError("unbalanced parentheses")
            done = stack.pop()
            (stack[-1] if stack else top).append(done)
        else:
            (stack[-1] if stack else top).append(tok)
    if stack:
        raise AdvmilpError("unbalanced parentheses")
    return top


def _linear(term, n_y: int) -> tuple[np.ndarray, float, set[str]]:
    """(coefficients on Y, constant, kinds of variables seen) of a linear term."""
    if isinstance(term, str):
        m = _VAR.match(term)
        if m:
            coef = np.zeros(n_y)
            if m.group(1) == "Y":
                j = int(m.group(2))
                if j >= n_y:
                    raise AdvmilpError(f"{term} is not declared")
                coef[j] = 1.0
            return coef, 0.0, {m.group(1)}
        try:
            return np.zeros(n_y), float(term), set()
        except ValueError:
            raise AdvmilpError(f"unknown symbol {term!r}") from None
    op, args = term[0], term[1:]
    parts = [_linear(a, n_y) for a in args]
    kinds = set().union(*(p[2] for p in parts)) if parts else set()
    if op == "+" and parts:
        return sum(p[0] for p in parts), sum(p[1] for p in parts), kinds
    if op == "-" and len(parts) == 1:
        return -parts[0][0], -parts[0][1], kinds
    if op == "-" and len(parts) == 2:
        return parts[0][0] - parts[1][0], parts[0][1] - parts[1][1], kinds
    if op == "*" and len(parts) == 2:
        (c0, k0, v0), (c1, k1, v1) = parts
        if not v0:
            return k0 * c1, k0 * k1, kinds
        if not v1:
            return k1 * c0, k0 * k1, kinds
        raise AdvmilpError("a product of two variables is not linear")
    raise AdvmilpError(f"unsupported operator {op!r} in a linear term")


class _Reader:
    def __init__(self, n_x: int, n_y: int):
        self.n_x, self.n_y = n_x, n_y
        self.lb, self.ub = np.full(n_x, -np.inf), np.full(n_x, np.inf)

    def input_bound(self, atom) -> bool:
        """Record ``(<= X_i c)`` / ``(>= X_i c)`` (either order); False if the atom is not one."""
        if not (isinstance(atom, list) and len(atom) == 3 and atom[0] in ("<=", ">=")):
            return False
        op, a, b = atom
        if isinstance(b, str) and _VAR.match(b) and b.startswith("X_") and not (isinstance(a, str) and a.startswith("X_")):
            op, a, b = {"<=": ">=", ">=": "<="}[op], b, a          # c <= X_i  is  X_i >= c
        if not (isinstance(a, str) and a.startswith("X_") and _VAR.match(a)):
            return False
        i = int(a[2:])
        if i >= self.n_x:
            raise AdvmilpError(f"{a} is not declared")
        try:
            value = float(b)
        except (TypeError, ValueError):
            mixes = "Y_" in str(b)
            raise AdvmilpError("a constraint mixing inputs and outputs is not supported" if mixes
                               else f"input constraint ({op} {a} {b}) is not a bound by a number") from None
        if op == "<=":
            self.ub[i] = min(self.ub[i], value)
        else:
            self.lb[i] = max(self.lb[i], value)
        return True

    def output_row(self, atom) -> tuple[np.ndarray, float]:
        """``(<= a b)`` → (g, h) with g·y ≤ h."""
        if not (isinstance(atom, list) and len(atom) == 3 and atom[0] in ("<=", ">=")):
            what = atom[0] if isinstance(atom, list) and atom else atom
            raise AdvmilpError(f"unsupported constraint {what!r} (only <= and >= on linear terms)")
        op, a, b = atom
        (ca, ka, va), (cb, kb, vb) = _linear(a, self.n_y), _linear(b, self.n_y)
        if "X" in va | vb:
            raise AdvmilpError("a constraint mixing inputs and outputs is not supported")
        g, h = (ca - cb, kb - ka) if op == "<=" else (cb - ca, ka - kb)
        return g, h

    def conjunction(self, atoms) -> tuple[np.ndarray, np.ndarray]:
        rows = [self.output_row(a) for a in atoms if not self.input_bound(a)]
        return np.array([r[0] for r in rows]).reshape(len(rows), self.n_y), np.array([r[1] for r in rows])


def read_vnnlib(path: str | os.PathLike) -> VnnlibProperty:
    """The property of a VNN-LIB file (see the module docstring for the subset)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AdvmilpError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError:
        raise AdvmilpError(f"{path}: not a text file (VNN-LIB is UTF-8 text)") from None
    try:
        return _read(_parse_sexprs(text), str(path))
    except AdvmilpError as exc:
        raise AdvmilpError(f"{path}: {exc}") from None
    except (IndexError, TypeError, ValueError) as exc:
        raise AdvmilpError(f"{path}: not in the supported VNN-LIB subset ({exc})") from None


def _read(exprs: list, source: str) -> VnnlibProperty:
    names = [e[1] for e in exprs if isinstance(e, list) and e and e[0] == "declare-const"]
    bad = [n for n in names if not _VAR.match(str(n))]
    if bad:
        raise AdvmilpError(f"unsupported declaration {bad[0]!r} (inputs X_i and outputs Y_j only)")
    n_x = 1 + max((int(n[2:]) for n in names if n.startswith("X_")), default=-1)
    n_y = 1 + max((int(n[2:]) for n in names if n.startswith("Y_")), default=-1)
    if not n_x or not n_y:
        raise AdvmilpError("no input (X_i) or no output (Y_j) declared")
    reader = _Reader(n_x, n_y)
    common: list = []          # output atoms true in every disjunct
    disjunctions: list = []
    for e in exprs:
        if not (isinstance(e, list) and e):
            raise AdvmilpError(f"unexpected token {e!r}")
        if e[0] in ("declare-const", "set-logic", "check-sat", "get-model", "set-info"):
            continue
        if e[0] != "assert" or len(e) != 2:
            raise AdvmilpError(f"unsupported command {e[0]!r}")
        body = e[1]
        if isinstance(body, list) and body and body[0] == "and":
            atoms = body[1:]
        elif isinstance(body, list) and body and body[0] == "or":
            terms = [t[1:] if isinstance(t, list) and t and t[0] == "and" else [t] for t in body[1:]]
            if any(reader.input_bound(a) for t in terms for a in t if isinstance(a, list) and len(a) == 3
                   and any(isinstance(s, str) and s.startswith("X_") for s in a[1:])):
                raise AdvmilpError("disjunctive input sets are not supported (one box only)")
            disjunctions.append([reader.conjunction(t) for t in terms])
            continue
        else:
            atoms = [body]
        for a in atoms:
            if not reader.input_bound(a):
                common.append(a)
    missing = np.flatnonzero(~(np.isfinite(reader.lb) & np.isfinite(reader.ub)))
    if len(missing):
        raise AdvmilpError(f"X_{missing[0]} has no lower or upper bound (the input set must be a box)")
    if np.any(reader.lb > reader.ub):
        i = int(np.flatnonzero(reader.lb > reader.ub)[0])
        raise AdvmilpError(f"X_{i} has lower bound {reader.lb[i]} > upper bound {reader.ub[i]}")
    base = reader.conjunction(common)
    if not disjunctions:
        if not len(base[1]):
            raise AdvmilpError("no output constraint asserted")
        disjunctions = [[(np.zeros((0, n_y)), np.zeros(0))]]
    # distribute: (common) ∧ (D1 ∨ D2 ...) ∧ (E1 ∨ ...)  →  one disjunct per choice
    disjuncts = [base]
    for alternatives in disjunctions:
        disjuncts = [(np.vstack([G, Ga]), np.concatenate([h, ha])) for G, h in disjuncts for Ga, ha in alternatives]
    if len(disjuncts) > 10_000:
        raise AdvmilpError(f"the property expands to {len(disjuncts)} disjuncts (too many)")
    return VnnlibProperty(reader.lb, reader.ub, tuple(disjuncts), n_y, source)


# ---- writing: VNN-COMP benchmark folders ------------------------------------------------------
def build_property(label: int, n_outputs: int, target: int | None = None) -> tuple:
    """The counterexample property of an image in disjunctive normal form: a tuple of disjuncts, each a
    tuple of pairs ``(i, j)`` meaning ``Y_i >= Y_j``."""
    if target is None:
        return tuple(((j, label),) for j in range(n_outputs) if j != label)
    return (tuple((target, j) for j in range(n_outputs) if j != target),)


def _number(v: float) -> str:
    """Plain decimal (no exponent) that reads back to the same float64."""
    return np.format_float_positional(float(v), unique=True, trim="0")


def _format_vnnlib(lb, ub, prop, n_outputs: int, comments: list[str]) -> str:
    lines = [f"; {c}" for c in comments]
    lines += [f"(declare-const X_{i} Real)" for i in range(len(lb))] + [""]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_outputs)] + [""]
    for i, (lo, hi) in enumerate(zip(lb, ub)):
        lines += [f"(assert (<= X_{i} {_number(hi)}))", f"(assert (>= X_{i} {_number(lo)}))"]
    lines.append("")
    if len(prop) == 1:
        lines += [f"(assert (>= Y_{i} Y_{j}))" for i, j in prop[0]]
    else:
        ands = " ".join("(and " + " ".join(f"(>= Y_{i} Y_{j})" for i, j in d) + ")" for d in prop)
        lines.append(f"(assert (or {ands}))")
    return "\n".join(lines) + "\n"


def export_vnnlib(network: Network, out_dir: str | os.PathLike, images, labels, indices, epsilon: float,
                  norm: str = "linf", targets=None, timeout: float = 300) -> list[tuple[str, str, str]]:
    """Write a VNN-COMP benchmark folder; returns the instance rows written.

    ``images``/``labels`` are a whole split and ``indices`` pick from it.  Each instance is
    the L∞ ball of radius ``epsilon`` around the image, intersected with [0, 1].  The
    property is the negation of robustness, as in VNN-COMP: untargeted, some Y_j >= Y_label
    (j ≠ label); targeted at t (``targets`` an int or one per index), Y_t >= Y_j for every
    j ≠ t, i.e. t is the (weak) argmax, as advmilp's targeted attacks require (the thesis'
    ratio 1.2 is not encoded).  Files: ``onnx/<name>.onnx``,
    ``vnnlib/<name>_<index>_<norm>_<eps>[_t<target>].vnnlib``, and ``instances.csv``
    (merged with any rows already there).  VNN-LIB input sets are boxes, so ``l1`` is refused.
    """
    if norm not in NORMS:
        raise AdvmilpError(f"unknown norm {norm!r} (choose from {', '.join(NORMS)})")
    if norm == "l1":
        raise AdvmilpError("VNN-LIB input sets are boxes (one interval per input); an L1 ball is not a box, "
                           "so it cannot be exported — use norm linf, or advmilp's own L1 attacks")
    if not epsilon > 0:
        raise AdvmilpError(f"epsilon must be positive, got {epsilon}")
    instances = _select_instances(network, np.asarray(images, np.float64), np.asarray(labels), list(indices), targets)
    out, name, sha = Path(out_dir), network.name, network.content_hash()
    onnx_rel = f"onnx/{name}.onnx"
    export_onnx(network, out / onnx_rel)
    (out / "vnnlib").mkdir(parents=True, exist_ok=True)
    rows = []
    for index, x, label, target in instances:
        lb, ub = np.clip(x - epsilon, 0.0, 1.0), np.clip(x + epsilon, 0.0, 1.0)
        stem = f"{name}_{index}_{norm}_{epsilon:g}" + ("" if target is None else f"_t{target}")
        comments = [f"advmilp: {name} (sha256 {sha}), image {index}, label {label}, "
                    f"{'untargeted' if target is None else f'target {target}'}, {norm} epsilon {epsilon:g}",
                    f"network prediction at the centre: {int(network.predict(x))}"]
        prop = build_property(label, network.n_outputs, target)
        (out / "vnnlib" / f"{stem}.vnnlib").write_text(_format_vnnlib(lb, ub, prop, network.n_outputs, comments))
        rows.append((onnx_rel, f"vnnlib/{stem}.vnnlib", f"{timeout:g}"))
    csv = out / "instances.csv"
    old = [tuple(line.split(",")) for line in csv.read_text().splitlines() if line] if csv.is_file() else []
    csv.write_text("".join(",".join(row) + "\n" for row in dict.fromkeys(old + rows)))
    return rows


def _select_instances(network: Network, images, labels, indices: list, targets) -> list[tuple]:
    """Validate everything before writing: ``[(index, image, label, target or None), ...]``."""
    if images.ndim != 2 or images.shape[1] != network.n_inputs:
        raise AdvmilpError(f"images have shape {images.shape}; the network expects (N, {network.n_inputs})")
    if targets is not None and not np.ndim(targets):
        targets = [targets] * len(indices)
    if targets is not None and len(targets) != len(indices):
        raise AdvmilpError(f"{len(targets)} targets given for {len(indices)} images")
    instances = []
    for n, index in enumerate(indices):
        if not 0 <= index < len(images):
            raise AdvmilpError(f"image index {index} is out of range (0..{len(images) - 1})")
        x, label = images[index], int(labels[index])
        if x.min() < 0 or x.max() > 1:
            raise AdvmilpError(f"image {index}: pixel values must lie in [0, 1]")
        target = None if targets is None else int(targets[n])
        if target is not None and not (0 <= target < network.n_outputs and target != label):
            raise AdvmilpError(f"target {target} for image {index} (label {label}) is invalid")
        instances.append((int(index), x, label, target))
    return instances


def property_rows(prop: tuple, n_outputs: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The pairs of `build_property` as `VnnlibProperty` disjuncts: ``Y_i >= Y_j`` is ``Y_j − Y_i <= 0``."""
    out = []
    for disjunct in prop:
        G = np.zeros((len(disjunct), n_outputs))
        for r, (i, j) in enumerate(disjunct):
            G[r, i], G[r, j] = -1.0, 1.0
        out.append((G, np.zeros(len(disjunct))))
    return tuple(out)
