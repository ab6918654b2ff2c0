"""Witness verification: every reported example is re-evaluated with `Network.forward`.

A witness is ``verified`` only if the criterion of its problem holds *exactly* (no
tolerance) in float64 and in float32, for the point clipped to its input box.  Distances
are recomputed from the pixels, never read from the solver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advmilp.nn.network import Network
from advmilp.spec.problems import ProblemSpec, targeted_criterion


@dataclass
class Verification:
    verified: bool
    predicted: int
    ratio: float          # targeted: o_d / max_{j≠d} o_j (ReLU'd outputs); untargeted: o_t / max o_j
    l1: float
    linf: float
    x: np.ndarray         # the verified point (clipped to the input box)
    reason: str = ""


def _criterion(spec: ProblemSpec, logits: np.ndarray, label: int | None, target: int | None) -> tuple[bool, float, str]:
    o = np.maximum(logits, 0.0)
    if spec.kind == "targeted":
        others = np.delete(o, target)
        best_other = float(others.max())
        ratio = float(o[target] / best_other) if best_other > 0 else float("inf")
        G, h = targeted_criterion(spec, target, len(logits))
        holds = G @ logits >= h
        ok_ratio, ok_eps = bool(np.all(holds[:-1])), bool(holds[-1])
        ok_argmax = int(np.argmax(logits)) == target and bool(np.all(np.delete(logits, target) < logits[target]))
        reason = "" if ok_ratio and ok_eps and ok_argmax else (
            "ratio" if not ok_ratio else "epsilon" if not ok_eps else "argmax")
        return ok_ratio and ok_eps and ok_argmax, ratio, reason
    if spec.kind in ("untargeted", "max-target"):
        others = np.delete(logits, label)
        best = float(others.max())
        ratio = float(o[label] / best) if best > 0 else float("inf")
        ok = best >= spec.epsilon and o[label] <= spec.factor * best
        return bool(ok), ratio, "" if ok else "misclassification criterion"
    return True, float("nan"), ""


def verify_witness(network: Network, x: np.ndarray, spec: ProblemSpec, x_bar: np.ndarray | None = None,
                   label: int | None = None, target: int | None = None,
                   x_lb: np.ndarray | None = None, x_ub: np.ndarray | None = None) -> Verification:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x_lb is not None:
        x = np.clip(x, x_lb, x_ub)
    logits64 = network.forward(x, np.float64)
    logits32 = network.forward(x.astype(np.float32), np.float32).astype(np.float64)
    ok64, ratio, reason64 = _criterion(spec, logits64, label, target)
    ok32, _, reason32 = _criterion(spec, logits32, label, target)
    if x_bar is not None:
        diff = x - np.asarray(x_bar, dtype=np.float64).reshape(-1)
        l1, linf = float(np.abs(diff).sum()), float(np.abs(diff).max())
    else:
        l1 = linf = float("nan")
    ok = ok64 and ok32
    if spec.kind == "max-target" and l1 > spec.l1_budget:
        ok, reason64 = False, "l1 budget"
    reason = "" if ok else (f"float64: {reason64}" if not ok64 else f"float32: {reason32}" if not ok32 else reason64)
    return Verification(ok, int(np.argmax(logits64)), ratio, l1, linf, x, reason)
