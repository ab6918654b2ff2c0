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
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advmilp.errors import AdvmilpError

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
