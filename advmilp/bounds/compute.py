"""Neuron bounds (thesis §3.1.4) and their on-disk cache.

`Bounds` holds, for every layer k = 1..K, lower and upper bounds ``L^k, U^k`` of the
pre-activation ``W^k a^(k-1) + b^k`` over the input box.  The thesis' bounds on a and s are
``ub(a) = max(U, 0)`` and ``ub(s) = max(−L, 0)``.

methods
  basic      interval arithmetic over the input box (exact for layer 1, loose deeper).
  improved   layer by layer, per unit two MILPs (max and min of the pre-activation) on the
             network truncated before the unit's layer, using the tighter bounds of the
             earlier layers; solved to optimality (gap 1e-4) — the thesis' exact procedure.
  weak       the same with a per-solve time limit (thesis: 1 s).

Soundness: a MILP bound is HiGHS' proven *dual bound*, never its incumbent, widened by a
tolerance for the solver's feasibility tolerances, and intersected with the interval bound
(so a tighter method is never looser than ``basic``).  A ``deadline`` (`solvers.clock`) stops the
solves: the units not reached keep their interval bounds (valid), ``params["incomplete"]`` says how
many were bounded, and such bounds are never cached.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from advmilp import __version__
from advmilp.errors import AdvmilpError
from advmilp.paths import default_dir
from advmilp.nn.network import Network
from advmilp.solvers.clock import expired

METHODS = ("basic", "improved", "weak")
CACHE_FORMAT = 1
RESULTS_ENV = "ADVMILP_RESULTS"


@dataclass
class Bounds:
    lower: list[np.ndarray]
    upper: list[np.ndarray]
    method: str = "basic"
    params: dict = field(default_factory=dict)
    time_s: float = 0.0          # seconds their computation took (for cached bounds: when they were computed)
    network_hash: str = ""
    cached: bool = False         # loaded from the cache: no time was spent on them in this run

    def stable_counts(self) -> list[tuple[int, int, int]]:
        """Per layer: (inactive U ≤ 0, active L ≥ 0, unstable)."""
        out = []
        for lo, up in zip(self.lower, self.upper):
            inactive = int(np.sum(up <= 0))
            active = int(np.sum(lo >= 0))
            out.append((inactive, active, len(lo) - inactive - active))
        return out

    def n_unstable(self, hidden_only: bool = True) -> int:
        counts = self.stable_counts()
        if hidden_only:
            counts = counts[:-1]
        return sum(c[2] for c in counts)

    def contains(self, pre: list[np.ndarray], tol: float = 1e-9) -> bool:
        """True if every pre-activation of a batch lies within the bounds."""
        return all(np.all(p >= lo - tol) and np.all(p <= up + tol)
                   for p, lo, up in zip(pre, self.lower, self.upper))


def interval_bounds(network: Network, x_lb: np.ndarray | float = 0.0, x_ub: np.ndarray | float = 1.0,
                    start: Bounds | None = None) -> Bounds:
    """Interval arithmetic; with ``start``, each layer is also intersected with it."""
    lo = np.broadcast_to(np.asarray(x_lb, dtype=np.float64), (network.n_inputs,))
    up = np.broadcast_to(np.asarray(x_ub, dtype=np.float64), (network.n_inputs,))
    lower, upper = [], []
    for k, layer in enumerate(network.layers):
        Wp, Wn = np.maximum(layer.W, 0), np.minimum(layer.W, 0)
        L = Wp @ lo + Wn @ up + layer.b
        U = Wp @ up + Wn @ lo + layer.b
        if start is not None:
            L, U = np.maximum(L, start.lower[k]), np.minimum(U, start.upper[k])
        lower.append(L)
        upper.append(U)
        lo, up = layer.act.interval(L, U)
    return Bounds(lower, upper, "basic", {}, 0.0, network.content_hash())


def unstable_widths(bounds: Bounds, network: Network) -> np.ndarray:
    """U − L of every hidden unit the bounds leave unstable (each costs the MILP a binary and the phase
    search a branch; the criteria read the logits, so the output layer has none even with a ReLU on it)."""
    hidden = zip(bounds.lower[:-1], bounds.upper[:-1], network.layers[:-1])
    return np.concatenate([(U - L)[(L < 0) & (U > 0)] for L, U, layer in hidden if layer.act.piecewise] or [[]])


def tightening_stalled(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether a pass of bound tightening that took the unstable widths ``before`` (`unstable_widths`) to
    ``after`` is worth no other: no unit stabilised and the summed width fell by less than 5 %."""
    return after.size == before.size and after.sum() > 0.95 * before.sum()


def widen(values):
    """Outward tolerance of a proven bound, per entry: 1e-5 · max(1, |v|) (LP feasibility tolerances are
    ~1e-6; solver-free bounds take the same margin against floating-point rounding).  Scalars or arrays."""
    return 1e-5 * np.maximum(1.0, np.abs(values))


def _bound_unit(args) -> list[tuple[int, float, float, int, bool]]:
    """Max and min of some units' pre-activations (top level: runs in worker processes too): per unit
    (index, L, U, solves stopped by the time limit, both solves done without the deadline stopping them)."""
    import pulp

    from advmilp.encode.milp import build_preactivation_model
    from advmilp.solvers.pulp import solve
    from advmilp.spec.rows import OPTIMAL

    network, bounds, k, units, x_lb, x_ub, time_limit, gap_rel, threads, deadline = args
    out = []
    if expired(deadline):
        return out
    prob, pres = build_preactivation_model(network, bounds, k, x_lb=x_lb, x_ub=x_ub, name=f"bound_L{k}")
    for j in units:
        if expired(deadline):
            break      # the units not reached keep their interval bounds
        L, U, capped, done = float(bounds.lower[k - 1][j]), float(bounds.upper[k - 1][j]), 0, True
        for sense in (pulp.LpMaximize, pulp.LpMinimize):
            if expired(deadline):
                done = False
                break  # the side not bounded keeps its interval bound
            prob.sense = sense
            prob.setObjective(pres[j])
            res = solve(prob, time_limit=time_limit, gap_rel=gap_rel, threads=threads, deadline=deadline)
            capped += res.status != OPTIMAL
            done = done and (res.status == OPTIMAL or not expired(deadline))
            if not math.isfinite(res.bound):
                continue  # nothing proven: keep the interval bound
            if sense == pulp.LpMaximize:
                U = min(U, res.bound + widen(res.bound))
            else:
                L = max(L, res.bound - widen(res.bound))
        if L > U:  # cannot happen for sound bounds; guard against tolerance noise
            L = U = 0.5 * (L + U)
        out.append((j, L, U, capped, done))
    return out


def tighten_bounds(network: Network, method: str = "improved", time_limit: float | None = None,
                   x_lb: np.ndarray | float = 0.0, x_ub: np.ndarray | float = 1.0,
                   gap_rel: float = 1e-4, threads: int = 1, workers: int = 1,
                   progress: Callable[[str], None] | None = None, deadline: float | None = None) -> Bounds:
    """``improved`` / ``weak`` bounds: per unit, max and min of its pre-activation by MILP.

    ``time_limit`` caps each solve (weak: the thesis' 1 s; improved: None = exact, or a
    safety cap recorded in the parameters).  ``workers`` > 1 bounds a layer's units in
    parallel processes (one single-threaded solve each).  At ``deadline`` the solves stop and the
    bounds so far are returned with ``params["incomplete"]`` (see the module docstring).
    """
    if method not in ("improved", "weak"):
        raise AdvmilpError(f"tighten_bounds needs method improved or weak, not {method!r}")
    if method == "weak" and not time_limit:
        raise AdvmilpError("weak bounds need a per-solve time limit")
    start = time.perf_counter()
    x_lb = np.broadcast_to(np.asarray(x_lb, dtype=np.float64), (network.n_inputs,))
    x_ub = np.broadcast_to(np.asarray(x_ub, dtype=np.float64), (network.n_inputs,))
    bounds = interval_bounds(network, x_lb, x_ub)  # exact for layer 1
    capped_total = solves = bounded = 0
    for k in range(2, len(network.layers) + 1):
        # re-propagate intervals from the tightened earlier layers
        bounds = interval_bounds(network, x_lb, x_ub, start=bounds)
        n_units = len(bounds.lower[k - 1])
        chunks = [list(range(n_units))[i::workers] for i in range(workers)] if workers > 1 else [list(range(n_units))]
        jobs = [(network, bounds, k, c, x_lb, x_ub, time_limit, gap_rel, threads, deadline) for c in chunks if c]
        if len(jobs) > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=len(jobs)) as ex:
                results = [r for part in ex.map(_bound_unit, jobs) for r in part]
        else:
            results = _bound_unit(jobs[0])
        L, U = bounds.lower[k - 1].copy(), bounds.upper[k - 1].copy()
        for j, lo, up, capped, done in results:
            L[j], U[j] = lo, up
            capped_total += capped
            solves += 2
            bounded += done
        bounds.lower[k - 1], bounds.upper[k - 1] = L, U
        if progress:
            inactive, active, unstable = bounds.stable_counts()[k - 1]
            progress(f"layer {k}: {len(L)} units, {inactive} inactive, {active} active, "
                     f"{unstable} unstable ({time.perf_counter() - start:.1f} s)")
    bounds.method = method
    bounds.params = {"time_limit": time_limit} if time_limit else {}
    if method == "improved" and time_limit:
        bounds.params["capped_solves"] = f"{capped_total}/{solves}"
    to_bound = sum(network.sizes[2:])
    if bounded < to_bound:
        bounds.params["incomplete"] = f"{bounded}/{to_bound} units bounded before the deadline"
    bounds.time_s = time.perf_counter() - start
    return bounds


def compute_bounds(network: Network, method: str = "basic", time_limit: float | None = None,
                   progress: Callable[[str], None] | None = None, threads: int = 1, workers: int = 1,
                   deadline: float | None = None) -> Bounds:
    if method not in METHODS:
        raise AdvmilpError(f"unknown bounds method {method!r} (choose from {', '.join(METHODS)})")
    if method == "basic":
        t = time.perf_counter()
        b = interval_bounds(network)
        b.time_s = time.perf_counter() - t
        return b
    return tighten_bounds(network, method, time_limit=time_limit, progress=progress, threads=threads,
                          workers=workers, deadline=deadline)


# ---- cache -----------------------------------------------------------------------------------
def default_results_dir() -> Path:
    """``ADVMILP_RESULTS``, else the repository's ``results/``, else ./results."""
    return default_dir(RESULTS_ENV, "results")


def shipped_bounds_dir() -> Path:
    """The bounds shipped with the repository (``results/bounds/`` of the checkout): read, never written."""
    return Path(__file__).resolve().parents[2] / "results" / "bounds"


def user_bounds_dir() -> Path:
    """Where computed bounds are cached by default: ``$ADVMILP_RESULTS/bounds`` if set, else
    ``$XDG_CACHE_HOME/advmilp/bounds`` (``~/.cache/advmilp/bounds``) — a user location, so computing
    the bounds of a new network never adds files to the repository or rewrites a shipped cache."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env).expanduser() / "bounds"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "advmilp" / "bounds"


def bounds_cache_dirs(cache_dir: str | os.PathLike | None = None) -> tuple[Path, list[Path]]:
    """(the folder bounds are written to, the folders read, first match wins).  An explicit
    ``cache_dir`` is both; by default the user cache is written and the user cache, then the shipped
    bounds, are read."""
    if cache_dir:
        return Path(cache_dir), [Path(cache_dir)]
    user, shipped = user_bounds_dir(), shipped_bounds_dir()
    return user, [user] + ([shipped] if shipped != user else [])


def cache_key(network: Network, method: str, time_limit: float | None) -> str:
    key = f"{network.short_hash()}-{method}"
    if method == "weak":
        key += f"-tl{time_limit:g}"
    elif method == "improved" and time_limit:
        key += f"-cap{time_limit:g}"
    return key


def _arrays_digest(lower, upper) -> str:
    h = hashlib.sha256()
    for a in list(lower) + list(upper):
        h.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
    return h.hexdigest()


def save_bounds(bounds: Bounds, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": CACHE_FORMAT, "network_hash": bounds.network_hash, "method": bounds.method,
        "params": bounds.params, "time_s": bounds.time_s, "layers": len(bounds.lower),
        "sha256": _arrays_digest(bounds.lower, bounds.upper), "advmilp_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    arrays = {f"lower{k}": a for k, a in enumerate(bounds.lower)}
    arrays.update({f"upper{k}": a for k, a in enumerate(bounds.upper)})
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def load_cached(path: Path, network: Network, method: str, params: dict) -> Bounds:
    """Load and validate a cache file; raises AdvmilpError on any mismatch or corruption."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            n = int(meta["layers"])
            lower = [data[f"lower{k}"].astype(np.float64) for k in range(n)]
            upper = [data[f"upper{k}"].astype(np.float64) for k in range(n)]
    except Exception as exc:
        raise AdvmilpError(f"{path}: unreadable bounds cache ({type(exc).__name__}: {exc})") from exc
    problems = []
    if meta.get("format") != CACHE_FORMAT:
        problems.append("format")
    if meta.get("network_hash") != network.content_hash():
        problems.append("network hash")
    stored = dict(meta.get("params", {}))
    stored.pop("capped_solves", None)
    if meta.get("method") != method or stored != params:
        problems.append("method/parameters")
    if meta.get("sha256") != _arrays_digest(lower, upper):
        problems.append("checksum")
    if [len(a) for a in lower] != network.sizes[1:] or [len(a) for a in upper] != network.sizes[1:]:
        problems.append("shapes")
    if problems:
        raise AdvmilpError(f"{path}: bounds cache does not match ({', '.join(problems)})")
    return Bounds(lower, upper, method, dict(meta.get("params", {})), float(meta.get("time_s", 0.0)),
                  meta["network_hash"], cached=True)


def find_cached(network: Network, method: str, time_limit: float | None = None,
                cache_dir: str | os.PathLike | None = None, cap: float | None = None,
                say: Callable[[str], None] | None = None, on_bad: str = "ignored") -> Bounds | None:
    """Cached ``improved`` / ``weak`` bounds of ``network`` (validated), or None; nothing is computed.

    ``improved`` without a ``cap``: an exact file, else a capped one (announced through ``say``).  A
    corrupted or mismatching file is announced with ``on_bad`` (what the caller does instead)."""
    say = say or (lambda m: warnings.warn(m, stacklevel=3))
    time_limit = cap if method == "improved" else (time_limit or 1.0)
    params = {"time_limit": time_limit} if time_limit else {}
    key = cache_key(network, method, time_limit)
    _, roots = bounds_cache_dirs(cache_dir)
    candidates = [(root / f"{key}.npz", params) for root in roots]
    if method == "improved" and cap is None:
        for root in roots:
            for other in sorted(root.glob(f"{network.short_hash()}-improved-cap*.npz")):
                candidates.append((other, {"time_limit": float(other.stem.rsplit("-cap", 1)[1])}))
    for cand, cand_params in candidates:
        if not cand.is_file():
            continue
        try:
            b = load_cached(cand, network, method, cand_params)
        except AdvmilpError as exc:
            say(f"{exc}; {on_bad if cand_params == params else 'ignored'}")
            continue
        if cand_params != params:
            say(f"{network.name}: exact improved bounds are not cached; using improved bounds computed with "
                f"a {cand_params['time_limit']:g} s cap per solve ({b.params.get('capped_solves', '?')} "
                f"solves hit it and contributed their proven dual bound)")
        return b
    return None


def get_bounds(network: Network, method: str = "basic", time_limit: float | None = None,
               cache_dir: str | os.PathLike | None = None, recompute: bool = False,
               progress: Callable[[str], None] | None = None,
               warn: Callable[[str], None] | None = None, cap: float | None = None,
               workers: int = 1, deadline: float | None = None) -> tuple[Bounds, bool]:
    """Bounds from the cache (validated, `find_cached`) or computed and cached.  Returns (bounds, cache_hit).

    ``basic`` bounds are never cached: they take microseconds.  ``improved`` bounds are exact
    unless ``cap`` limits each solve; without a cap, a cached exact file is used, else a cached
    capped one (announced through ``warn``), else they are computed exactly.  Computed bounds are
    written to ``cache_dir``, by default the user cache (`bounds_cache_dirs`) — unless ``deadline``
    stopped their computation (``params["incomplete"]``: valid, but looser than the method's).
    """
    if method not in METHODS:
        raise AdvmilpError(f"unknown bounds method {method!r} (choose from {', '.join(METHODS)})")
    say = warn or (lambda m: warnings.warn(m, stacklevel=2))
    if method == "basic":
        return compute_bounds(network, "basic"), False
    if not recompute:
        b = find_cached(network, method, time_limit, cache_dir, cap, say, on_bad="recomputing")
        if b is not None:
            return b, True
    time_limit = cap if method == "improved" else (time_limit or 1.0)
    write_dir, _ = bounds_cache_dirs(cache_dir)
    bounds = compute_bounds(network, method, time_limit, progress=progress, workers=workers, deadline=deadline)
    if "incomplete" not in bounds.params:
        save_bounds(bounds, write_dir / f"{cache_key(network, method, time_limit)}.npz")
    return bounds, False
