"""Same-machine peer: OMLT + Pyomo + HiGHS on advmilp's problems (issue 16, "Same-machine peers").

OMLT (the Pyomo package for machine-learning models inside optimisation models) reads the ONNX
file itself (`omlt.io.onnx.load_onnx_neural_network`, input bounds [0, 1]) and writes its big-M
ReLU model (`ReluBigMFormulation`: per unit ``z ≥ ẑ``, ``z ≤ ẑ − l(1 − q)``, ``z ≤ u·q``, with l, u
from OMLT's own interval propagation over the box — what advmilp calls ``basic`` bounds).  On top of
it this module adds the thesis model's distance — ``x = x̄ + δ⁺ − δ⁻``, ``δ± ≥ 0``, minimise
``Σ(δ⁺ + δ⁻)`` — and advmilp's criterion on the logits y, mirrored exactly with its ``margin``:

targeted    ``G y ≥ h + margin`` with ``G, h = advmilp.spec.problems.targeted_criterion`` (target
            (label + 5) mod 10: ``y_d − ratio·y_j ≥ margin`` for j ≠ d, ``y_d ≥ ε + margin``);
untargeted  one binary ``q_j`` per output j ≠ label, ``Σ q_j = 1``, ``q_j = 1 →
            y_label ≤ factor·y_j − margin`` and ``y_j ≥ ε + margin`` (big-M from the output bounds),
            as `advmilp.encode.milp` writes it; outputs that cannot reach ε + margin get no q_j;
inference   δ = 0 forced (the input fixed to x̄): OMLT's outputs must equal ``Network.forward``.

(On the logits, as ``output_relu: false``; given ``y_d ≥ ε > 0`` that is the same set as the thesis'
ReLU'd outputs, so the optimum is the same.)  HiGHS solves it through Pyomo (the
``pyomo.contrib.solver`` HiGHS interface, else ``appsi_highs`` on older Pyomo) with the time limit
left after the model build and its hand-over to HiGHS, 1 thread and advmilp's relative gap 1e-4.  The
result is one row of advmilp's schema (`advmilp.spec.rows.make_row`, method ``omlt``): ``time_s``
counts the ONNX parse, the model build and its hand-over to HiGHS (``build_time_s``) and the solve
(the imports of OMLT and Pyomo, once per process, are not counted); the witness (OMLT's input values) is verified
with `advmilp.spec.verify.verify_witness` on advmilp's own import of the same file
(`advmilp.nn.interchange.load_any`), and a witness that fails is ``verified = False`` — never solved.

OMLT's ONNX parser knows Gemm, MatMul + Add, Relu, Conv, Reshape and MaxPool, and no Flatten; the
external networks start with a Flatten (or Reshape) of the image tensor.  That node alone is
dropped and the input declared as the flat vector ``[N, n]`` it produced (row-major, as Flatten
does); every weight is OMLT's own read of the file.  Anything else OMLT cannot parse is refused in
one line.

    python benchmarks/omlt_peer.py --model net.onnx --images 0-2 --time-limit 60 --out results/omlt-x
    python benchmarks/omlt_peer.py --model dnn1 --images 0,5,7 --problem untargeted --out DIR

``--model`` is an ONNX file or a shipped network name (exported to ONNX in DIR first).  Rows are
appended to DIR/instances.csv (whole rows, resumable: images already recorded are skipped).
Needs the ``peers`` extra: ``pip install -e '.[peers]'``.

The same model over a VNN-LIB property's input box is the verification peer of ``advmilp verify``
(`omlt_verify`, run by ``benchmarks/vnncomp_bench.py --omlt``): one binary per disjunct, infeasible =
``holds``, a point = ``violated`` only if advmilp's float64 and float32 forward passes agree.
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advmilp import __version__
from advmilp.errors import AdvmilpError
from advmilp.experiments.config import parse_indices
from advmilp.methods.result import InstanceResult, started_at
from advmilp.nn.network import Network
from advmilp.spec.problems import ProblemSpec, SolverSettings, input_box, targeted_criterion
from advmilp.spec.rows import ERROR, TIME_LIMIT, gap_percent, make_row
from advmilp.spec.verify import verify_witness

METHOD = "omlt"
KINDS = ("targeted", "untargeted", "inference")
MISSING = "the OMLT peer needs omlt and pyomo: pip install -e '.[peers]'"


def _peer_modules():
    try:
        import onnx
        import pyomo.environ as pyo
        from omlt import OmltBlock
        from omlt.io.onnx import load_onnx_neural_network
        from omlt.neuralnet import ReluBigMFormulation
    except ImportError as exc:
        raise AdvmilpError(f"{MISSING} ({exc})") from exc
    return onnx, pyo, OmltBlock, load_onnx_neural_network, ReluBigMFormulation


def versions() -> str:
    """``OMLT x + Pyomo y`` for the rows' message."""
    import omlt
    import pyomo.version

    return f"OMLT {omlt.__version__} + Pyomo {pyomo.version.version}"


# ---- the ONNX graph as OMLT reads it -----------------------------------------------------------
def _flat_target(node, graph, onnx, n: int) -> bool:
    """True if ``node`` (a Flatten or Reshape of the graph input) makes the flat vector [batch, n]."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Flatten":
        return attrs.get("axis", 1) == 1
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    for c in graph.node:
        if c.op_type == "Constant":
            consts[c.output[0]] = onnx.numpy_helper.to_array(onnx.helper.get_attribute_value(c.attribute[0]))
    shape = consts.get(node.input[1]) if len(node.input) > 1 else None
    if shape is None:
        return False
    shape = [int(s) for s in np.asarray(shape).reshape(-1)]
    return len(shape) == 2 and shape[0] in (1, -1, 0) and shape[1] in (n, -1)


def omlt_graph(model):
    """A copy of ``model`` that OMLT's parser takes: a leading Flatten/Reshape of the input to the flat
    vector is removed and the input declared ``[N, n]``, Gemm's default attributes written out, unnamed
    nodes named; all else (weights included) untouched."""
    onnx = _peer_modules()[0]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {t.name for t in g.initializer}
    inputs = [v for v in g.input if v.name not in inits]
    if len(inputs) != 1:
        raise AdvmilpError(f"the ONNX graph needs one input (has {len(inputs)})")
    x = inputs[0]
    n = int(np.prod([d.dim_value if d.dim_value > 0 else 1 for d in x.type.tensor_type.shape.dim]))
    while True:
        users = [node for node in g.node if x.name in node.input]
        if len(users) != 1 or users[0].op_type not in ("Flatten", "Reshape") or users[0].input[0] != x.name \
                or not _flat_target(users[0], g, onnx, n):
            break
        node = users[0]
        g.node.remove(node)
        for other in g.node:
            for i, name in enumerate(other.input):
                if name == node.output[0]:
                    other.input[i] = x.name
    names = {node.name for node in g.node}
    for k, node in enumerate(g.node):   # OMLT keys nodes by name: unnamed ones would collide
        if not node.name or sum(other.name == node.name for other in g.node) > 1:
            node.name = next(f"{node.op_type}_{k}_{j}" for j in range(len(g.node) + 1)
                             if f"{node.op_type}_{k}_{j}" not in names)
            names.add(node.name)
    for node in g.node:   # OMLT reads alpha, beta and transB without ONNX's defaults (1, 1, 0)
        if node.op_type == "Gemm":
            have = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if have.get("transA", 0):
                raise AdvmilpError(f"Gemm node {node.name!r}: transA=1 is not supported by OMLT")
            node.attribute.extend(onnx.helper.make_attribute(k, v) for k, v in
                                  (("alpha", 1.0), ("beta", 1.0), ("transB", 0)) if k not in have)
    dims = x.type.tensor_type.shape.dim
    del dims[:]
    dims.add().dim_param = "N"
    dims.add().dim_value = n
    return m


# ---- the model ---------------------------------------------------------------------------------
@dataclass
class PeerModel:
    """The Pyomo model and the handles the solve and the row need."""

    model: object              # pyomo ConcreteModel: m.nn (the OMLT block), m.dp, m.dm, m.obj
    inputs: list               # OMLT's input variables, in the flat pixel order
    outputs: list              # OMLT's output variables (the logits), in order
    target: int | None
    binaries: int
    build_s: float


def _check_spec(spec: ProblemSpec) -> None:
    if spec.kind not in KINDS:
        raise AdvmilpError(f"the OMLT peer solves {', '.join(KINDS)} problems (got {spec.kind!r})")
    extras = [name for name, v in (("norm", spec.norm != "l1"), ("linf_cap", spec.linf_cap is not None),
                                   ("l1_cap", spec.l1_cap is not None), ("l0_cap", spec.l0_cap is not None)) if v]
    if extras:
        raise AdvmilpError(f"the OMLT peer minimises L1 over the box only (the problem sets {', '.join(extras)})")


def omlt_block(onnx_path, x_lb: np.ndarray, x_ub: np.ndarray, what: str = "input box"):
    """A Pyomo model ``m`` whose block ``m.nn`` is OMLT's big-M model of the network in ``onnx_path`` over the
    input box [x_lb, x_ub] (OMLT's interval bounds start from it); returns (m, OMLT's network definition,
    input variables in the flat pixel order, output variables in order)."""
    onnx, pyo, OmltBlock, load_onnx_neural_network, ReluBigMFormulation = _peer_modules()
    path = Path(onnx_path)
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError, missing file
        raise AdvmilpError(f"{path}: cannot read ONNX model ({type(exc).__name__}: {exc})") from exc
    graph = omlt_graph(proto)
    n = graph.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    if len(x_lb) != n:
        raise AdvmilpError(f"the {what} has {len(x_lb)} values; {path.name} takes {n}")
    # OMLT creates its scaled inputs at 0 before their bounds: over a box without 0 Pyomo logs one W1002
    # warning per pixel (harmless, the value is never used), so pyomo.core is quiet during the build
    quiet = logging.getLogger("pyomo.core")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        net_def = load_onnx_neural_network(
            graph, input_bounds={i: (float(x_lb[i]), float(x_ub[i])) for i in range(n)})
        m = pyo.ConcreteModel()
        m.nn = OmltBlock()
        m.nn.build_formulation(ReluBigMFormulation(net_def))
    except (ValueError, TypeError, KeyError) as exc:
        raise AdvmilpError(f"{path.name}: OMLT cannot build this network ({type(exc).__name__}: {exc})") from exc
    finally:
        quiet.setLevel(level)
    inputs = [m.nn.inputs[k] for k in m.nn.inputs_set]
    outputs = [m.nn.outputs[k] for k in m.nn.outputs_set]
    if len(inputs) != n:
        raise AdvmilpError(f"{path.name}: OMLT reads {len(inputs)} inputs, the file declares {n}")
    return m, net_def, inputs, outputs


def build_peer(onnx_path, x_bar: np.ndarray, label: int, spec: ProblemSpec) -> PeerModel:
    """OMLT's big-M model of the network in ``onnx_path`` with the distance and ``spec``'s criterion."""
    _check_spec(spec)
    pyo = _peer_modules()[1]
    t0 = time.perf_counter()
    x_bar = np.asarray(x_bar, dtype=np.float64).reshape(-1)
    m, net_def, inputs, outputs = omlt_block(onnx_path, np.zeros(x_bar.size), np.ones(x_bar.size), "image")
    n, n_out = len(inputs), len(outputs)
    spec.check_for([n, n_out], label)
    target = spec.target_for(label)

    fixed = spec.kind == "inference"
    m.dp = pyo.Var(range(n), bounds=lambda _, i: (0.0, 0.0 if fixed else 1.0 - x_bar[i]))
    m.dm = pyo.Var(range(n), bounds=lambda _, i: (0.0, 0.0 if fixed else x_bar[i]))
    m.link = pyo.Constraint(range(n), rule=lambda mm, i: inputs[i] == float(x_bar[i]) + mm.dp[i] - mm.dm[i])
    m.obj = pyo.Objective(expr=sum(m.dp[i] + m.dm[i] for i in range(n)), sense=pyo.minimize)
    m.criterion = pyo.ConstraintList()
    if spec.kind == "targeted":
        G, h = targeted_criterion(spec, target, n_out)
        for g, rhs in zip(G, h):
            m.criterion.add(sum(float(g[j]) * outputs[j] for j in np.flatnonzero(g)) >= float(rhs) + spec.margin)
    elif spec.kind == "untargeted":
        _add_misclassification(m, pyo, net_def, spec, label)
    binaries = sum(1 for v in m.component_data_objects(pyo.Var) if v.is_binary())
    return PeerModel(m, inputs, outputs, target, binaries, time.perf_counter() - t0)


def _output_bounds(m, net_def, relu_ok: bool = False) -> list[tuple[float, float]]:
    """OMLT's interval bounds on the outputs: the output layer's pre-activations ẑ (the logits), or with
    ``relu_ok`` and a ReLU on the output layer, ẑ's bounds through the ReLU."""
    (last,) = list(net_def.output_layers)
    if last.activation not in ("linear", "relu") or (last.activation == "relu" and not relu_ok):
        raise AdvmilpError(f"the OMLT peer reads logits; the output layer has activation {last.activation!r}")
    zhat = m.nn.layer[id(last)].zhat
    bounds = [tuple(float(b) for b in zhat[k].bounds) for k in zhat]
    return [(max(lo, 0.0), max(hi, 0.0)) for lo, hi in bounds] if last.activation == "relu" else bounds


def _add_misclassification(m, pyo, net_def, spec: ProblemSpec, label: int) -> None:
    """advmilp's untargeted criterion (`advmilp.encode.milp._add_misclassification`) on OMLT's logits."""
    y = [m.nn.outputs[k] for k in m.nn.outputs_set]
    bounds = _output_bounds(m, net_def)
    winners = [j for j in range(len(y)) if j != label and bounds[j][1] >= spec.epsilon + spec.margin]
    m.q = pyo.Var(winners, within=pyo.Binary)
    if not winners:
        m.criterion.add(pyo.Constraint.Infeasible)
        return
    m.criterion.add(sum(m.q[j] for j in winners) == 1)
    t_upper = bounds[label][1]
    for j in winners:
        m1 = max(0.0, t_upper - spec.factor * bounds[j][0] + spec.margin)
        m.criterion.add(y[label] - spec.factor * y[j] + m1 * m.q[j] <= m1 - spec.margin)
        m2 = max(0.0, spec.epsilon + spec.margin - bounds[j][0])
        m.criterion.add(y[j] - m2 * m.q[j] >= spec.epsilon + spec.margin - m2)


# ---- the solve ---------------------------------------------------------------------------------
@dataclass
class PeerSolve:
    status: str
    objective: float
    bound: float
    nodes: int | None
    has_point: bool
    interface: str
    translate_s: float = 0.0   # Pyomo handing the model to HiGHS (set_instance)
    message: str = ""


def _no_auto_updates(config) -> None:
    """The model does not change between set_instance and solve: skip Pyomo's scan for changes."""
    for name in ("check_for_new_or_removed_constraints", "check_for_new_or_removed_vars",
                 "check_for_new_or_removed_params", "check_for_new_objective", "update_constraints", "update_vars",
                 "update_parameters", "update_named_expressions", "update_objective"):
        setattr(config, name, False)


def solve_peer(peer: PeerModel, settings: SolverSettings, deadline: float) -> PeerSolve:
    """HiGHS through Pyomo, stopping by ``deadline`` (a ``time.perf_counter`` time): the model is handed to
    HiGHS first (timed: ``translate_s``), the solve gets the time left, ``settings.threads`` threads and
    ``settings.gap_rel``.  Status, incumbent, dual bound and nodes are read from the highspy object."""
    from advmilp.solvers.highs import status_of, swallow_banner

    swallow_banner()
    m = peer.model
    t0 = time.perf_counter()
    try:
        from pyomo.contrib.solver.solvers.highs import Highs

        interface, opt = "pyomo.contrib.solver highs", Highs()
        opt.set_instance(m)
        _no_auto_updates(opt.config.auto_updates)
        translate_s = time.perf_counter() - t0
        left = deadline - time.perf_counter()
        if left <= 0:
            return PeerSolve(TIME_LIMIT, math.nan, math.nan, 0, False, interface, translate_s,
                             "the model build took the whole time limit")
        res = opt.solve(m, time_limit=left, threads=settings.threads, rel_gap=settings.gap_rel,
                        load_solutions=False, raise_exception_on_nonoptimal_result=False)
    except ImportError:   # Pyomo < 6.9: the APPSI interface
        from pyomo.contrib.appsi.solvers import Highs

        interface, opt = "appsi_highs", Highs()
        opt.set_instance(m)
        translate_s = time.perf_counter() - t0
        opt.config.time_limit = max(deadline - time.perf_counter(), 1e-3)
        opt.config.mip_gap, opt.config.load_solution = settings.gap_rel, False
        opt.highs_options = {"threads": settings.threads}
        res = opt.solve(m)
    h = opt._solver_model
    info = h.getInfo()
    status = status_of(h.getModelStatus())
    has_point = info.primal_solution_status == 2
    if has_point:
        res.solution_loader.load_vars()
    objective = float(info.objective_function_value) if has_point else math.nan
    nodes = int(info.mip_node_count) if info.mip_node_count >= 0 else None
    bound = float(info.mip_dual_bound) if nodes is not None and math.isfinite(info.mip_dual_bound) else math.nan
    message = f"HiGHS ran {h.getRunTime():.1f} s" + (
        "" if status != ERROR else f", model status {h.modelStatusToString(h.getModelStatus())}")
    return PeerSolve(status, objective, bound, nodes, has_point, interface, translate_s, message)


# ---- one instance ------------------------------------------------------------------------------
def omlt_attack(onnx_path, x_bar: np.ndarray, label: int, spec: ProblemSpec, settings: SolverSettings,
                image_index: int | None = None, network: Network | None = None) -> InstanceResult:
    """One instance end to end with OMLT + Pyomo + HiGHS: build, solve (all within ``settings.time_limit``
    from the start: the solve gets what the build and Pyomo's hand-over to HiGHS left), verify the
    witness on advmilp's import of the same file (``network``, default `load_any` of ``onnx_path``), and
    return advmilp's row (method ``omlt``).
    ``extra["outputs"]`` holds OMLT's output values at its point."""
    from advmilp.nn.interchange import load_any
    from advmilp.solvers.highs import solver_version

    _peer_modules()   # imported before the clock starts (OMLT's import pulls in TensorFlow when it is installed)
    started = started_at()
    t0 = time.perf_counter()
    net = network if network is not None else load_any(str(onnx_path))
    x_bar = np.asarray(x_bar, dtype=np.float64).reshape(-1)
    peer = build_peer(onnx_path, x_bar, label, spec)
    sol = solve_peer(peer, settings, t0 + settings.time_limit)
    witness, outputs, verified, predicted, reason = None, None, False, None, ""
    ratio = l1 = linf = math.nan
    if sol.has_point:
        x = np.array([float(v.value) for v in peer.inputs])
        outputs = np.array([float(v.value) for v in peer.outputs])
        x_lb, x_ub = input_box(spec, x_bar.size, x_bar)
        check = verify_witness(net, x, spec, x_bar, label, peer.target, x_lb, x_ub)
        witness, predicted, ratio, l1, linf = check.x, check.predicted, check.ratio, check.l1, check.linf
        verified, reason = check.verified, check.reason
        if spec.kind == "inference":
            ref = net.forward(check.x)
            err = float(np.max(np.abs(outputs - ref)))
            verified = err <= 1e-6 * max(1.0, float(np.max(np.abs(ref))))
            reason = "" if verified else f"OMLT outputs differ from forward by {err:.3g}"
    row = make_row(
        network=net.name, method=METHOD, network_hash=net.short_hash(), bounds="basic", problem=spec.describe(),
        image_index=image_index, label=label, target=peer.target, status=sol.status, objective=sol.objective,
        bound=sol.bound, gap_pct=gap_percent(sol.objective, sol.bound), nodes=sol.nodes,
        time_s=time.perf_counter() - t0, build_time_s=peer.build_s + sol.translate_s, bounds_time_s=0.0,
        binaries=peer.binaries,
        verified=bool(verified), verify_note=reason, predicted=predicted, ratio=ratio, l1=l1, linf=linf,
        solver="highs", solver_version=solver_version("highs"), threads=settings.threads,
        time_limit=settings.time_limit, gap_rel=settings.gap_rel, advmilp_version=__version__,
        host=platform.node(), started_at=started,
        message="; ".join(s for s in (f"{versions()} via {sol.interface}; OMLT interval bounds", sol.message) if s))
    return InstanceResult(row, witness if verified else None, {"outputs": outputs})


# ---- a VNN-LIB property (the verification peer of `advmilp verify`) -------------------------------
VERIFY_SLACK = 1e-4   # the MILP maximises the violation slack t over [0, VERIFY_SLACK]: done at the first such point


@dataclass
class PeerVerdict:
    result: str       # holds | violated | unknown
    time_s: float     # the model build, its hand-over to HiGHS and the solve
    raw: str          # HiGHS's model status, or why unknown


def omlt_verify(onnx_path, vnnlib_path, time_limit: float, threads: int = 1) -> PeerVerdict:
    """Decide a VNN-LIB property with OMLT's big-M model of the network over the property's input box
    (OMLT's interval bounds from that box) and HiGHS, as MIPVerify or Venus would with their MILP: one
    binary s_k per disjunct (none for one disjunct), ``Σ s_k = 1``, each row ``g·y + t ≤ h + M(1 − s_k)``
    with M from OMLT's output bounds, maximise the slack ``t ∈ [0, VERIFY_SLACK]`` (so the solve ends at
    the first point that violates the property by that slack).  Infeasible → ``holds``; a point that
    violates the property in advmilp's float64 *and* float32 forward passes of the same file →
    ``violated``; anything else (time limit, a point that fails the check) → ``unknown``."""
    from advmilp.nn.interchange import load_any
    from advmilp.spec.rows import INFEASIBLE
    from advmilp.spec.vnnlib import read_vnnlib

    pyo = _peer_modules()[1]
    t0 = time.perf_counter()
    prop = read_vnnlib(vnnlib_path)
    net = load_any(str(onnx_path))
    m, net_def, inputs, outputs = omlt_block(onnx_path, prop.x_lb, prop.x_ub)
    if len(outputs) != prop.n_outputs:
        raise AdvmilpError(f"{Path(vnnlib_path).name} has {prop.n_outputs} outputs; the network {len(outputs)}")
    y_box = _output_bounds(m, net_def, relu_ok=True)
    lo = np.array([b[0] for b in y_box])
    hi = np.array([b[1] for b in y_box])
    m.t = pyo.Var(bounds=(0.0, VERIFY_SLACK))
    m.obj = pyo.Objective(expr=m.t, sense=pyo.maximize)
    m.rows = pyo.ConstraintList()
    several = len(prop.disjuncts) > 1
    if several:
        m.s = pyo.Var(range(len(prop.disjuncts)), within=pyo.Binary)
        m.rows.add(sum(m.s[k] for k in range(len(prop.disjuncts))) == 1)
    for k, (G, h) in enumerate(prop.disjuncts):
        for g, rhs in zip(G, h):
            gy = sum(float(g[j]) * outputs[j] for j in np.flatnonzero(g))
            if several:
                big_m = max(0.0, float(np.maximum(g * lo, g * hi).sum()) + VERIFY_SLACK - float(rhs))
                m.rows.add(gy + m.t <= float(rhs) + big_m * (1 - m.s[k]))
            else:
                m.rows.add(gy + m.t <= float(rhs))
    binaries = sum(1 for v in m.component_data_objects(pyo.Var) if v.is_binary())
    peer = PeerModel(m, inputs, outputs, None, binaries, time.perf_counter() - t0)
    sol = solve_peer(peer, SolverSettings("highs", time_limit, threads, 1e-4), t0 + time_limit)
    elapsed = time.perf_counter() - t0
    if sol.status == INFEASIBLE:
        return PeerVerdict("holds", elapsed, sol.status)
    if not sol.has_point:
        return PeerVerdict("unknown", elapsed, sol.status)
    return point_verdict(net, prop, np.array([float(v.value) for v in inputs]), elapsed, sol.status)


def point_verdict(net: Network, prop, x: np.ndarray, elapsed: float, status: str) -> PeerVerdict:
    """A peer's claimed counterexample ``x`` (its solver said ``status``) for the property ``prop`` of
    ``net``: ``violated`` only if x, clipped to the property's box, violates the property in advmilp's
    float64 *and* float32 forward passes; else ``unknown``, saying that the point fails the check."""
    from advmilp.methods.verify import network_outputs

    x = np.clip(np.asarray(x, np.float64), prop.x_lb, prop.x_ub)
    y64 = network_outputs(net, x)
    y32 = network_outputs(net, x.astype(np.float32), np.float32).astype(np.float64)
    if prop.violated_by(y64) and prop.violated_by(y32):
        return PeerVerdict("violated", elapsed, status)
    return PeerVerdict("unknown", elapsed, f"{status}, its point fails the forward-pass check "
                                          f"(margin {prop.margin(y64):.3g})")


# ---- a batch: rows appended to DIR/instances.csv --------------------------------------------------
def run_images(onnx_path, indices: list[int], spec: ProblemSpec, settings: SolverSettings, out_dir,
               data_dir=None, log=print) -> Path:
    """Attack test images ``indices`` of MNIST; one whole row per image appended to out_dir/instances.csv,
    images whose row is recorded skipped (resume), witnesses in out_dir/witnesses/."""
    from advmilp.data.mnist import load_split
    from advmilp.experiments.runner import Instance, git_sha
    from advmilp.experiments.store import append_row, locked_folder, read_done, save_array
    from advmilp.nn.interchange import load_any
    from advmilp.spec.rows import is_solved

    _check_spec(spec)
    _peer_modules()
    net = load_any(str(onnx_path))
    split = load_split("test", data_dir)
    bad = [i for i in indices if i >= len(split)]
    if bad:
        raise AdvmilpError(f"image indices out of range (0..{len(split) - 1}): {bad}")
    out_dir = Path(out_dir)
    csv_path = out_dir / "instances.csv"
    sha = git_sha()
    with locked_folder(out_dir):
        done = read_done(csv_path)
        for i in indices:
            inst = Instance(net.name, net.short_hash(), METHOD, "basic", spec.describe(), i)
            if inst.key in done:
                continue
            label = int(split.labels[i])
            try:
                res = omlt_attack(onnx_path, split.images[i], label, spec, settings, image_index=i, network=net)
                row = res.row
                if res.witness is not None:
                    row["witness"] = save_array(out_dir / "witnesses" / f"{inst.slug}.npy", res.witness)
            except AdvmilpError:
                raise
            except Exception as exc:  # a failure of OMLT/Pyomo on one instance is a row, not a crash
                row = make_row(network=net.name, network_hash=net.short_hash(), method=METHOD, bounds="basic",
                               problem=spec.describe(), image_index=i, label=label, target=spec.target_for(label),
                               status=ERROR, message=f"{type(exc).__name__}: {exc}", started_at=started_at())
            row["git_sha"] = sha
            append_row(csv_path, row)
            log(f"{net.name} image {i}: {row['status']} objective {row['objective']} bound {row['bound']} "
                f"{row['time_s'] or 0:.1f} s{' solved' if is_solved(row) else ''}")
    return csv_path


def model_file(model: str, out_dir) -> Path:
    """An ONNX file for ``model``: the path itself, or a shipped network name exported to out_dir/<name>.onnx."""
    from advmilp.nn.interchange import export_onnx, load_any

    if model.lower().endswith(".onnx"):
        path = Path(model)
        if not path.is_file():
            raise AdvmilpError(f"{path}: ONNX file not found")
        return path
    target = Path(out_dir) / f"{model}.onnx"
    if not target.is_file():
        export_onnx(load_any(model), target)
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="an .onnx file, or a shipped network name (dnn1 ...)")
    ap.add_argument("--images", required=True, help="MNIST test indices: 0-2,7")
    ap.add_argument("--problem", default="targeted", choices=("targeted", "untargeted"))
    ap.add_argument("--time-limit", type=float, default=300.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gap-rel", type=float, default=1e-4)
    ap.add_argument("--out", required=True, help="results folder (instances.csv, witnesses/)")
    ap.add_argument("--data-dir", default=None, help="MNIST (default $ADVMILP_DATA)")
    args = ap.parse_args(argv)
    try:
        spec = ProblemSpec(args.problem, ratio=1.2, factor=0.95, output_relu=False)
        settings = SolverSettings("highs", args.time_limit, args.threads, args.gap_rel)
        path = model_file(args.model, args.out)
        run_images(path, parse_indices(args.images), spec, settings, args.out, args.data_dir)
    except AdvmilpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
