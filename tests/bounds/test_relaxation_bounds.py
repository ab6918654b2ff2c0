"""Bounds tightened over the tight problem's LP relaxation (`methods.tight.tighten_over_criteria`): sound for
every feasible point, never looser, and the pipeline that uses them (up front or after a restart) keeps the
thesis model's optimum."""

from dataclasses import replace

import numpy as np
import pytest

from advmilp.methods.milp import SolverSettings
from advmilp.methods.tight import DEFAULT_POLICY, tighten_over_criteria
from advmilp.bounds.ball import ball_bounds
from advmilp.spec.problems import ProblemSpec, criteria

from tests.nets import points_in_ball, random_net, small_targeted_instance


def feasible_points(net, x_bar, spec, target, rng, n=40):
    """The ``n`` points nearest to x̄ (in L1) among random points of the box and of L1 balls that
    satisfy the model's criteria on the logits (margin included), and the largest of their distances."""
    pts = np.vstack([rng.random((100000, x_bar.size))] +
                    [points_in_ball(x_bar, r, rng, n=20000) for r in (1.0, 2.0, 4.0)])
    out = net.forward(pts)
    others = np.delete(out, target, axis=1)
    ok = (out[:, target] >= spec.epsilon + spec.margin) & \
         np.all(out[:, [target]] - spec.ratio * others >= spec.margin, axis=1)
    pts = pts[ok]
    if len(pts) < n:
        return None, 0.0
    dist = np.abs(pts - x_bar).sum(axis=1)
    near = np.argsort(dist)[:n]
    return pts[near], float(dist[near].max())


@pytest.mark.parametrize("problem", ["targeted", "untargeted"])
def test_relaxation_bounds_contain_every_feasible_point_and_are_never_looser(problem):
    tighter = 0
    for seed in range(4):
        net = random_net([12, 10, 8, 3], seed=seed, scale=2.5)
        rng = np.random.default_rng(seed)
        x_bar = rng.random(12)
        label = int(net.predict(x_bar))
        for target in {0, 1, 2} - {label}:       # a target the sampling reaches
            spec = ProblemSpec("targeted", target=target, output_relu=False)
            pts, radius = feasible_points(net, x_bar, spec, target, rng)
            if pts is not None:
                break
        assert pts is not None, f"seed {seed}: too few adversarial points sampled"
        if problem == "untargeted":     # those of the target's points that meet the untargeted criterion
            spec = ProblemSpec("untargeted", output_relu=False)
            y = net.forward(pts)
            meets = np.zeros(len(pts), bool)
            for c in criteria(spec, label, 3):
                meets |= np.all(y @ c.G.T >= c.h + spec.margin, axis=1)
            pts = pts[meets]
            assert len(pts) >= 10
        bb = ball_bounds(net, x_bar, radius)
        tb = tighten_over_criteria(net, bb, spec, x_bar, label, radius, replace(DEFAULT_POLICY, relaxation_passes=3))
        assert tb.contains(net.preactivations(pts), tol=1e-7)
        for lo, up, blo, bup in zip(tb.lower, tb.upper, bb.lower, bb.upper):
            assert np.all(lo >= blo) and np.all(up <= bup) and np.all(lo <= up)
        width = sum(float(np.sum(u - l)) for l, u in zip(tb.lower[:-1], tb.upper[:-1]))
        ball_width = sum(float(np.sum(u - l)) for l, u in zip(bb.lower[:-1], bb.upper[:-1]))
        tighter += width < ball_width - 1e-6
    assert tighter >= 1          # the criteria do cut into the ball somewhere


@pytest.mark.parametrize("escalate", ["upfront", "restart", "upfront-by-size"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tight_with_relaxation_bounds_keeps_the_optimum(seed, escalate, monkeypatch):
    from advmilp.methods import tight as tight_module
    from advmilp.methods.tight import DEFAULT_POLICY, run_tight
    from advmilp.spec.rows import TIME_LIMIT

    # the MILP path with cuts; upfront: tightened before the first solve; restart: a first solve that
    # stops at its time limit; upfront-by-size: every model counts as large, so the policy tightens
    # before the first solve
    if escalate == "restart":
        # HiGHS may prove these small models within any time limit a solve gets (10 ms at least), so
        # the first solve is made to end as one stopped by its limit does (its point kept, no proof):
        # the restart path runs on every machine, whatever its speed
        real, calls = tight_module._run_milp, []

        def first_stopped(*args, **kwargs):
            res = real(*args, **kwargs)
            if not calls:
                calls.append(res.row["status"])
                res.row["status"] = TIME_LIMIT
            return res

        monkeypatch.setattr(tight_module, "_run_milp", first_stopped)
    policy = replace(DEFAULT_POLICY, small_milp_binaries=-1, phase_search=False,
                     escalate_after_s={"upfront": 0.0, "restart": 1e-3}.get(escalate, 2.0),
                     upfront_binaries=0 if escalate == "upfront-by-size" else 10**6)
    inst = small_targeted_instance(seed)
    net, rng, x_bar, label, spec, box, plain = (inst.net, inst.rng, inst.x_bar, inst.label, inst.spec, inst.box,
                                                inst.plain)
    tight = run_tight(net, box, spec, SolverSettings(time_limit=60), x_bar, label, 0, pool=rng.random((400, 16)),
                      policy=policy)
    assert plain.row["status"] == tight.row["status"]
    if plain.row["status"] == "optimal":
        assert tight.row["verified"]
        assert tight.row["objective"] == pytest.approx(plain.row["objective"], rel=1e-4, abs=1e-6)
        if escalate == "restart":
            assert tight.row["message"].startswith("restarted after")
        else:
            assert tight.row["message"].startswith("bounds tightened on the LP relaxation before the solve")
