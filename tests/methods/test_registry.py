"""The method registry: one list of methods read by the config, the CLI and the dispatcher."""

import sys
import subprocess

import numpy as np
import pytest

from advmilp.errors import AdvmilpError
from advmilp.methods.registry import METHODS, MethodInputs, method_of, run_method
from advmilp.spec.problems import ProblemSpec, SolverSettings

from tests.nets import REPO


def test_entries_and_their_needs():
    assert list(METHODS) == ["milp", "tight", "fast", "cdh", "trees-milp"]
    assert {n for n, m in METHODS.items() if m.exact} == {"milp", "tight", "trees-milp"}
    assert {n for n, m in METHODS.items() if m.trees} == {"trees-milp"}
    assert {n for n, m in METHODS.items() if m.needs_pool} == {"tight", "fast"}
    assert {n for n, m in METHODS.items() if m.needs_masks} == {"cdh"}
    assert METHODS["milp"].supports("feature") and not METHODS["tight"].supports("feature")
    assert METHODS["tight"].supports("untargeted") and METHODS["tight"].supports("max-target")
    assert method_of("cdh-guided-065-r75") is METHODS["cdh"]
    with pytest.raises(AdvmilpError, match="unknown method 'warp'"):
        method_of("warp")


def test_config_and_cli_read_the_registry():
    from advmilp.cli import main
    from advmilp.experiments.config import METHODS as CONFIG_METHODS

    assert CONFIG_METHODS == tuple(METHODS)
    option = next(p for p in main.commands["attack"].params if p.name == "method")
    assert tuple(option.type.choices) == tuple(METHODS)


def test_importing_the_registry_and_the_cli_is_light():
    code = ("import sys, advmilp.methods.registry, advmilp.cli; "
            "print(sorted(m for m in ('numpy', 'pulp', 'highspy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_dispatch_and_no_silent_fallback(identity_net):
    x_bar, settings = np.array([0.8, 0.2]), SolverSettings(time_limit=30)
    from advmilp.bounds.compute import interval_bounds

    box = interval_bounds(identity_net)
    # a feature problem is not a tight one: refused, naming the methods that solve it (never run by milp)
    feature = ProblemSpec("feature", objective="simple", unit=0)
    with pytest.raises(AdvmilpError, match=r"tight does not solve feature problems \(methods that do: milp\)"):
        run_method("tight", identity_net, box, feature, settings, x_bar, 0, 0)
    # untargeted: the thesis model and the phase search through their entries, the hand optimum
    for name in ("milp", "tight"):
        res = run_method(name, identity_net, box, ProblemSpec("untargeted"), settings, x_bar, 0, 0, MethodInputs())
        assert res.row["status"] == "optimal" and res.row["objective"] == pytest.approx(0.61 + 1e-4, abs=1e-6), name
    # targeted: each method through its entry (hand optimum (0.76 + m) / 1.2, see tests/encode/test_milp.py)
    spec = ProblemSpec("targeted", target=1)
    for name in ("milp", "tight", "fast"):
        res = run_method(name, identity_net, box, spec, settings, x_bar, 0, 0, MethodInputs())
        assert res.row["method"] == name and res.solved
        if METHODS[name].exact:
            assert res.row["objective"] == pytest.approx((0.76 + spec.margin) / 1.2, abs=1e-6)
        assert isinstance(res.row["nodes"], int)
