"""The Python API: `load_network` and `attack`, returning an `AttackResult`.

    import advmilp

    net = advmilp.load_network("dnn1")
    result = advmilp.attack(net, 0, time_limit=60)
    print(result.status, result.verified, round(result.objective, 5))

Both are also reachable as ``advmilp.load_network`` / ``advmilp.attack`` (loaded on first use, so
``import advmilp`` stays light).  `attack` runs one instance exactly as ``advmilp attack`` does on the
command line: the same bounds, the same methods (`advmilp.methods.registry`), the same verified
result row.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from advmilp.bounds.compute import get_bounds
from advmilp.errors import AdvmilpError
from advmilp.methods.registry import MethodInputs, check_supported, default_method, load_inputs, run_method
from advmilp.nn.interchange import load_any
from advmilp.nn.network import Network
from advmilp.spec.problems import ProblemSpec, SolverSettings
from advmilp.spec.rows import is_solved


@dataclass(frozen=True)
class AttackResult:
    """What `attack` found: a view of the instance's result row (`advmilp.spec.rows.ResultRow`).

    status     ``optimal`` (proven), ``time_limit`` (stopped, maybe with an incumbent), ``infeasible``
               (no adversarial example exists within the constraints), ``found`` / ``not_found``
               (heuristic methods), ``error``...
    objective  the incumbent's objective (L1 distance for attacks); nan without one
    bound      the proven bound on the optimum (nan for heuristics)
    gap_pct    100·|objective − bound| / |objective|
    witness    the adversarial input (784 pixels, or the network's input size), None without one
    verified   the witness meets the criterion in float64 *and* float32 (`advmilp.spec.verify`)
    l1, linf   ‖witness − image‖₁ and ‖·‖∞, recomputed from the pixels
    time_s     wall time of the method, everything included
    row        the full result row (label, target, predicted, nodes, binaries, solver, ...)
    """

    status: str
    objective: float
    bound: float
    gap_pct: float
    witness: np.ndarray | None
    verified: bool
    l1: float
    linf: float
    time_s: float
    row: dict

    @property
    def solved(self) -> bool:
        """Status optimal (or found, for a heuristic) and verified (`advmilp.spec.rows.is_solved`)."""
        return is_solved(self.row)


def load_network(path_or_name: str | os.PathLike, models_dir: str | os.PathLike | None = None) -> Network:
    """A network by name (``dnn1`` ... ``dnn5``, ``notebook``: the shipped weights, or those in
    ``models_dir`` / $ADVMILP_MODELS) or from a file: ``.npz`` (advmilp's own), ``.onnx``,
    ``.keras`` / ``.h5`` (dense ReLU networks; Keras needs TensorFlow)."""
    return load_any(path_or_name, models_dir)


def _image(network: Network, image, data_dir) -> tuple[np.ndarray, int | None]:
    """(x̄, test-set index or None) for a test-set index or an array of pixels."""
    if isinstance(image, (int, np.integer)) and not isinstance(image, bool):
        from advmilp.data.mnist import load_split, split_size

        n_test = split_size("test", data_dir)
        if not 0 <= image < n_test:
            raise AdvmilpError(f"image index {image} out of range (0..{n_test - 1})")
        one = load_split("test", data_dir, rows=slice(int(image), int(image) + 1))   # only the image attacked
        return one.images[0].astype(np.float64), int(image)
    x = np.asarray(image, dtype=np.float64).reshape(-1)
    if x.size != network.n_inputs:
        raise AdvmilpError(f"the image has {x.size} pixels, the network {network.n_inputs} inputs")
    if x.min() < 0 or x.max() > 1:
        raise AdvmilpError("pixels must be in [0, 1]")
    return x, None


def _inputs(method: str, network: Network, data_dir) -> MethodInputs:
    """The pool (and masks) the method needs, for MNIST-shaped networks; none without MNIST."""
    if network.n_inputs != 784:
        return MethodInputs()
    try:
        return load_inputs(method, data_dir)
    except AdvmilpError as exc:
        warnings.warn(f"{method}: running without the MNIST training pool ({exc})", stacklevel=3)
        return MethodInputs()


def attack(network: Network | str | os.PathLike, image: int | Any, *, label: int | None = None,
           problem: str = "targeted", target: int | None = None, method: str | None = None, bounds: str = "basic",
           time_limit: float = 300.0, ratio: float = 1.2, epsilon: float = 0.01, linf_cap: float | None = None,
           l1_budget: float = 6.0, output_relu: bool = True, solver: str = "highs", threads: int = 1,
           gap_rel: float = 1e-4, data_dir: str | os.PathLike | None = None,
           cache_dir: str | os.PathLike | None = None) -> AttackResult:
    """Find a minimal-L1 adversarial example for ``image`` on ``network`` (or prove that none exists).

    Positional arguments:

    network      a `Network`, or a name / file path for `load_network`.
    image        an int: the index of an MNIST test image (read from ``data_dir``, default $ADVMILP_DATA
                 or ~/.cache/advmilp/mnist); or an array of the network's input size (784 pixels for
                 MNIST) with values in [0, 1].

    Keyword arguments:

    label        the class of ``image``.  Default: the network's prediction on it (so the attack asks
                 for a *change* of the network's decision).
    problem      ``targeted`` (default; thesis: output ``target`` ≥ ratio · every other output and
                 ≥ epsilon, minimise Σ|x − image|), ``untargeted`` (output ``label`` ≤ 0.95 · the largest
                 other, minimise Σ|x − image|), ``max-target`` (maximise output ``target`` with
                 Σ|x − image| ≤ l1_budget), ``inference`` (the input fixed: a check of the model).
    target       the target class.  Default for ``targeted``: (label + 5) mod 10, as in the thesis;
                 required for ``max-target``.  Never the label (refused: the image itself would count).
    method       ``tight`` (exact: a primal heuristic, bounds over the L1 ball its point proves, then
                 the branch-and-bound over ReLU phases or the MILP; targeted, untargeted and max-target),
                 ``milp`` (exact: the thesis' model as it is; every problem, inference too), ``fast``
                 (the heuristic alone, no optimality proof; targeted and untargeted), ``cdh`` (the
                 thesis' local search, no proof; targeted).  Default: tight, and milp for ``inference``.
                 tight, fast and cdh run on HiGHS only.  A method that does not solve the problem, or a
                 solver it does not run on, is refused, never handed to another method.
    bounds       neuron bounds: ``basic`` (default; interval arithmetic over the input box, instant),
                 ``improved`` (per-unit MILPs, cached under results/bounds/ by network hash: minutes
                 to hours the first time), ``weak`` (the same with 1 s per solve).
    time_limit   seconds for the whole method (default 300).
    ratio        targeted: the factor the target output must beat every other output by (1.2).
    epsilon      the winning output must be at least this (0.01): without it the all-zero output of a
                 ReLU output layer would satisfy the ratio.
    linf_cap     optional per-pixel cap |x_j − image_j| ≤ linf_cap (thesis Fig. 4c: 0.2).
    l1_budget    max-target: the L1 budget (6.0).
    output_relu  thesis-faithful ReLU on the output layer (True) or criteria on the logits (False).
                 targeted and untargeted: the same optimum (the winning output is ≥ epsilon > 0);
                 max-target: the objective is max(output, 0) with it, the output itself without.
    solver       ``highs`` (default) or, if installed, ``cbc``, ``scip``, ``gurobi`` (milp only; refused
                 for the other methods).
    threads      solver threads (1).
    gap_rel      relative gap at which a solve stops as optimal (1e-4).
    data_dir     the MNIST directory (test images; the training pool tight and fast start from and
                 the masks of cdh, for 784-input networks).
    cache_dir    the bounds cache (default: computed bounds are written to $ADVMILP_RESULTS/bounds, else
                 ~/.cache/advmilp/bounds; read from there and from the shipped results/bounds/).

    Returns an `AttackResult`.  What is verified: the witness (the solver's point, clipped to the
    input box) is re-evaluated with the network's forward pass in float64 and in float32, and
    ``verified`` is True only if the criterion (target is the strict argmax, ratio and epsilon met;
    for untargeted, the misclassification criterion) holds exactly in both; ``l1`` and ``linf`` are
    recomputed from the pixels.  ``status == "optimal"`` additionally means the solver proved that
    no adversarial example has a smaller L1 distance (within ``gap_rel``).  An unverified witness is
    never ``solved``.

    Raises `advmilp.errors.AdvmilpError` for a bad argument (unknown method or problem, a method that
    does not solve the problem, a value out of range, a target equal to the label or not an output, an
    image of the wrong size, MNIST not found for an index).
    """
    net = network if isinstance(network, Network) else load_network(network)
    spec = ProblemSpec(problem, ratio=ratio, target=target, epsilon=epsilon, linf_cap=linf_cap,
                       l1_budget=l1_budget, output_relu=output_relu)
    settings = SolverSettings(solver, time_limit, threads, gap_rel)
    method = method or default_method(spec.kind, spec.distance_norm)
    check_supported(method, spec.kind, settings.name, spec.distance_norm)   # before any work
    x_bar, index = _image(net, image, data_dir)
    label = int(net.predict(x_bar)) if label is None else int(label)
    spec.check_for(net.sizes, label)
    b, _ = get_bounds(net, bounds, cache_dir=cache_dir)
    res = run_method(method, net, b, spec, settings, x_bar, label, index, _inputs(method, net, data_dir))
    row = res.row
    return AttackResult(status=row["status"], objective=row["objective"], bound=row["bound"],
                        gap_pct=row["gap_pct"], witness=res.witness, verified=bool(row["verified"]),
                        l1=row["l1"], linf=row["linf"], time_s=row["time_s"], row=row)
