"""The ball-proof floor of `tight` (methods.tight.ball_proof_floor): a proven lower bound of the minimal
L1 distance, so never above the exact optimum, never below the floor it starts from, and raised where
the β-CROWN proofs over the ball close."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advmilp.methods.tight import DEFAULT_POLICY, ball_proof_floor
from tests.nets import exact_targeted_optimum, small_targeted_instance


@pytest.mark.parametrize("seed", range(4))
def test_the_floor_stays_below_the_exact_optimum(seed):
    inst = small_targeted_instance(seed)
    spec, lo, up, exact = exact_targeted_optimum(inst)
    start = 0.2 * exact.objective
    floor, x = ball_proof_floor(inst.net, inst.box, inst.spec, inst.x_bar, inst.label, lo, up, start,
                                2 * exact.objective, math.inf, DEFAULT_POLICY)
    assert start < floor <= exact.objective * (1 + 1e-6)     # 0.2·optimum is proven at least once
    if x is not None:          # a point within the radius it could not prove: at least the optimum away
        assert np.abs(x - inst.x_bar).sum() >= exact.objective * (1 - 1e-6)
