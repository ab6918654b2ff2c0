"""A universal δ (one perturbation for several images) by the phase search on the stacked network."""

import numpy as np
import pytest

from advmilp.errors import AdvmilpError
from advmilp.methods.registry import MethodInputs, run_method
from advmilp.bounds.compute import interval_bounds
from advmilp.methods.universal import delta_box, stacked_network, universal_attack
from advmilp.spec.problems import ProblemSpec, SolverSettings

from tests.nets import random_net


def test_stacked_network_is_the_copies():
    net = random_net([12, 6, 5, 3], seed=1, scale=2.0)
    rng = np.random.default_rng(1)
    images = rng.random((4, 12))
    s = stacked_network(net, images)
    for d in rng.random((5, 12)) * 0.1:
        assert np.allclose(s.forward(d).reshape(4, 3), net.forward(images + d), atol=1e-12)
    lo, hi = delta_box(images)
    assert np.all(images + lo >= -1e-15) and np.all(images + hi <= 1 + 1e-15)


def test_universal_by_hand(identity_net):
    # y = x; images (.8, .2) and (.5, 0), both label 0, target 1.  δ0 ≥ −.5 (second image), and the first
    # image needs δ1 − 1.2·δ0 ≥ .76 + m: δ0 = −.5 (the cheaper move, 1.2 per unit) and δ1 = .16 + m,
    # so the least Σ|δ| is .66 + m (the second image then has .76 + m ≥ .6 + m to spare).
    m = ProblemSpec().margin
    images = np.array([[0.8, 0.2], [0.5, 0.0]])
    r = universal_attack(identity_net, images, [0, 0], ProblemSpec("targeted", target=1), time_limit=30)
    assert r.status == "optimal" and r.per_image == (True, True)
    assert r.objective == pytest.approx(0.66 + m, abs=1e-6)
    assert r.delta == pytest.approx([-0.5, 0.16 + m], abs=1e-6)
    # alone, the first image needs only (.76 + m) / 1.2: sharing δ costs more
    single = run_method("tight", identity_net, interval_bounds(identity_net), ProblemSpec("targeted", target=1),
                        SolverSettings(time_limit=30), images[0], 0, 0, MethodInputs())
    assert single.row["objective"] == pytest.approx((0.76 + m) / 1.2, abs=1e-6)
    assert single.row["objective"] < r.objective


@pytest.mark.parametrize("seed", range(6))
def test_universal_delta_fools_every_image_and_costs_at_least_each_alone(seed):
    net = random_net([10, 6, 3], seed=seed, scale=2.5)
    rng = np.random.default_rng(seed)
    images = rng.random((3, 10)) * 0.6 + 0.2
    labels = net.predict(images)
    # one fixed target that is no image's label
    free = [t for t in range(3) if t not in set(labels.tolist())]
    if not free:
        pytest.skip("every class is some image's label")
    spec = ProblemSpec("targeted", target=free[0])
    r = universal_attack(net, images, labels, spec, time_limit=30)
    if r.delta is None:
        assert r.status == "infeasible"
        return
    assert r.status == "optimal" and all(r.per_image)
    for x, lab in zip(images, labels):
        assert net.predict(np.clip(x + r.delta, 0, 1)) == free[0]
        alone = run_method("tight", net, interval_bounds(net), spec, SolverSettings(time_limit=30), x, int(lab), 0,
                           MethodInputs())
        assert alone.row["status"] == "optimal"
        assert alone.row["objective"] <= r.objective * (1 + 1e-6) + 1e-9


def test_untargeted_universal_is_refused(identity_net):
    with pytest.raises(AdvmilpError, match="targeted problem only"):
        universal_attack(identity_net, np.array([[0.8, 0.2]]), [0], ProblemSpec("untargeted"))
