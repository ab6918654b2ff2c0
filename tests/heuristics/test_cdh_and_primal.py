"""The CDH (thesis §3.3) and the probability masks (Appendix A): hand-computed rules,
exactness of the per-pixel subproblem against the thesis MILP, and runs on DNN1/DNN5."""

import time

import numpy as np
import pytest

from advmilp.errors import AdvmilpError
from advmilp.heuristics.cdh import (CDHSettings, compute_objective, compute_pixel_outputs, compute_ratio,
                               escape_guided, escape_random, is_adversarial, maximise_pixels,
                               propose_fixed, run_cdh, select_neighbourhood, solve_pixel_milp)
from advmilp.data.masks import compute_masks, load_masks, save_masks
from advmilp.nn.network import Network, load_network
from advmilp.spec.problems import ProblemSpec
from advmilp.spec.verify import verify_witness

from tests.nets import mnist_dir, random_net

PLAIN = CDHSettings(neighbourhood="complete", escape="none")  # needs no masks


@pytest.fixture(scope="session")
def mnist_masks():
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    from advmilp.data.mnist import load_split

    return compute_masks(load_split("train", root))


def diag_net(bias_out=(0.0, 0.0)) -> Network:
    """2 inputs → identity ReLU layer → identity outputs (+ bias): logits = x + bias."""
    I = np.eye(2)
    return Network.from_arrays([I, I], [np.zeros(2), np.array(bias_out, float)])


# ---- stopping rule and ratio ---------------------------------------------------------------------
def test_ratio_and_stopping_rule_by_hand():
    net = diag_net()
    # x = (0.3, 0.5): FA = 0.5, A* = 0.3, ratio 5/3 ≥ 1.2 → adversarial for d = 1
    lg = net.forward(np.array([0.3, 0.5]))
    assert compute_ratio(lg, 1) == pytest.approx(0.5 / 0.3)
    assert is_adversarial(lg, 1)
    # x = (0.5, 0.55): ratio 1.1 < 1.2
    lg = net.forward(np.array([0.5, 0.55]))
    assert compute_ratio(lg, 1) == pytest.approx(1.1)
    assert not is_adversarial(lg, 1)
    assert is_adversarial(lg, 1, ratio=1.05)
    # A* = 0 but FA = 0.005 < epsilon: ratio infinite, not adversarial
    lg = net.forward(np.array([0.0, 0.005]))
    assert compute_ratio(lg, 1) == np.inf and not is_adversarial(lg, 1)
    # FA = A* = 0 (negative logits through the ReLU): ratio 0
    lg = diag_net((-1.0, -1.0)).forward(np.array([0.5, 0.5]))
    assert compute_ratio(lg, 1) == 0.0 and not is_adversarial(lg, 1)
    # batch form, and the objectives on relu(logits) = (0.3, 0.5)
    r = compute_ratio(np.array([[0.3, 0.5], [0.5, 0.3]]), 1)
    np.testing.assert_allclose(r, [0.5 / 0.3, 0.3 / 0.5])
    assert compute_objective(np.array([0.3, 0.5]), 1, "simple") == pytest.approx(0.5)
    assert compute_objective(np.array([0.3, 0.5]), 1, "diff") == pytest.approx(0.2)
    assert compute_objective(np.array([-2.0, 0.5]), 1, "diff") == pytest.approx(0.5)


@pytest.mark.parametrize("settings, x_expected", [
    # fixed d=1: pixel 0 (0.8) → 0 gives outputs (0, 0.2), ratio ∞; pixel 1 (0.2) → 1 only 1.25
    (CDHSettings(neighbourhood="complete", escape="none", solve_rule="fixed"), [0.0, 0.2]),
    # unbounded, diff = a1 − a0: pixel 0 → 0 (obj 0.2, ratio ∞) beats pixel 1 → 1 (ratio 1.25)
    (CDHSettings(neighbourhood="complete", escape="none", solve_rule="unbounded", objective="diff"), [0.0, 0.2]),
    # unbounded, simple = a1: pixel 0 has no effect (stays), pixel 1 → 1: ratio 1.25 stops
    (CDHSettings(neighbourhood="complete", escape="none", solve_rule="unbounded", objective="simple"), [0.8, 1.0]),
])
def test_run_on_hand_network(settings, x_expected):
    net = diag_net()
    res = run_cdh(net, np.array([0.8, 0.2]), 0, settings)   # 2 outputs: d = (0 + 5) mod 2 = 1
    assert res.status == "found" and res.target == 1 and res.stop_reason == "adversarial"
    np.testing.assert_allclose(res.x, x_expected)
    assert res.iterations == 1 and res.escapes == 0
    assert res.l1 == pytest.approx(0.8) and res.linf == pytest.approx(0.8)
    assert res.start_ratio == pytest.approx(0.25)
    assert res.perturbed_counts.sum() == 1


def test_local_optimum_without_escape_is_not_found():
    # logits = x − (0, 2): output 1 never positive on [0,1]², FA stays 0 → stuck immediately
    net = diag_net((0.0, -2.0))
    res = run_cdh(net, np.array([0.8, 0.2]), 0, PLAIN)
    assert res.status == "not_found" and res.stop_reason == "local_optimum"
    assert res.iterations == 0 and res.l1 == 0.0
    res = run_cdh(net, np.array([0.8, 0.2]), 0, CDHSettings(neighbourhood="complete", escape="random",
                                                           max_rand=3, k=1))
    assert res.status == "not_found" and res.escapes == 3


def test_iteration_and_time_caps():
    net = diag_net()
    res = run_cdh(net, np.array([0.8, 0.2]), 0, CDHSettings(neighbourhood="complete", escape="none",
                                                           max_iterations=0))
    assert res.status == "not_found" and res.stop_reason == "max_iterations"
    with pytest.raises(AdvmilpError):
        CDHSettings(time_limit=0)
    with pytest.raises(AdvmilpError):
        CDHSettings(escape="annealing")
    with pytest.raises(AdvmilpError):
        run_cdh(net, np.array([0.8, 0.2]), 0, CDHSettings())  # constrained + guided need masks


# ---- search rule ----------------------------------------------------------------------------------
def test_constrained_neighbourhood_membership():
    mask_d = np.array([0.0, 0.005, 0.01, 0.011, 0.5, 0.0, 0.0, 0.9])
    x = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 1.0, 0.0])
    # mask > 0.01 (strict): 3, 4, 7; pixels > 0 in the image: 5, 6
    np.testing.assert_array_equal(select_neighbourhood(x, "constrained", mask_d, 0.01), [3, 4, 5, 6, 7])
    np.testing.assert_array_equal(select_neighbourhood(x, "complete"), np.arange(8))
    with pytest.raises(AdvmilpError):
        select_neighbourhood(x, "constrained", None)


# ---- fixed absolute perturbation -----------------------------------------------------------------
def test_fixed_perturbation_boundary_fallback():
    net = diag_net()          # d = 1, diff objective a1 − a0
    x = np.array([0.3, 0.3])
    # d_fixed = 1: neither 1.3 nor −0.7 is feasible; + must shrink by 0.3, − by 0.7 → up to 1.0,
    # for pixel 0 even though the objective (a1 − a0) prefers going down
    v, lg = propose_fixed(net, x, np.array([0, 1]), 1, "diff", d_fixed=1.0)
    np.testing.assert_allclose(v, [1.0, 1.0])
    np.testing.assert_allclose(lg, [[1.0, 0.3], [0.3, 1.0]])
    # at 0.7 the step down shrinks least → 0
    v, _ = propose_fixed(net, np.array([0.7, 0.7]), np.array([0, 1]), 1, "diff", d_fixed=1.0)
    np.testing.assert_allclose(v, [0.0, 0.0])
    # only one option feasible: taken, whatever the objective (pixel 0 at 0.1, d = 0.25 → 0.35)
    v, _ = propose_fixed(net, np.array([0.1, 0.9]), np.array([0, 1]), 1, "diff", d_fixed=0.25)
    np.testing.assert_allclose(v, [0.35, 0.65])
    # both feasible: the better objective (pixel 0 down, pixel 1 up)
    v, _ = propose_fixed(net, np.array([0.5, 0.5]), np.array([0, 1]), 1, "diff", d_fixed=0.25)
    np.testing.assert_allclose(v, [0.25, 0.75])
    # at the box edge with d = 1 the move is the full flip
    v, _ = propose_fixed(net, np.array([0.0, 1.0]), np.array([0, 1]), 1, "diff", d_fixed=1.0)
    np.testing.assert_allclose(v, [1.0, 0.0])


# ---- local point escapes -------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 5])
def test_random_escape_changes_exactly_k_pixels(k):
    rng = np.random.default_rng(3)
    x = np.random.default_rng(0).uniform(size=50)
    x[:5] = [0.0, 0.5, 1.0, 0.51, 0.2]
    for _ in range(20):
        y, changed = escape_random(x, rng, k)
        assert len(changed) == k and np.count_nonzero(y != x) == k
        np.testing.assert_array_equal(np.flatnonzero(y != x), changed)
        np.testing.assert_array_equal(y[changed], np.where(x[changed] <= 0.5, 1.0, 0.0))


def test_guided_escape_respects_the_mask():
    rng = np.random.default_rng(1)
    mask_d = np.linspace(0.0, 1.0, 101)
    x = np.full(101, 0.4)
    high, low = mask_d > 0.65, mask_d < 0.02
    for _ in range(30):
        y, changed = escape_guided(x, mask_d, rng, p_h=0.65, p_l=0.02, k=1)
        up, down = np.flatnonzero(y > x), np.flatnonzero(y < x)
        assert len(up) == 1 and len(down) == 1 and len(changed) == 2
        assert high[up].all() and (y[up] == 1.0).all()
        assert low[down].all() and (y[down] == 0.0).all()
    # "if not already 1 / 0": only the one eligible pixel of each pool can be chosen
    x = np.where(high, 1.0, 0.0)
    x[80], x[1] = 0.3, 0.7
    y, changed = escape_guided(x, mask_d, rng, p_h=0.65, p_l=0.02, k=1, max_iter=500)
    np.testing.assert_array_equal(changed, [1, 80])
    assert y[80] == 1.0 and y[1] == 0.0
    # nothing eligible: max_iter bounds the draws, nothing changes
    y, changed = escape_guided(np.where(high, 1.0, 0.0), mask_d, rng, 0.65, 0.02, k=1, max_iter=10)
    assert len(changed) == 0


# ---- the per-pixel subproblem: exact evaluation vs the thesis MILP -------------------------------
def _grid_max(net, x, j, d, objective, n=4001):
    grid = np.linspace(0.0, 1.0, n)
    return compute_objective(compute_pixel_outputs(net, x, np.full(n, j), grid), d, objective).max()


@pytest.mark.parametrize("objective", ["simple", "diff"])
def test_evaluate_equals_milp_small_network(objective):
    net = random_net([6, 7, 5, 4], seed=11, scale=2.0)
    x = np.random.default_rng(5).uniform(size=6)
    d = 2
    pixels = np.arange(6)
    values, objs, logits = maximise_pixels(net, x, pixels, d, objective)
    for j, v, o, lg in zip(pixels, values, objs, logits):
        xv = x.copy()
        xv[j] = v
        np.testing.assert_allclose(lg, net.forward(xv), atol=1e-12)  # value and objective agree
        mv, mo = solve_pixel_milp(net, x, int(j), d, objective)
        assert mo == pytest.approx(o, abs=1e-6)
        assert _grid_max(net, x, j, d, objective) <= o + 1e-12  # no grid point beats it


@pytest.mark.parametrize("objective", ["simple", "diff"])
def test_evaluate_equals_milp_dnn1(mnist_test, objective):
    net = load_network("dnn1")
    x, label = mnist_test.images[0], int(mnist_test.labels[0])
    d = (label + 5) % 10
    pixels = np.array([346, 347, 370, 406, 516, 100])  # interior and boundary maximisers, a dead pixel
    values, objs, _ = maximise_pixels(net, x, pixels, d, objective)
    for j, o in zip(pixels, objs):
        _, mo = solve_pixel_milp(net, x, int(j), d, objective)
        assert mo == pytest.approx(o, abs=1e-6)
        assert _grid_max(net, x, j, d, objective) <= o + 1e-12
    if objective == "diff":
        assert np.any((values > 1e-3) & (values < 1 - 1e-3))  # the test covers interior optima


def test_milp_subproblem_run_matches_evaluate_run():
    net = random_net([6, 7, 5, 4], seed=11, scale=2.0)
    x = np.random.default_rng(5).uniform(size=6)
    label = int(np.argmax(net.forward(x)))
    base = dict(neighbourhood="complete", escape="none", solve_rule="unbounded", objective="diff")
    a = run_cdh(net, x, label, CDHSettings(**base, subproblem="evaluate"))
    b = run_cdh(net, x, label, CDHSettings(**base, subproblem="milp"))
    assert a.iterations >= 2 and a.status == b.status and a.iterations == b.iterations
    np.testing.assert_allclose(a.x, b.x, atol=1e-6)


def test_evaluate_is_vectorised_fast_on_dnn5():
    net = load_network("dnn5")
    x = np.random.default_rng(0).uniform(size=784) * (np.random.default_rng(1).uniform(size=784) < 0.2)
    start = time.perf_counter()
    values, objs, _ = maximise_pixels(net, x, np.arange(784), 3, "diff")
    assert time.perf_counter() - start < 1.0
    for j in (150, 400, 600):
        assert _grid_max(net, x, j, 3, "diff", 1001) <= objs[j] + 1e-12


# ---- runs on the shipped networks -----------------------------------------------------------------
@pytest.mark.parametrize("arch, index", [("dnn1", 0), ("dnn5", 0)])
def test_final_configuration_finds_verified_example(mnist_test, mnist_masks, arch, index):
    net = load_network(arch)
    x_bar, label = mnist_test.images[index], int(mnist_test.labels[index])
    assert net.predict(x_bar) == label
    res = run_cdh(net, x_bar, label, CDHSettings(), mnist_masks)  # defaults: thesis final config
    assert res.status == "found"
    d = (label + 5) % 10
    v = verify_witness(net, res.x, ProblemSpec("targeted", target=d), x_bar, label, d)
    assert v.verified and v.predicted == d
    assert res.l1 == pytest.approx(v.l1) and res.linf == pytest.approx(v.linf)
    assert res.ratio >= 1.2 and res.ratio == pytest.approx(v.ratio)
    assert np.all((res.x >= 0) & (res.x <= 1))
    changed = np.flatnonzero(res.x != x_bar)
    assert np.all(res.perturbed_counts[changed] >= 1)


def test_seeded_runs_are_deterministic(mnist_test, mnist_masks):
    net = load_network("dnn1")
    x_bar, label = mnist_test.images[2], int(mnist_test.labels[2])  # needs guided escapes
    runs = [run_cdh(net, x_bar, label, CDHSettings(seed=7), mnist_masks) for _ in range(2)]
    assert runs[0].escapes > 0
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    np.testing.assert_array_equal(runs[0].perturbed_counts, runs[1].perturbed_counts)
    assert (runs[0].iterations, runs[0].escapes) == (runs[1].iterations, runs[1].escapes)
    random = CDHSettings(seed=7, escape="random", k=2)
    a, b = (run_cdh(net, x_bar, label, random, mnist_masks) for _ in range(2))
    np.testing.assert_array_equal(a.x, b.x)


# ---- masks ----------------------------------------------------------------------------------------
class _Split:
    def __init__(self, images, labels):
        self.images, self.labels = images, labels


def test_masks_are_per_label_means(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 3)
    images = rng.uniform(size=(30, 784))
    masks = compute_masks(_Split(images, labels))
    assert masks.shape == (10, 784)
    np.testing.assert_allclose(masks[4], images[12:15].mean(axis=0))
    path = save_masks(masks, tmp_path / "masks.npz", png_path=tmp_path / "masks.png")
    np.testing.assert_array_equal(load_masks(path), masks)
    assert (tmp_path / "masks.png").stat().st_size > 1000
    with pytest.raises(AdvmilpError):
        compute_masks(_Split(images[:27], labels[:27]))   # label 9 has no image
    with pytest.raises(AdvmilpError):
        load_masks(tmp_path / "missing.npz")


def test_mnist_masks_look_like_digits(mnist_masks):
    assert mnist_masks.shape == (10, 784)
    assert 0 <= mnist_masks.min() and mnist_masks.max() <= 1
    centre, corner = mnist_masks.reshape(10, 28, 28)[:, 10:18, 10:18], mnist_masks.reshape(10, 28, 28)[:, :3, :3]
    assert np.all(corner < 0.01) and np.all(centre.mean(axis=(1, 2)) > 0.1)
    assert mnist_masks[1].sum() < mnist_masks[0].sum()   # a "1" covers fewer pixels than a "0"


def test_sparsify_holds_pixels_at_the_image_while_the_region_lp_stays_feasible(identity_net):
    # y = x, x̄ = (.8, .2), target 1 (y1 ≥ 1.2·y0 + m, y1 ≥ ε + m).  From x = (.5, .7) (two pixels moved):
    # holding x0 at .8 (the smaller move) leaves x1 = .96 + m; holding x1 too is infeasible: one pixel.
    from advmilp.heuristics.primal import sparsify
    from advmilp.spec.problems import ProblemSpec, criteria, input_box

    spec = ProblemSpec("targeted", target=1, norm="l0")
    x_bar = np.array([0.8, 0.2])
    x_lb, x_ub = input_box(spec, 2, x_bar)
    y = sparsify(identity_net, np.array([0.5, 0.7]), x_bar, criteria(spec, 0, 2)[0], spec.margin, x_lb, x_ub)
    assert y[0] == pytest.approx(0.8, abs=1e-9) and y[1] == pytest.approx(0.96 + spec.margin, abs=1e-6)
    assert np.count_nonzero(np.abs(y - x_bar) > 1e-9) == 1


def test_regions_solved_once_are_not_solved_again():
    # improve_by_regions with a shared `solved` table: a second start from the same point solves no LP and ends
    # at the same point; the table holds exactly the regions the first start solved; a fresh table, the same point.
    from advmilp.heuristics.primal import greedy_start, improve_by_regions, region_lp_model
    from advmilp.spec.problems import ProblemSpec, criteria, input_box

    net = random_net([20, 10, 8, 3], seed=5, scale=2.0)
    rng = np.random.default_rng(3)
    x_bar = rng.random(20)
    label = int(np.argmax(net.forward(x_bar)))
    spec = ProblemSpec("targeted", target=(label + 1) % 3)
    x_lb, x_ub = input_box(spec, 20, x_bar)
    criterion = criteria(spec, label, 3)[0]
    x0 = greedy_start(net, x_bar, criterion, spec.margin, x_lb, x_ub)
    assert x0 is not None
    solved = {}
    x1, lps1, _ = improve_by_regions(net, x0, x_bar, region_lp_model(net, criterion, spec.margin, x_bar, x_lb, x_ub),
                                     x_lb, x_ub, solved=solved)
    assert lps1 >= 2 and len(solved) == lps1          # it moved through regions, each solved once
    x2, lps2, _ = improve_by_regions(net, x0, x_bar, region_lp_model(net, criterion, spec.margin, x_bar, x_lb, x_ub),
                                     x_lb, x_ub, solved=solved)
    assert lps2 == 0 and np.array_equal(x1, x2)
    x3, lps3, _ = improve_by_regions(net, x0, x_bar, region_lp_model(net, criterion, spec.margin, x_bar, x_lb, x_ub),
                                     x_lb, x_ub)
    assert lps3 == lps1 and np.abs(x3 - x_bar).sum() == pytest.approx(np.abs(x1 - x_bar).sum(), rel=1e-9)
