"""Problem specifications: what an instance asks of the network (pure data).

kinds
  targeted     thesis eqs. 14–17: output d ≥ ratio · every other output, d ≥ epsilon,
               minimise Σ|x − x̄|; d = (label + 5) mod 10 unless given.
  untargeted   notebook §1.6: true-class output ≤ factor · max output (factor 0.95),
               the maximising output ≥ epsilon, minimise Σ|x − x̄|.
  max-target   notebook §1.7: maximise output `target` subject to Σ|x − x̄| ≤ l1_budget and
               the untargeted misclassification constraint.
  feature      thesis §5.1.1: maximise hidden unit (layer, unit) or output `unit`
               (objective "simple") or output unit − Σ other outputs ("diff") over the box.
  inference    notebook §1.5: input fixed to x̄; the model's outputs must equal forward().

Outputs: with ``output_relu`` (thesis-faithful, default) the output units get the same ReLU
split as hidden units and the criteria read the ReLU'd outputs; otherwise the criteria are
imposed on the logits directly.  For targeted/untargeted specs the two are equivalent once
``output ≥ epsilon`` is required (see `formulation`), so ``output_relu: false`` is an exact
reformulation with 10 fewer binaries.

``margin`` is added to every strict criterion in the *model* (never in verification), so a
solver point that meets the model's constraints within the solver's tolerances still meets
the criterion exactly when re-evaluated in float64/float32.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from advmilp.errors import AdvmilpError

KINDS = ("targeted", "untargeted", "max-target", "feature", "inference")
FEATURE_OBJECTIVES = ("hidden", "simple", "diff")


@dataclass(frozen=True)
class ProblemSpec:
    kind: str = "targeted"
    ratio: float = 1.2                 # targeted: a_d ≥ ratio · a_j
    target: int | None = None          # targeted: default (label + 5) mod 10; max-target: required
    target_offset: int = 5             # targeted: d = (label + offset) mod 10
    epsilon: float = 0.01              # the winning output must be ≥ epsilon
    factor: float = 0.95               # untargeted / max-target: a_true ≤ factor · max a
    l1_budget: float = 6.0             # max-target
    linf_cap: float | None = None      # |x_j − x̄_j| ≤ linf_cap (thesis Fig. 4c: 0.2)
    layer: int | None = None           # feature: hidden layer (1-based) ...
    unit: int = 0                      # ... and unit; or output unit for simple/diff
    objective: str = "hidden"          # feature: hidden | simple | diff
    output_relu: bool = True           # thesis-faithful ReLU split on the output layer
    margin: float = 1e-4               # safety margin on criteria in the model

    def __post_init__(self):
        if self.kind not in KINDS:
            raise AdvmilpError(f"unknown problem kind {self.kind!r} (choose from {', '.join(KINDS)})")
        if self.objective not in FEATURE_OBJECTIVES:
            raise AdvmilpError(f"unknown feature objective {self.objective!r} (choose from {', '.join(FEATURE_OBJECTIVES)})")
        if self.ratio < 1.0:
            raise AdvmilpError(f"ratio must be ≥ 1 (got {self.ratio})")
        if not 0 < self.factor < 1:
            raise AdvmilpError(f"factor must be in (0, 1) (got {self.factor})")
        if self.epsilon <= 0:
            raise AdvmilpError(f"epsilon must be > 0 (got {self.epsilon})")
        if self.linf_cap is not None and self.linf_cap <= 0:
            raise AdvmilpError(f"linf_cap must be > 0 (got {self.linf_cap})")
        if self.kind == "max-target" and self.target is None:
            raise AdvmilpError("max-target needs a target output")
        if self.kind == "feature" and self.objective == "hidden" and self.layer is None:
            raise AdvmilpError("feature with objective 'hidden' needs a layer")

    @property
    def needs_image(self) -> bool:
        return self.kind != "feature"

    @property
    def minimises_distance(self) -> bool:
        return self.kind in ("targeted", "untargeted")

    def target_for(self, label: int) -> int | None:
        if self.kind == "targeted":
            return self.target if self.target is not None else (label + self.target_offset) % 10
        if self.kind == "max-target":
            return self.target
        return None

    def with_(self, **changes) -> "ProblemSpec":
        return replace(self, **changes)

    def describe(self) -> str:
        if self.kind == "targeted":
            s = f"targeted ratio {self.ratio}"
        elif self.kind == "untargeted":
            s = f"untargeted factor {self.factor}"
        elif self.kind == "max-target":
            s = f"max-target {self.target} l1<={self.l1_budget}"
        elif self.kind == "feature":
            s = (f"feature layer {self.layer} unit {self.unit}" if self.objective == "hidden"
                 else f"feature output {self.unit} ({self.objective})")
        else:
            s = "inference"
        if self.linf_cap is not None:
            s += f" linf<={self.linf_cap}"
        return s


def targeted_criterion(spec: ProblemSpec, target: int, n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
    """The targeted criterion as ``G @ y >= h`` on the logits y: ``y_d − ratio·y_j ≥ 0`` for every
    j ≠ d, then ``y_d ≥ epsilon`` (the last row).  The one definition: models impose it with
    ``h + margin`` (`encode`), verification checks it exactly (`spec.verify`)."""
    if not 0 <= target < n_outputs:
        raise AdvmilpError(f"target {target} is not an output (0..{n_outputs - 1})")
    others = [j for j in range(n_outputs) if j != target]
    G = np.zeros((len(others) + 1, n_outputs))
    G[np.arange(len(others)), others] = -spec.ratio
    G[:, target] = 1.0
    h = np.zeros(len(others) + 1)
    h[-1] = spec.epsilon
    return G, h


@dataclass(frozen=True)
class SolverSettings:
    """How an instance is solved (the ``solver:`` block of a config)."""

    name: str = "highs"
    time_limit: float = 300.0
    threads: int = 1
    gap_rel: float = 1e-4
