"""Experiment configs: YAML → validated, frozen dataclasses.  The only reader of YAML.

Every error is one line naming the file and the key.  Every number is checked to be finite and
in range (`RANGES`): a NaN time limit or a zero thread count would otherwise reach the solver and
mean something else there ("no limit", "all cores").  A list entry given twice (a network, a method,
a bounds method, an image index) is refused: it would run and count the same instance twice.
Command-line flags override values through `apply_overrides`, which checks them the same way and
names the flag.

Files named in a config (network files, ``images.indices_file``) may use ``${VAR}`` or
``${VAR:-default}`` (the environment variable, else the default; unset without a default is one line);
a relative path is taken relative to the config file's folder, so a config works from any checkout
and any working directory (``configs/fj_replication.yaml`` finds ``../shared/external`` as
``${ADVMILP_EXTERNAL:-../../shared/external}``).

``images.indices_file`` takes the image list from a CSV file (lines starting with ``#`` are
comments, the first other line names the columns): ``column`` holds the test image indices,
``match`` keeps only the rows whose columns equal the given values — a value, or a mapping from
network name (as in the rows' ``network`` column, e.g. the file stem) to the value for that
network, so each network gets its own list — and ``label_column``, if given, must agree with the
MNIST label.  With ``correctly_classified`` (the default) every network must classify each of
its images correctly, else the batch is refused naming the rows; ``count`` keeps the first
``count`` rows per network.

Tree ensembles (`advmilp.nn.trees`): a ``networks`` entry may name a shipped ensemble
(``forest-d6-n10``: ``models/trees/forest-d6-n10.json``) or a ``.json`` ensemble file (paths as for
``.npz``).  A config takes tree ensembles or networks, not both; with tree ensembles the methods are
``trees-milp`` (the default), the bounds ``none`` (the default: an ensemble has no neurons) and a
problem key only networks read (``ratio``, ``factor``, ``epsilon``, ...) is refused.

``images.correctly_classified`` (without a file): ``true`` takes the first ``count`` images every
network classifies correctly; ``false`` the first ``count`` images; ``each`` the first ``count``
images too, but each network is attacked only on those it classifies correctly (the robustness
study: the same images for every network, however poorly one of them was trained; the report
counts a misclassified image as robust at no ε).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from advmilp.nn.architectures import architecture_choices, find_architecture, is_tree_arch, study_names, study_rule
from advmilp.errors import AdvmilpError, ConfigError
from advmilp.methods.registry import METHODS as REGISTRY
from advmilp.methods.registry import check_model, check_supported
from advmilp.nn.trees import TreeArch
from advmilp.spec.problems import ProblemSpec, SolverSettings

BOUNDS_METHODS = ("basic", "improved", "weak")
TREE_BOUNDS = "none"      # the only bounds of a tree ensemble (it has no neurons)
# problem keys that only networks have (a tree ensemble's criterion is the argmax of its scores)
NETWORK_ONLY_PROBLEM_KEYS = ("ratio", "epsilon", "factor", "l1_budget", "output_relu", "layer", "unit", "objective")
METHODS = tuple(REGISTRY)   # the method names, in the registry's order
EXECUTORS = ("serial", "process", "dask")
SOLVER_NAMES = ("highs", "cbc", "scip", "gurobi")
# the config name becomes a folder name (results/<name>/) and part of log file names
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# the allowed range of every numeric key: (what the message says, the test)
RANGES: dict[str, tuple[str, Any]] = {
    "bounds_time_limit": ("> 0", lambda v: v > 0),
    "workers": ("≥ 1 or auto", lambda v: v >= 1),
    "solver.time_limit": ("> 0", lambda v: v > 0),
    "solver.threads": ("≥ 1", lambda v: v >= 1),
    "solver.gap_rel": ("≥ 0", lambda v: v >= 0),
    "problem.ratio": ("≥ 1", lambda v: v >= 1),
    "problem.epsilon": ("> 0", lambda v: v > 0),
    "problem.factor": ("in (0, 1)", lambda v: 0 < v < 1),
    "problem.l1_budget": ("> 0", lambda v: v > 0),
    "problem.linf_cap": ("> 0", lambda v: v > 0),
    "problem.l1_cap": ("> 0", lambda v: v > 0),
    "problem.l0_cap": ("≥ 1", lambda v: v >= 1),
    "problem.margin": ("≥ 0", lambda v: v >= 0),
    "problem.target": ("≥ 0", lambda v: v >= 0),
    "problem.layer": ("≥ 1", lambda v: v >= 1),
    "problem.unit": ("≥ 0", lambda v: v >= 0),
    "images.count": ("≥ 1", lambda v: v >= 1),
    "images.first": ("≥ 0", lambda v: v >= 0),
    "images.indices entry": ("≥ 0", lambda v: v >= 0),
}


@dataclass(frozen=True)
class ImagesConfig:
    split: str = "test"
    count: int | None = 100                  # None (indices_file without count): every row
    first: int = 0
    # True: the first `count` images every network classifies correctly; False: the first `count`
    # images; "each": the first `count` images, each network attacking those it classifies correctly
    correctly_classified: bool | str = True
    indices: tuple[int, ...] | None = None   # explicit list overrides count/first
    # the image list from a CSV file, per network (module docstring); count (None: all) caps each list
    indices_file: str | None = None
    column: str | None = None
    match: tuple[tuple[str, Any], ...] = ()  # (column, value) or (column, ((network name, value), ...))
    label_column: str | None = None


@dataclass(frozen=True)
class Config:
    name: str
    networks: tuple[str, ...] = ("dnn1",)
    bounds: tuple[str, ...] = ("improved",)
    bounds_time_limit: float = 1.0
    methods: tuple[str, ...] = ("milp",)
    problems: tuple[ProblemSpec, ...] = (ProblemSpec(),)   # each image is attacked under every problem
    images: ImagesConfig = field(default_factory=ImagesConfig)
    solver: SolverSettings = field(default_factory=SolverSettings)
    workers: int | str = "auto"
    executor: str = "process"
    scheduler: str | None = None
    cdh: Any = None                           # {method name: heuristic.CDHSettings} when methods include cdh
    source: str = ""

    @property
    def problem(self) -> ProblemSpec:
        """The config's only problem (a config with a ``problems`` list has no single one)."""
        if len(self.problems) != 1:
            raise ConfigError(f"{self.source}: this config has {len(self.problems)} problems; name one")
        return self.problems[0]

    @property
    def n_workers(self) -> int:
        if self.workers == "auto":
            return max(1, (os.cpu_count() or 1) // max(1, self.solver.threads))
        return int(self.workers)


def _type_name(t) -> str:
    return getattr(t, "__name__", str(t))


def _check(value, kinds, where: str, src: str):
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(f"{src}: {where} must be {' or '.join(map(_type_name, kinds))}, not a boolean")
    if not isinstance(value, kinds):
        raise ConfigError(f"{src}: {where} must be {' or '.join(map(_type_name, kinds))}, not {value!r}")
    return value


def _in_range(value, where: str, src: str, shown: str | None = None):
    """``value`` unchanged if it is finite and within `RANGES` for ``where``; else one line naming it
    (as ``shown``, a command-line flag, when given; ``src`` empty: no file to name)."""
    name = f"{src}: {shown or where}" if src else (shown or where)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {value!r}")
    rule = RANGES.get(where)
    if rule is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and not rule[1](value):
        raise ConfigError(f"{name} must be {rule[0]}, not {value!r}")
    return value


def _section(cls, data, where: str, src: str, coerce: dict[str, tuple]) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: {where} must be a mapping of keys, not {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(f"{src}: unknown key '{where}.{key}' (allowed: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in data.items():
        kinds = coerce.get(key)
        if kinds is not None and value is not None:
            _check(value, kinds, f"{where}.{key}", src)
        kwargs[key] = _in_range(value, f"{where}.{key}", src)
    try:
        return cls(**kwargs)
    except AdvmilpError as exc:   # a value the dataclass itself refuses; InvalidValue names its field
        joined = f"{where}.{exc}" if getattr(exc, "field", None) else f"{where}: {exc}"
        raise ConfigError(f"{src}: {joined}") from exc


NUM = (int, float)
PROBLEM_TYPES = {"kind": (str,), "ratio": NUM, "target": (int,), "target_offset": (int,), "epsilon": NUM,
                 "factor": NUM, "l1_budget": NUM, "linf_cap": NUM, "layer": (int,), "unit": (int,),
                 "objective": (str,), "output_relu": (bool,), "margin": NUM, "norm": (str,), "l1_cap": NUM,
                 "l0_cap": (int,)}
IMAGES_TYPES = {"split": (str,), "count": (int,), "first": (int,), "correctly_classified": (bool, str),
                "indices": (list,), "indices_file": (str,), "column": (str,), "match": (tuple,),
                "label_column": (str,)}
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MODEL_SUFFIXES = (".npz", ".onnx", ".keras", ".h5")
TREE_SUFFIXES = (".json",)   # a tree ensemble saved by advmilp (its arrays in the .npz beside it)
SOLVER_TYPES = {"name": (str,), "time_limit": NUM, "threads": (int,), "gap_rel": NUM}
TOP_KEYS = {"name", "networks", "bounds", "bounds_time_limit", "methods", "method", "problem", "problems", "images",
            "solver", "workers", "executor", "scheduler", "cdh", "cdh_variants"}


def _names(value, key: str, src: str, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    _check(value, (list,), key, src)
    out = []
    for item in value:
        _check(item, (str,), f"{key} entry", src)
        if allowed is not None and item not in allowed:
            raise ConfigError(f"{src}: unknown {key[:-1] if key.endswith('s') else key} '{item}' in '{key}' "
                              f"(choose from {', '.join(allowed)})")
        if item in out:
            raise ConfigError(f"{src}: '{item}' is listed twice in '{key}'")
        out.append(item)
    if not out:
        raise ConfigError(f"{src}: '{key}' is empty")
    return tuple(out)


def expand_path(value: str, where: str, src: str, base: Path | None) -> str:
    """``value`` with ``${VAR}`` / ``${VAR:-default}`` replaced from the environment, then, if
    relative, taken relative to ``base`` (the config's folder; None: the working directory)."""
    def sub(m: re.Match) -> str:
        env = os.environ.get(m.group(1))
        if env:
            return env
        if m.group(2) is not None:
            return m.group(2)
        raise ConfigError(f"{src}: {where} uses ${{{m.group(1)}}}, which is not set "
                          f"(export {m.group(1)}=<folder>, or write ${{{m.group(1)}:-<default>}})")

    out = ENV_REF.sub(sub, value)
    if "${" in out:
        raise ConfigError(f"{src}: {where} {value!r}: write variables as ${{NAME}} or ${{NAME:-default}}")
    path = Path(out).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return os.path.normpath(path)


def read_index_file(path: str | os.PathLike, src: str = "<config>") -> tuple[list[str], list[dict[str, str]]]:
    """The columns and rows of an image index CSV (``#`` lines are comments); one line if unreadable."""
    import csv

    path = Path(path)
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    except FileNotFoundError:
        raise ConfigError(f"{src}: images.indices_file {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{src}: images.indices_file {path}: cannot read it ({exc})") from None
    if not lines:
        raise ConfigError(f"{src}: images.indices_file {path}: no header line (only comments or empty)")
    reader = csv.DictReader(lines)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    return columns, rows


def parse_indices(text: str, option: str = "--images") -> list[int]:
    """``0-9`` or ``0,3,5`` (or a mix) → test-set indices, in order, without repeats; a malformed list is
    one `AdvmilpError` naming ``option``."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            if "-" in part:
                a, b = (int(v) for v in part.split("-", 1))
                if b < a:
                    raise ValueError
                out += range(a, b + 1)
            elif part:
                out.append(int(part))
        except ValueError:
            raise AdvmilpError(f"{option} {text!r}: write indices as 0-9 or 0,3,5") from None
    if not out or min(out) < 0:
        raise AdvmilpError(f"{option} {text!r}: give at least one test index ≥ 0")
    return list(dict.fromkeys(out))


def _images_file(images: dict, src: str, base: Path | None) -> dict:
    """``images`` with ``indices_file`` expanded and checked against the file's columns."""
    given = [k for k in ("indices", "first") if k in images]
    if given:
        raise ConfigError(f"{src}: images.indices_file gives the image list; drop images.{given[0]}")
    path = expand_path(_check(images["indices_file"], (str,), "images.indices_file", src), "images.indices_file",
                       src, base)
    columns, rows = read_index_file(path, src)
    if "column" not in images:
        raise ConfigError(f"{src}: images.indices_file needs images.column, the column of image indices "
                          f"(columns: {', '.join(columns)})")
    match = images.get("match") or {}
    if not isinstance(match, dict):
        raise ConfigError(f"{src}: images.match must map columns to a value or to {{network: value}}")
    pairs = []
    for col, value in match.items():
        if isinstance(value, dict):
            if not value:
                raise ConfigError(f"{src}: images.match.{col} is an empty mapping")
            for k, v in value.items():
                _check(v, (str, int), f"images.match.{col}.{k}", src)
            pairs.append((str(col), tuple((str(k), str(v)) for k, v in value.items())))
        else:
            _check(value, (str, int), f"images.match.{col}", src)
            pairs.append((str(col), str(value)))
    for key, col in [("column", images["column"]), ("label_column", images.get("label_column"))] + \
            [("match", c) for c, _ in pairs]:
        if col is not None and col not in columns:
            raise ConfigError(f"{src}: images.{key}: no column {col!r} in {path} (columns: {', '.join(columns)})")
    bad = next((r for r in rows if not re.fullmatch(r"\d+", r.get(images["column"], ""))), None)
    if bad is not None:
        raise ConfigError(f"{src}: images.indices_file {path}: {images['column']} {bad.get(images['column'])!r} "
                          f"is not an image index")
    return {**images, "indices_file": path, "match": tuple(pairs)}


def parse_config(data: Any, src: str = "<config>", base: Path | None = None) -> Config:
    """``base``: the folder relative paths in the config are taken from (`load_config`: the
    config's own folder; None: the working directory)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: the top level must be a mapping of keys")
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(f"{src}: unknown key '{key}' (allowed: {', '.join(sorted(TOP_KEYS))})")
    if "name" not in data:
        raise ConfigError(f"{src}: missing key 'name' (results go to results/<name>/)")
    name = _check(data["name"], (str,), "name", src)
    if not NAME_PATTERN.fullmatch(name):
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise ConfigError(f"{src}: name {shown!r} must be 1-64 letters, digits, '.', '_' or '-', "
                          f"starting with a letter or digit (it names the results folder)")
    networks, trees = [], []
    for net in _names(_network_grid(data["networks"], src) if isinstance(data.get("networks"), dict)
                      else data.get("networks", ["dnn1"]), "networks", src, None):
        arch = find_architecture(net)
        tree = arch is None and (is_tree_arch(net) or net.lower().endswith(TREE_SUFFIXES))
        if arch is None and net.lower().endswith(MODEL_SUFFIXES + TREE_SUFFIXES):
            net = expand_path(net, f"networks entry {net!r}", src, base)
        elif tree:   # a shipped tree ensemble's name: models/trees/<name>.json
            try:
                net = TreeArch.parse(net).name
            except AdvmilpError as exc:
                raise ConfigError(f"{src}: networks entry: {exc}") from None
        elif arch is None:
            choices = architecture_choices(", or a .npz/.onnx/.keras file")
            raise ConfigError(f"{src}: unknown network '{net}' in 'networks' ({choices}; tree ensembles: "
                              f"tree-d<depth>, forest-d<depth>-n<trees>, gbt-d<depth>-n<stages> or a .json file)")
        entry = arch.name if arch is not None else net
        if entry in networks:
            raise ConfigError(f"{src}: '{net}' is listed twice in 'networks'")
        networks.append(entry)
        trees.append(tree)
    if any(trees) and not all(trees):
        raise ConfigError(f"{src}: 'networks' mixes tree ensembles ({networks[trees.index(True)]}) and networks "
                          f"({networks[trees.index(False)]}); no method attacks both: give each its own config")
    trees_only = all(trees)
    bounds = _names(data.get("bounds", [TREE_BOUNDS] if trees_only else ["improved"]), "bounds", src,
                    BOUNDS_METHODS + (TREE_BOUNDS,))
    if trees_only and bounds != (TREE_BOUNDS,):
        raise ConfigError(f"{src}: tree ensembles have no neuron bounds: write 'bounds: [{TREE_BOUNDS}]' "
                          f"(or leave it out), not {', '.join(bounds)}")
    if not trees_only and TREE_BOUNDS in bounds:
        raise ConfigError(f"{src}: bounds '{TREE_BOUNDS}' is for tree ensembles; networks need "
                          f"{', '.join(BOUNDS_METHODS)}")
    methods = _names(data.get("methods", data.get("method", ["trees-milp"] if trees_only else ["milp"])), "methods",
                     src, METHODS)
    for m in methods:   # a method for the other kind of model is refused up front
        try:
            check_model(m, trees_only, networks[0])
        except AdvmilpError as exc:
            raise ConfigError(f"{src}: {exc}") from None
    btl = _in_range(_check(data.get("bounds_time_limit", 1.0), NUM, "bounds_time_limit", src),
                    "bounds_time_limit", src)
    problems = _problems(data, src)
    if trees_only:
        _refuse_network_keys(data, src)
    problem = problems[0]   # CDH's settings follow the first problem (CDH is targeted only)
    if not isinstance(data.get("images") or {}, dict):
        raise ConfigError(f"{src}: images must be a mapping of keys (e.g. {{indices: [1, 2]}}), "
                          f"not {type(data['images']).__name__}")
    images_data = dict(data.get("images") or {})
    file_keys = [k for k in ("column", "match", "label_column") if k in images_data]
    if "indices_file" in images_data:
        images_data = _images_file(images_data, src, base)
    elif file_keys:
        raise ConfigError(f"{src}: images.{file_keys[0]} applies only with images.indices_file")
    if isinstance(images_data.get("indices"), list):
        images_data["indices"] = tuple(_in_range(_check(i, (int,), "images.indices entry", src),
                                                 "images.indices entry", src) for i in images_data["indices"])
        twice = sorted({i for i in images_data["indices"] if images_data["indices"].count(i) > 1})
        if twice:
            raise ConfigError(f"{src}: images.indices lists {', '.join(map(str, twice))} more than once")
        if not images_data["indices"]:
            raise ConfigError(f"{src}: images.indices is empty")
        IMAGES_TYPES_LOCAL = dict(IMAGES_TYPES, indices=(tuple,))
    else:
        IMAGES_TYPES_LOCAL = IMAGES_TYPES
    images = _section(ImagesConfig, images_data if data.get("images") is not None else None, "images", src,
                      IMAGES_TYPES_LOCAL)
    if images.indices_file is not None and "count" not in images_data:
        images = dataclasses.replace(images, count=None)   # every row of the file
    if isinstance(images.correctly_classified, str) and images.correctly_classified != "each":
        raise ConfigError(f"{src}: images.correctly_classified must be true, false or each, "
                          f"not {images.correctly_classified!r}")
    if images.correctly_classified == "each" and (images.indices_file is not None or images.indices is not None):
        raise ConfigError(f"{src}: images.correctly_classified: each selects the first images.count images; "
                          f"it does not combine with images.indices or images.indices_file")
    if images.split not in ("test", "train"):
        raise ConfigError(f"{src}: images.split must be test or train, not {images.split!r}")
    solver = _section(SolverSettings, data.get("solver"), "solver", src, SOLVER_TYPES)
    if solver.name not in SOLVER_NAMES:
        raise ConfigError(f"{src}: unknown solver '{solver.name}' in 'solver.name' (choose from {', '.join(SOLVER_NAMES)})")
    workers = data.get("workers", "auto")
    if workers != "auto":
        _in_range(_check(workers, (int,), "workers", src), "workers", src)
    executor = _check(data.get("executor", "process"), (str,), "executor", src)
    if executor not in EXECUTORS:
        raise ConfigError(f"{src}: unknown executor '{executor}' (choose from {', '.join(EXECUTORS)})")
    scheduler = data.get("scheduler")
    if scheduler is not None:
        _check(scheduler, (str,), "scheduler", src)
    cdh = None
    if "cdh" in methods:
        from advmilp.heuristics.cdh import CDHSettings

        common = dict(data.get("cdh") or {})
        if not isinstance(data.get("cdh") or {}, dict):
            raise ConfigError(f"{src}: cdh must be a mapping of CDH settings")
        variants = data.get("cdh_variants") or {"": {}}
        if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
            raise ConfigError(f"{src}: cdh_variants must map variant names to CDH settings")
        cdh = {}
        for vname, vdata in variants.items():
            merged = {"ratio": problem.ratio, "epsilon": problem.epsilon, "target_offset": problem.target_offset,
                      **common, **vdata}
            where = f"cdh_variants.{vname}" if vname else "cdh"
            cdh[f"cdh-{vname}" if vname else "cdh"] = _section(CDHSettings, merged, where, src, {})
        methods = tuple(m for m in methods if m != "cdh") + tuple(cdh)
    elif data.get("cdh") is not None or data.get("cdh_variants") is not None:
        raise ConfigError(f"{src}: cdh settings given but 'cdh' is not in methods")
    for m in methods:   # a method asked for a problem or solver it does not handle is refused up front
        for p in problems:
            try:
                check_supported(m, p.kind, solver.name, p.distance_norm)
            except AdvmilpError as exc:
                raise ConfigError(f"{src}: {exc}") from None
    return Config(name=name, networks=tuple(networks), bounds=bounds, bounds_time_limit=float(btl),
                  methods=methods, problems=problems, images=images, solver=solver, workers=workers,
                  executor=executor, scheduler=scheduler, cdh=cdh, source=src)


def _network_grid(grid: dict, src: str) -> list[str]:
    """``networks: {widths: [...], depths: [...], dropouts: [...]}`` → the study networks of that grid."""
    keys = ("widths", "depths", "dropouts")
    for key in grid:
        if key not in keys:
            raise ConfigError(f"{src}: unknown key 'networks.{key}' (a grid has {', '.join(keys)})")
    values = {}
    for key in keys:
        entries = grid.get(key)
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{src}: networks.{key} must be a non-empty list")
        kinds = NUM if key == "dropouts" else (int,)
        for v in entries:
            _check(v, kinds, f"networks.{key} entry", src)
            rule = study_rule(key[:-1], v)
            if rule:
                raise ConfigError(f"{src}: networks.{key} entry must be {rule}, not {v!r}")
        values[key] = entries
    return study_names(values["widths"], values["depths"], values["dropouts"])


def _problems(data: dict, src: str) -> tuple[ProblemSpec, ...]:
    """``problem: {...}`` or ``problems: [{...}, ...]`` (every image attacked under each)."""
    if "problem" in data and "problems" in data:
        raise ConfigError(f"{src}: give 'problem' or 'problems', not both")
    if "problems" in data:
        entries = data["problems"]
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{src}: problems must be a non-empty list of problem mappings")
        problems = tuple(_section(ProblemSpec, p, f"problems[{k}]", src, PROBLEM_TYPES) if p is not None
                         else _bad_problem(k, src) for k, p in enumerate(entries))
    else:
        problems = (_section(ProblemSpec, data.get("problem"), "problem", src, PROBLEM_TYPES),)
    for p in problems:
        if p.kind not in ("targeted", "untargeted", "max-target"):
            raise ConfigError(f"{src}: problem.kind '{p.kind}' cannot be run as a batch over images")
    described = [p.describe() for p in problems]
    twice = sorted({d for d in described if described.count(d) > 1})
    if twice:
        raise ConfigError(f"{src}: problems lists '{twice[0]}' more than once")
    return problems


def _refuse_network_keys(data: dict, src: str) -> None:
    """A problem key only networks read (ratio, factor, ...) is refused for tree ensembles, never ignored."""
    entries = [("problem", data.get("problem"))] if "problem" in data else \
        [(f"problems[{k}]", p) for k, p in enumerate(data.get("problems") or [])]
    for where, p in entries:
        given = [k for k in NETWORK_ONLY_PROBLEM_KEYS if isinstance(p, dict) and k in p]
        if given:
            raise ConfigError(f"{src}: {where}.{given[0]} does not apply to tree ensembles (method trees-milp: "
                              f"the target's score is the largest, or the label's is not)")


def _bad_problem(k: int, src: str):
    raise ConfigError(f"{src}: problems[{k}] is empty (a mapping such as {{kind: untargeted}})")


def load_config(path: str | os.PathLike) -> Config:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start} cannot be decoded)") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where} ({getattr(exc, 'problem', exc)})") from exc
    return parse_config(data, str(path), base=path.resolve().parent)


def apply_overrides(config: Config, *, time_limit=None, workers=None, images=None, executor=None,
                    scheduler=None, threads=None, networks=None) -> Config:
    """Command-line flags over config values (None means: keep the config's), checked like the keys
    they replace; a bad value is one line naming the flag."""
    solver = config.solver
    if time_limit is not None:
        solver = dataclasses.replace(
            solver, time_limit=_in_range(float(time_limit), "solver.time_limit", "", "--time-limit"))
    if threads is not None:
        solver = dataclasses.replace(solver, threads=_in_range(int(threads), "solver.threads", "", "--threads"))
    imgs = config.images if images is None else dataclasses.replace(
        config.images, count=_in_range(int(images), "images.count", "", "--images"), indices=None)
    changes: dict[str, Any] = {"solver": solver, "images": imgs}
    if workers == "auto":
        changes["workers"] = "auto"
    elif workers is not None:
        try:
            n_workers = int(workers)
        except (TypeError, ValueError):
            raise ConfigError(f"--workers must be a whole number ≥ 1 or auto, not {workers!r}") from None
        changes["workers"] = _in_range(n_workers, "workers", "", "--workers")
    if executor is not None:
        if executor not in EXECUTORS:
            raise ConfigError(f"unknown executor '{executor}' (choose from {', '.join(EXECUTORS)})")
        changes["executor"] = executor
    if scheduler is not None:
        changes["scheduler"] = scheduler
        changes["executor"] = "dask"
    if networks:
        changes["networks"] = tuple(networks)
    return dataclasses.replace(config, **changes)
