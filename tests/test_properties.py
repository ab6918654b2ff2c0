"""Property-based: no malformed config or option value reaches a traceback (issue 15).

Hypothesis generates configs with one to three defects (wrong types, missing and unknown keys,
non-finite numbers, values out of range, wrong nesting) and bad option values for ``advmilp attack``.
Each must end with exit status 2 and exactly one line on stderr starting with ``error:``, no
traceback, and nothing written outside the results folder.  Every case fails validation before any
solve, so the test is fast; it is deterministic (``derandomize``, no example database)."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.helpers import cli_env, invoke, need_mnist, one_error_line
from tests.nets import REPO

VALID = {"name": "prop", "networks": ["dnn1"], "bounds": ["basic"], "methods": ["tight"],
         "problem": {"kind": "targeted", "ratio": 1.2}, "images": {"count": 2},
         "solver": {"time_limit": 10, "threads": 1}, "executor": "serial"}

NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
NOT_A_NUMBER = st.one_of(st.text(min_size=1, max_size=5).filter(lambda t: t.strip() != ""), st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.booleans())
BAD_NUMBER = st.one_of(NON_FINITE, NOT_A_NUMBER)

# (where, strategy of a value that is wrong there); where = "key" or "section.key"
DEFECTS = {
    "name": st.one_of(st.integers(), st.lists(st.text(max_size=3), max_size=2), st.sampled_from(["", "a/b", ".x"])),
    "networks": st.one_of(st.integers(), st.just([]), st.just([7]), st.just(["no-such-net"]), st.just({"a": 1})),
    "bounds": st.one_of(st.just(["exact"]), st.integers(), st.just([])),
    "methods": st.one_of(st.just(["warp"]), st.just({}), st.just([None])),
    "executor": st.one_of(st.just("threads"), st.integers()),
    "workers": st.one_of(st.integers(max_value=0), st.just("abc"), st.floats(allow_nan=True)),
    "problem": st.one_of(st.just([1, 2]), st.just("targeted"), st.just({"kind": "feature", "layer": 1}),
                         st.just({"kind": "x"})),
    "problem.ratio": st.one_of(BAD_NUMBER, st.floats(max_value=0.99, allow_nan=False)),
    "problem.epsilon": st.one_of(BAD_NUMBER, st.floats(max_value=0, allow_nan=False)),
    "problem.margin": st.one_of(BAD_NUMBER, st.floats(max_value=-1e-9, allow_nan=False)),
    "problem.l1_budget": st.one_of(BAD_NUMBER, st.floats(max_value=0, allow_nan=False)),
    "problem.linf_cap": st.one_of(BAD_NUMBER, st.floats(max_value=0, allow_nan=False)),
    "problem.factor": st.one_of(BAD_NUMBER, st.floats(min_value=1.0), st.floats(max_value=0.0)),
    "problem.target": st.one_of(st.integers(max_value=-1), st.text(max_size=2), st.floats()),
    "problem.unknown_key": st.integers(),
    "images": st.one_of(st.just("all"), st.integers()),
    "images.count": st.one_of(st.integers(max_value=0), st.text(max_size=2), st.floats()),
    "images.first": st.one_of(st.integers(max_value=-1), st.just("0")),
    "images.split": st.one_of(st.just("val"), st.integers()),
    "images.indices": st.one_of(st.just("1,2"), st.just([-1]), st.just([10 ** 9]), st.just([1.5])),
    "solver": st.one_of(st.just("highs"), st.just([1])),
    "solver.name": st.one_of(st.just("cplex"), st.integers()),
    "solver.time_limit": st.one_of(BAD_NUMBER, st.floats(max_value=0, allow_nan=False)),
    "solver.threads": st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=2)),
    "solver.gap_rel": st.one_of(BAD_NUMBER, st.floats(max_value=-1e-9, allow_nan=False), st.floats(min_value=1.0)),
    "solver.bogus": st.integers(),
    "bounds_time_limit": NOT_A_NUMBER,
    "unknown_top": st.integers(),
    "cdh": st.just({"iterations": 3}),   # cdh settings without cdh in methods
}


@st.composite
def bad_configs(draw):
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in VALID.items()}
    for where in draw(st.lists(st.sampled_from(sorted(DEFECTS)), min_size=1, max_size=3, unique=True)):
        value = draw(DEFECTS[where])
        if where == "name" and draw(st.booleans()):
            config.pop("name")      # missing key
            continue
        section, _, key = where.partition(".")
        if key and isinstance(config.get(section), dict):
            config[section][key] = value
        elif not key:
            config[section] = value
    return config


BAD_OPTIONS = st.sampled_from([
    ["--time-limit", "0"], ["--time-limit", "-1"], ["--time-limit", "nan"], ["--time-limit", "inf"],
    ["--time-limit", "abc"], ["--threads", "0"], ["--threads", "-3"], ["--threads", "1.5"], ["--gap-rel", "-5"],
    ["--gap-rel", "nan"], ["--gap-rel", "1"], ["--ratio", "nan"], ["--ratio", "0.5"], ["--ratio", "-inf"],
    ["--epsilon", "-1"], ["--epsilon", "0"], ["--epsilon", "nan"], ["--linf-cap", "0"], ["--linf-cap", "-0.2"],
    ["--l1-budget", "-1"], ["--bounds-time-limit", "0"], ["--bounds-time-limit", "nan"], ["--image", "-1"],
    ["--image", "10000"], ["--image", str(10 ** 12)], ["--target", "10"], ["--target", "-1"], ["--target", "x"],
    ["--method", "warp"], ["--problem", "feature"], ["--bounds", "exact"], ["--solver", "cplex"],
    ["--workers", "2"], ["--images", "3"], ["--problem", "max-target", "--method", "milp"],
    ["--method", "fast", "--problem", "max-target", "--target", "3"], ["--solver", "gurobi", "--method", "tight"], ["--no-such-option"],
])


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _shipped_state() -> dict:
    """Names and modification times of what a command would write by default in the repository."""
    return {str(p): p.stat().st_mtime_ns for d in ("models", "results/bounds", "results/figures")
            for p in (REPO / d).glob("*")}


@pytest.fixture
def user(tmp_path, monkeypatch):
    need_mnist()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path, cli_env(tmp_path)


def _check(proc, tmp_path, before):
    one_error_line(proc)
    assert _files(tmp_path / "work") == before   # nothing written outside the results folder
    assert not (tmp_path / "home").exists()


@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(config=bad_configs(), raw=st.booleans())
def test_malformed_configs_are_one_line_errors(user, config, raw):
    tmp_path, env = user
    shipped = _shipped_state()
    path = tmp_path / "work" / "bad.yaml"
    path.write_text(yaml.safe_dump(config) if not raw else yaml.safe_dump(config, default_flow_style=True))
    before = _files(tmp_path / "work")
    _check(invoke(["attack", "--config", str(path)], env), tmp_path, before)
    assert _shipped_state() == shipped


@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(bad=BAD_OPTIONS, extra=st.sampled_from([[], ["--image", "1"], ["--method", "milp"], ["--method", "fast"]]))
def test_bad_option_values_are_one_line_errors(user, bad, extra):
    tmp_path, env = user
    before = _files(tmp_path / "work")
    _check(invoke(["attack", "--arch", "dnn1", *extra, *bad], env), tmp_path, before)


@pytest.mark.parametrize("content", [b"name: \xff\xfe bad\n", b"name: [unclosed\n", b"- a list\n", b"",
                                     b"name: " + b"n" * 300 + b"\n"])
def test_unreadable_configs_are_one_line_errors(user, content):
    tmp_path, env = user
    path = tmp_path / "work" / "bad.yaml"
    path.write_bytes(content)
    before = _files(tmp_path / "work")
    _check(invoke(["attack", "--config", str(path)], env), tmp_path, before)
