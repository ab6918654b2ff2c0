"""A network as solver-neutral arrays: columns and rows built from the encoder table.

`LinearRows` collects columns (bounds, cost, integrality) and rows (``lo ≤ Σ coef·col ≤ hi``) as
numpy arrays, for any LP/MILP that is loaded into a solver as arrays rather than built in PuLP:
the persistent phase-search LP (`search.phase_bb.PhaseLP`) and the L1-ball relaxation
(`bounds.ball`).  `encode_units` writes one layer's units into it, each exactly as its encoder
(`encode.activations`) says — the same encoding the PuLP model uses — or as the encoder's convex
relaxation.  A layer's pre-activations are ``pre = coef @ col[cols] + const``, where ``cols`` are
the previous layer's columns (or the input columns) and ``coef`` folds in how each previous unit's
output is made of its columns (``a`` for ReLU, ``a − slope·s`` for leaky ReLU, ``y`` otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advmilp.encode.activations import TwoPieceEncoder, UnitEncoding

NONE = -1     # "this unit has no such column / row"


class LinearRows:
    """Columns and rows of a linear model, collected as arrays."""

    def __init__(self, first_col: int = 0):
        self.first_col = first_col      # columns are numbered from here (rows added to a model that has some)
        self.col_lo: list[float] = []
        self.col_hi: list[float] = []
        self.cost: list[float] = []
        self.binary: list[bool] = []
        self.rows: list[tuple[np.ndarray, np.ndarray, float, float]] = []

    @property
    def n_cols(self) -> int:
        return len(self.col_lo)

    def add_cols(self, lo, hi, cost=0.0, binary: bool = False) -> np.ndarray:
        lo = np.atleast_1d(np.asarray(lo, dtype=np.float64))
        hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), lo.shape)
        first = self.first_col + self.n_cols
        self.col_lo += lo.tolist()
        self.col_hi += hi.tolist()
        self.cost += np.broadcast_to(np.asarray(cost, dtype=np.float64), lo.shape).tolist()
        self.binary += [binary] * len(lo)
        return np.arange(first, first + len(lo))

    def add_row(self, cols, coefs, lo: float, hi: float) -> int:
        self.rows.append((np.asarray(cols, dtype=np.int64), np.asarray(coefs, dtype=np.float64), float(lo), float(hi)))
        return len(self.rows) - 1

    def compressed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(row_lo, row_hi, starts, index, value): the rows in compressed sparse row form."""
        lengths = [len(r[0]) for r in self.rows]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32) if self.rows else np.zeros(0, np.int32)
        index = np.concatenate([r[0] for r in self.rows]).astype(np.int32) if self.rows else np.zeros(0, np.int32)
        value = np.concatenate([r[1] for r in self.rows]) if self.rows else np.zeros(0)
        return (np.array([r[2] for r in self.rows]), np.array([r[3] for r in self.rows]), starts, index, value)


@dataclass
class EncodedLayer:
    """One layer written into `LinearRows`: per unit, its column and row of every role (NONE where the
    encoding has none), its encoding, and the layer's pre-activation map ``coef @ col[cols] + const``."""

    encodings: list[UnitEncoding]
    cols: dict[str, np.ndarray]
    rows: dict[str, np.ndarray]
    pre_cols: np.ndarray
    pre_coef: np.ndarray
    pre_const: np.ndarray

    def output_map(self) -> tuple[np.ndarray, np.ndarray]:
        """(cols, O): the layer's outputs are ``O @ col[cols]`` (a unit without columns is 0)."""
        used = sorted({int(self.cols[r][j]) for j, e in enumerate(self.encodings) for r, _ in e.value})
        pos = {c: i for i, c in enumerate(used)}
        O = np.zeros((len(self.encodings), len(used)))
        for j, e in enumerate(self.encodings):
            for role, c in e.value:
                O[j, pos[int(self.cols[role][j])]] += c
        return np.array(used, dtype=np.int64), O

    def pre_values(self, col: np.ndarray) -> np.ndarray:
        """Pre-activations at the column values ``col``."""
        return self.pre_coef @ col[self.pre_cols] + self.pre_const


ROLES = ("a", "s", "z", "y")
ROW_ROLES = ("relu", "on", "off", "act", "lin", "bound", "ge", "ge_neg", "chord")


def encode_units(rows: LinearRows, pre_cols: np.ndarray, pre_coef: np.ndarray, pre_const: np.ndarray,
                 lower: np.ndarray, upper: np.ndarray, encoder: TwoPieceEncoder,
                 relaxed: bool = False, enforce_bounds: bool = False) -> EncodedLayer:
    """Write one layer: unit j has pre-activation ``pre_coef[j] @ col[pre_cols] + pre_const[j]`` with
    bounds [lower[j], upper[j]] and is encoded exactly (``enforce_bounds``: see
    `TwoPieceEncoder.exact`), or by its relaxation with ``relaxed``."""
    n = len(lower)
    cols = {r: np.full(n, NONE, dtype=np.int64) for r in ROLES}
    row_ids = {r: np.full(n, NONE, dtype=np.int64) for r in ROW_ROLES}
    encodings = []
    pre_cols = np.asarray(pre_cols, dtype=np.int64)
    for j in range(n):
        enc = (encoder.relaxation(lower[j], upper[j]) if relaxed
               else encoder.exact(lower[j], upper[j], enforce_bounds))
        encodings.append(enc)
        for c in enc.columns:
            cols[c.role][j] = rows.add_cols(c.lo, c.hi, binary=c.binary)[0]
        w = pre_coef[j]
        nz = w != 0
        for row in enc.rows:
            coefs = dict(row.coefs)
            k = coefs.pop("pre", 0.0)
            own = [int(cols[r][j]) for r in coefs]
            idx = np.concatenate([pre_cols[nz], own]) if k else np.array(own)
            val = np.concatenate([k * w[nz], list(coefs.values())]) if k else np.array(list(coefs.values()))
            shift = k * pre_const[j]            # the constant of the pre-activation moves to the bounds
            row_ids[row.role][j] = rows.add_row(idx, val, row.lo - shift, row.hi - shift)
    return EncodedLayer(encodings, cols, row_ids, pre_cols, np.asarray(pre_coef, dtype=np.float64),
                        np.asarray(pre_const, dtype=np.float64))


def next_pre_map(prev: EncodedLayer, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cols, coef, const) of the pre-activations ``W · out(prev) + b`` of the next layer."""
    cols, O = prev.output_map()
    return cols, W @ O, np.asarray(b, dtype=np.float64)
