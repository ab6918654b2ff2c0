"""Batches of VNN-COMP instances: ``instances.csv`` → `verify_property` per row → one row per instance.

A VNN-COMP benchmark folder lists its instances in a CSV without a header, one ``onnx, vnnlib,
timeout`` per line, the paths relative to the CSV's folder.  `read_instances` checks the whole file
before anything runs (a malformed line or a missing file is one error naming the line).

Results go to ``<results dir>/verify.csv`` (`COLUMNS`; keyed by the ``onnx`` and ``vnnlib`` cells as
the CSV wrote them), counterexamples beside it in ``counterexamples/`` in VNN-COMP's format.  The
folder is handled by `advmilp.experiments.store` like an attack batch: its lock refuses a second run,
each row is one fsync'ed append, a rerun skips the recorded instances and ``force`` redoes them, each
new row replacing the old one.  Instances run in this process, a process pool, or on Dask.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import math
import os
import platform
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from advmilp import __version__
from advmilp.errors import AdvmilpError
from advmilp.experiments.store import StorageError, append_row, cannot_write, locked_folder, read_done, replace_row
from advmilp.experiments.workers import init_worker
from advmilp.interrupts import reraise_interrupt

RESULTS_FILE = "verify.csv"
BENCHMARK_FILE = "benchmark.json"
CEX_DIR = "counterexamples"
ERROR = "error"
EXECUTORS = ("serial", "process", "dask")
KEY = ("onnx", "vnnlib")
COLUMNS = ("onnx", "vnnlib", "network", "network_sha256", "vnnlib_sha256", "csv_timeout_s", "timeout_s",
           "timeout_note", "result", "time_s", "how", "margin", "disjuncts", "checked", "counterexample",
           "message", "versions", "git_sha", "host", "started_at")


@dataclass(frozen=True)
class BenchInstance:
    onnx: str            # as the CSV wrote it (relative to its folder)
    vnnlib: str
    csv_timeout: float
    folder: str          # the CSV's folder

    @property
    def key(self) -> tuple[str, str]:
        return (self.onnx, self.vnnlib)

    @property
    def slug(self) -> str:
        return f"{Path(self.onnx).stem}-{Path(self.vnnlib).stem}"


@dataclass(frozen=True)
class TimeoutPolicy:
    """The CSV's timeouts as they are, all replaced by ``override`` seconds, or multiplied by ``scale``."""
    override: float | None = None
    scale: float | None = None

    def __post_init__(self):
        if self.override is not None and self.scale is not None:
            raise AdvmilpError("give --timeout or --timeout-scale, not both")
        for name, v in (("--timeout", self.override), ("--timeout-scale", self.scale)):
            if v is not None and not (math.isfinite(v) and v > 0):
                raise AdvmilpError(f"{name} must be a finite number > 0 (got {v})")

    def apply(self, csv_timeout: float) -> tuple[float, str]:
        """(seconds to use, how they were chosen: the row's ``timeout_note``)."""
        if self.override is not None:
            return self.override, f"--timeout {self.override:g} (csv {csv_timeout:g})"
        if self.scale is not None:
            return csv_timeout * self.scale, f"csv {csv_timeout:g} x {self.scale:g}"
        return csv_timeout, "csv"


@dataclass(frozen=True)
class BatchOptions:
    timeouts: TimeoutPolicy = field(default_factory=TimeoutPolicy)
    executor: str = "serial"
    n_workers: int = 1
    scheduler: str | None = None     # a Dask scheduler's address (executor dask); None: a local cluster
    force: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise AdvmilpError(f"unknown executor {self.executor!r} (choose from {', '.join(EXECUTORS)})")
        if self.n_workers < 1:
            raise AdvmilpError(f"workers must be ≥ 1 (got {self.n_workers})")
        if self.scheduler and self.executor != "dask":
            raise AdvmilpError("--scheduler needs --executor dask")


# ---- the instances file -----------------------------------------------------------------------------
def read_instances(csv_path: str | os.PathLike) -> list[BenchInstance]:
    """Every line of a VNN-COMP ``instances.csv``, checked: three cells, a timeout > 0, both files present."""
    path = Path(csv_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AdvmilpError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise AdvmilpError(f"{path}: not a text file (an instances.csv is onnx,vnnlib,timeout lines)") from None
    folder, out, seen = path.parent, [], set()
    for n, cells in enumerate(csv.reader(text.splitlines()), start=1):
        if not cells or not "".join(cells).strip():
            continue
        where = f"{path}: line {n}"
        if len(cells) != 3:
            raise AdvmilpError(f"{where}: {len(cells)} cell(s); expected onnx,vnnlib,timeout")
        onnx, vnnlib, timeout = (c.strip() for c in cells)
        try:
            t = float(timeout)
        except ValueError:
            raise AdvmilpError(f"{where}: timeout {timeout!r} is not a number") from None
        if not (math.isfinite(t) and t > 0):
            raise AdvmilpError(f"{where}: timeout must be a finite number > 0 (got {timeout})")
        for f in (onnx, vnnlib):
            if not (folder / f).is_file():
                raise AdvmilpError(f"{where}: {folder / f} not found")
        if (onnx, vnnlib) in seen:
            raise AdvmilpError(f"{where}: instance {onnx}, {vnnlib} listed twice")
        seen.add((onnx, vnnlib))
        out.append(BenchInstance(onnx, vnnlib, t, str(folder)))
    if not out:
        raise AdvmilpError(f"{path}: no instances")
    return out


# ---- one instance (in a worker) ---------------------------------------------------------------------
def format_counterexample(x, y) -> str:
    """VNN-COMP's result format: ``sat`` then the assignment ``((X_0 v) ... (Y_0 v) ...)``."""
    lines = ["sat", "("] + [f" (X_{i} {float(v)!r})" for i, v in enumerate(x)]
    lines += [f" (Y_{j} {float(v)!r})" for j, v in enumerate(y)] + [")"]
    return "\n".join(lines) + "\n"


def versions() -> str:
    from advmilp.solvers.highs import solver_version

    return f"advmilp {__version__}; {solver_version('highs')}; Python {platform.python_version()}"


@functools.lru_cache(maxsize=8)
def _network(path: str, mtime_ns: int):
    from advmilp.nn.interchange import load_any

    return load_any(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_instance(task: dict) -> dict:
    """Decide one instance; any failure of loading or deciding is an ``error`` row, never an exception
    (writing the counterexample is outside that net: a full disk stops the batch)."""
    from advmilp.methods.verify import VIOLATED, verify_property
    from advmilp.spec.vnnlib import read_vnnlib

    inst: BenchInstance = task["instance"]
    timeout, note = task["timeout"], task["timeout_note"]
    row = {"onnx": inst.onnx, "vnnlib": inst.vnnlib, "csv_timeout_s": inst.csv_timeout, "timeout_s": timeout,
           "timeout_note": note, "versions": task["versions"], "git_sha": task["git_sha"], "host": platform.node(),
           "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    onnx_path, spec_path = Path(inst.folder) / inst.onnx, Path(inst.folder) / inst.vnnlib
    try:
        net = _network(str(onnx_path), onnx_path.stat().st_mtime_ns)
        row.update(network=net.name, network_sha256=net.content_hash(), vnnlib_sha256=_sha256(spec_path))
        r = verify_property(net, read_vnnlib(spec_path), timeout, task["seed"])
    except Exception as exc:   # a broken file or a solver failure is a row, and the batch goes on
        reraise_interrupt(exc)   # ... unless it is a Ctrl-C in another error's clothes
        message = str(exc) if isinstance(exc, AdvmilpError) else \
            f"{type(exc).__name__}: {exc} ({traceback.format_exc(limit=2).splitlines()[-1]})"
        return {**row, "result": ERROR, "message": message}
    row.update(result=r.result, time_s=round(r.time_s, 4), how=r.how, margin=r.margin, disjuncts=r.disjuncts,
               checked=r.checked)
    if r.result == VIOLATED:
        target = Path(task["out_dir"]) / CEX_DIR / f"{inst.slug}.txt"
        try:
            target.parent.mkdir(exist_ok=True)
            target.write_text(format_counterexample(r.x, r.y))
        except OSError as exc:
            raise cannot_write(target, exc) from exc
        row["counterexample"] = f"{CEX_DIR}/{target.name}"
    return row


# ---- executors ----------------------------------------------------------------------------------------
def _serial(tasks, on_row, on_lost):
    for t in tasks:
        on_row(run_instance(t))
        reraise_interrupt()     # a Ctrl-C that a solve swallowed whole still ends the batch here


def _process_pool(tasks, n_workers, on_row, on_lost):
    """A crashed worker's instance is not recorded (`on_lost`): the rerun redoes it."""
    with ProcessPoolExecutor(max_workers=n_workers, initializer=init_worker, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(run_instance, t): t for t in tasks}
        try:
            for fut in as_completed(futures):
                try:
                    row = fut.result()
                except BrokenProcessPool:
                    on_lost(futures[fut])
                    continue
                on_row(row)
        except BaseException:   # Ctrl-C or a storage error: the workers go now, not after their solves
            procs = list(getattr(pool, "_processes", {}).values())
            for p in procs:
                p.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                p.join(timeout=10)
            raise


def _dask(tasks, client, on_row, on_lost):
    from dask.distributed import as_completed as dask_completed

    futures = {client.submit(run_instance, t, pure=False): t for t in tasks}
    for fut in dask_completed(futures):
        try:
            row = fut.result()
        except StorageError:
            raise
        except Exception:   # the worker was lost: not recorded, the rerun redoes it
            on_lost(futures[fut])
            continue
        on_row(row)


# ---- the batch -----------------------------------------------------------------------------------------
@dataclass
class VerifySummary:
    out_dir: Path
    total: int
    skipped: int
    ran: int
    counts: dict
    lost: int
    other_timeout: int     # recorded rows (skipped) whose timeout differs from this run's
    wall_s: float


def default_name(csv_path: str | os.PathLike) -> str:
    """results/<name>: the benchmark's folder name (``vnncomp2021_mnistfc``), or the CSV's stem."""
    path = Path(csv_path).resolve()
    return path.parent.name or path.stem


def progress_line(i: int, n: int, row: dict) -> str:
    what = row.get("message") if row.get("result") == ERROR else \
        f"{row.get('time_s', float('nan')):.2f} s ({row.get('how')})"
    return f"[{i}/{n}] {Path(row['onnx']).stem} {Path(row['vnnlib']).stem}: {row['result']}, {what}"


def run_verify_batch(csv_path: str | os.PathLike, out_dir: str | os.PathLike, options: BatchOptions = BatchOptions(),
                     log: Callable[[str], None] = lambda m: None) -> VerifySummary:
    start = time.perf_counter()
    instances = read_instances(csv_path)
    out = Path(out_dir)
    with locked_folder(out):
        results = out / RESULTS_FILE
        _record_benchmark(out, csv_path)
        done = read_done(results, KEY)
        todo = instances if options.force else [i for i in instances if i.key not in done]
        other = _recorded_with_other_timeout(results, instances, todo, options.timeouts)
        log(f"{len(instances)} instances, {len(instances) - len(todo)} already recorded"
            f"{' (rerun: --force)' if options.force else ''}, {len(todo)} to run ({options.executor}, "
            f"{options.n_workers} worker(s))" + (f"; {other} recorded with another timeout (--force redoes them)"
                                                   if other else ""))
        from advmilp.experiments.runner import git_sha

        common = {"versions": versions(), "git_sha": git_sha(), "out_dir": str(out), "seed": options.seed}
        tasks = []
        for inst in todo:
            timeout, note = options.timeouts.apply(inst.csv_timeout)
            tasks.append({**common, "instance": inst, "timeout": timeout, "timeout_note": note})
        counts: dict[str, int] = {}
        lost: list = []

        def on_row(row: dict):
            key = (row["onnx"], row["vnnlib"])
            if key in done:
                replace_row(results, row, KEY)
            else:
                append_row(results, row, COLUMNS)
                done.add(key)
            counts[row["result"]] = counts.get(row["result"], 0) + 1
            log(progress_line(sum(counts.values()), len(tasks), row))

        def on_lost(task):
            lost.append(task)
            log(f"{task['instance'].slug}: the worker running it was lost; not recorded (a rerun redoes it)")

        with contextlib.ExitStack() as stack:
            if options.executor == "dask":
                from advmilp.experiments.runner import _dask_client

                _dask(tasks, stack.enter_context(_dask_client(options)), on_row, on_lost)
            elif options.executor == "process" and options.n_workers > 1:
                _process_pool(tasks, options.n_workers, on_row, on_lost)
            else:
                _serial(tasks, on_row, on_lost)
    return VerifySummary(out, len(instances), len(instances) - len(todo), sum(counts.values()), counts, len(lost),
                         other, time.perf_counter() - start)


def _record_benchmark(out: Path, csv_path) -> None:
    """``benchmark.json``: where the instances came from (the report looks for published results there)."""
    target = out / BENCHMARK_FILE
    try:
        target.write_text(json.dumps({"instances": str(Path(csv_path).resolve())}) + "\n")
    except OSError as exc:
        raise cannot_write(target, exc) from exc


def benchmark_folder(run_dir) -> Path | None:
    """The folder of the instances.csv a results folder was made from, if recorded and still there."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        folder = Path(json.loads((Path(run_dir) / BENCHMARK_FILE).read_text())["instances"]).parent
        return folder if folder.is_dir() else None
    return None


def _recorded_with_other_timeout(results: Path, instances, todo, policy: TimeoutPolicy) -> int:
    if not results.exists():
        return 0
    wanted = {i.key: policy.apply(i.csv_timeout)[0] for i in instances}
    running = {i.key for i in todo}
    n = 0
    for row in read_rows(results):
        key = (row["onnx"], row["vnnlib"])
        with contextlib.suppress(KeyError, ValueError):
            n += key in wanted and key not in running and not math.isclose(float(row["timeout_s"]), wanted[key])
    return n


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of a ``verify.csv`` (strings, as written)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in KEY + ("result", "time_s") if c not in (reader.fieldnames or [])]
            if missing:
                raise AdvmilpError(f"{path}: not an advmilp verify results file (missing columns {', '.join(missing)})")
            return list(reader)
    except OSError as exc:
        raise AdvmilpError(f"{path}: cannot read ({exc.strerror or exc})") from None


def summary_text(s: VerifySummary) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(s.counts.items())) or "nothing new"
    return (f"ran {s.ran} of {s.total} ({s.skipped} already recorded): {counts}"
            + (f"; {s.lost} lost to a crashed worker" if s.lost else "") + f"; {s.wall_s:.1f} s\n"
            f"results: {s.out_dir / RESULTS_FILE}")
