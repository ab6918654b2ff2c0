"""Batches: config → instances → executor → one verified CSV row per finished instance.

Durability: the parent process is the only writer of ``results/<name>/instances.csv``; each
row is appended as one complete line with a single ``write`` on an ``O_APPEND`` descriptor
and fsync'ed, so a run killed at any moment loses at most the instances in flight.  A torn
last line (a kill in the middle of a write) is cut off on the next start.  Re-running the
same command skips every instance already recorded (``force`` reruns them all).
"""

from __future__ import annotations

import csv
import io
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

import numpy as np

from advmilp import __version__
from advmilp.bounds.compute import Bounds, default_results_dir, get_bounds
from advmilp.experiments.config import Config
from advmilp.experiments.workers import limit_blas_threads
from advmilp.data.mnist import load_split
from advmilp.errors import AdvmilpError, ConfigError
from advmilp.methods.registry import MethodInputs, load_masks, load_pool, method_of, run_method
from advmilp.nn.interchange import load_any
from advmilp.nn.network import Network
from advmilp.spec.rows import COLUMNS, ERROR, KEY_COLUMNS, is_solved, make_row

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
        return f"{self.network}_{self.method}_{self.bounds}_{problem}_{self.image_index}"


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
    correctly (or exactly `indices`)."""
    if config.images.indices is not None:
        bad = [i for i in config.images.indices if not 0 <= i < len(split)]
        if bad:
            raise ConfigError(f"{config.source}: images.indices out of range: {bad}")
        return list(config.images.indices)
    chosen = []
    preds = [net.predict(split.images) for net in networks] if config.images.correctly_classified else []
    for i in range(config.images.first, len(split)):
        if all(p[i] == split.labels[i] for p in preds):
            chosen.append(i)
            if len(chosen) == config.images.count:
                break
    return chosen


def expand(config: Config, networks: list[Network], indices: list[int]) -> list[Instance]:
    """Image-major order, so a partial run already covers every cell of the table."""
    problem = config.problem.describe()
    return [Instance(net.name, net.short_hash(), method, bounds, problem, idx)
            for idx in indices for net in networks for bounds in config.bounds for method in config.methods]


# ---- the CSV -----------------------------------------------------------------------------------------
def repair_csv(path: Path) -> None:
    """Cut a torn last line (no trailing newline) left by a kill in the middle of a write."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as fh:
            fh.truncate(cut)


def read_done(path: Path) -> set[tuple]:
    repair_csv(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in KEY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise AdvmilpError(f"{path}: not an advmilp results file (missing columns {', '.join(missing)})")
        return {tuple(row[c] for c in KEY_COLUMNS) for row in reader}


def _header(path: Path) -> list[str] | None:
    """The columns of an existing results file (older versions may have fewer)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, newline="") as fh:
        return next(csv.reader(fh), None)


def append_row(path: Path, row: dict) -> None:
    buf = io.StringIO()
    columns = _header(path)
    new = columns is None
    columns = columns or COLUMNS
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    if new:
        writer.writeheader()
    writer.writerow({c: row.get(c, "") for c in columns})
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, buf.getvalue().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- running one task (in a worker) ----------------------------------------------------------------
def run_task(task: dict) -> dict:
    """Run one instance; every failure becomes an ``error`` row, never an exception."""
    inst: Instance = task["instance"]
    try:
        method = method_of(inst.method)
        inputs = MethodInputs(pool=load_pool(task.get("data_dir")) if method.needs_pool else None,
                              masks=task.get("masks"), cdh_settings=(task.get("cdh") or {}).get(inst.method))
        result = run_method(inst.method, task["network"], task["bounds"], task["spec"], task["settings"],
                            task["x_bar"], task["label"], inst.image_index, inputs)
        row = {**result.row, "method": inst.method, "problem": inst.problem, "git_sha": task["git_sha"]}
        if result.witness is not None:
            row["witness"] = _save_array(Path(task["witness_dir"]) / f"{inst.slug}.npy", result.witness)
        if result.extra.get("perturbed_counts") is not None:
            _save_array(Path(task["witness_dir"]) / f"{inst.slug}.counts.npy", result.extra["perturbed_counts"])
        return row
    except Exception as exc:  # a solver or model failure is a row, and the batch goes on
        return make_row(**asdict(inst), label=task["label"], status=ERROR, advmilp_version=__version__,
                        host=platform.node(), git_sha=task["git_sha"], started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        message=f"{type(exc).__name__}: {exc}",
                        verify_note=traceback.format_exc(limit=3).splitlines()[-1])


def _save_array(target: Path, array: np.ndarray) -> str:
    tmp = target.with_name(target.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, target)
    return f"witnesses/{target.name}"


# ---- executors ----------------------------------------------------------------------------------------
def _run_process_pool(tasks, workers, on_row):
    pending = {t["instance"].key: t for t in tasks}
    attempts: dict[tuple, int] = {}
    while pending:
        with ProcessPoolExecutor(max_workers=workers, initializer=limit_blas_threads) as pool:
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
                for p in list(getattr(pool, "_processes", {}).values()):
                    p.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise


def _run_serial(tasks, on_row):
    for t in tasks:
        on_row(run_task(t))


def _run_dask(tasks, workers, scheduler, on_row):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise AdvmilpError("the dask executor needs: pip install 'advmilp[dask]'") from exc
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [client.submit(run_task, t, pure=False) for t in tasks]
        for fut in as_completed(futures):
            try:
                on_row(fut.result())
            except Exception as exc:
                on_row(make_row(status=ERROR, message=f"dask: {type(exc).__name__}: {exc}"))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
    networks = [load_any(n, models_dir) for n in config.networks]
    split = load_split(config.images.split, data_dir)
    indices = select_images(config, networks, split)
    bounds: dict[tuple[str, str], Bounds] = {}
    for net in networks:
        for method in config.bounds:
            b, hit = get_bounds(net, method, config.bounds_time_limit, cache_dir,
                                progress=lambda m, n=net.name: log(f"bounds {n}: {m}"), warn=log)
            bounds[(net.name, method)] = b
            log(f"bounds {net.name} {method}: {'cached' if hit else f'computed in {b.time_s:.1f} s'}, "
                f"{b.n_unstable()} unstable hidden units")
    return networks, split, indices, bounds


def run_batch(config: Config, data_dir=None, models_dir=None, cache_dir=None, results_dir=None,
              force: bool = False, log: Callable[[str], None] = lambda m: None,
              progress: bool | None = None) -> BatchSummary:
    start = time.perf_counter()
    out_dir = Path(results_dir or default_results_dir()) / config.name
    (out_dir / "witnesses").mkdir(parents=True, exist_ok=True)
    (out_dir / "logs").mkdir(exist_ok=True)
    csv_path = out_dir / "instances.csv"
    logfile = open(out_dir / "logs" / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log", "a")

    def say(msg: str):
        log(msg)
        logfile.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
        logfile.flush()

    networks, split, indices, bounds = prepare(config, data_dir, models_dir, cache_dir, say)
    (out_dir / "images.json").write_text(json.dumps({"split": config.images.split, "indices": indices}) + "\n")
    instances = expand(config, networks, indices)
    done = set() if force else read_done(csv_path)
    todo = [i for i in instances if i.key not in done]
    say(f"{config.name}: {len(instances)} instances, {len(instances) - len(todo)} already recorded, "
        f"{len(todo)} to run on {config.executor} with {config.n_workers} worker(s)")
    sha = git_sha()
    # the masks are computed (if absent) here, once, not by every worker
    masks = load_masks(data_dir, results_dir) if config.cdh and any(c.needs_masks for c in config.cdh.values()) \
        else None
    nets = {n.name: n for n in networks}
    settings = config.solver
    tasks = [{"instance": inst, "network": nets[inst.network], "bounds": bounds[(inst.network, inst.bounds)],
              "spec": config.problem, "settings": settings, "x_bar": split.images[inst.image_index],
              "label": int(split.labels[inst.image_index]), "git_sha": sha,
              "witness_dir": str(out_dir / "witnesses"), "data_dir": data_dir,
              "cdh": config.cdh, "masks": masks} for inst in todo]

    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=len(tasks), disable=not show, file=sys.stderr, unit="inst", dynamic_ncols=True)
    counts = {"ran": 0, "solved": 0, "errors": 0}

    def on_row(row: dict):
        append_row(csv_path, row)
        counts["ran"] += 1
        counts["solved"] += is_solved(row)
        counts["errors"] += row.get("status") == ERROR
        bar.update(1)
        bar.set_postfix(solved=counts["solved"], errors=counts["errors"])
        obj = row.get("objective")
        logfile.write(f"{time.strftime('%H:%M:%S')} {row.get('network')} {row.get('bounds')} image "
                      f"{row.get('image_index')}: {row.get('status')} obj {obj} verified {row.get('verified')} "
                      f"time {row.get('time_s')} {row.get('message') or ''}\n")
        logfile.flush()

    try:
        if config.executor == "serial" or (config.executor == "process" and config.n_workers == 1):
            _run_serial(tasks, on_row)
        elif config.executor == "process":
            _run_process_pool(tasks, config.n_workers, on_row)
        else:
            _run_dask(tasks, config.n_workers, config.scheduler, on_row)
    finally:
        bar.close()
        say(f"{config.name}: ran {counts['ran']}, solved {counts['solved']}, errors {counts['errors']}")
        logfile.close()
    return BatchSummary(out_dir, len(instances), len(instances) - len(todo), counts["ran"],
                        counts["solved"], counts["errors"], time.perf_counter() - start)
