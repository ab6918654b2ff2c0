"""The Cheapest Deceive Heuristic (CDH): the thesis' local-search matheuristic (§3.3, App. B).

Starting from the image x̄ of label l, with false label d = (l + 5) mod 10, the CDH changes one
pixel per iteration until the stopping rule holds.  Outputs are ``a = relu(logits)`` as in the
thesis MILP; ``FA = a_d`` and ``A* = max_{i≠d} a_i``.

stopping rule  FA / A* ≥ ratio (1.2), FA ≥ epsilon and d the strict argmax, checked in float64
               and float32 (`verify.verify_witness`), so every "found" point is a verified
               targeted adversarial example.
search rule    neighbourhood "complete" (all pixels) or "constrained" (``masks[d] > 0.01`` plus
               the pixels > 0 of the current image); objective "simple" (max a_d) or "diff"
               (max a_d − Σ_{i≠d} a_i) for the per-pixel subproblem.
solve rule     "unbounded": per pixel j the value in [0, 1] maximising the objective with all
               other pixels fixed; "fixed": x_j ± d_fixed, the better by the objective among the
               feasible ones, and if neither is feasible the one whose step must shrink least
               (i.e. clipped to the box).
decision rule  the move with the largest ratio FA/A* (ties: larger FA, smaller step, lower
               index); if no move increases (ratio, FA) by more than 1e-9 (relative), the point is a
               local optimum.
escape         "none", "random" (k pixels: ≤ 0.5 → 1, > 0.5 → 0) or "guided" (k times: a pixel
               with ``masks[d] > p_h`` to 1 and one with ``masks[d] < p_l`` to 0, at most
               ``max_iter`` draws each), at most ``max_rand`` escapes per instance.

The per-pixel subproblem.  The thesis solves a MILP with every input fixed except pixel j.
With the others fixed the network is a piecewise-linear function of t = x_j, so its maximum
over [0, 1] is attained at 0, 1 or a breakpoint.  ``subproblem="evaluate"`` finds every
breakpoint exactly, for all pixels at once: layer by layer, each unit's pre-activation is
affine between the points found so far, so its zero crossings are computed in closed form
and inserted; the objective is then affine between consecutive points.  ``subproblem="milp"``
solves the thesis' MILP (`formulation.build_model`, a ``feature`` spec, input box x with pixel
j free) with HiGHS; the two agree to solver tolerance (tests/test_heuristic.py).  The subproblem
matters only for the unbounded rule: the fixed rule compares two fully fixed inputs, for which
the MILP is the forward pass.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from advmilp.errors import AdvmilpError
from advmilp.nn.network import Network

NEIGHBOURHOODS = ("complete", "constrained")
OBJECTIVES = ("simple", "diff")
SOLVE_RULES = ("unbounded", "fixed")
ESCAPES = ("none", "random", "guided")
SUBPROBLEMS = ("evaluate", "milp")
IMPROVEMENT = 1e-9  # a move must raise the ratio (or FA) by more than this, relative: no noise moves


@dataclass(frozen=True)
class CDHSettings:
    """Every parameter of thesis Table 8; defaults = the thesis' final configuration (§5.3)."""

    ratio: float = 1.2                  # stopping rule: FA / A* ≥ ratio
    epsilon: float = 0.01               # ... and FA ≥ epsilon
    target_offset: int = 5              # d = (label + offset) mod 10
    neighbourhood: str = "constrained"  # complete | constrained
    mask_threshold: float = 0.01        # constrained: pixels with masks[d] > threshold (+ x > 0)
    objective: str = "diff"             # simple | diff (per-pixel subproblem)
    solve_rule: str = "fixed"           # unbounded | fixed
    d_fixed: float = 1.0                # fixed absolute perturbation d_j^fixed
    escape: str = "guided"              # none | random | guided
    max_rand: int = 75                  # escapes allowed per instance (maxRand)
    k: int = 1                          # pixels (random) / pixel pairs (guided) per escape
    random_threshold: float = 0.5       # random: x ≤ threshold → 1, else → 0
    p_h: float = 0.65                   # guided: masks[d] > p_h → set to 1
    p_l: float = 0.001                  # guided: masks[d] < p_l → set to 0
    max_iter: int = 500                 # guided: draws per pool per escape (maxIter)
    subproblem: str = "evaluate"        # evaluate (exact, numpy) | milp (HiGHS, thesis)
    max_iterations: int = 1000          # accepted moves before giving up
    time_limit: float | None = None     # seconds per instance (None: no limit)
    seed: int = 0                       # numpy default_rng seed for the escapes

    def __post_init__(self):
        for name, value, choices in (("neighbourhood", self.neighbourhood, NEIGHBOURHOODS),
                                     ("objective", self.objective, OBJECTIVES),
                                     ("solve_rule", self.solve_rule, SOLVE_RULES),
                                     ("escape", self.escape, ESCAPES),
                                     ("subproblem", self.subproblem, SUBPROBLEMS)):
            if value not in choices:
                raise AdvmilpError(f"unknown CDH {name} {value!r} (choose from {', '.join(choices)})")
        if self.ratio < 1.0 or self.epsilon <= 0:
            raise AdvmilpError(f"CDH needs ratio ≥ 1 and epsilon > 0 (got {self.ratio}, {self.epsilon})")
        if not 0 < self.d_fixed <= 1:
            raise AdvmilpError(f"d_fixed must be in (0, 1] (got {self.d_fixed})")
        if self.k < 1 or self.max_rand < 0 or self.max_iter < 1 or self.max_iterations < 0:
            raise AdvmilpError("CDH needs k ≥ 1, max_rand ≥ 0, max_iter ≥ 1, max_iterations ≥ 0")
        if self.time_limit is not None and self.time_limit <= 0:
            raise AdvmilpError(f"time_limit must be > 0 (got {self.time_limit})")

    @property
    def needs_masks(self) -> bool:
        return self.neighbourhood == "constrained" or self.escape == "guided"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CDHResult:
    status: str                  # found | not_found
    x: np.ndarray                # the final point (the adversarial example if found)
    l1: float
    linf: float
    iterations: int              # accepted single-pixel moves
    escapes: int                 # local-point escapes performed
    time_s: float
    ratio: float                 # FA / A* at x (relu outputs)
    perturbed_counts: np.ndarray = field(repr=False)  # (n0,) changes per pixel (moves + escapes)
    target: int = -1
    start_ratio: float = float("nan")
    stop_reason: str = ""        # adversarial | local_optimum | max_iterations | time_limit

    @property
    def found(self) -> bool:
        return self.status == "found"


# ---- outputs, ratio, objective ----------------------------------------------------------------
def compute_ratio(logits: np.ndarray, d: int) -> np.ndarray | float:
    """FA / A* on relu(logits), per row: +inf if A* = 0 < FA, 0 if FA = A* = 0."""
    a = np.maximum(np.asarray(logits, dtype=np.float64), 0.0)
    fa = a[..., d]
    best = np.max(np.delete(a, d, axis=-1), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(best > 0, fa / np.where(best > 0, best, 1.0), np.where(fa > 0, np.inf, 0.0))
    return float(r) if np.ndim(r) == 0 else r


def is_adversarial(logits: np.ndarray, d: int, ratio: float = 1.2, epsilon: float = 0.01) -> bool:
    """The stopping rule on one output vector: FA/A* ≥ ratio, FA ≥ epsilon, d the strict argmax."""
    logits = np.asarray(logits, dtype=np.float64)
    others = np.delete(logits, d)
    return bool(logits[d] >= epsilon and np.all(logits[d] >= ratio * others) and np.all(others < logits[d]))


def compute_objective(logits: np.ndarray, d: int, objective: str) -> np.ndarray:
    """"simple": a_d; "diff": a_d − Σ_{i≠d} a_i, with a = relu(logits); per row."""
    a = np.maximum(np.asarray(logits, dtype=np.float64), 0.0)
    if objective == "simple":
        return a[..., d]
    return 2.0 * a[..., d] - a.sum(axis=-1)


def _layer_inputs(network: Network, x: np.ndarray, pixels: np.ndarray):
    """First-layer pre-activation at x and the columns of W^1 for ``pixels``."""
    W1 = network.layers[0].W
    return W1 @ x + network.layers[0].b, W1[:, pixels].T


def _preactivations_at(network: Network, pre1: np.ndarray, cols: np.ndarray, delta: np.ndarray,
                       rows: np.ndarray, n_layers: int) -> list[np.ndarray]:
    """Pre-activations of layers 1..n_layers at the points x + delta_i e_{pixel(rows_i)}."""
    pre = pre1 + cols[rows] * delta[:, None]
    out = [pre]
    for k in range(1, n_layers):
        a = network.layers[k - 1].act(pre)
        layer = network.layers[k]
        pre = a @ layer.W.T + layer.b
        out.append(pre)
    return out


def compute_pixel_outputs(network: Network, x: np.ndarray, pixels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Logits at the points "x with pixel pixels[i] set to values[i]", one row per i."""
    x = np.asarray(x, dtype=np.float64)
    pixels = np.asarray(pixels, dtype=np.int64)
    pre1, cols = _layer_inputs(network, x, pixels)
    rows = np.arange(len(pixels))
    delta = np.asarray(values, dtype=np.float64) - x[pixels]
    return _preactivations_at(network, pre1, cols, delta, rows, len(network.layers))[-1]


# ---- the per-pixel subproblem ------------------------------------------------------------------
def maximise_pixels(network: Network, x: np.ndarray, pixels: np.ndarray, d: int, objective: str,
                    lb: float = 0.0, ub: float = 1.0):
    """Exact per-pixel maximiser of the objective over [lb, ub], all other pixels fixed at x.

    Returns (values, objectives, logits), one row per pixel.  Among maximisers (to 1e-12
    relative) the value closest to the current x_j is taken (the cheapest one).
    """
    x = np.asarray(x, dtype=np.float64)
    pixels = np.asarray(pixels, dtype=np.int64)
    m, K = len(pixels), len(network.layers)
    if m == 0:
        return np.zeros(0), np.zeros(0), np.zeros((0, network.n_outputs))
    pre1, cols = _layer_inputs(network, x, pixels)
    xj = x[pixels]
    rows = np.repeat(np.arange(m), 3)
    t = np.stack([np.full(m, lb), np.clip(xj, lb, ub), np.full(m, ub)], axis=1).reshape(-1)
    for k in range(K):  # kinks of hidden activations, and of the output ReLU of the thesis' a = relu(logits)
        if not network.layers[k].act.piecewise and k != K - 1:
            continue
        pre = _preactivations_at(network, pre1, cols, t - xj[rows], rows, k + 1)[-1]
        seg = np.flatnonzero(rows[1:] == rows[:-1])
        p0, p1 = pre[seg], pre[seg + 1]
        s, unit = np.nonzero(((p0 < 0) & (p1 > 0)) | ((p0 > 0) & (p1 < 0)))
        if len(s):
            i = seg[s]
            frac = p0[s, unit] / (p0[s, unit] - p1[s, unit])
            t = np.concatenate([t, t[i] + frac * (t[i + 1] - t[i])])
            rows = np.concatenate([rows, rows[i]])
            order = np.lexsort((t, rows))
            t, rows = t[order], rows[order]
    logits = _preactivations_at(network, pre1, cols, t - xj[rows], rows, K)[-1]
    obj = compute_objective(logits, d, objective)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    best = np.maximum.reduceat(obj, starts)[rows]
    tie = obj >= best - 1e-12 * np.maximum(1.0, np.abs(best))
    dist = np.where(tie, np.abs(t - xj[rows]), np.inf)
    pick = np.lexsort((dist, rows))[starts]  # rows sorted, so each group's first = its choice
    return t[pick], obj[pick], logits[pick]


def build_pixel_model(network: Network, x: np.ndarray, j: int, d: int, objective: str,
                      lb: float = 0.0, ub: float = 1.0):
    """The thesis subproblem as a `formulation.Formulation`: max objective, only pixel j free."""
    from advmilp.bounds.compute import interval_bounds
    from advmilp.encode.milp import build_model
    from advmilp.spec.problems import ProblemSpec

    lo = np.asarray(x, dtype=np.float64).copy()
    hi = lo.copy()
    lo[j], hi[j] = lb, ub
    bounds = interval_bounds(network, lo, hi)  # one free pixel: these are the exact ranges
    spec = ProblemSpec("feature", objective=objective, unit=d)
    return build_model(network, bounds, spec, name=f"cdh_pixel_{j}", lb0=lo, ub0=hi)


def solve_pixel_milp(network: Network, x: np.ndarray, j: int, d: int, objective: str,
                     lb: float = 0.0, ub: float = 1.0, time_limit: float | None = None) -> tuple[float, float]:
    """(value of pixel j, objective) of the subproblem MILP, solved by HiGHS to a 1e-9 gap."""
    from advmilp.solvers.pulp import solve

    form = build_pixel_model(network, x, j, d, objective, lb, ub)
    res = solve(form.prob, time_limit=time_limit, gap_rel=1e-9, options={"gapAbs": 1e-9})
    if not res.has_solution:
        raise AdvmilpError(f"pixel subproblem {j}: HiGHS returned {res.status} {res.message}".strip())
    value = float(np.clip(res.values.get(form.x[j].name, x[j]), lb, ub))
    return value, float(res.objective)


def propose_fixed(network: Network, x: np.ndarray, pixels: np.ndarray, d: int, objective: str,
                  d_fixed: float = 1.0, lb: float = 0.0, ub: float = 1.0):
    """The fixed-perturbation subproblem for every pixel: returns (values, logits).

    x_j + d_fixed and x_j − d_fixed compete by the objective if feasible; if only one is
    feasible it is taken; if neither, the one whose step must shrink least (clipped to the
    box; ties by the objective).
    """
    x = np.asarray(x, dtype=np.float64)
    pixels = np.asarray(pixels, dtype=np.int64)
    xj = x[pixels]
    up, down = np.minimum(xj + d_fixed, ub), np.maximum(xj - d_fixed, lb)
    tol = 1e-12
    up_ok, down_ok = xj + d_fixed <= ub + tol, xj - d_fixed >= lb - tol
    both = np.concatenate([up, down])
    logits = compute_pixel_outputs(network, x, np.concatenate([pixels, pixels]), both)
    m = len(pixels)
    obj_up = compute_objective(logits[:m], d, objective)
    obj_down = compute_objective(logits[m:], d, objective)
    shrink_up, shrink_down = (xj + d_fixed) - ub, lb - (xj - d_fixed)
    take_up = np.where(up_ok & down_ok, obj_up >= obj_down,
                       np.where(up_ok | down_ok, up_ok,
                                (shrink_up < shrink_down) | ((shrink_up == shrink_down) & (obj_up >= obj_down))))
    return np.where(take_up, up, down), np.where(take_up[:, None], logits[:m], logits[m:])


# ---- search rule and escapes -------------------------------------------------------------------
def select_neighbourhood(x: np.ndarray, kind: str, mask_d: np.ndarray | None = None,
                         threshold: float = 0.01) -> np.ndarray:
    """Pixel indices searched: all, or ``mask_d > threshold`` plus the pixels with x > 0."""
    x = np.asarray(x)
    if kind == "complete":
        return np.arange(len(x))
    if mask_d is None:
        raise AdvmilpError("the constrained neighbourhood needs probability masks")
    return np.flatnonzero((np.asarray(mask_d) > threshold) | (x > 0))


def escape_random(x: np.ndarray, rng: np.random.Generator, k: int = 1, threshold: float = 0.5):
    """k distinct random pixels: ≤ threshold → 1, > threshold → 0.  Returns (x', changed)."""
    x = np.array(x, dtype=np.float64)
    changed = rng.choice(len(x), size=min(k, len(x)), replace=False)
    x[changed] = np.where(x[changed] <= threshold, 1.0, 0.0)
    return x, np.sort(changed)


def escape_guided(x: np.ndarray, mask_d: np.ndarray, rng: np.random.Generator, p_h: float = 0.65,
                  p_l: float = 0.001, k: int = 1, max_iter: int = 500):
    """k times: a random pixel with mask > p_h not yet 1 → 1, one with mask < p_l not yet 0 → 0.

    Each search draws from its pool at most ``max_iter`` times.  Returns (x', changed).
    """
    x = np.array(x, dtype=np.float64)
    mask_d = np.asarray(mask_d)
    pools = ((np.flatnonzero(mask_d > p_h), 1.0), (np.flatnonzero(mask_d < p_l), 0.0))
    changed = []
    for _ in range(k):
        for pool, value in pools:
            if len(pool) == 0:
                continue
            for _ in range(max_iter):
                j = int(pool[rng.integers(len(pool))])
                if x[j] != value:
                    x[j] = value
                    changed.append(j)
                    break
    return x, np.array(sorted(set(changed)), dtype=np.int64)


# ---- the heuristic -----------------------------------------------------------------------------
def _propose(network, x, pixels, d, s: CDHSettings):
    """Per pixel, the subproblem's value and the logits there."""
    if s.solve_rule == "fixed":
        return propose_fixed(network, x, pixels, d, s.objective, s.d_fixed)
    if s.subproblem == "evaluate":
        values, _, logits = maximise_pixels(network, x, pixels, d, s.objective)
        return values, logits
    values = np.array([solve_pixel_milp(network, x, int(j), d, s.objective)[0] for j in pixels])
    return values, compute_pixel_outputs(network, x, pixels, values)


def _verified(network, x, x_bar, label, d, s: CDHSettings) -> bool:
    from advmilp.spec.problems import ProblemSpec
    from advmilp.spec.verify import verify_witness

    spec = ProblemSpec("targeted", ratio=s.ratio, target=d, epsilon=s.epsilon)
    return verify_witness(network, x, spec, x_bar, label, d).verified


def run_cdh(network: Network, x_bar: np.ndarray, label: int, settings: CDHSettings | None = None,
            masks: np.ndarray | None = None) -> CDHResult:
    """Run the CDH on one image; deterministic for a given ``settings.seed``."""
    s = settings or CDHSettings()
    x_bar = np.asarray(x_bar, dtype=np.float64).reshape(-1)
    if len(x_bar) != network.n_inputs:
        raise AdvmilpError(f"image has {len(x_bar)} pixels, the network {network.n_inputs} inputs")
    d = (int(label) + s.target_offset) % network.n_outputs
    if d == label:
        raise AdvmilpError(f"false label {d} equals the true label")
    mask_d = None
    if s.needs_masks:
        if masks is None:
            raise AdvmilpError(f"CDH with {s.neighbourhood} neighbourhood and {s.escape} escape needs masks")
        masks = np.asarray(masks, dtype=np.float64)
        if masks.shape[1] != network.n_inputs or masks.shape[0] <= d:
            raise AdvmilpError(f"masks of shape {masks.shape} do not fit this network")
        mask_d = masks[d]
    rng = np.random.default_rng(s.seed)
    start = time.perf_counter()
    x = x_bar.copy()
    counts = np.zeros(len(x), dtype=np.int64)
    logits = network.forward(x)
    ratio, fa = compute_ratio(logits, d), float(max(logits[d], 0.0))
    start_ratio = ratio
    iterations = escapes = 0
    while True:
        if is_adversarial(logits, d, s.ratio, s.epsilon) and _verified(network, x, x_bar, label, d, s):
            reason = "adversarial"
            break
        if iterations >= s.max_iterations:
            reason = "max_iterations"
            break
        if s.time_limit is not None and time.perf_counter() - start > s.time_limit:
            reason = "time_limit"
            break
        pixels = select_neighbourhood(x, s.neighbourhood, mask_d, s.mask_threshold)
        values, cand = _propose(network, x, pixels, d, s)
        moved = values != x[pixels]
        if np.any(moved):
            pixels, values, cand = pixels[moved], values[moved], cand[moved]
            r, f = compute_ratio(cand, d), np.maximum(cand[:, d], 0.0)
            step = np.abs(values - x[pixels])
            i = np.lexsort((pixels, step, -f, -r))[0]  # max ratio, then FA, then cheapest
            if r[i] > ratio + IMPROVEMENT * max(ratio, 1.0) or (r[i] >= ratio and f[i] > fa + IMPROVEMENT):
                j = pixels[i]
                x[j] = values[i]
                counts[j] += 1
                iterations += 1
                logits = network.forward(x)
                ratio, fa = compute_ratio(logits, d), float(max(logits[d], 0.0))
                continue
        # local optimum
        if s.escape == "none" or escapes >= s.max_rand:
            reason = "local_optimum"
            break
        if s.escape == "random":
            x, changed = escape_random(x, rng, s.k, s.random_threshold)
        else:
            x, changed = escape_guided(x, mask_d, rng, s.p_h, s.p_l, s.k, s.max_iter)
        counts[changed] += 1
        escapes += 1
        logits = network.forward(x)
        ratio, fa = compute_ratio(logits, d), float(max(logits[d], 0.0))
    diff = x - x_bar
    return CDHResult("found" if reason == "adversarial" else "not_found", x,
                     float(np.abs(diff).sum()), float(np.abs(diff).max(initial=0.0)), iterations, escapes,
                     time.perf_counter() - start, float(ratio), counts, d, float(start_ratio), reason)
