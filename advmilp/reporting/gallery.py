""""The most ideal digits" (notebook §1.8, issue 18 §4): for every output k, the input of the box
[0, 1]^n that maximises output k minus the sum of the other outputs — the `feature` problem with the
``diff`` objective (`advmilp feature --objective diff`), solved exactly by the ``milp`` method once
per output, and drawn as one figure of 10 panels (`advmilp.reporting.figures.save_digit_gallery`).

The feature problem has no distance constraint: an "ideal digit near image I within L1 budget B"
cannot be asked of it (the command line refuses ``--near-image`` / ``--l1-budget``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advmilp.nn.network import Network


@dataclass(frozen=True)
class IdealDigit:
    """One output's optimum: the input (None if the solve found none), objective, status, time,
    the bound proven and the class the network predicts for that input."""

    unit: int
    x: np.ndarray | None
    objective: float
    bound: float
    status: str
    time_s: float
    predicted: int | None


def gallery_bounds(net: Network, cache_dir=None):
    """Cached improved bounds when there are some (as ``advmilp feature`` does), else interval bounds."""
    from advmilp.bounds.compute import find_cached, interval_bounds

    b = find_cached(net, "improved", cache_dir=cache_dir, say=lambda m: warnings.warn(m, stacklevel=2))
    return b if b is not None else interval_bounds(net)


def ideal_digits(net: Network, time_limit: float = 60.0, bounds=None, units=None) -> list[IdealDigit]:
    """Solve max y_k − Σ_{j≠k} y_j (ReLU'd outputs, thesis-faithful) for every output k (or ``units``)."""
    from advmilp.methods.milp import run_instance
    from advmilp.spec.problems import ProblemSpec, SolverSettings

    bounds = bounds if bounds is not None else gallery_bounds(net)
    out = []
    for k in (range(net.n_outputs) if units is None else units):
        res = run_instance(net, bounds, ProblemSpec("feature", objective="diff", unit=int(k)),
                           SolverSettings(time_limit=float(time_limit)))
        row = res.row
        x = None if res.witness is None else np.asarray(res.witness, dtype=np.float64)
        out.append(IdealDigit(int(k), x, float(row["objective"]), float(row["bound"]), str(row["status"]),
                              float(row["time_s"]), None if x is None else int(net.predict(x))))
    return out


def make_digit_gallery(net: Network, out_dir, time_limit: float = 60.0, bounds=None) -> list[Path]:
    """Solve and draw ``<out_dir>/ideal_digits_<net>.png`` (+ .pdf); the inputs go to ``.npy`` beside."""
    from advmilp.reporting import figures

    digits = ideal_digits(net, time_limit, bounds)
    out_dir = Path(out_dir)
    stem = out_dir / f"ideal_digits_{net.name}"
    found = [d for d in digits if d.x is not None]
    paths = figures.save_digit_gallery(
        stem.with_suffix(".png"), [d.x for d in digits],
        [f"output {d.unit}: {d.objective:.1f}\n{d.status}, {d.time_s:.1f} s, predicted {d.predicted}" if d.x is not None
         else f"output {d.unit}: none ({d.status})" for d in digits],
        suptitle=f"{net.name}: inputs maximising output k minus the other outputs (feature, diff; "
                 f"{len(found)}/{len(digits)} solved, each ≤ {time_limit:g} s)", also_pdf=True)
    if found:
        np.save(stem.with_suffix(".npy"), np.stack([d.x if d.x is not None else np.full(net.n_inputs, np.nan)
                                                    for d in digits]))
        paths.append(stem.with_suffix(".npy"))
    return paths
