"""Branch-and-bound over ReLU phases: hand-computed optimum and root bound, region LPs equal the
dense reference, optima equal the thesis MILP's, bounds under a node limit are valid."""

import numpy as np
import pytest

from advmilp.bounds.compute import interval_bounds
from advmilp.spec.problems import input_box
from advmilp.search.branching import DeepestLayerBranching, DualHeightBranching, PseudocostBranching
from advmilp.search.options import SearchOptions
from advmilp.nn.activations import ACTIVE, INACTIVE
from advmilp.search.phase_bb import PhaseLP, RaceShares, SearchProgress, search_phases
from advmilp.heuristics.primal import affine_maps, hidden_pattern
from advmilp.solvers.highs import HighsLP
from advmilp.spec.problems import ProblemSpec, targeted_criterion

from tests.nets import dense_rows, random_net, small_targeted_instance, targeted_problem


def test_threshold_net_by_hand(threshold_net):
    # h = relu(x0 − .5), y = (.5, 4h); x̄ = (.2, .3) is class 0; target 1 needs 4h ≥ 1.2·.5 + margin,
    # i.e. x0 ≥ .65 + margin/4: optimum .45 + margin/4.  The box bounds of h's pre-activation are
    # [−.5, .5], so the root LP has the triangle a ≤ .5·y + .25: a ≥ .15 + margin/4 needs only
    # y ≥ −.2 + margin/2, i.e. x0 ≥ .3 + margin/2: root bound .1 + margin/2.
    spec = ProblemSpec("targeted", target=1)
    x_bar = np.array([0.2, 0.3])
    box = interval_bounds(threshold_net)
    lo, up = np.zeros(2), np.ones(2)
    m = spec.margin
    r = search_phases(threshold_net, box, targeted_problem(threshold_net, spec, x_bar, 0, lo, up))
    assert r.status == "optimal" and r.binaries == 1
    assert r.objective == pytest.approx(0.45 + m / 4, abs=1e-9)
    assert r.bound == pytest.approx(r.objective, abs=1e-9)
    assert r.x == pytest.approx([0.65 + m / 4, 0.3], abs=1e-9)
    root = search_phases(threshold_net, box, targeted_problem(threshold_net, spec, x_bar, 0, lo, up),
                         options=SearchOptions(max_nodes=1))
    assert root.status == "limit" and root.x is None
    assert root.bound == pytest.approx(0.1 + m / 2, abs=1e-9)
    # a cap below the optimum leaves no point: infeasible, nothing found
    none = search_phases(threshold_net, box, targeted_problem(threshold_net, spec, x_bar, 0, lo, up, cap=0.4))
    assert none.status == "infeasible" and none.x is None


# An independent oracle: the region LP written out densely from the region's affine maps (not from
# the encoder table that PhaseLP uses).
def _criterion_rows(spec: ProblemSpec, target: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """G y ≥ h for the targeted criterion on logits (with the model's safety margin)."""
    rows, rhs = [], []
    for j in range(n_out):
        if j != target:
            g = np.zeros(n_out)
            g[target], g[j] = 1.0, -spec.ratio
            rows.append(g)
            rhs.append(spec.margin)
    g = np.zeros(n_out)
    g[target] = 1.0
    rows.append(g)
    rhs.append(spec.epsilon + spec.margin)
    return np.array(rows), np.array(rhs)


def region_lp(network, pattern: list[np.ndarray], x_bar: np.ndarray, spec: ProblemSpec,
              target: int, x_lb: np.ndarray, x_ub: np.ndarray, l1_cap: float | None = None) -> np.ndarray | None:
    """The minimal-L1 adversarial point inside one activation region (None if infeasible)."""
    n = len(x_bar)
    maps = affine_maps(network, pattern)
    blocks, lo, hi = [], [], []
    for (M, c), phase in zip(maps[:-1], pattern):
        base = M @ x_bar + c
        blocks.append(M)
        lo.append(np.where(phase, -base, -np.inf))   # active:   M x + c ≥ 0
        hi.append(np.where(phase, np.inf, -base))    # inactive: M x + c ≤ 0
    M, c = maps[-1]
    G, h = _criterion_rows(spec, target, network.n_outputs)
    GM = G @ M
    blocks.append(GM)
    lo.append(h - (GM @ x_bar + G @ c))
    hi.append(np.full(len(h), np.inf))
    A = np.vstack(blocks)
    A = np.hstack([A, -A])                     # columns p then m
    row_lo, row_hi = np.concatenate(lo), np.concatenate(hi)
    if l1_cap is not None:
        A = np.vstack([A, np.ones(2 * n)])
        row_lo = np.append(row_lo, -np.inf)
        row_hi = np.append(row_hi, l1_cap)
    col_lo = np.zeros(2 * n)
    col_hi = np.concatenate([x_ub - x_bar, x_bar - x_lb])
    lp = HighsLP()
    lp.add_cols(col_lo, col_hi, np.ones(2 * n))
    lp.add_rows(row_lo, row_hi, *dense_rows(A))
    if lp.run()[0] != "optimal":
        return None
    pm = lp.values()
    return np.clip(x_bar + pm[:n] - pm[n:], x_lb, x_ub)


@pytest.mark.parametrize("seed", [1, 2, 5])   # seeds whose random nets predict more than one class
def test_region_solve_equals_dense_region_lp(seed):
    """All phases fixed to a point's pattern: the persistent LP's optimum is the dense region LP's."""
    net = random_net([12, 6, 5, 3], seed=seed, scale=2.0)
    rng = np.random.default_rng(seed)
    x_bar = rng.random(12)
    label = int(net.predict(x_bar))
    lo, up = np.zeros(12), np.ones(12)
    compared = 0
    for x in rng.random((40, 12)):
        target = int(net.predict(x))
        if target == label:
            continue
        spec = ProblemSpec("targeted", target=target)   # x's region is a candidate
        G, h = targeted_criterion(spec, target, net.n_outputs)
        lp = PhaseLP(net, interval_bounds(net), x_bar, lo, up, G, h + spec.margin, None)
        pattern = hidden_pattern(net, x)
        ref = region_lp(net, pattern, x_bar, spec, target, lo, up)
        lp.set_phases(np.where(np.concatenate(pattern), ACTIVE, INACTIVE).astype(np.int8))
        status, obj, col = lp.solve(10.0)
        if ref is None:
            assert status == "infeasible"
            continue
        compared += 1
        assert status == "optimal"
        assert obj == pytest.approx(np.abs(ref - x_bar).sum(), rel=1e-6, abs=1e-8)
        assert np.abs(lp.point(col, lo, up) - x_bar).sum() == pytest.approx(obj, rel=1e-6, abs=1e-8)
    assert compared >= 3


@pytest.mark.parametrize("seed", range(6))
def test_search_equals_thesis_model_and_bounds_are_valid(seed):
    inst = small_targeted_instance(seed)
    net, x_bar, label, spec, box, plain = inst.net, inst.x_bar, inst.label, inst.spec, inst.box, inst.plain
    lo, up = input_box(spec, 16, x_bar)
    r = search_phases(net, box, targeted_problem(net, spec.with_(output_relu=False), x_bar, label, lo, up))
    if plain.row["status"] == "infeasible":
        assert r.status == "infeasible"
        return
    assert plain.row["status"] == "optimal" and r.status == "optimal"
    opt = plain.row["objective"]
    assert r.objective == pytest.approx(opt, rel=1e-4, abs=1e-6)
    assert r.bound <= opt * (1 + 1e-6) + 1e-9
    # from the optimum as incumbent with its cap, and cold: the same optimum, proven, with and
    # without root cuts
    for options in (SearchOptions(), SearchOptions(cut_rounds=5), SearchOptions(branching=DeepestLayerBranching()),
                    SearchOptions(race=(DeepestLayerBranching(),), race_after=0.0),
                    SearchOptions(branching=PseudocostBranching(reliable=1), cut_rounds=5),
                    SearchOptions(branching=PseudocostBranching(), race=(DeepestLayerBranching(),), race_after=0.0)):
        again = search_phases(net, box, targeted_problem(net, spec, x_bar, label, lo, up, opt * 1.01 + 1e-6), r.x, options)
        assert again.status == "optimal" and again.objective == pytest.approx(opt, rel=1e-4, abs=1e-6), options
        cold = search_phases(net, box, targeted_problem(net, spec, x_bar, label, lo, up), options=options)
        assert cold.status == "optimal" and cold.objective == pytest.approx(opt, rel=1e-4, abs=1e-6), options
        assert cold.bound <= opt * (1 + 1e-6) + 1e-9
        assert (cold.cuts > 0) == bool(options.cut_rounds)   # the cuts are exercised (and valid)
    # stopped early, the bound is still a bound on the optimum (alone, and racing from the start)
    for k in (1, 2, 3, 5):
        for race in ((), (DeepestLayerBranching(),)):
            early = search_phases(net, box, targeted_problem(net, spec, x_bar, label, lo, up),
                                  options=SearchOptions(max_nodes=k, race=race, race_after=0.0))
            assert early.bound <= opt * (1 + 1e-6) + 1e-9
            if early.x is not None:
                assert early.objective >= opt * (1 - 1e-6) - 1e-9


class _Layers:
    """What a branching rule may read of a PhaseLP: here only each unit's layer."""
    layer_of = np.array([0, 0, 0, 1, 1, 2, 2])


def test_deepest_layer_branching_takes_the_largest_violation_of_the_deepest_layer_off_its_relu():
    rule = DeepestLayerBranching()
    L, U = -np.ones(7), np.ones(7)
    viol = np.array([0.9, 0.0, 0.5, 0.2, 0.3, 0.0, 1e-12])
    assert rule.select(_Layers(), None, viol, 1e-9, L, U) == 4          # layer 2 is on its ReLUs: layer 1's largest
    viol[6] = 0.01
    assert rule.select(_Layers(), None, viol, 1e-9, L, U) == 6          # now layer 2's only unit off it
    viol[3:] = 0.0
    assert rule.select(_Layers(), None, viol, 1e-9, L, U) == 0          # only layer 0 left: its largest


class _Parts:
    """What `PseudocostBranching` reads of a PhaseLP: the units' duals and their LP parts (a, s)."""
    def __init__(self, duals, a, s):
        self.duals, self.a, self.s = np.asarray(duals, float), np.asarray(a, float), np.asarray(s, float)

    def unit_duals(self):
        return self.duals

    def unit_parts(self, col):
        return self.a, self.s


def test_pseudocosts_score_the_product_of_the_predicted_gains_from_what_the_children_gained():
    rule = PseudocostBranching(reliable=2).for_search(3)
    # unit 0: fixed active twice (gain 1 over s = .5, gain 3 over s = 1: Ψ = 2.5), inactive twice (gain .2
    # over a = .4, gain .4 over a = .4: Ψ = .75); unit 1 active twice (Ψ = 1), inactive once (not yet
    # reliable); a gain below 0 counts as 0, a part of 0 is not heard
    for unit, active, gain, part in ((0, True, 1.0, 0.5), (0, True, 3.0, 1.0), (0, False, 0.2, 0.4), (0, False, 0.4, 0.4),
                                     (1, True, 0.5, 0.5), (1, True, -1.0, 0.5), (1, True, 0.1, 0.0),
                                     (1, False, 0.3, 0.1), (1, True, 0.7, 0.7)):
        rule.observe(unit, active, gain, part)
    psi, count = rule.pseudocosts()
    assert psi[1] == pytest.approx([2.5, 2.0 / 3.0, 0.0]) and psi[0] == pytest.approx([0.75, 3.0, 0.0])
    assert count.tolist() == [[2, 1, 0], [2, 3, 0]]
    L, U = np.array([-1.0, -2.0, -1.0]), np.array([1.0, 2.0, 3.0])       # triangle heights .5, 1, .75
    lp = _Parts(duals=[0.1, 0.2, 0.4], a=[0.2, 0.3, 0.5], s=[0.4, 0.1, 0.5])
    viol = np.array([0.2, 0.1, 0.5])
    score = rule.compute_scores(lp, None, viol, 1e-9, L, U)
    # unit 0: (2.5·.4)·(.75·.2); unit 1: (2/3·.1)·(dual × height .2·1, its inactive side unreliable);
    # unit 2: both sides dual × height, .4·.75
    assert score == pytest.approx([1.0 * 0.15, (0.2 / 3.0) * 0.2, 0.3 * 0.3])
    assert rule.select(lp, None, viol, 1e-9, L, U) == 0
    viol[0] = 0.0                                      # on its ReLU: not a candidate
    assert rule.compute_scores(lp, None, viol, 1e-9, L, U)[0] == -1.0
    assert rule.select(lp, None, viol, 1e-9, L, U) == 2
    # every candidate predicted to gain nothing: scores 0, and select takes the largest violation
    nothing = _Parts(duals=[0.0, 0.0, 0.0], a=[0.0, 0.3, 0.5], s=[0.0, 0.0, 0.0])
    viol = np.array([0.0, 0.6, 0.5])
    assert rule.compute_scores(nothing, None, viol, 1e-9, L, U).tolist() == [-1.0, 0.0, 0.0]
    assert rule.select(nothing, None, viol, 1e-9, L, U) == 1


def test_every_search_gets_its_own_pseudocost_table():
    template = PseudocostBranching()
    with pytest.raises(RuntimeError, match="for_search"):
        template.observe(0, True, 1.0, 1.0)
    one, two = template.for_search(2), template.for_search(2)
    one.observe(1, False, 1.0, 0.5)
    assert one.pseudocosts()[0][0, 1] == 2.0 and two.pseudocosts()[1].sum() == 0
    stateless = DualHeightBranching()
    assert stateless.for_search(5) is stateless                 # a rule without a table is shared as it is


class _Listening(DualHeightBranching):
    """Dual × height that records what the search tells it."""
    def __init__(self):
        self.heard = []

    def observe(self, unit, active, gain, part):
        self.heard.append((unit, active, gain, part))


def test_the_search_tells_the_rule_what_each_split_gained(threshold_net):
    # the root LP point of test_threshold_net_by_hand: x0 = .3 + m/2, pre y = −.2 + m/2, a = .15 + m/4 (the
    # triangle's top), s = a − y = .35 − m/4.  y < 0: the inactive child first, infeasible without an
    # incumbent (nothing heard); then the active child, optimal at .45 + m/4: a gain of .35 − m/4 over the
    # root's .1 + m/2, with s = .35 − m/4 zeroed
    spec = ProblemSpec("targeted", target=1)
    rule = _Listening()
    m = spec.margin
    r = search_phases(threshold_net, interval_bounds(threshold_net),
                      targeted_problem(threshold_net, spec, np.array([0.2, 0.3]), 0, np.zeros(2), np.ones(2)),
                      options=SearchOptions(branching=rule))
    assert r.status == "optimal" and r.nodes == 3
    assert len(rule.heard) == 1
    unit, active, gain, part = rule.heard[0]
    assert (unit, active) == (0, True)
    assert gain == pytest.approx(0.35 - m / 4, abs=1e-9) and part == pytest.approx(0.35 - m / 4, abs=1e-9)


def test_the_search_never_hears_a_child_below_its_parent():
    net, box, problem = _logit_problem(2)
    rule = _Listening()
    r = search_phases(net, box, problem, options=SearchOptions(branching=rule))
    assert r.status == "optimal" and len(rule.heard) > 5
    assert all(part > 0 and gain >= -1e-7 for _, _, gain, part in rule.heard)


def _logit_problem(seed: int):
    """(network, box bounds, targeted problem on the logits) of `small_targeted_instance` ``seed``."""
    inst = small_targeted_instance(seed)
    spec = inst.spec.with_(output_relu=False)
    lo, up = input_box(spec, 16, inst.x_bar)
    return inst.net, inst.box, targeted_problem(inst.net, spec, inst.x_bar, inst.label, lo, up)


def test_a_race_ends_with_both_searches_effort_and_a_settled_status():
    net, box, problem = _logit_problem(1)
    alone = search_phases(net, box, problem)
    raced = search_phases(net, box, problem, options=SearchOptions(race=(DeepestLayerBranching(),), race_after=0.0))
    assert alone.status == raced.status == "optimal" and alone.nodes > 3
    assert raced.objective == pytest.approx(alone.objective, rel=1e-4)
    assert raced.bound == pytest.approx(raced.objective, rel=1e-4)
    # node for node in turn until the first review of the shares (64 nodes): under a node limit each search
    # takes its own three nodes
    capped = SearchOptions(max_nodes=3, race=(DeepestLayerBranching(),), race_after=0.0)
    assert search_phases(net, box, problem, options=capped).nodes == 6
    assert search_phases(net, box, problem, options=SearchOptions(max_nodes=3)).nodes == 3
    # joined only after race_after: a search that ends first is the search alone, node for node
    late = search_phases(net, box, problem, options=SearchOptions(race=(DeepestLayerBranching(),), race_after=1e9))
    assert late.nodes == alone.nodes and late.objective == alone.objective


def _deal(shares: RaceShares, rates: list[float], target: float, n: int) -> list[int]:
    """Deal ``n`` nodes to searches whose own bounds rise by ``rates`` per node of their own."""
    progress = [SearchProgress() for _ in rates]
    for _ in range(n):
        shares.review(progress, target)
        i = shares.pick(progress)
        progress[i].nodes += 1
        for p, r in zip(progress, rates):
            p.own = r * p.nodes
    return [p.nodes for p in progress]


def _review(shares: RaceShares, past: list[list[tuple[int, float]]], now: list[tuple[int, float]],
            target: float) -> list[float]:
    """The weights after one review at ``now`` (nodes, own bound) per search, ``past`` their earlier reviews."""
    shares.history = [list(h) for h in past]
    shares.since = [0] * len(now)
    shares.review([SearchProgress(nodes=n, own=b) for n, b in now], target)
    return shares.weights


def test_race_shares_give_the_search_nearest_the_incumbent_all_but_the_trailing_share():
    # the bound that would reach the incumbent first leads, even at a lower rate: 9.5 of 10 rising 0.2 over
    # the last 300 nodes (750 nodes to go) against 0.95 rising 0.25 (10,860 nodes to go)
    past = [[(0, 0.0), (700, 9.3)], [(0, 0.0), (700, 0.7)]]
    assert _review(RaceShares([SearchProgress()] * 2, 0.25), past, [(1000, 9.5), (1000, 0.95)], 10.0) == [0.75, 0.25]
    assert _review(RaceShares([SearchProgress()] * 2, 0.25), past[::-1], [(1000, 0.95), (1000, 9.5)],
                   10.0) == [0.25, 0.75]
    three = RaceShares([SearchProgress()] * 3, 0.25)
    assert _review(three, [past[0], past[1], past[1]], [(1000, 9.5), (1000, 0.95), (1000, 0.95)],
                   10.0) == [0.5, 0.25, 0.25]


def test_race_shares_grow_with_the_leaders_doubt_up_to_equal():
    past = [[(0, 0.0), (700, 9.3)], [(0, 0.0), (700, 0.7)]]
    # the leader projects 4,000 nodes to go (rate 0.2 per 300 nodes, 2.667 to go) after 1,000 of its own:
    # four times the trailing share
    weights = _review(RaceShares([SearchProgress()] * 2, 1 / 32), past, [(1000, 9.5), (1000, 0.95)], 9.5 + 8 / 3)
    assert weights == pytest.approx([7 / 8, 1 / 8])
    # within its past: the trailing share alone; far beyond it: node for node
    assert _review(RaceShares([SearchProgress()] * 2, 1 / 32), past, [(1000, 9.5), (1000, 0.95)],
                   9.6) == [1 - 1 / 32, 1 / 32]
    assert _review(RaceShares([SearchProgress()] * 2, 1 / 32), past, [(1000, 9.5), (1000, 0.95)],
                   1e9) == [0.5, 0.5]
    # dealt over 6,400 nodes, a bound 1e9 away is never trusted: node for node
    assert _deal(RaceShares([SearchProgress(), SearchProgress()], 0.25), [0.01, 0.001], 1e9, 6400) == [3200, 3200]


def test_race_shares_refuse_a_share_that_leaves_the_leader_less_than_the_others():
    for share in (0.0, -0.1, 0.6):
        with pytest.raises(ValueError):
            RaceShares([SearchProgress(), SearchProgress()], share)
    with pytest.raises(ValueError):
        RaceShares([SearchProgress() for _ in range(3)], 0.4)


def test_race_shares_are_node_for_node_without_an_incumbent_or_a_rising_bound():
    assert _deal(RaceShares([SearchProgress(), SearchProgress()], 0.25), [0.01, 0.001], np.inf, 1000) == [500, 500]
    assert _deal(RaceShares([SearchProgress(), SearchProgress()], 0.25), [0.0, 0.0], 10.0, 1000) == [500, 500]


@pytest.mark.parametrize("seed", range(3))
def test_a_proven_floor_settles_an_incumbent_within_the_gap_and_bounds_the_rest(seed):
    inst = small_targeted_instance(seed)
    net, x_bar, label, spec, box = inst.net, inst.x_bar, inst.label, inst.spec.with_(output_relu=False), inst.box
    lo, up = input_box(spec, 16, x_bar)
    exact = search_phases(net, box, targeted_problem(net, spec, x_bar, label, lo, up))
    if exact.status != "optimal":
        pytest.skip("no adversarial point on this instance")
    opt = exact.objective
    problem = targeted_problem(net, spec, x_bar, label, lo, up, opt * 1.01 + 1e-6)
    # the optimum as incumbent and a floor within the gap of it: optimal without a node
    r = search_phases(net, box, problem, exact.x, floor=opt * (1 - 1e-5))
    assert r.status == "optimal" and r.nodes == 0 and r.bound == pytest.approx(opt * (1 - 1e-5))
    # a lower floor: the search runs and ends with the same optimum, its bound at least the floor
    r = search_phases(net, box, problem, exact.x, floor=0.5 * opt)
    assert r.status == "optimal" and r.objective == pytest.approx(opt, rel=1e-4) and r.bound >= 0.5 * opt
    stopped = search_phases(net, box, targeted_problem(net, spec, x_bar, label, lo, up), floor=0.5 * opt,
                            options=SearchOptions(max_nodes=1))
    assert 0.5 * opt <= stopped.bound <= opt * (1 + 1e-6)


def test_a_search_hands_off_at_its_instant_only_if_its_gap_is_wide():
    net, box, problem = _logit_problem(1)
    exact = search_phases(net, box, problem)
    assert exact.status == "optimal" and exact.nodes > 3
    # from the optimum, handed off at once with no gap allowed: the root LP's bound is below the
    # optimum (the search needed several nodes), so it stops after the root, its bound a bound
    start = exact.x
    stopped = search_phases(net, box, problem, start, SearchOptions(handoff_at=0.0, handoff_gap=0.0))
    assert stopped.status == "time_limit" and stopped.nodes == 1
    assert stopped.bound <= exact.objective * (1 + 1e-6)
    # a gap allowance no search exceeds: the search runs on to the optimum
    on = search_phases(net, box, problem, start, SearchOptions(handoff_at=0.0, handoff_gap=10.0))
    assert on.status == "optimal" and on.objective == pytest.approx(exact.objective, rel=1e-4)
    # no point at all yet (no incumbent): nothing to hand off, the search runs on
    cold = search_phases(net, box, problem, None, SearchOptions(handoff_at=0.0, handoff_gap=0.0))
    assert cold.status == "optimal"


@pytest.mark.parametrize("width, method", [(8, "simplex"), (80, "ipm")])
def test_the_first_lp_runs_interior_point_only_when_large(width, method):
    """A PhaseLP's first solve has no basis: interior point (with crossover) from `IPM_MIN_NONZEROS` up
    (VNN-COMP-sized LPs), simplex below (the thesis networks: the crossover's vertex set their searches on
    worse trees).  Later solves are simplex from the basis, and both give the LP's optimum."""
    from advmilp.search.phase_bb import IPM_MIN_NONZEROS

    net = random_net([784, width, 6, 10], seed=1, scale=1.0)
    x_bar = np.full(784, 0.5)
    G = np.zeros((1, 10))
    G[0, 3] = 1.0
    lp = PhaseLP(net, interval_bounds(net, np.zeros(784), np.ones(784)), x_bar, np.zeros(784), np.ones(784), G,
                 np.array([-1e6]), 10.0, price_pixels=False)     # (priced, the LP HiGHS gets is smaller)
    assert (lp.lp.n_nonzeros >= IPM_MIN_NONZEROS) == (method == "ipm")
    lp.set_phases(lp.root_phases())
    status, value, _ = lp.solve(60.0)
    assert status == "optimal" and value == pytest.approx(0.0, abs=1e-7)   # x̄ itself meets the loose row
    assert lp.lp.h.getOptionValue("solver")[1] == method
    lp.solve(60.0)
    assert lp.lp.h.getOptionValue("solver")[1] == "simplex"
