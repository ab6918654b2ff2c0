"""The speed pipeline: heuristic points are verified, ball bounds are sound, optima agree."""

from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from advmilp.methods.milp import SolverSettings, run_instance
from advmilp.bounds.ball import ball_bounds, knapsack_bounds
from advmilp.bounds.compute import Bounds, interval_bounds
from advmilp.cli import main
from advmilp.nn.network import load_network
from advmilp.methods.fast import run_fast
from advmilp.methods.tight import DEFAULT_POLICY, run_tight
from advmilp.heuristics.primal import find_adversarial
from advmilp.spec.problems import ProblemSpec
from advmilp.spec.verify import verify_witness

from tests.nets import mnist_dir, points_in_ball, random_net, small_targeted_instance

SPEC = ProblemSpec("targeted")


def test_knapsack_bounds_by_hand():
    # w = (1, −2, 3), x̄ = (.5, .5, .5), budget 1: max spends .5 on pixel 3 (+1.5) and .5 on
    # pixel 2 downwards (+1.0) from w·x̄ = 1 → 3.5; min mirrors it → −1.5.
    W = np.array([[1.0, -2.0, 3.0]])
    lo, up = knapsack_bounds(W, np.zeros(1), np.full(3, 0.5), 1.0, np.zeros(3), np.ones(3))
    assert up[0] == pytest.approx(3.5) and lo[0] == pytest.approx(-1.5)
    # a budget larger than the box: the box bound
    lo, up = knapsack_bounds(W, np.zeros(1), np.full(3, 0.5), 10.0, np.zeros(3), np.ones(3))
    assert up[0] == pytest.approx(4.0) and lo[0] == pytest.approx(-2.0)


@pytest.mark.parametrize("use_lp,lp_output", [(False, False), (True, False), (True, True)])
def test_ball_bounds_contain_points_of_the_ball_small_net(use_lp, lp_output):
    net = random_net([30, 12, 8, 6, 4], seed=4, scale=2.0)
    rng = np.random.default_rng(2)
    x_bar = rng.random(30)
    b = ball_bounds(net, x_bar, 2.0, use_lp=use_lp, lp_output=lp_output)
    assert b.contains(net.preactivations(points_in_ball(x_bar, 2.0, rng)))
    box = interval_bounds(net)
    for lo, up, blo, bup in zip(b.lower, b.upper, box.lower, box.upper):
        assert np.all(up - lo <= bup - blo + 1e-9)
    if use_lp:  # the LP pass is never looser than interval arithmetic over the same ball
        plain = ball_bounds(net, x_bar, 2.0, use_lp=False)
        for lo, up, plo, pup in zip(b.lower, b.upper, plain.lower, plain.upper):
            assert np.all(lo >= plo - 1e-9) and np.all(up <= pup + 1e-9)
        assert b.n_unstable() < plain.n_unstable() or b.n_unstable() == 0


@pytest.mark.parametrize("name", ["dnn1", "dnn5"])
def test_ball_bounds_contain_points_of_the_ball_shipped(name, mnist_test):
    net = load_network(name)
    x_bar = mnist_test.images[0]
    b = ball_bounds(net, x_bar, 5.0)
    pts = points_in_ball(x_bar, 5.0, np.random.default_rng(0))
    assert b.contains(net.preactivations(pts))
    assert b.n_unstable() < interval_bounds(net).n_unstable()


@pytest.mark.parametrize("sizes", [[40, 120, 100, 5], [40, 12, 8, 5]])
def test_ball_bounds_are_alpha_crown_sound_and_never_looser_than_crown(sizes):
    """The ball bounds are α-CROWN's on every network: they contain sampled activations of the ball and are
    nowhere looser than plain CROWN's over the same ball, and tighter somewhere."""
    from advmilp.bounds.crown import crown_bounds
    from advmilp.methods.tight import ball_bounds_for

    net = random_net(sizes, seed=7, scale=2.0)
    rng = np.random.default_rng(3)
    x_bar = rng.random(40)
    base = interval_bounds(net)
    b = ball_bounds_for(net, x_bar, 1.5, base, None)
    assert b.method == "alpha-crown-ball"
    assert b.contains(net.preactivations(points_in_ball(x_bar, 1.5, rng)))
    plain = crown_bounds(net, 0.0, 1.0, x_bar=x_bar, radius=1.5, base=base)
    for lo, up, plo, pup in zip(b.lower, b.upper, plain.lower, plain.upper):
        assert np.all(lo >= plo - 1e-9) and np.all(up <= pup + 1e-9)
    assert sum(np.sum(up - lo) for lo, up in zip(b.lower, b.upper)) < \
        sum(np.sum(up - lo) for lo, up in zip(plain.lower, plain.upper))


def test_heuristic_points_are_verified(mnist_test):
    net = load_network("dnn1")
    pool = mnist_test.images[5000:9000]
    found = 0
    for i in range(6):
        x_bar, label = mnist_test.images[i], int(mnist_test.labels[i])
        r = find_adversarial(net, x_bar, label, SPEC, pool=pool, time_limit=5)
        if r.found:
            found += 1
            check = verify_witness(net, r.x, SPEC, x_bar, label, SPEC.target_for(label))
            assert check.verified and check.l1 == pytest.approx(r.l1)
    assert found >= 5


def test_the_pipeline_heuristic_takes_as_many_pool_starts_as_the_policy_says(mnist_test):
    # more starts from the nearest training images: never a worse point (the same first starts and more),
    # and a better one on some images; none: no point from the pool
    from advmilp.methods.tight import tight_heuristic

    net = load_network("dnn5")
    pool = mnist_test.images[5000:9000]
    better = 0
    for i in range(12):
        x_bar, label = mnist_test.images[i], int(mnist_test.labels[i])
        few, many, none = (tight_heuristic(net, x_bar, label, SPEC, 300, pool,
                                           policy=replace(DEFAULT_POLICY, pool_starts=k)) for k in (2, 10, 0))
        assert none.start != "pool"
        if few.found:
            assert many.found and many.l1 <= few.l1 * (1 + 1e-9)
            better += many.l1 < few.l1 * 0.999
    assert better >= 1


@pytest.mark.parametrize("path", ["phase-search", "ladder", "small-model", "cuts-and-presolve"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tight_equals_thesis_model_on_small_networks(seed, path):
    # the phase search (directly, or through the radius ladder at once) and both MILP settings of the
    # pipeline: the small-model one (no cuts, no presolve) and the other
    policy = replace(DEFAULT_POLICY, phase_search=path in ("phase-search", "ladder"),
                     small_milp_binaries=10**6 if path == "small-model" else -1,
                     ladder_after=0.0 if path == "ladder" else DEFAULT_POLICY.ladder_after,
                     ladder_gap=0.0 if path == "ladder" else DEFAULT_POLICY.ladder_gap)
    inst = small_targeted_instance(seed)
    net, x_bar, label, spec, box, plain = inst.net, inst.x_bar, inst.label, inst.spec, inst.box, inst.plain
    pool = inst.rng.random((400, 16))
    tight = run_tight(net, box, spec, SolverSettings(time_limit=60), x_bar, label, 0, pool=pool, policy=policy)
    assert plain.row["status"] == tight.row["status"]
    if plain.row["status"] == "optimal":
        assert tight.row["verified"] and plain.row["verified"]
        assert tight.row["objective"] == pytest.approx(plain.row["objective"], rel=1e-4, abs=1e-6)
        if path != "phase-search":
            assert (tight.row["cuts"] == 0) == (path == "small-model")
        assert (tight.row["solver"] == "advmilp-phase-bb") == (path in ("phase-search", "ladder"))


def test_unstable_count_and_tight_settings_by_hand():
    from advmilp.methods.tight import tight_settings, unstable_count

    small_options = {"mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False, "presolve": "off"}

    net = random_net([4, 3, 2, 2], seed=0)
    # layer 1: one unstable unit (-1, 2); layer 2: two ((-3, 1), (-0.5, 0.5)); a zero-width unit
    # at 0 and the output layer (linear) do not count
    b = Bounds([np.array([-1.0, 0.0, 1.0]), np.array([-3.0, -0.5]), np.array([-9.0, -9.0])],
               [np.array([2.0, 0.0, 3.0]), np.array([1.0, 0.5]), np.array([9.0, 9.0])], "test")
    assert unstable_count(b, net) == 3
    assert tight_settings(b, net) == (small_options, 0)
    many = Bounds([np.full(3, -1.0), np.full(2, -1.0), b.lower[2]], [np.full(3, 1.0), np.full(2, 1.0), b.upper[2]],
                  "test")
    assert unstable_count(many, net) == 5
    policy = replace(DEFAULT_POLICY, small_milp_binaries=4)
    options, rounds = tight_settings(many, net, policy)
    assert rounds == DEFAULT_POLICY.cut_rounds == 20
    # the models with root cuts: no HiGHS cut separation at the nodes, RINS/RENS off, presolve on
    assert options["mip_allow_cut_separation_at_nodes"] is False and "presolve" not in options
    assert options["mip_heuristic_run_rins"] is False
    assert tight_settings(b, net, policy) == (small_options, 0)
    assert tight_settings(many, net) == (small_options, 0)    # 5 binaries: small by default (≤ 24)


@pytest.mark.parametrize("image", [0, 2, 4])
def test_tight_equals_thesis_model_on_dnn1(image, mnist_test, monkeypatch):
    net = load_network("dnn1")
    x_bar, label = mnist_test.images[image], int(mnist_test.labels[image])
    box = interval_bounds(net)
    settings = SolverSettings(time_limit=120)
    plain = run_instance(net, box, SPEC, settings, x_bar, label, image)            # thesis-faithful
    tight = run_tight(net, box, SPEC, settings, x_bar, label, image, pool=mnist_test.images[5000:9000])
    assert plain.row["status"] == tight.row["status"] == "optimal"
    assert plain.row["verified"] and tight.row["verified"]
    assert tight.row["objective"] == pytest.approx(plain.row["objective"], rel=1e-4)
    # a poor incumbent (the greedy start without its region LPs): a wider ball, the same optimum
    import advmilp.methods.tight as pipeline
    from advmilp.heuristics.primal import PrimalResult, greedy_start
    from advmilp.spec.problems import criteria

    def poor_start(network, x_bar, label, spec, **kw):
        (criterion,) = criteria(spec, label, network.n_outputs)
        g = greedy_start(network, x_bar, criterion, spec.margin, np.zeros(784), np.ones(784))
        return PrimalResult(g, float(np.abs(g - x_bar).sum()), True, 0.0, 0, "greedy", 0)

    monkeypatch.setattr(pipeline, "find_adversarial", poor_start)
    poor = run_tight(net, box, SPEC, settings, x_bar, label, image)
    assert poor.row["heuristic_l1"] > 1.01 * plain.row["objective"]
    assert poor.row["status"] == "optimal" and poor.row["verified"]
    assert poor.row["objective"] == pytest.approx(plain.row["objective"], rel=1e-4)
    # the same from the poor start through the radius ladder (the direct search given no time): its
    # rungs between the certified floor and the poor incumbent prove floors, then the optimum
    ladder = run_tight(net, box, SPEC, settings, x_bar, label, image, policy=replace(DEFAULT_POLICY, ladder_after=0.0, ladder_gap=0.0))
    assert ladder.row["status"] == "optimal" and ladder.row["verified"]
    assert ladder.row["objective"] == pytest.approx(plain.row["objective"], rel=1e-4)
    for limit in (0.2, 0.5):     # stopped on a rung: what it reports is still a bound on the optimum
        early = run_tight(net, box, SPEC, SolverSettings(time_limit=limit), x_bar, label, image,
                          policy=replace(DEFAULT_POLICY, ladder_after=0.0, ladder_gap=0.0))
        assert not early.row["bound"] > plain.row["objective"] * (1 + 1e-4)


def test_fast_rows(mnist_test):
    net = load_network("dnn1")
    r = run_fast(net, interval_bounds(net), SPEC, SolverSettings(time_limit=10), mnist_test.images[0],
                 int(mnist_test.labels[0]), 0, pool=mnist_test.images[5000:9000])
    assert r.row["status"] == "found" and r.row["verified"] and r.row["method"] == "fast"


def test_cli_export_onnx_then_attack_the_file(tmp_path):
    pytest.importorskip("onnx")
    data = mnist_dir()
    if data is None:
        pytest.skip("MNIST not found")
    runner = CliRunner()
    out = tmp_path / "dnn1.onnx"
    r = runner.invoke(main, ["export", "--arch", "dnn1", "--onnx", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["attack", "--model", str(out), "--image", "0", "--method", "tight", "--bounds",
                             "basic", "--time-limit", "60", "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    assert "optimal" in r.output and "4.97822" in r.output
    r = runner.invoke(main, ["export-vnnlib", "--arch", "dnn1", "--out", str(tmp_path / "vnn"), "--epsilon",
                             "0.02", "--images", "2", "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "vnn" / "instances.csv").read_text().splitlines()) == 2


@pytest.mark.parametrize("status, verified, bound, expected", [
    ("optimal", False, 0.64, "optimal"),       # the solver's point failed the check, the verified one meets the bound
    ("optimal", False, 0.50, "unproven"),      # ... but leaves a gap: not solved, and no time limit was reached
    ("time_limit", True, 0.50, "time_limit"),  # a time limit stays one
    ("error", False, float("nan"), "unproven"),
])
def test_a_fallback_to_the_best_verified_point_is_labelled_by_what_happened(identity_net, status, verified, bound,
                                                                           expected):
    """identity net, x̄ = (0.8, 0.2), target 1: x = (0.16, 0.2) is adversarial (0.2 ≥ 1.2·0.16) at L1 0.64."""
    from types import SimpleNamespace

    from advmilp.bounds.compute import interval_bounds
    from advmilp.methods.result import InstanceResult
    from advmilp.methods.tight import _finish
    from advmilp.spec.rows import is_solved, make_row

    spec, x_bar, best_x = ProblemSpec("targeted", target=1), np.array([0.8, 0.2]), np.array([0.16, 0.2])
    row = make_row(network="identity", method="tight", status=status, verified=verified, objective=0.7, l1=0.7,
                   bound=bound, gap_rel=1e-4)
    h = SimpleNamespace(x=best_x, l1=0.64)
    res = _finish(InstanceResult(row), identity_net, interval_bounds(identity_net), spec, x_bar, 0, h, best_x, 0.64,
                  0.0, 0.0)
    assert res.row["status"] == expected and res.row["verified"] and res.row["l1"] == pytest.approx(0.64)
    assert is_solved(res.row) == (expected == "optimal")
