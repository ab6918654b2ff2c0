"""The thesis-faithful method ``milp``: one instance end to end, model → solve → witness verification → row.

`run_instance` is also the MILP step of the ``tight`` pipeline (with its bounds, cap, warm start,
cuts and HiGHS options).  Its ``time_s`` is the wall time of all of it (build, cuts, solve,
verification), and the whole runs within the settings' time limit or a ``deadline`` passed down
(`advmilp.solvers.clock`); ``bounds_time_s`` is the time spent on the bounds in this run (0 when they
came from the cache, whose original computation time the message gives)."""

from __future__ import annotations

import math
import platform
import time

import numpy as np

from advmilp import __version__
from advmilp.bounds.compute import Bounds
from advmilp.search.cuts import add_ideal_cuts
from advmilp.encode.milp import build_model
from advmilp.nn.network import Network
from advmilp.spec.problems import ProblemSpec, SolverSettings
from advmilp.methods.result import InstanceResult, started_at
from advmilp.solvers.pulp import solve
from advmilp.spec.rows import make_row
from advmilp.spec.verify import verify_witness


def _outputs(network: Network, out: np.ndarray, spec: ProblemSpec) -> np.ndarray:
    """The output values the model reads from the logits ``out``: the thesis' ReLU split
    (``output_relu``), else the output layer's own activation (linear, or a network's ReLU on the
    outputs: `encode.milp.encode_network`)."""
    return np.maximum(out, 0.0) if spec.output_relu else network.layers[-1].act(out)


def _feature_value(network: Network, x: np.ndarray, spec: ProblemSpec) -> float:
    pres = network.preactivations(x)
    if spec.objective == "hidden":
        return float(network.layers[spec.layer - 1].act(pres[spec.layer - 1])[spec.unit])
    o = _outputs(network, pres[-1], spec)
    if spec.objective == "simple":
        return float(o[spec.unit])
    return float(o[spec.unit] - (o.sum() - o[spec.unit]))


def _cache_note(bounds: Bounds) -> str:
    return f"{bounds.method} bounds from the cache (computed in {bounds.time_s:.1f} s)" if bounds.cached else ""


def run_instance(network: Network, bounds: Bounds, spec: ProblemSpec, settings: SolverSettings,
                 x_bar: np.ndarray | None = None, label: int | None = None,
                 image_index: int | None = None, warm_start_x: np.ndarray | None = None,
                 l1_cap: float | None = None, split_distance: bool = False,
                 solver_options: dict | None = None, cut_rounds: int = 0,
                 deadline: float | None = None) -> InstanceResult:
    """Build, solve and verify one instance; the row carries its provenance.

    ``solver_options`` are passed to HiGHS as they are (ignored by the other solvers);
    ``cut_rounds`` > 0 adds ideal ReLU cuts separated at the root LP (`cuts`).  Everything ends by
    ``deadline`` (default: ``settings.time_limit`` from now)."""
    started = started_at()
    t0 = time.perf_counter()
    if deadline is None:
        deadline = t0 + settings.time_limit
    form = build_model(network, bounds, spec, x_bar, label, name=f"{network.name}_{image_index}", l1_cap=l1_cap,
                       split_distance=split_distance)
    n_cuts = add_ideal_cuts(form, cut_rounds, deadline=deadline) if cut_rounds > 0 else 0
    build_s = time.perf_counter() - t0
    warm = form.assignment(warm_start_x) if warm_start_x is not None else None
    res = solve(form.prob, settings.name, settings.time_limit, settings.gap_rel, settings.threads, warm,
                options=solver_options, deadline=deadline)

    witness, verified, predicted, ratio, l1, linf, reason = None, False, None, math.nan, math.nan, math.nan, ""
    feature_value = math.nan
    if res.values is not None:
        x = form.input_point(res.values)
        check = verify_witness(network, x, spec, form.x_bar, label, form.target, form.x_lb, form.x_ub)
        witness, predicted, ratio, l1, linf = check.x, check.predicted, check.ratio, check.l1, check.linf
        verified, reason = check.verified, check.reason
        if spec.kind == "feature":
            feature_value = _feature_value(network, check.x, spec)
            verified = abs(feature_value - res.objective) <= 1e-5 * max(1.0, abs(res.objective))
            reason = "" if verified else f"forward value {feature_value:.6g} != objective {res.objective:.6g}"
        elif spec.kind == "inference":
            out = network.forward(check.x)
            model_out = np.array([sum(c * res.values[v.name] for v, c in u.value) for u in form.outputs])
            ref = _outputs(network, out, spec)
            err = float(np.max(np.abs(model_out - ref)))
            verified = err <= 1e-6 * max(1.0, float(np.max(np.abs(ref))))
            reason = "" if verified else f"MILP outputs differ from forward by {err:.3g}"
    row = make_row(
        network=network.name, method="milp", network_hash=network.short_hash(), bounds=bounds.method,
        problem=spec.describe(), image_index=image_index, label=label, target=form.target, status=res.status,
        objective=res.objective, bound=res.bound, gap_pct=res.gap_pct, nodes=res.nodes,
        time_s=time.perf_counter() - t0, build_time_s=build_s, bounds_time_s=0.0 if bounds.cached else bounds.time_s,
        binaries=form.n_binaries, cuts=n_cuts,
        verified=bool(verified), verify_note=reason, predicted=predicted, ratio=ratio, l1=l1, linf=linf,
        feature_value=feature_value, solver=res.solver, solver_version=res.solver_version,
        threads=settings.threads, time_limit=settings.time_limit, gap_rel=settings.gap_rel,
        advmilp_version=__version__, host=platform.node(), started_at=started,
        message="; ".join(m for m in (res.message, _cache_note(bounds)) if m))
    return InstanceResult(row, witness)
