"""``bounds_time_s`` on a row is the time spent on the bounds in this run (issue 15): 0 when they came
from the cache, whose original computation time the message keeps (it used to be reported as if spent)."""

import numpy as np

from advmilp.bounds.compute import get_bounds
from advmilp.methods.milp import run_instance
from advmilp.spec.problems import ProblemSpec, SolverSettings

from tests.nets import random_net


def test_bounds_time_is_the_time_spent_in_this_run(tmp_path):
    net = random_net([6, 8, 8, 3], seed=5, scale=2.0)
    x_bar = np.random.default_rng(5).random(6)
    label = int(net.predict(x_bar))
    spec = ProblemSpec("targeted", target=(label + 1) % 3, ratio=1.05)
    computed, hit = get_bounds(net, "weak", 1.0, cache_dir=tmp_path)
    assert not hit and not computed.cached and computed.time_s > 0
    row = run_instance(net, computed, spec, SolverSettings(time_limit=30), x_bar, label, 0).row
    assert row["bounds_time_s"] == computed.time_s
    assert "from the cache" not in (row["message"] or "")

    cached, hit = get_bounds(net, "weak", 1.0, cache_dir=tmp_path)
    assert hit and cached.cached and cached.time_s == computed.time_s
    row = run_instance(net, cached, spec, SolverSettings(time_limit=30), x_bar, label, 0).row
    assert row["bounds_time_s"] == 0.0
    assert f"weak bounds from the cache (computed in {computed.time_s:.1f} s)" in row["message"]
