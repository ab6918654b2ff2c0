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
from advmilp.nn.network import Network
from advmilp.search.options import SearchOptions
from advmilp.search.phase_bb import search_phases
from advmilp.search.problems import DISTANCE, LPObjective, PhaseProblem
from advmilp.spec.problems import ProblemSpec, targeted_criterion
from advmilp.spec.verify import verify_witness


@dataclass(frozen=True)
class UniversalResult:
    status: str                   # optimal | time_limit | infeasible | limit | unknown (the search's)
    delta: np.ndarray | None      # the best verified δ (None: none found)
    objective: float              # its norm (nan if none)
    bound: float                  # proven lower bound on the least norm
    nodes: int
    time_s: float
    binaries: int                 # unstable units of the stacked network at the root
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
                     gap_rel: float = 1e-4) -> UniversalResult:
    """The least-norm δ (``spec.norm`` l1 or linf) sending every image to its target (the spec's
    target, or (label + offset) mod 10 per image), within ``time_limit`` seconds."""
    t0 = time.perf_counter()
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

    def search(bounds, problem, incumbent=None, stop_first=False):
        options = SearchOptions(time_limit=max(deadline - time.perf_counter(), 0.0), gap_rel=gap_rel)
        if stop_first:    # a first point: stop there (stop_at +inf)
            problem = PhaseProblem(zero, problem.x_lb, problem.x_ub, G, h, evaluate, objective, problem.cap,
                                   stop_at=math.inf)
        return search_phases(stacked, bounds, problem, incumbent, options)

    # 1. a first δ over the whole box; 2. every δ at least as good lies in the ball (l1) or box (linf)
    # of its norm: bounds over that set (backward propagation), and the search again from that point
    first = search(crown_bounds(stacked, lo, hi), PhaseProblem(zero, lo, hi, G, h, evaluate, objective, cap),
                   stop_first=True)
    res, nodes = first, first.nodes
    if first.x is not None and time.perf_counter() < deadline:
        r0 = first.objective * (1 + 1e-7) + 1e-9
        if spec.norm == "l1":
            # each copy's units over its image's L1 ball (per-unit LPs, `bounds.ball`), stacked, and
            # intersected with backward propagation over the shared ball
            per = [ball_bounds(network, x, r0, deadline=deadline) for x in images]
            stacked_ball = Bounds([np.concatenate([b.lower[k] for b in per]) for k in range(len(network.layers))],
                                  [np.concatenate([b.upper[k] for b in per]) for k in range(len(network.layers))],
                                  method="ball")
            bounds = crown_bounds(stacked, lo, hi, x_bar=zero, radius=r0, base=stacked_ball)
            problem = PhaseProblem(zero, lo, hi, G, h, evaluate, objective, min(r0, cap if cap is not None else r0))
        else:
            blo, bhi = np.maximum(lo, -r0), np.minimum(hi, r0)
            bounds = crown_bounds(stacked, blo, bhi)
            problem = PhaseProblem(zero, blo, bhi, G, h, evaluate, objective, cap)
        res = search(bounds, problem, first.x)
        nodes += res.nodes
    per_image = tuple(c.verified for c in checks(res.x)) if res.x is not None else ()
    return UniversalResult(res.status, res.x, res.objective, res.bound, nodes, time.perf_counter() - t0,
                           res.binaries, targets, per_image)


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
