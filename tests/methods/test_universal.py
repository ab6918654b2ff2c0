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


def three_images(seed):
    """A random 10-6-3 net, three images, their predicted labels and one target that is no image's label."""
    net = random_net([10, 6, 3], seed=seed, scale=2.5)
    rng = np.random.default_rng(seed)
    images = rng.random((3, 10)) * 0.6 + 0.2
    labels = net.predict(images)
    free = [t for t in range(3) if t not in set(labels.tolist())]
    if not free:
        pytest.skip("every class is some image's label")
    return net, images, labels, free


@pytest.mark.parametrize("seed", range(6))
def test_universal_delta_fools_every_image_and_costs_at_least_each_alone(seed):
    net, images, labels, free = three_images(seed)
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


@pytest.mark.parametrize("seed", range(6))
def test_the_heuristic_first_point_fools_every_image_and_is_no_better_than_the_optimum(seed):
    from advmilp.methods.universal import first_point
    from advmilp.spec.problems import Criterion, targeted_criterion
    from advmilp.spec.verify import verify_witness

    net, images, labels, free = three_images(seed)
    spec = ProblemSpec("targeted", target=free[0])
    stacked = stacked_network(net, images)
    g, h = targeted_criterion(spec, free[0], 3)
    G = np.kron(np.eye(3), g)
    lo, hi = delta_box(images)

    def evaluate(d):
        d = np.clip(d, lo, hi)
        ok = all(verify_witness(net, x + d, spec, x, int(lab), free[0]).verified for x, lab in zip(images, labels))
        return ok, float(np.abs(d).sum()), d

    d = first_point(stacked, Criterion(-1, G, np.tile(h, 3)), spec.margin, lo, hi, evaluate, deadline=None)
    exact = universal_attack(net, images, labels, spec, time_limit=30)
    if d is None:
        return
    assert evaluate(d)[0]
    assert exact.status == "optimal" and np.abs(d).sum() >= exact.objective * (1 - 1e-6) - 1e-9


def test_a_universal_run_out_of_time_says_so():
    net, images, labels, free = three_images(0)
    r = universal_attack(net, images, labels, ProblemSpec("targeted", target=free[0]), time_limit=1e-9)
    assert r.status == "time_limit" and r.bound == 0.0
    assert (r.delta is None) == (r.per_image == ())


def test_the_image_floor_is_the_largest_single_image_optimum(identity_net):
    # the hand case above: alone, image 0 needs (.76 + m) / 1.2 and image 1 less; the floor is the larger of
    # the two single-image optima, below the universal optimum .66 + m
    import time

    from advmilp.methods.universal import image_floor

    m = ProblemSpec().margin
    images = np.array([[0.8, 0.2], [0.5, 0.0]])
    spec = ProblemSpec("targeted", target=1)
    singles = [run_method("tight", identity_net, interval_bounds(identity_net), spec, SolverSettings(time_limit=30),
                          x, 0, 0, MethodInputs()).row["objective"] for x in images]
    floor = image_floor(identity_net, images, [0, 0], spec, time.perf_counter() + 60)
    assert floor == pytest.approx(max(singles), abs=1e-6)
    assert floor == pytest.approx((0.76 + m) / 1.2, abs=1e-6) and floor < 0.66 + m


def _stacked_problem(net, images, labels, target, spec):
    """The stacked problem's rows (margin included), the box of δ, and the check of every image."""
    from advmilp.spec.problems import targeted_criterion
    from advmilp.spec.verify import verify_witness

    g, h = targeted_criterion(spec, target, net.n_outputs)
    k = len(images)
    G, h = np.kron(np.eye(k), g), np.tile(h, k) + spec.margin
    lo, hi = delta_box(images)

    def evaluate(d):
        d = np.clip(d, lo, hi)
        ok = all(verify_witness(net, x + d, spec, x, int(lab), target).verified for x, lab in zip(images, labels))
        return ok, float(np.abs(d).sum()), d
    return G, h, lo, hi, evaluate


def _unchained(stacked, n_copies, n1):
    """The stacked network with copy i's first layer scaled by 2^i and the next layer's inputs by 2^-i:
    the same function bit for bit (ReLU is positively homogeneous), without equal first-layer rows."""
    from advmilp.nn.network import Network

    W = [layer.W.copy() for layer in stacked.layers]
    b = [layer.b.copy() for layer in stacked.layers]
    for i in range(n_copies):
        rows = slice(i * n1, (i + 1) * n1)
        W[0][rows] *= 2.0 ** i
        b[0][rows] *= 2.0 ** i
        W[1][:, rows] *= 2.0 ** -i
    return Network.from_arrays(W, b, [layer.activation for layer in stacked.layers])


@pytest.mark.parametrize("seed", range(6))
def test_the_chains_of_the_stacked_first_layer_change_no_optimum(seed):
    """The stacked network's first layer repeats the image network's rows, so the phase search fixes
    chains and adds their hull (`search.implications`).  The same network with copy i's first layer
    scaled by 2^i and the next layer's inputs by 2^-i (ReLU is positively homogeneous: the same function,
    bit for bit) has no equal rows: the searches must agree on the optimum."""
    from advmilp.search.implications import first_layer_implications
    from advmilp.search.options import SearchOptions
    from advmilp.search.phase_bb import search_phases
    from advmilp.search.problems import PhaseProblem

    net, images, labels, free = three_images(seed)
    spec = ProblemSpec("targeted", target=free[0])
    stacked = stacked_network(net, images)
    unchained = _unchained(stacked, len(images), net.layers[0].W.shape[0])
    assert first_layer_implications(stacked.layers[0].W, stacked.layers[0].b).chains
    assert not first_layer_implications(unchained.layers[0].W, unchained.layers[0].b).chains
    G, h, lo, hi, evaluate = _stacked_problem(net, images, labels, free[0], spec)

    found = []
    for n in (stacked, unchained):
        problem = PhaseProblem(np.zeros(10), lo, hi, G, h, evaluate)
        found.append(search_phases(n, interval_bounds(n, lo, hi), problem, options=SearchOptions(time_limit=30)))
    assert found[0].status == found[1].status and found[0].status in ("optimal", "infeasible")
    if found[0].status == "optimal":
        assert abs(found[0].objective - found[1].objective) <= 1e-6 * max(1.0, found[1].objective)


@pytest.mark.parametrize("seed", range(6))
def test_tightening_a_chain_by_its_first_unit_holds_at_the_optimum(seed):
    """`search.tighten` bounds one unit of each chain by LP and the others by the shift: each chain's
    bounds are shifts of one range, and the optimal δ's pre-activations lie within every layer's bounds."""
    from advmilp.search.implications import first_layer_implications
    from advmilp.search.options import SearchOptions
    from advmilp.search.phase_bb import search_phases
    from advmilp.search.problems import PhaseProblem
    from advmilp.search.tighten import tighten_over_problem

    net, images, labels, free = three_images(seed)
    spec = ProblemSpec("targeted", target=free[0])
    stacked = stacked_network(net, images)
    G, h, lo, hi, evaluate = _stacked_problem(net, images, labels, free[0], spec)

    best = search_phases(stacked, interval_bounds(stacked, lo, hi), PhaseProblem(np.zeros(10), lo, hi, G, h, evaluate),
                         options=SearchOptions(time_limit=30))
    if best.x is None:
        pytest.skip("no universal δ for this net")
    box = interval_bounds(stacked, lo, hi)
    tight, infeasible = tighten_over_problem(stacked, box, PhaseProblem(np.zeros(10), lo, hi, G, h, evaluate,
                                                                        cap=1.2 * best.objective))
    assert not infeasible
    const = stacked.layers[0].b
    for chain in first_layer_implications(stacked.layers[0].W, const).chains:
        shifted = [tight.lower[0][u] - const[u] for u in chain]
        if all(box.lower[0][u] < tight.lower[0][u] for u in chain):     # tightened, so by one LP
            assert np.ptp(shifted) <= 1e-9 * max(1.0, np.abs(shifted).max())
    v = best.x
    for k, layer in enumerate(stacked.layers):
        pre = layer.W @ v + layer.b
        assert (tight.lower[k] <= pre + 1e-7).all() and (pre <= tight.upper[k] + 1e-7).all()
        v = np.maximum(pre, 0.0)
    assert sum(float(np.sum(tight.upper[k] - tight.lower[k])) for k in range(len(tight.lower) - 1)) < \
        sum(float(np.sum(box.upper[k] - box.lower[k])) for k in range(len(box.lower) - 1))
