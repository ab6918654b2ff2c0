"""Batches: config → instances → executor → one verified CSV row per finished instance.

Durability: the parent process is the only writer of ``results/<name>/`` and holds its lock for
the whole batch (`advmilp.experiments.store`); each row is appended as one complete line and
fsync'ed, so a run killed at any moment loses at most the instances in flight.  A torn last line
(a kill in the middle of a write) is cut off on the next start.  Re-running the same command skips
every instance already recorded; ``force`` reruns them all, each new row taking the place of the
old one.  A result that cannot be stored (disk full) stops the batch with one line and is never
recorded as an ``error`` row, so the rerun redoes it.

Identity: an instance is keyed by the network's content hash, not its name, so two different
networks with the same file stem (``A/twin.npz``, ``B/twin.npz``) are two networks; the name is
kept for display.  Workers of the process pool die with the batch (`workers.init_worker`).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from advmilp import __version__
from advmilp.bounds.compute import Bounds, default_results_dir, get_bounds
from advmilp.experiments.config import TREE_BOUNDS, Config, read_index_file
from advmilp.experiments.store import (StorageError, append_row, cannot_write, locked_folder, read_done,
                                       replace_row, row_key, save_array, write_file)
from advmilp.experiments.workers import init_worker
from advmilp.data.mnist import load_split
from advmilp.errors import AdvmilpError, ConfigError
from advmilp.interrupts import reraise_interrupt
from advmilp.methods.registry import (MethodInputs, check_model, is_tree_model, load_masks, load_pool, method_of,
                                      problem_text, run_method)
from advmilp.nn.interchange import load_any
from advmilp.nn.network import Network
from advmilp.spec.rows import ERROR, is_solved, make_row

SCHEDULER_TIMEOUT_S = 5   # connecting to a Dask scheduler: an unreachable address fails this fast


@dataclass(frozen=True)
class Instance:
    network: str
    network_hash: str
    method: str
    bounds: str
    problem: str
    image_index: int

    @property
    def key(self) -> tuple:
        return (self.network, self.network_hash, self.method, self.bounds, self.problem, str(self.image_index))

    @property
    def slug(self) -> str:
        problem = re.sub(r"[^A-Za-z0-9.]+", "-", self.problem).strip("-")
        return f"{self.network}-{self.network_hash}_{self.method}_{self.bounds}_{problem}_{self.image_index}"


def git_sha() -> str:
    repo = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "diff", "--quiet", "HEAD", "--", "advmilp"],
                               capture_output=True, timeout=5).returncode != 0
        return (sha + ("-dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---- images and instances ------------------------------------------------------------------------
def select_images(config: Config, networks: list[Network], split) -> list[int]:
    """The thesis' image set: the first `count` images from `first` that every network classifies
    correctly (or exactly `indices`).  Fewer than `count` is refused, never run silently."""
    images, n = config.images, len(split)
    if images.indices is not None:
        bad = [i for i in images.indices if not 0 <= i < n]
        if bad:
            raise ConfigError(f"{config.source}: images.indices out of range (0..{n - 1}): {bad}")
        return list(images.indices)
    if images.first + images.count > n:
        raise ConfigError(f"{config.source}: images.first {images.first} + images.count {images.count} runs past "
                          f"the end of the {images.split} split ({n} images)")
    chosen = []
    preds = [net.predict(split.images) for net in networks] if images.correctly_classified is True else []
    for i in range(images.first, n):
        if all(p[i] == split.labels[i] for p in preds):
            chosen.append(i)
            if len(chosen) == images.count:
                return chosen
    raise ConfigError(f"{config.source}: only {len(chosen)} of the {images.split} images from {images.first} on are "
                      f"classified correctly by every network; images.count asks for {images.count}")


def file_images(config: Config, net: Network, split) -> list[int]:
    """``net``'s images from ``images.indices_file``: the rows ``match`` keeps, in file order, the first
    ``count`` of them; refused in one line if a row's label disagrees with the split's, or (with
    ``correctly_classified``) if ``net`` misclassifies a row's image, naming those rows."""
    images, src = config.images, config.source
    _, rows = read_index_file(images.indices_file, src)
    for col, value in images.match:
        if isinstance(value, tuple):
            per_net = dict(value)
            if net.name not in per_net:
                raise ConfigError(f"{src}: images.match.{col} has no entry for network {net.name!r} "
                                  f"(it has: {', '.join(per_net)})")
            value = per_net[net.name]
        rows = [r for r in rows if r[col] == value]
    rows = rows[:images.count] if images.count is not None else rows
    where = f"{src}: images.indices_file {images.indices_file}"
    if not rows:
        raise ConfigError(f"{where}: no rows for network {net.name!r}")
    indices = [int(r[images.column]) for r in rows]
    bad = sorted({i for i in indices if not 0 <= i < len(split)})
    if bad:
        raise ConfigError(f"{where}: {images.column} out of range (0..{len(split) - 1}) for {net.name}: {bad[:5]}")
    twice = sorted({i for i in indices if indices.count(i) > 1})
    if twice:
        raise ConfigError(f"{where}: image {twice[0]} is listed twice for {net.name}")

    def refuse(what: str, wrong: list[str]) -> None:
        more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
        raise ConfigError(f"{where}: {len(wrong)} row(s) for {net.name} {what}: {'; '.join(wrong[:5])}{more}")

    if images.label_column is not None:
        wrong = [f"image {i} ({images.label_column} {r[images.label_column]}, MNIST label {split.labels[i]})"
                 for i, r in zip(indices, rows) if r[images.label_column] != str(int(split.labels[i]))]
        if wrong:
            refuse("disagree with the MNIST labels", wrong)
    if images.correctly_classified:
        preds = net.predict(split.images[indices])
        wrong = [f"image {i} (label {split.labels[i]}, predicted {p})"
                 for i, p in zip(indices, preds) if p != split.labels[i]]
        if wrong:
            refuse("are not classified correctly by our forward pass", wrong)
    return indices


def images_per_network(config: Config, networks: list[Network], split) -> dict[str, list[int]]:
    """Each network's image list (keyed by its hash): its own rows of ``images.indices_file``, else the
    common `select_images` list."""
    if config.images.indices_file is not None:
        return {net.short_hash(): file_images(config, net, split) for net in networks}
    common = select_images(config, networks, split)
    if config.images.correctly_classified == "each":   # the same images; each network attacks those it gets right
        return {net.short_hash(): [i for i, p in zip(common, net.predict(split.images[common]))
                                   if p == split.labels[i]] for net in networks}
    return {net.short_hash(): common for net in networks}


def expand(config: Config, networks: list[Network], indices: list[int] | dict[str, list[int]]) -> list[Instance]:
    """Image-major order, so a partial run already covers every cell of the table.  ``indices``: one
    list for every network, or each network's own list by its hash (the k-th image of every network,
    then the (k+1)-th)."""
    lists = indices if isinstance(indices, dict) else {net.short_hash(): indices for net in networks}
    depth = max((len(v) for v in lists.values()), default=0)
    return [Instance(net.name, net.short_hash(), method, bounds, problem_text(net, problem),
                     lists[net.short_hash()][k])
            for k in range(depth) for net in networks if k < len(lists[net.short_hash()])
            for problem in config.problems for bounds in config.bounds for method in config.methods]


# ---- running one task (in a worker) ----------------------------------------------------------------
def run_task(task: dict) -> dict:
    """Run one instance; a failure of the method becomes an ``error`` row, never an exception.

    Storing the witness is outside that net: a `StorageError` (disk full) propagates and stops the
    batch, since an ``error`` row would make resume skip an instance that was in fact solved.  The
    row's key columns are the instance's, whatever the method wrote."""
    inst: Instance = task["instance"]
    try:
        method = method_of(inst.method)
        inputs = MethodInputs(pool=load_pool(task.get("data_dir")) if method.needs_pool else None,
                              masks=task.get("masks"), cdh_settings=(task.get("cdh") or {}).get(inst.method))
        result = run_method(inst.method, task["network"], task["bounds"], task["spec"], task["settings"],
                            task["x_bar"], task["label"], inst.image_index, inputs)
        row = make_row(**{**result.row, **asdict(inst), "git_sha": task["git_sha"]})
    except Exception as exc:  # a solver or model failure is a row, and the batch goes on
        reraise_interrupt(exc)   # ... unless it is a Ctrl-C in another error's clothes
        return make_row(**asdict(inst), label=task["label"], status=ERROR, advmilp_version=__version__,
                        host=platform.node(), git_sha=task["git_sha"], started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        message=f"{type(exc).__name__}: {exc}",
                        verify_note=traceback.format_exc(limit=3).splitlines()[-1])
    witnesses = Path(task["witness_dir"])
    if result.witness is not None:
        row["witness"] = save_array(witnesses / f"{inst.slug}.npy", result.witness)
    if result.extra.get("perturbed_counts") is not None:
        save_array(witnesses / f"{inst.slug}.counts.npy", result.extra["perturbed_counts"])
    return row


# ---- executors ----------------------------------------------------------------------------------------
def _run_process_pool(tasks, workers, on_row):
    pending = {t["instance"].key: t for t in tasks}
    attempts: dict[tuple, int] = {}
    while pending:
        with ProcessPoolExecutor(max_workers=workers, initializer=init_worker, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(run_task, t): key for key, t in pending.items()}
            broken = False
            try:
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for fut in done:
                        key = futures.pop(fut)
                        try:
                            row = fut.result()
                        except BrokenProcessPool:
                            broken = True
                            attempts[key] = attempts.get(key, 0) + 1
                            if attempts[key] >= 2:  # crashed its worker twice: record and move on
                                t = pending.pop(key)
                                on_row(make_row(**asdict(t["instance"]), label=t["label"], status=ERROR,
                                                git_sha=t["git_sha"],
                                                message="worker process crashed (twice) while solving"))
                            continue
                        pending.pop(key, None)
                        on_row(row)
                    if broken:
                        break
            except BaseException:
                procs = list(getattr(pool, "_processes", {}).values())
                for p in procs:
                    p.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                for p in procs:   # forked workers share the folder's lock: gone before the batch returns
                    p.join(timeout=10)
                raise


def _run_serial(tasks, on_row):
    for t in tasks:
        on_row(run_task(t))
        reraise_interrupt()     # a Ctrl-C that a solve swallowed whole still ends the batch here


@contextlib.contextmanager
def _dask_client(config: Config):
    """A client of ``config.scheduler`` (refused in one line if it does not answer within
    `SCHEDULER_TIMEOUT_S`), or of a local cluster of ``config.n_workers`` processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise AdvmilpError("the dask executor needs: pip install 'advmilp[dask]'") from exc
    cluster = None
    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, ValueError, TypeError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise AdvmilpError(f"cannot reach the Dask scheduler at {config.scheduler}: {reason}") from None
    else:
        cluster = LocalCluster(n_workers=config.n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_dask(tasks, client, on_row):
    from dask.distributed import as_completed

    futures = {client.submit(run_task, t, pure=False): t for t in tasks}
    for fut in as_completed(futures):
        try:
            row = fut.result()
        except StorageError:
            raise
        except Exception as exc:  # the worker was lost: the instance is an error row, the batch goes on
            t = futures[fut]
            row = make_row(**asdict(t["instance"]), label=t["label"], status=ERROR, git_sha=t["git_sha"],
                           message=f"dask: {type(exc).__name__}: {exc}")
        on_row(row)


# ---- the batch -------------------------------------------------------------------------------------------
@dataclass
class BatchSummary:
    out_dir: Path
    total: int
    skipped: int
    ran: int
    solved: int
    errors: int
    wall_s: float


def prepare(config: Config, data_dir=None, models_dir=None, cache_dir=None,
            log: Callable[[str], None] = lambda m: None):
    """The networks, the image split, each network's image indices (by network hash) and the bounds,
    keyed by (network hash, bounds method)."""
    networks = [load_any(n, models_dir) for n in config.networks]
    _check_networks(config, networks)
    split = load_split(config.images.split, data_dir)
    indices = images_per_network(config, networks, split)
    bounds: dict[tuple[str, str], Bounds] = {}
    for net in networks:
        if is_tree_model(net):   # no neurons, no bounds (`_check_networks`: the config's bounds are [none])
            bounds[(net.short_hash(), TREE_BOUNDS)] = Bounds([], [], TREE_BOUNDS, network_hash=net.content_hash())
            log(f"bounds {net.name}: none (a tree ensemble: {net.describe()})")
            continue
        for method in config.bounds:
            b, hit = get_bounds(net, method, config.bounds_time_limit, cache_dir,
                                progress=lambda m, n=net.name: log(f"bounds {n}: {m}"), warn=log)
            bounds[(net.short_hash(), method)] = b
            log(f"bounds {net.name} {method}: {'cached' if hit else f'computed in {b.time_s:.1f} s'}, "
                f"{b.n_unstable()} unstable hidden units")
    return networks, split, indices, bounds


def _check_networks(config: Config, networks: list[Network]) -> None:
    """Two entries with the same weights would run every instance twice; a target must be an output; a
    method or bounds for the other kind of model (network or tree ensemble) is refused (the config
    checks names; this checks what was loaded, e.g. a ``--networks`` override)."""
    seen: dict[str, str] = {}
    for entry, net in zip(config.networks, networks):
        trees = is_tree_model(net)
        try:
            for method in config.methods:
                check_model(method, trees, entry)
        except AdvmilpError as exc:
            raise ConfigError(f"{config.source}: {exc}") from None
        if trees and config.bounds != (TREE_BOUNDS,):
            raise ConfigError(f"{config.source}: {entry} is a tree ensemble: it has no neuron bounds "
                              f"(bounds: [{TREE_BOUNDS}]), not {', '.join(config.bounds)}")
        if not trees and TREE_BOUNDS in config.bounds:
            raise ConfigError(f"{config.source}: bounds '{TREE_BOUNDS}' is for tree ensembles, not the network {entry}")
        h = net.short_hash()
        if h in seen:
            raise ConfigError(f"{config.source}: networks '{seen[h]}' and '{entry}' are the same network "
                              f"(sha256 {h}); list it once")
        seen[h] = entry
        for problem in config.problems:
            if problem.target is not None and not 0 <= problem.target < net.sizes[-1]:
                raise ConfigError(f"{config.source}: problem.target {problem.target} is not an output of {entry} "
                                  f"(0..{net.sizes[-1] - 1})")


def run_batch(config: Config, data_dir=None, models_dir=None, cache_dir=None, results_dir=None,
              force: bool = False, log: Callable[[str], None] = lambda m: None,
              progress: bool | None = None) -> BatchSummary:
    start = time.perf_counter()
    out_dir = Path(results_dir or default_results_dir()) / config.name
    with contextlib.ExitStack() as stack:
        stack.enter_context(locked_folder(out_dir))
        client = stack.enter_context(_dask_client(config)) if config.executor == "dask" else None
        return _run_locked(config, out_dir, client, data_dir, models_dir, cache_dir, force, log, progress, start)


def _open_log(out_dir: Path):
    path = out_dir / "logs" / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        fh = open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise cannot_write(path, exc) from exc

    def write(text: str) -> None:
        try:
            fh.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            fh.flush()
        except OSError as exc:
            raise cannot_write(path, exc) from exc

    return fh, write


def _merge_images(path: Path, record: dict) -> dict:
    """``record`` with the per-network image lists of an earlier run of the folder kept for the
    networks this run does not name (``--arch`` runs a subset of a config's networks), when both
    runs chose from the same images; else ``record`` alone."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return record
    if not (isinstance(old, dict) and isinstance(old.get("indices"), dict) and isinstance(record["indices"], dict)
            and old.get("split") == record["split"] and old.get("selected") == record.get("selected")):
        return record
    return {**record, "indices": {**old["indices"], **record["indices"]}}


def _run_locked(config, out_dir, client, data_dir, models_dir, cache_dir, force, log, progress, start):
    csv_path = out_dir / "instances.csv"
    logfile, log_line = _open_log(out_dir)

    def say(msg: str):
        log(msg)
        log_line(msg)

    networks, split, indices, bounds = prepare(config, data_dir, models_dir, cache_dir, say)
    try:
        lists = list(indices.values())
        shown = lists[0] if all(v == lists[0] for v in lists) and config.images.correctly_classified != "each" else \
            {net.name: indices[net.short_hash()] for net in networks}   # per network: {name: indices}
        record = {"split": config.images.split, "indices": shown}
        if config.images.correctly_classified == "each":   # the common images, before each network's own choice
            record["selected"] = select_images(config, networks, split)
        write_file(out_dir / "images.json", json.dumps(_merge_images(out_dir / "images.json", record)) + "\n")
    except OSError as exc:
        raise cannot_write(out_dir / "images.json", exc) from exc
    instances = expand(config, networks, indices)
    done = read_done(csv_path)
    todo = instances if force else [i for i in instances if row_key(asdict(i)) not in done]
    say(f"{config.name}: {len(instances)} instances, {len(instances) - len(todo)} already recorded"
        f"{' (rerun: --force)' if force else ''}, {len(todo)} to run on {config.executor} with "
        f"{config.n_workers} worker(s)")
    sha = git_sha()
    # the masks are computed (if absent) here, once, not by every worker
    masks = load_masks(data_dir, out_dir.parent) if config.cdh and any(c.needs_masks for c in config.cdh.values()) \
        else None
    nets = {n.short_hash(): n for n in networks}
    specs = {(n.short_hash(), problem_text(n, p)): p for n in networks for p in config.problems}
    tasks = [{"instance": inst, "network": nets[inst.network_hash], "bounds": bounds[(inst.network_hash, inst.bounds)],
              "spec": specs[(inst.network_hash, inst.problem)], "settings": config.solver, "x_bar": split.images[inst.image_index],
              "label": int(split.labels[inst.image_index]), "git_sha": sha,
              "witness_dir": str(out_dir / "witnesses"), "data_dir": data_dir,
              "cdh": config.cdh, "masks": masks} for inst in todo]

    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(tasks), disable=not show, file=sys.stderr, unit="inst", dynamic_ncols=True)
    counts = {"ran": 0, "solved": 0, "errors": 0}

    def on_row(row: dict):
        key = row_key(row)
        if key in done:
            replace_row(csv_path, row)   # --force: the new row takes the old one's place
        else:
            append_row(csv_path, row)
            done.add(key)
        counts["ran"] += 1
        counts["solved"] += is_solved(row)
        counts["errors"] += row.get("status") == ERROR
        bar.update(1)
        bar.set_postfix(solved=counts["solved"], errors=counts["errors"])
        log_line(f"{row.get('network')} {row.get('bounds')} image {row.get('image_index')}: {row.get('status')} "
                 f"obj {row.get('objective')} verified {row.get('verified')} time {row.get('time_s')} "
                 f"{row.get('message') or ''}")

    try:
        if config.executor == "serial" or (config.executor == "process" and config.n_workers == 1):
            _run_serial(tasks, on_row)
        elif config.executor == "process":
            _run_process_pool(tasks, config.n_workers, on_row)
        else:
            _run_dask(tasks, client, on_row)
    finally:
        bar.close()
        with contextlib.suppress(StorageError):   # a full disk: the error that stopped the batch is reported
            say(f"{config.name}: ran {counts['ran']}, solved {counts['solved']}, errors {counts['errors']}")
        with contextlib.suppress(OSError):
            logfile.close()
    return BatchSummary(out_dir, len(instances), len(instances) - len(todo), counts["ran"],
                        counts["solved"], counts["errors"], time.perf_counter() - start)
