"""Activations: the one forward rule of each activation a layer may have.

Every supported activation is piecewise linear with two pieces meeting at 0,

    act(y) = y            for y ≥ 0
    act(y) = slope · y    for y ≤ 0

with ``slope`` 1 (``linear``: the identity), 0 (``relu``) or α ∈ (0, 1) (``leaky_relu``).  Each is
monotone non-decreasing, so the interval rule is ``[act(L), act(U)]``.  How an activation becomes
rows of a MILP or LP lives in `advmilp.encode.activations` (one entry per name there); adding an
activation is one entry here plus one there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advmilp.errors import NetworkError


@dataclass(frozen=True)
class Activation:
    name: str
    slope: float          # the slope below 0: 1 linear, 0 relu, α leaky

    def __call__(self, pre: np.ndarray) -> np.ndarray:
        """The forward rule (works on any dtype; keeps it)."""
        if self.slope == 1.0:
            return pre
        if self.slope == 0.0:
            return np.maximum(pre, 0)
        return np.where(pre >= 0, pre, self.slope * pre)   # a Python float keeps the array's dtype

    def interval(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the output given bounds of the pre-activation (monotone, so the ends map)."""
        return self(np.asarray(lower, dtype=np.float64)), self(np.asarray(upper, dtype=np.float64))

    @property
    def piecewise(self) -> bool:
        """Two genuine pieces (a unit with L < 0 < U needs a binary in an exact model)."""
        return self.slope != 1.0


NAMES = ("relu", "linear", "leaky_relu")
# The phase of a hidden unit in a search over phases (pre-activation ≥ 0, ≤ 0, either), one encoding for
# every search (`search.phase_bb`, `search.split_bab`, `bounds.beta`, `search.implications`)
ACTIVE, INACTIVE, FREE = 1, -1, 0
DEFAULT_LEAKY_SLOPE = 0.01      # ONNX's LeakyRelu default alpha


def make_activation(name: str, slope: float | None = None) -> Activation:
    """The activation called ``name``; ``slope`` is the negative slope of ``leaky_relu`` only."""
    if name == "relu":
        return Activation("relu", 0.0)
    if name == "linear":
        return Activation("linear", 1.0)
    if name == "leaky_relu":
        alpha = DEFAULT_LEAKY_SLOPE if slope is None else float(slope)
        if not 0.0 < alpha < 1.0:
            raise NetworkError(f"leaky_relu needs a negative slope in (0, 1) (got {alpha})")
        return Activation("leaky_relu", alpha)
    raise NetworkError(f"unsupported activation {name!r} (supported: {', '.join(NAMES)})")
