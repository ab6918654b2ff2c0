"""Shared test material: hand-built and random networks, MNIST location, sampled points, a small instance.

Fixtures that wrap these live in `conftest.py`; test modules import the plain functions from here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from advmilp.nn.network import Network

REPO = Path(__file__).resolve().parents[1]


def mnist_dir() -> Path | None:
    env = os.environ.get("ADVMILP_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "mnist")
    for c in candidates:
        if (c / "t10k-labels-idx1-ubyte.gz").exists() or (c / "t10k-labels-idx1-ubyte").exists():
            return c
    return None


def random_net(sizes, seed=0, scale=1.0) -> Network:
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, scale / np.sqrt(m), size=(n, m)) for m, n in zip(sizes, sizes[1:])]
    bs = [rng.normal(0, 0.1, size=n) for n in sizes[1:]]
    return Network.from_arrays(Ws, bs, metadata={"architecture": f"random{seed}"})


SHIPPED = ("dnn1", "dnn2", "dnn3", "dnn4", "dnn5", "notebook")


def points_in_ball(x_bar, radius, rng, n=4000):
    """Dense, sparse and corner-hugging points of {x ∈ [0,1]^n : ‖x − x̄‖₁ ≤ radius}."""
    d = x_bar.size
    dense = rng.laplace(size=(n // 2, d))
    dense *= (radius * rng.random((n // 2, 1))) / np.abs(dense).sum(axis=1, keepdims=True)
    sparse = np.zeros((n // 2, d))
    for r in range(n // 2):
        idx = rng.choice(d, size=min(6, d), replace=False)
        sparse[r, idx] = rng.choice([-1.0, 1.0], size=len(idx)) * radius / len(idx)
    pts = np.clip(x_bar + np.vstack([dense, sparse]), 0, 1)
    dist = np.abs(pts - x_bar).sum(axis=1)
    return pts[dist <= radius + 1e-12]


def small_targeted_instance(seed: int, net: Network | None = None):
    """A random 16-8-6-3 net, an input, its predicted label, a targeted spec to the next class, box
    bounds, the thesis-faithful model's result on it, and the rng (state after drawing the input)."""
    from types import SimpleNamespace

    from advmilp.methods.milp import SolverSettings, run_instance
    from advmilp.bounds.compute import interval_bounds
    from advmilp.spec.problems import ProblemSpec

    net = net if net is not None else random_net([16, 8, 6, 3], seed=seed, scale=2.5)
    rng = np.random.default_rng(seed)
    x_bar = rng.random(16)
    label = int(net.predict(x_bar))
    spec = ProblemSpec("targeted", target=(label + 1) % 3)
    box = interval_bounds(net)
    plain = run_instance(net, box, spec, SolverSettings(time_limit=60), x_bar, label, 0)
    return SimpleNamespace(net=net, rng=rng, x_bar=x_bar, label=label, spec=spec, box=box, plain=plain)


def dense_rows(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzeros of the dense matrix ``A`` in `HighsLP.add_rows`' compressed form (tests build small LPs densely):
    (starts, column positions, values)."""
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    mask = A != 0
    starts = np.concatenate([[0], np.cumsum(mask.sum(axis=1))[:-1]]).astype(np.int32)
    rows, cols = np.nonzero(mask)
    return starts, cols.astype(np.int32), A[rows, cols]


def targeted_problem(net: Network, spec, x_bar, label: int, x_lb, x_ub, cap: float | None = None):
    """The phase search's problem for a targeted spec (its one conjunction, `search.problems.distance_problem`)."""
    from advmilp.search.problems import distance_problem
    from advmilp.spec.problems import criteria

    (criterion,) = criteria(spec, label, net.n_outputs)
    return distance_problem(net, spec, np.asarray(x_bar, np.float64), label, x_lb, x_ub, criterion, cap)
