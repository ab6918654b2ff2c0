import os

import pytest

from advmilp.experiments.config import apply_overrides, load_config, parse_config
from advmilp.errors import ConfigError

from tests.nets import REPO


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_minimal_config_defaults(tmp_path):
    c = load_config(write(tmp_path, "name: t\n"))
    assert c.name == "t" and c.networks == ("dnn1",) and c.bounds == ("improved",)
    assert c.problem.kind == "targeted" and c.problem.ratio == 1.2
    assert c.solver.time_limit == 300 and c.solver.threads == 1 and c.executor == "process"


def test_full_schema(tmp_path):
    c = load_config(write(tmp_path, """
name: table2
networks: [dnn1, dnn5]
bounds: [basic, weak]
bounds_time_limit: 2
problem: {kind: targeted, ratio: 1.3, linf_cap: 0.2, output_relu: false}
images: {split: test, count: 7, first: 3, correctly_classified: true}
solver: {name: highs, time_limit: 60, threads: 1, gap_rel: 1.0e-3}
workers: 2
executor: serial
"""))
    assert c.networks == ("dnn1", "dnn5") and c.bounds == ("basic", "weak") and c.bounds_time_limit == 2
    assert c.problem.ratio == 1.3 and c.problem.linf_cap == 0.2 and not c.problem.output_relu
    assert c.images.count == 7 and c.images.first == 3 and c.solver.gap_rel == 1e-3
    assert c.n_workers == 2


# issue 15: every numeric key finite and in range, duplicated entries refused, one line naming it
CHECKED_VALUES = [
    ("name: t\nsolver: {time_limit: .nan}\n", ["solver.time_limit", "finite"]),
    ("name: t\nsolver: {time_limit: .inf}\n", ["solver.time_limit", "finite"]),
    ("name: t\nsolver: {time_limit: 0}\n", ["solver.time_limit must be > 0"]),
    ("name: t\nsolver: {time_limit: -1}\n", ["solver.time_limit must be > 0"]),
    ("name: t\nsolver: {threads: 0}\n", ["solver.threads must be ≥ 1"]),
    ("name: t\nsolver: {gap_rel: -5}\n", ["solver.gap_rel must be ≥ 0"]),
    ("name: t\nproblem: {margin: -0.5}\n", ["problem.margin must be ≥ 0"]),
    ("name: t\nproblem: {ratio: .nan}\n", ["problem.ratio", "finite"]),
    ("name: t\nproblem: {epsilon: 0}\n", ["problem.epsilon must be > 0"]),
    ("name: t\nproblem: {target: -1}\n", ["problem.target must be ≥ 0"]),
    ("name: t\nworkers: 0\n", ["workers must be ≥ 1"]),
    ("name: t\nworkers: -2\n", ["workers must be ≥ 1"]),
    ("name: t\nworkers: abc\n", ["workers", "'abc'"]),
    ("name: t\nbounds_time_limit: -1\n", ["bounds_time_limit must be > 0"]),
    ("name: t\nbounds_time_limit: .nan\n", ["bounds_time_limit", "finite"]),
    ("name: t\nimages: [1, 2]\n", ["images must be a mapping"]),
    ("name: t\nimages: {first: -3}\n", ["images.first must be ≥ 0"]),
    ("name: t\nimages: {indices: [-1]}\n", ["images.indices entry must be ≥ 0"]),
    (f"name: {'x' * 300}\n", ["name 'xxx", "...'", "1-64"]),    # shortened in the message
    ("name: 'a b'\n", ["name", "1-64"]),
    ("name: -t\n", ["name"]),
    ("name: t\nnetworks: [dnn1, DNN1]\n", ["'DNN1' is listed twice in 'networks'"]),
    ("name: t\nmethods: [milp, milp]\n", ["'milp' is listed twice in 'methods'"]),
    ("name: t\nbounds: [basic, basic]\n", ["'basic' is listed twice in 'bounds'"]),
    ("name: t\nimages: {indices: [3, 1, 3]}\n", ["images.indices lists 3 more than once"]),
]


@pytest.mark.parametrize("text, words", [
    ("name: t\nfoo: 1\n", ["unknown key 'foo'"]),
    ("name: t\nproblem: {kind: targeted, ratoi: 1.2}\n", ["problem.ratoi"]),
    ("name: t\nnetworks: [dnn9]\n", ["unknown network 'dnn9'"]),
    ("name: t\nbounds: [exact]\n", ["unknown bound", "exact"]),
    ("name: t\nsolver: {time_limit: fast}\n", ["solver.time_limit", "fast"]),
    ("name: t\nsolver: {threads: true}\n", ["solver.threads"]),
    ("name: t\nsolver: {name: cplex}\n", ["solver.name", "cplex"]),
    ("name: t\nexecutor: mpi\n", ["unknown executor 'mpi'"]),
    ("name: t\nproblem: {kind: sideways}\n", ["unknown problem kind"]),
    ("networks: [dnn1]\n", ["missing key 'name'"]),
    ("name: t\nimages: {count: 0}\n", ["images.count"]),
    ("name: [unclosed\n", ["invalid YAML", "line"]),
    ("- just\n- a list\n", ["top level"]),
] + CHECKED_VALUES)
def test_errors_name_the_key_and_the_file(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    for w in words:
        assert w in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_a_path_that_is_not_a_file_is_named_as_such(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        load_config(tmp_path)


def test_overrides():
    c = parse_config({"name": "t", "solver": {"time_limit": 300}, "images": {"count": 100}})
    o = apply_overrides(c, time_limit=5, images=3, workers="1", scheduler="tcp://127.0.0.1:8786")
    assert o.solver.time_limit == 5 and o.images.count == 3 and o.n_workers == 1
    assert o.executor == "dask" and o.scheduler == "tcp://127.0.0.1:8786"
    assert c.solver.time_limit == 300  # frozen original untouched


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    if "ADVMILP_EXTERNAL" in path.read_text() and not (REPO.parent / "shared" / "external").is_dir() \
            and "ADVMILP_EXTERNAL" not in os.environ:
        pytest.skip("needs ../shared/external (or $ADVMILP_EXTERNAL)")
    c = load_config(path)
    assert c.name


def test_cdh_variants_expand_into_methods(tmp_path):
    c = load_config(write(tmp_path, """
name: t
methods: [cdh, tight]
cdh: {neighbourhood: constrained, escape: none}
cdh_variants:
  simple: {objective: simple}
  diff: {objective: diff, escape: guided}
"""))
    assert c.methods == ("tight", "cdh-simple", "cdh-diff")
    assert c.cdh["cdh-simple"].objective == "simple" and c.cdh["cdh-simple"].escape == "none"
    assert c.cdh["cdh-diff"].escape == "guided" and c.cdh["cdh-diff"].ratio == 1.2


@pytest.mark.parametrize("text, words", [
    ("name: t\nmethods: [cdh]\ncdh: {escape: sideways}\n", ["cdh", "sideways"]),
    ("name: t\nmethods: [cdh]\ncdh_variants: {a: {foo: 1}}\n", ["cdh_variants.a.foo"]),
    ("name: t\ncdh: {escape: none}\n", ["'cdh' is not in methods"]),
    ("name: t\nmethods: [magic]\n", ["unknown method", "magic"]),
])
def test_cdh_config_errors(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    for w in words:
        assert w in str(err.value)


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config(path)


@pytest.mark.parametrize("flags, words", [
    ({"time_limit": float("nan")}, "--time-limit must be a finite number"),
    ({"time_limit": 0}, "--time-limit must be > 0"),
    ({"time_limit": -1}, "--time-limit must be > 0"),
    ({"threads": 0}, "--threads must be ≥ 1"),
    ({"images": 0}, "--images must be ≥ 1"),
    ({"images": -1}, "--images must be ≥ 1"),
    ({"workers": "0"}, "--workers must be ≥ 1"),
    ({"workers": "-2"}, "--workers must be ≥ 1"),
    ({"workers": "abc"}, "--workers must be a whole number"),
])
def test_overrides_are_checked_and_name_the_flag(flags, words):
    with pytest.raises(ConfigError, match=words):
        apply_overrides(parse_config({"name": "t"}), **flags)


def test_a_method_asked_for_a_problem_it_does_not_solve_is_refused_up_front():
    with pytest.raises(ConfigError, match="method cdh does not solve untargeted problems"):
        parse_config({"name": "x", "networks": ["dnn1"], "methods": ["cdh"], "problem": {"kind": "untargeted"}})
    with pytest.raises(ConfigError, match="method fast runs on highs only"):
        parse_config({"name": "x", "networks": ["dnn1"], "methods": ["fast"], "solver": {"name": "cbc"}})


def test_a_network_grid_expands_to_the_study_networks(tmp_path):
    c = load_config(write(tmp_path, "name: s\nnetworks: {widths: [8, 64], depths: [1, 3], dropouts: [0, 0.5]}\n"))
    assert c.networks == ("mlp-w8-d1-p0", "mlp-w8-d1-p50", "mlp-w8-d3-p0", "mlp-w8-d3-p50",
                          "mlp-w64-d1-p0", "mlp-w64-d1-p50", "mlp-w64-d3-p0", "mlp-w64-d3-p50")
    c = load_config(write(tmp_path, "name: s\nnetworks: [MLP-W16-D2-P25, dnn1]\n"))
    assert c.networks == ("mlp-w16-d2-p25", "dnn1")


@pytest.mark.parametrize("grid, message", [
    ("{widths: [8], depths: [1]}", "networks.dropouts must be a non-empty list"),
    ("{widths: [8], depths: [1], dropouts: [0], seeds: [1]}", "unknown key 'networks.seeds'"),
    ("{widths: [8], depths: [0], dropouts: [0]}", "networks.depths entry must be a whole number in 1..9"),
    ("{widths: [8.5], depths: [1], dropouts: [0]}", "networks.widths entry must be int"),
    ("{widths: [8], depths: [1], dropouts: [0.333]}", "whole percentage"),
    ("{widths: [8], depths: [1], dropouts: [1]}", "whole percentage"),
    ("{widths: [8, 8], depths: [1], dropouts: [0]}", "listed twice"),
])
def test_a_bad_network_grid_is_one_line(tmp_path, grid, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(write(tmp_path, f"name: s\nnetworks: {grid}\n"))
    assert "\n" not in str(e.value)


def test_a_problems_list_attacks_every_image_under_each(tmp_path):
    c = load_config(write(tmp_path, "name: s\nmethods: [tight]\nproblems:\n  - {kind: targeted, ratio: 1.2}\n"
                                    "  - {kind: untargeted, factor: 0.9}\n"))
    assert [p.kind for p in c.problems] == ["targeted", "untargeted"] and c.problems[1].factor == 0.9
    with pytest.raises(ConfigError, match="2 problems"):
        c.problem
    assert load_config(write(tmp_path, "name: s\n")).problems[0].kind == "targeted"


@pytest.mark.parametrize("text, message", [
    ("problem: {kind: targeted}\nproblems: [{kind: untargeted}]", "give 'problem' or 'problems', not both"),
    ("problems: []", "non-empty list"),
    ("problems: {kind: targeted}", "non-empty list"),
    ("problems: [{kind: targeted}, {kind: targeted, ratio: 1.2}]", "lists 'targeted ratio 1.2.*' more than once"),
    ("problems: [{kind: feature, layer: 1}]", "cannot be run as a batch"),
    ("problems: [{kind: targeted}, ~]", r"problems\[1\] is empty"),
    ("problems: [{kind: targeted}, {kind: untargeted, ratio: -1}]", r"problems\[1\]\.ratio"),
    ("methods: [fast]\nproblems: [{kind: targeted}, {kind: max-target, target: 3}]", "fast"),
])
def test_a_bad_problems_list_is_one_line(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(write(tmp_path, f"name: s\n{text}\n"))
    assert "\n" not in str(e.value)


def test_the_study_config_names_the_whole_grid():
    c = load_config(REPO / "configs" / "robustness_study.yaml")
    assert len(c.networks) == 36 and [p.kind for p in c.problems] == ["targeted", "untargeted"]
    assert c.images.count == 100 and c.methods == ("tight",)
