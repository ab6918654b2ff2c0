"""One perturbation δ that sends every selected image to its target: a universal adversarial example,
exact, by the phase search on a *stacked* network.

The k images x̄_1..x̄_k share δ, so the k copies of the network are one network of the input δ
(`stacked_network`): its first layer is the network's first layer k times with biases W x̄_i + b, its
later layers are block-diagonal, its outputs the k copies' logits.  "Every image reaches its target"
is then one conjunction of the k targeted criteria (`spec.problems.targeted_criterion`, stacked), and
minimal ‖δ‖ over δ with every x̄_i + δ in [0, 1] is one `search.problems.PhaseProblem` — the same
search, bounds (`bounds.crown`) and encoder table as a single attack, nothing encoded twice.

A candidate δ counts only if *each* x̄_i + δ passes the float64 and float32 check (`spec.verify`).
The untargeted version (every image leaves its label) would be a conjunction of k disjunctions,
9^k conjunctions to search; it is refused, not approximated.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from advmilp.bounds.ball import ball_bounds
from advmilp.bounds.compute import Bounds
from advmilp.bounds.crown import crown_bounds
from advmilp.errors import AdvmilpError
from advmilp.heuristics.gradient import gradient_start
from advmilp.heuristics.primal import greedy_start, improve_by_regions, region_lp_model
from advmilp.nn.network import Network
from advmilp.search.ladder import bisection, climb_ladder
from advmilp.search.options import SearchOptions
from advmilp.search.phase_bb import search_phases
from advmilp.search.problems import DISTANCE, LPObjective, PhaseProblem
from advmilp.search.tighten import tighten_over_problem
from advmilp.solvers.clock import expired, time_left
from advmilp.spec.problems import Criterion, ProblemSpec, targeted_criterion
from advmilp.spec.rows import INFEASIBLE, OPTIMAL, TIME_LIMIT
from advmilp.spec.verify import verify_witness


@dataclass(frozen=True)
class UniversalResult:
    status: str                   # optimal | time_limit | infeasible | limit | unknown (the search's)
    delta: np.ndarray | None      # the best verified δ (None: none found)
    objective: float              # its norm (nan if none)
    bound: float                  # proven lower bound on the least norm
    nodes: int
    time_s: float
    binaries: int                 # unstable units of the stacked network at the last search's root (0: no search)
    targets: tuple[int, ...]
    per_image: tuple[bool, ...]   # each image's float64+float32 check at δ (empty if none)


def stacked_network(network: Network, images: np.ndarray) -> Network:
    """The network of δ whose outputs are [N(x̄_1 + δ), ..., N(x̄_k + δ)] (logits of every copy)."""
    images = np.atleast_2d(np.asarray(images, dtype=np.float64))
    k = len(images)
    first = network.layers[0]
    weights = [np.vstack([first.W] * k)]
    biases = [np.concatenate([first.W @ x + first.b for x in images])]
    for layer in network.layers[1:]:
        weights.append(np.kron(np.eye(k), layer.W))
        biases.append(np.tile(layer.b, k))
    return Network.from_arrays(weights, biases, [layer.activation for layer in network.layers],
                               {"architecture": f"{network.name}x{k}", "stacked_from": network.name},
                               [layer.slope for layer in network.layers])


def delta_box(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The δ with every x̄_i + δ in [0, 1]."""
    images = np.atleast_2d(images)
    return (-images).max(axis=0), (1.0 - images).min(axis=0)


def universal_attack(network: Network, images: np.ndarray, labels, spec: ProblemSpec, time_limit: float = 300.0,
                     gap_rel: float = 1e-4, say=None) -> UniversalResult:
    """The least-norm δ (``spec.norm`` l1 or linf) sending every image to its target (the spec's
    target, or (label + offset) mod 10 per image), within ``time_limit`` seconds.  ``say``: a callable
    given one line per stage (the first δ, the floor, each radius of the ladder), for progress."""
    t0 = time.perf_counter()

    def tell(message: str) -> None:
        if say is not None:
            say(f"{time.perf_counter() - t0:6.1f} s  {message}")
    if spec.kind != "targeted":
        raise AdvmilpError("a universal perturbation is searched for the targeted problem only (the untargeted "
                           "one is a conjunction of one disjunction per image: not supported)")
    if spec.norm not in ("l1", "linf"):
        raise AdvmilpError(f"a universal perturbation minimises the l1 or linf norm, not {spec.norm}")
    images = np.atleast_2d(np.asarray(images, dtype=np.float64))
    labels = [int(v) for v in labels]
    targets = tuple(spec.target_for(lab) for lab in labels)
    for lab in labels:
        spec.check_for(network.sizes, lab)
    k, n_out = len(images), network.n_outputs
    stacked = stacked_network(network, images)
    blocks = [targeted_criterion(spec, t, n_out) for t in targets]
    G = np.zeros((sum(len(g) for g, _ in blocks), k * n_out))
    r = 0
    for i, (g, _) in enumerate(blocks):
        G[r:r + len(g), i * n_out:(i + 1) * n_out] = g
        r += len(g)
    h = np.concatenate([hh for _, hh in blocks]) + spec.margin
    lo, hi = delta_box(images)
    if spec.linf_cap is not None:
        lo, hi = np.maximum(lo, -spec.linf_cap), np.minimum(hi, spec.linf_cap)
    if np.any(lo > hi):
        raise AdvmilpError("no δ keeps every image in [0, 1]")
    zero = np.zeros(network.n_inputs)

    def checks(delta):
        return [verify_witness(network, x + delta, spec, x, lab, t) for x, lab, t in zip(images, labels, targets)]

    def evaluate(delta):
        delta = np.clip(delta, lo, hi)
        ok = all(c.verified for c in checks(delta))
        value = float(np.abs(delta).sum()) if spec.norm == "l1" else float(np.abs(delta).max(initial=0.0))
        return ok, value, delta

    objective = DISTANCE if spec.norm == "l1" else LPObjective(l1=False, linf=True)
    cap = spec.l1_cap - spec.margin if spec.l1_cap is not None else None
    deadline = t0 + time_limit

    def search(bounds, problem, incumbent=None, stop_first=False, floor=-math.inf, until=None):
        stop = deadline if until is None else min(deadline, until)
        options = SearchOptions(time_limit=max(stop - time.perf_counter(), 0.0), gap_rel=gap_rel)
        if stop_first:    # a first point: stop there (stop_at +inf)
            problem = PhaseProblem(zero, problem.x_lb, problem.x_ub, G, h, evaluate, objective, problem.cap,
                                   stop_at=math.inf)
        return search_phases(stacked, bounds, problem, incumbent, options, floor=floor)

    # 1. a first δ: the primal heuristic on the stacked network, else the search's first point over the
    # whole box; 2. every δ at least as good lies in the ball (l1) or box (linf) of its norm: bounds over
    # that set (backward propagation), and the search again from that point
    nodes, first = 0, None
    start = first_point(stacked, Criterion(-1, G, h - spec.margin), spec.margin, lo, hi, evaluate, deadline)
    if start is not None and cap is not None and np.abs(start).sum() > cap:
        start = None     # beyond the L1 cap: the search looks for a point within it
    tell(f"first δ by the heuristic: {evaluate(start)[1]:.6g}" if start is not None else
         "no first δ by the heuristic: the search looks for one over the whole box")
    if start is None and not expired(deadline):
        first = search(crown_bounds(stacked, lo, hi), PhaseProblem(zero, lo, hi, G, h, evaluate, objective, cap),
                       stop_first=True)
        nodes, start = first.nodes, first.x
    binaries = first.binaries if first is not None else 0     # of the last search over the stacked network
    res = first if first is not None and first.x is None and first.status == INFEASIBLE else None

    def within(radius, until):
        """Bounds over the δ no farther than ``radius`` (the spec's norm), tightened over that problem's LP
        until ``until``; the problem; whether that LP already has no point."""
        if spec.norm == "l1":
            # each copy's units over its image's L1 ball (per-unit LPs, `bounds.ball`), stacked, and
            # intersected with backward propagation over the shared ball
            per = [ball_bounds(network, x, radius, deadline=until) for x in images]
            stacked_ball = Bounds([np.concatenate([b.lower[k] for b in per]) for k in range(len(network.layers))],
                                  [np.concatenate([b.upper[k] for b in per]) for k in range(len(network.layers))],
                                  method="ball")
            bounds = crown_bounds(stacked, lo, hi, x_bar=zero, radius=radius, base=stacked_ball)
            problem = PhaseProblem(zero, lo, hi, G, h, evaluate, objective, radius if cap is None else min(radius, cap))
        else:
            blo, bhi = np.maximum(lo, -radius), np.minimum(hi, radius)
            bounds, problem = crown_bounds(stacked, blo, bhi), PhaseProblem(zero, blo, bhi, G, h, evaluate, objective, cap)
        # 5. every image's criterion at once bounds the shared δ's units far more than the ball does
        bounds, infeasible = tighten_over_problem(stacked, bounds, problem, passes=TIGHTEN_PASSES, deadline=until)
        return bounds, problem, infeasible

    def rung(radius, floor):
        """One rung of the ladder (`search.ladder`): the bounds within ``radius`` tightened on half the
        rung's share of the time left (None if they leave no LP point), the search within it on the rest."""
        step = LADDER_SHARE * time_left(deadline)
        until = time.perf_counter() + step
        bounds, problem, infeasible = within(radius, until - 0.5 * step)
        return None if infeasible else search(bounds, problem, floor=floor, until=until)

    floor = -math.inf
    if start is not None and not expired(deadline):
        # 3. a floor: no δ is shorter than any one image's own least perturbation (each image alone, by
        # `tight`, at most a fifth of the time left); 4. the radius ladder between it and the point
        floor = image_floor(network, images, labels, spec, deadline, share=0.2)
        tell(f"floor {floor:.6g}: the largest of the images' own least perturbations" if math.isfinite(floor)
             else "no floor: no image's own least perturbation proven in time")
        best = evaluate(start)[1]
        end = climb_ladder(bisection(best, LADDER_STEPS, gap_rel), rung, floor, deadline, tell)
        nodes += sum(s.nodes for s in end.searches)
        binaries = end.searches[-1].binaries if end.searches else binaries
        floor, res = end.floor, end.settled
        if res is not None:
            floor = max(floor, res.bound)
        if end.point is not None and evaluate(end.point)[1] < best:
            start = end.point
        if res is None and not expired(deadline):
            value = evaluate(start)[1]
            tell(f"the search from the point {value:.6g} with floor {floor:.6g}")
            r0 = value * (1 + 1e-7) + 1e-9
            bounds, problem, _ = within(r0, time.perf_counter() + 0.25 * time_left(deadline))
            res = search(bounds, problem, start, floor=floor)
            nodes += res.nodes
    if res is None:      # the time ran out before the search over the ball: the point (if any), the floor
        value = evaluate(start)[1] if start is not None else math.nan
        per_image = tuple(c.verified for c in checks(start)) if start is not None else ()
        return UniversalResult("time_limit", start, value, max(floor, 0.0), nodes, time.perf_counter() - t0, binaries,
                               targets, per_image)
    per_image = tuple(c.verified for c in checks(res.x)) if res.x is not None else ()
    return UniversalResult(res.status, res.x, res.objective, res.bound, nodes, time.perf_counter() - t0,
                           res.binaries, targets, per_image)


LADDER_STEPS = 8        # radii tried between the floor and the point, at most
LADDER_SHARE = 0.25     # of the time left, at most, per radius
TIGHTEN_PASSES = 3      # passes of `search.tighten` over each radius' problem


def image_floor(network: Network, images: np.ndarray, labels, spec: ProblemSpec, deadline: float,
                share: float = 0.2) -> float:
    """A proven lower bound of the universal δ's norm: the largest of the images' own least perturbations
    (each a bound proven by `tight` on the image alone, whose box contains the universal δ's), within
    ``share`` of the time left before ``deadline``; -inf if none is proven."""
    from advmilp.bounds.compute import interval_bounds
    from advmilp.methods.tight import run_tight
    from advmilp.spec.problems import SolverSettings

    stop = time.perf_counter() + share * max(deadline - time.perf_counter(), 0.0)
    floor, bounds = -math.inf, interval_bounds(network)
    for x, label in zip(images, labels):
        left = stop - time.perf_counter()
        if left <= 0.05:
            break
        row = run_tight(network, bounds, spec, SolverSettings(time_limit=left), x, int(label), -1).row
        if row["status"] in (OPTIMAL, TIME_LIMIT) and math.isfinite(row["bound"]):
            floor = max(floor, float(row["bound"]))
    return floor


def first_point(stacked: Network, criterion: Criterion, margin: float, lo: np.ndarray, hi: np.ndarray,
                evaluate, deadline: float | None = None) -> np.ndarray | None:
    """A verified δ by the primal heuristic on the stacked network (`heuristics.primal`): greedy pixel
    flips and the boundary attack (`heuristics.gradient`, seeded with the greedy point), each polished
    through neighbouring activation regions (the region LP of minimal Σ|δ| with every image's criterion);
    the best that ``evaluate`` accepts (its norm), or None."""
    zero = np.zeros(stacked.n_inputs)
    best, best_value = None, math.inf
    greedy = greedy_start(stacked, zero, criterion, margin, lo, hi, deadline)
    starts = [greedy] if greedy is not None else []
    if not expired(deadline):
        attack = gradient_start(stacked, zero, criterion, margin, lo, hi, deadline, seeds=starts)
        starts += [attack] if attack is not None else []
    for x in starts:
        if expired(deadline):
            break
        lp = region_lp_model(stacked, criterion, margin, zero, lo, hi)
        for candidate in (x, improve_by_regions(stacked, x, zero, lp, lo, hi, deadline=math.inf if deadline is None else deadline)[0]):
            ok, value, point = evaluate(candidate)
            if ok and value < best_value:
                best, best_value = point, value
    return best


def fooling_rates(network: Network, delta: np.ndarray, images: np.ndarray, labels: np.ndarray,
                  target: int | None = None) -> dict[str, float]:
    """δ added to other images (clipped to [0, 1]): of the images the network classifies correctly,
    the fraction whose prediction changes, and (with ``target``) the fraction sent to ``target`` among
    those not labelled ``target``."""
    pred0 = network.predict(images)
    correct = pred0 == labels
    pred = network.predict(np.clip(images[correct] + delta, 0.0, 1.0))
    out = {"images": int(correct.sum()), "fooled": float(np.mean(pred != labels[correct])) if correct.any() else math.nan}
    if target is not None:
        keep = labels[correct] != target
        out["to_target"] = float(np.mean(pred[keep] == target)) if keep.any() else math.nan
    return out
