"""The registry of methods: what each one is, what it needs, and the one dispatcher `run_method`.

    milp   the thesis-faithful MILP (`advmilp.methods.milp`), exact, every problem kind
    tight  heuristic + L1-ball bounds + phase search / MILP (`advmilp.methods.tight`), exact, targeted
    fast   the primal heuristic alone (`advmilp.methods.fast`), no proof, targeted
    cdh    the thesis' local-search matheuristic (`advmilp.methods.cdh`), no proof, targeted
    trees-milp  the MILP of a tree ensemble (`advmilp.methods.trees`), exact, targeted and untargeted

Each method attacks one kind of model: networks (the first four) or tree ensembles (``trees``:
`advmilp.nn.trees.TreeEnsemble`, which have no neurons, so no bounds: the batch records bounds
``none``).  `check_model` refuses a method given the other kind, in one line.

The command line's ``--method`` choices, the config's ``methods:`` names, the reports' split into
exact and heuristic tables and the Python API all read `METHODS`.  Importing this module is cheap:
each entry imports its method's module only when it runs, so the CLI can list the names without
loading numpy, PuLP or HiGHS.

A method gets what it needs from `MethodInputs`: ``pool`` (`load_pool`: the first `POOL_SIZE` MNIST
training images, which the primal heuristic bisects towards) when ``needs_pool``; ``masks``
(`load_masks`: the per-label masks of thesis Appendix A) when ``needs_masks``; and ``cdh_settings``
for the CDH.  A method is never replaced by another: given a problem kind or a solver it does not
support, `check_supported` refuses it (naming the methods that do); an instance its spec cannot ask
(target = label) is recorded with status ``invalid``.  `default_method` is the documented default of
the command line and the API: tight where it applies, else milp.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from advmilp.errors import AdvmilpError

if TYPE_CHECKING:  # annotations only: importing the registry must stay cheap
    import numpy as np

    from advmilp.heuristics.pool import ImagePool
    from advmilp.methods.result import InstanceResult

POOL_SIZE = 20000
_POOLS: dict[str, Any] = {}


@dataclass(frozen=True)
class MethodInputs:
    """The data a method may need beyond the instance (None: not loaded)."""

    pool: Any = None            # ImagePool of POOL_SIZE training images, for needs_pool methods
    masks: Any = None           # (10, 784) per-label masks, for needs_masks methods
    cdh_settings: Any = None    # heuristics.cdh.CDHSettings of a cdh variant (None: from the spec)


@dataclass(frozen=True)
class Method:
    """One entry of the registry.

    ``run(network, bounds, spec, settings, x_bar, label, image_index, inputs)`` returns an
    `InstanceResult` whose row is a full `advmilp.spec.rows.ResultRow`."""

    name: str
    exact: bool                      # proves optimality (else: a heuristic, status found / not_found)
    needs_pool: bool                 # uses the training-image pool (`load_pool`)
    needs_masks: bool                # may use the per-label masks (`load_masks`)
    problems: tuple[str, ...] | None  # the ProblemSpec kinds it solves (None: every kind)
    summary: str                     # one line for --help
    run: Callable[..., "InstanceResult"]
    solvers: tuple[str, ...] | None = ("highs",)  # the MILP solvers it can use (None: every one)
    norms: tuple[str, ...] | None = ("l1",)       # the distances it minimises (None: every one)
    trees: bool = False                           # attacks tree ensembles (else: networks)

    @property
    def models(self) -> str:
        """What it attacks, for messages: ``networks`` or ``tree ensembles``."""
        return "tree ensembles" if self.trees else "networks"

    def supports(self, kind: str, norm: str = "l1") -> bool:
        return (self.problems is None or kind in self.problems) and (self.norms is None or norm in self.norms)

    def uses_solver(self, solver: str) -> bool:
        return self.solvers is None or solver in self.solvers


def _milp(network, bounds, spec, settings, x_bar, label, image_index, inputs: MethodInputs):
    from advmilp.methods.milp import run_instance

    return run_instance(network, bounds, spec, settings, x_bar, label, image_index)


def _pool_for(network, inputs: MethodInputs):
    """The pool with the network's outputs on it computed (once per network and process): like the bounds,
    a preparation of the network that a batch's instances share, so it stays out of the first instance's
    clock (on 256x2 it took 2.2 s of a 1.2 s heuristic share)."""
    if inputs.pool is None or network.n_inputs != inputs.pool.shape[1]:
        return inputs.pool
    from advmilp.heuristics.pool import ImagePool

    pool = ImagePool.of(inputs.pool)
    pool.outputs(network)
    return pool


def _tight(network, bounds, spec, settings, x_bar, label, image_index, inputs: MethodInputs):
    from advmilp.methods.tight import run_tight

    return run_tight(network, bounds, spec, settings, x_bar, label, image_index, pool=_pool_for(network, inputs))


def _fast(network, bounds, spec, settings, x_bar, label, image_index, inputs: MethodInputs):
    from advmilp.methods.fast import run_fast

    return run_fast(network, bounds, spec, settings, x_bar, label, image_index, pool=_pool_for(network, inputs))


def _cdh(network, bounds, spec, settings, x_bar, label, image_index, inputs: MethodInputs):
    from advmilp.methods.cdh import run_cdh

    return run_cdh(network, bounds, spec, settings, x_bar, label, image_index, inputs.cdh_settings, inputs.masks)


def _trees(network, bounds, spec, settings, x_bar, label, image_index, inputs: MethodInputs):
    from advmilp.methods.trees import run_trees

    return run_trees(network, spec, settings, x_bar, label, image_index)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("milp", exact=True, needs_pool=False, needs_masks=False, problems=None, run=_milp, solvers=None,
           norms=None, summary="the thesis model"),
    Method("tight", exact=True, needs_pool=True, needs_masks=False, problems=("targeted", "untargeted", "max-target"),
           run=_tight, norms=("l1", "linf", "l0"), summary="heuristic + L1-ball bounds + MILP (exact, fast)"),
    Method("fast", exact=False, needs_pool=True, needs_masks=False, problems=("targeted", "untargeted"), run=_fast,
           summary="the primal heuristic alone"),
    Method("cdh", exact=False, needs_pool=False, needs_masks=True, problems=("targeted",), run=_cdh,
           summary="the thesis' local search"),
    Method("trees-milp", exact=True, needs_pool=False, needs_masks=False, problems=("targeted", "untargeted"),
           run=_trees, norms=("l1", "linf"), trees=True, summary="tree ensembles: their exact MILP"),
)}


def method_of(name: str) -> Method:
    """The entry of a method name; config variants ``cdh-<variant>`` are cdh runs."""
    base = "cdh" if name.startswith("cdh-") else name
    if base not in METHODS:
        raise AdvmilpError(f"unknown method {name!r} (choose from {', '.join(METHODS)})")
    return METHODS[base]


def default_method(kind: str, norm: str = "l1") -> str:
    """The method run when none is named: ``tight`` for the problems it solves, else ``milp``."""
    return "tight" if METHODS["tight"].supports(kind, norm) else "milp"


def is_tree_model(model) -> bool:
    """True for a tree ensemble (`advmilp.nn.trees.TreeEnsemble`), False for a network."""
    return bool(getattr(model, "is_tree_ensemble", False))


def problem_text(model, spec) -> str:
    """The problem column of ``model``'s rows: `ProblemSpec.describe`, or for a tree ensemble the text
    `advmilp.methods.trees.describe` writes (its criterion is the argmax of its scores)."""
    if is_tree_model(model):
        from advmilp.methods.trees import describe

        return describe(spec, spec.norm)
    return spec.describe()


def check_model(name: str, trees: bool, model: str) -> Method:
    """The entry of ``name`` if it attacks the kind of model ``model`` (a name, for the message) is
    (``trees``: a tree ensemble); else one line naming the methods that do."""
    method = method_of(name)
    if method.trees != trees:
        able = [m.name for m in METHODS.values() if m.trees == trees]
        what = "the tree ensemble" if trees else "the network"
        raise AdvmilpError(f"method {method.name} attacks {method.models}, not {what} {model} "
                           f"(methods for {'tree ensembles' if trees else 'networks'}: {', '.join(able)})")
    return method


def check_supported(name: str, kind: str, solver: str = "highs", norm: str = "l1") -> Method:
    """The entry of ``name`` if it solves problems of ``kind`` in the distance ``norm``
    (`ProblemSpec.distance_norm`) with ``solver``; else one clear error naming the methods (for the
    same kind of model) that do (a method is never silently replaced by another)."""
    method = method_of(name)
    kin = [m for m in METHODS.values() if m.trees == method.trees]

    def those(able: list[str]) -> str:
        return f"methods that do: {', '.join(able)}" if able else f"no method for {method.models} does"

    if not method.supports(kind):
        able = [m.name for m in kin if m.supports(kind)]
        raise AdvmilpError(f"method {method.name} does not solve {kind} problems ({those(able)})")
    if not method.supports(kind, norm):
        able = [m.name for m in kin if m.supports(kind, norm)]
        raise AdvmilpError(f"method {method.name} does not minimise or cap the {norm} distance ({those(able)})")
    if not method.uses_solver(solver):
        able = [m.name for m in kin if m.uses_solver(solver)]
        raise AdvmilpError(f"method {method.name} runs on {', '.join(method.solvers or ())} only, not solver {solver} "
                           f"({f'methods that use {solver}: ' + ', '.join(able) if able else f'no method for {method.models} does'})")
    return method


def run_method(name: str, network, bounds, spec, settings, x_bar, label, image_index,
               inputs: MethodInputs = MethodInputs()) -> "InstanceResult":
    """Run the method ``name`` (or a cdh variant's name) on one instance, through the registry.

    An unsupported problem kind or solver, or a model of the other kind (`check_model`), raises; an
    instance the spec cannot ask (`InvalidInstance`) returns a row with status ``invalid`` and the
    reason, so a batch records it and never counts it."""
    from advmilp.spec.problems import InvalidInstance

    check_model(name, is_tree_model(network), network.name)
    method = check_supported(name, spec.kind, settings.name, spec.distance_norm)
    try:
        spec.check_for(network.sizes, label)
    except InvalidInstance as exc:
        return _invalid(name, network, bounds, spec, settings, label, image_index, str(exc))
    return method.run(network, bounds, spec, settings, x_bar, label, image_index, inputs)


def _invalid(name, network, bounds, spec, settings, label, image_index, reason: str) -> "InstanceResult":
    import platform

    from advmilp import __version__
    from advmilp.methods.result import InstanceResult, started_at
    from advmilp.spec.rows import INVALID, make_row

    target = spec.target_for(label) if label is not None else None
    problem = problem_text(network, spec)
    row = make_row(network=network.name, network_hash=network.short_hash(), method=name, bounds=bounds.method,
                   problem=problem, image_index=image_index, label=label, target=target, status=INVALID,
                   time_s=0.0, threads=settings.threads, time_limit=settings.time_limit, gap_rel=settings.gap_rel,
                   advmilp_version=__version__, host=platform.node(), started_at=started_at(),
                   message=f"invalid instance: {reason}")
    return InstanceResult(row, None)


def load_pool(data_dir: str | os.PathLike | None = None) -> "ImagePool":
    """The first POOL_SIZE MNIST training images as a `heuristics.pool.ImagePool` of their uint8 codes
    (loaded once per process and data directory; pixels are made only for the rows a start needs; the
    networks' outputs on it kept beside the decoded MNIST cache, `data.mnist.decoded_cache_dir`)."""
    key = str(data_dir)
    if key not in _POOLS:
        from advmilp.data.mnist import FILES, PIXEL_CODES, decoded_cache_dir, load_codes
        from advmilp.heuristics.pool import ImagePool

        codes = load_codes("train", data_dir, rows=slice(0, POOL_SIZE))[0]   # (verified: the md5 names them)
        cache = decoded_cache_dir()
        _POOLS[key] = ImagePool(codes, PIXEL_CODES, cache / "pool-outputs" if cache is not None else None,
                                f"{FILES['train_images'][1][:12]}-0-{len(codes)}")
    return _POOLS[key]


def load_masks(data_dir: str | os.PathLike | None = None, results_dir: str | os.PathLike | None = None) -> "np.ndarray":
    """The per-label masks, cached in ``<results>/masks/`` (computed from the training set if absent)."""
    from advmilp.bounds.compute import default_results_dir
    from advmilp.data.masks import get_masks

    root = Path(results_dir or default_results_dir()) / "masks"
    return get_masks(root / "mnist_train_masks.npz", data_dir, png_path=root / "mnist_train_masks.png")


def load_inputs(name: str, data_dir=None, results_dir=None, cdh_settings=None) -> MethodInputs:
    """What the method ``name`` needs: the pool and/or the masks (``cdh_settings`` may say the masks are
    not needed), and the cdh settings."""
    method = method_of(name)
    masks_needed = method.needs_masks and (cdh_settings is None or cdh_settings.needs_masks)
    return MethodInputs(pool=load_pool(data_dir) if method.needs_pool else None,
                        masks=load_masks(data_dir, results_dir) if masks_needed else None,
                        cdh_settings=cdh_settings)
