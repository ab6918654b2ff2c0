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

import math
from dataclasses import dataclass, replace

import numpy as np

from advmilp.errors import AdvmilpError, InvalidValue

KINDS = ("targeted", "untargeted", "max-target", "feature", "inference")
# the distance a targeted / untargeted problem minimises: Σ|δ| (thesis), max|δ| (MIPVerify's default),
# the number of changed pixels (a binary per pixel)
NORMS = ("l1", "linf", "l0")
FEATURE_OBJECTIVES = ("hidden", "simple", "diff")
SOLVER_NAMES = ("highs", "cbc", "scip", "gurobi")


class InvalidInstance(InvalidValue):
    """A spec that cannot be asked of one image: its target is its label (the unperturbed image would
    "solve" it with distance 0) or not an output of the network.  A single attack refuses it; a batch
    records the instance with status ``invalid`` (`advmilp.spec.rows.INVALID`), never solved."""


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _number(field: str, value, low: float, *, open_low: bool = False, high: float = math.inf,
            open_high: bool = False, text: str | None = None) -> None:
    """Refuse anything but a finite real number in [low, high] (bounds opened as asked): NaN passes
    every comparison, so a bare ``value <= 0`` check lets it through."""
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
          and math.isfinite(value) and (value > low if open_low else value >= low)
          and (value < high if open_high else value <= high))
    if not ok:
        if text is None:
            lo = f"{'>' if open_low else '≥'} {low:g}"
            text = (f"a finite number {lo}" if high == math.inf
                    else f"a finite number {lo} and {'<' if open_high else '≤'} {high:g}")
        raise InvalidValue(field, f"must be {text} (got {value!r})")


def _integer(field: str, value, low: int) -> None:
    if not _is_int(value) or value < low:
        raise InvalidValue(field, f"must be an integer ≥ {low} (got {value!r})")


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
    norm: str = "l1"                   # targeted / untargeted: the distance minimised (NORMS)
    l1_cap: float | None = None        # Σ|x_j − x̄_j| ≤ l1_cap
    l0_cap: int | None = None          # at most l0_cap pixels change
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
        _number("ratio", self.ratio, 1.0)
        _number("factor", self.factor, 0.0, open_low=True, high=1.0, open_high=True)
        _number("epsilon", self.epsilon, 0.0, open_low=True)
        _number("l1_budget", self.l1_budget, 0.0, open_low=True)
        _number("margin", self.margin, 0.0)
        if self.linf_cap is not None:
            _number("linf_cap", self.linf_cap, 0.0, open_low=True)
        if self.l1_cap is not None:
            _number("l1_cap", self.l1_cap, 0.0, open_low=True)
        if self.l0_cap is not None:
            _integer("l0_cap", self.l0_cap, 1)
        if self.norm not in NORMS:
            raise InvalidValue("norm", f"must be one of {', '.join(NORMS)} (got {self.norm!r})")
        if (self.norm != "l1" or self.l1_cap is not None or self.l0_cap is not None) \
                and self.kind not in ("targeted", "untargeted"):
            raise InvalidValue("norm" if self.norm != "l1" else "l1_cap" if self.l1_cap is not None else "l0_cap",
                               "is for the targeted and untargeted problems (the distance they minimise)")
        if self.target is not None:
            _integer("target", self.target, 0)
        _integer("target_offset", self.target_offset, 0)
        if self.layer is not None:
            _integer("layer", self.layer, 1)
        _integer("unit", self.unit, 0)
        if self.kind == "max-target" and self.target is None:
            raise InvalidValue("target", "is required for max-target (the output to maximise)")
        if self.kind == "feature" and self.objective == "hidden" and self.layer is None:
            raise InvalidValue("layer", "is required for a hidden-unit feature (objective 'hidden')")

    @property
    def needs_image(self) -> bool:
        return self.kind != "feature"

    @property
    def distance_norm(self) -> str:
        """The norm a method must handle: ``l0`` if the problem minimises or caps the changed pixels
        (binaries per pixel), else its ``norm``."""
        return "l0" if self.norm == "l0" or self.l0_cap is not None else self.norm

    @property
    def minimises_distance(self) -> bool:
        return self.kind in ("targeted", "untargeted")

    def target_for(self, label: int) -> int | None:
        if self.kind == "targeted":
            return self.target if self.target is not None else (label + self.target_offset) % 10
        if self.kind == "max-target":
            return self.target
        return None

    def check_for(self, sizes: list[int] | tuple[int, ...], label: int | None = None) -> None:
        """Refuse what this spec cannot ask of a network with layer sizes ``sizes`` (inputs first) and
        an image labelled ``label``: a target that is not an output or is the label (`InvalidInstance`),
        a feature layer or unit the network does not have (`InvalidValue`)."""
        n_outputs, hidden = sizes[-1], list(sizes[1:-1])
        if self.kind == "feature":
            if self.layer is not None and not 1 <= self.layer <= len(hidden):
                raise InvalidValue("layer", f"must be a hidden layer 1..{len(hidden)} (got {self.layer}); "
                                            "omit it for an output unit")
            units = hidden[self.layer - 1] if self.layer is not None else n_outputs
            if not 0 <= self.unit < units:
                where = f"hidden layer {self.layer}" if self.layer is not None else "the output layer"
                raise InvalidValue("unit", f"must be 0..{units - 1} ({where} has {units} units; got {self.unit})")
            return
        if label is None:
            return
        if not 0 <= label < n_outputs:
            raise InvalidInstance("label", f"{label} is not an output of the network (0..{n_outputs - 1})")
        target = self.target_for(label)
        if target is None:
            return
        if not 0 <= target < n_outputs:
            raise InvalidInstance("target", f"{target} is not an output of the network (0..{n_outputs - 1})")
        if target == label:
            raise InvalidInstance("target", f"{target} is the image's label: the image itself would count as "
                                            "an adversarial example at distance 0; choose another target")

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
        if self.norm != "l1":
            s += f" norm {self.norm}"
        if self.linf_cap is not None:
            s += f" linf<={self.linf_cap}"
        if self.l1_cap is not None:
            s += f" l1<={self.l1_cap}"
        if self.l0_cap is not None:
            s += f" l0<={self.l0_cap}"
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
class Criterion:
    """One conjunction of linear rows ``G @ y >= h`` on the logits y that makes a point a solution:
    the targeted criterion, or one class ``winner`` of the untargeted (misclassification) criterion,
    which is the disjunction of one such conjunction per class other than the label."""

    winner: int            # the output that wins under this conjunction
    G: np.ndarray
    h: np.ndarray

    def slack(self, y: np.ndarray) -> np.ndarray:
        """min over rows of G y − h (≥ 0 iff the conjunction holds), for one output vector or a batch."""
        return (np.atleast_2d(y) @ self.G.T - self.h).min(axis=1) if np.ndim(y) > 1 else float((self.G @ y - self.h).min())


def misclassification_criterion(spec: ProblemSpec, label: int, winner: int, n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
    """Output ``winner`` beats the label the notebook's way, as ``G @ y >= h`` on the logits:
    ``factor·y_w − y_label ≥ 0`` and ``y_w ≥ epsilon``.  Given y_w ≥ ε > 0 this is exactly
    relu(y_label) ≤ factor·relu(y_w) (the ReLU'd outputs' criterion, `spec.verify`)."""
    if winner == label or not 0 <= winner < n_outputs:
        raise AdvmilpError(f"winner {winner} must be an output other than the label {label}")
    G = np.zeros((2, n_outputs))
    G[0, winner], G[0, label] = spec.factor, -1.0
    G[1, winner] = 1.0
    return G, np.array([0.0, spec.epsilon])


def criteria(spec: ProblemSpec, label: int, n_outputs: int) -> list[Criterion]:
    """The criterion of a distance problem as a disjunction of conjunctions (`Criterion`): one for
    ``targeted``; one per output other than the label for ``untargeted`` and ``max-target``."""
    if spec.kind == "targeted":
        t = spec.target_for(label)
        return [Criterion(t, *targeted_criterion(spec, t, n_outputs))]
    if spec.kind in ("untargeted", "max-target"):
        return [Criterion(j, *misclassification_criterion(spec, label, j, n_outputs))
                for j in range(n_outputs) if j != label]
    raise AdvmilpError(f"a {spec.kind} problem has no output criterion")


@dataclass(frozen=True)
class SolverSettings:
    """How an instance is solved (the ``solver:`` block of a config)."""

    name: str = "highs"
    time_limit: float = 300.0
    threads: int = 1
    gap_rel: float = 1e-4

    def __post_init__(self):
        if self.name not in SOLVER_NAMES:
            raise InvalidValue("name", f"must be one of {', '.join(SOLVER_NAMES)} (got {self.name!r})")
        _number("time_limit", self.time_limit, 0.0, open_low=True)
        _integer("threads", self.threads, 1)
        object.__setattr__(self, "time_limit", float(self.time_limit))   # rows record seconds as floats
        if self.gap_rel is not None:
            _number("gap_rel", self.gap_rel, 0.0, high=1.0, open_high=True)


def input_box(spec: ProblemSpec, n: int, x_bar: np.ndarray | None,
              lb0: float = 0.0, ub0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The box every input of the problem lies in: the pixel range [lb0, ub0]^n, cut to x̄ ± the L∞ cap
    when the spec has one, and the single point x̄ for the inference check."""
    lb, ub = np.full(n, lb0, dtype=np.float64), np.full(n, ub0, dtype=np.float64)
    if spec.kind == "inference":
        return x_bar.copy(), x_bar.copy()
    if spec.linf_cap is not None and x_bar is not None:
        lb, ub = np.maximum(lb, x_bar - spec.linf_cap), np.minimum(ub, x_bar + spec.linf_cap)
    return lb, ub
