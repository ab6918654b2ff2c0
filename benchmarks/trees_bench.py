"""Benchmark: exact minimal adversarial examples for tree ensembles vs the networks DNN1–DNN5 (issue 19 part 2).

For every shipped tree ensemble named (models/trees/NAME.json), the first N test images it classifies
correctly, target (label + 5) mod 10 as in the networks' runs: method trees-milp (the exact MILP of
Kantchelian et al. 2016 on HiGHS, one thread), minimal L1 (and, with ``--norms l1,linf``, minimal L∞).
Rows go to a CSV (the common result columns, resumable: a rerun skips instances recorded with the same
time limit; ``--quick`` writes to the temporary folder, not results/).  The printed table gives per model
and norm: images, proven optima whose witness verified, the optimum's median and mean, the mean number
of pixels changed, the median and largest time.  Beside it, the networks'
minimal L1 from a committed run of ``tight`` (default results/bench-100x300s-tight, their own first 100
correctly classified images; not re-measured here).

    python benchmarks/trees_bench.py --quick          # tree-d6 and forest-d6-n10, 3 images, 10 s
    nice -n 5 python benchmarks/trees_bench.py --models tree-d6,forest-d6-n10 --images 100 --time-limit 60
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tree-d6,forest-d6-n10", help="comma list of models/trees/NAME.json (or paths)")
    p.add_argument("--images", type=int, default=10, help="first N correctly classified test images per model")
    p.add_argument("--time-limit", type=float, default=60.0)
    p.add_argument("--norms", default="l1", help="l1, linf or l1,linf")
    p.add_argument("--problem", choices=["targeted", "untargeted"], default="targeted")
    p.add_argument("--out", default=None, help="rows CSV (default results/bench-trees/instances.csv)")
    p.add_argument("--dnn-results", default=str(REPO / "results" / "bench-100x300s-tight" / "instances.csv"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--quick", action="store_true", help="tree-d6 and forest-d6-n10, 3 images, 10 s")
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.images, args.time_limit = "tree-d6,forest-d6-n10", 3, 10.0
    if args.out is None:
        args.out = (Path(tempfile.gettempdir()) / "advmilp-trees-bench-quick.csv" if args.quick
                    else REPO / "results" / "bench-trees" / "instances.csv")
    args.norms = [n.strip() for n in args.norms.split(",")]
    if any(n not in ("l1", "linf") for n in args.norms) or args.images < 1 or not args.time_limit > 0:
        p.error("--norms takes l1 and/or linf; --images ≥ 1; --time-limit > 0")
    return args


def model_path(name: str) -> Path:
    path = Path(name)
    return path if path.suffix == ".json" else REPO / "models" / "trees" / f"{name}.json"


def _f(row, key):
    try:
        return float(row[key])
    except (TypeError, ValueError):
        return float("nan")


def summary(rows: list[dict], key: str) -> tuple:
    from advmilp.spec.rows import is_solved

    solved = [r for r in rows if is_solved(r)]
    vals = [_f(r, key) for r in solved]
    times = [_f(r, "time_s") for r in rows]
    return (len(rows), len(solved), statistics.median(vals) if vals else float("nan"),
            statistics.fmean(vals) if vals else float("nan"), statistics.median(times) if times else float("nan"),
            max(times) if times else float("nan"))


def main(argv=None) -> int:
    args = parse(argv if argv is not None else sys.argv[1:])
    import numpy as np

    from advmilp.data.mnist import load_split
    from advmilp.errors import AdvmilpError
    from advmilp.methods.trees import describe, run_trees
    from advmilp.nn.trees import TreeEnsemble
    from advmilp.spec.problems import ProblemSpec, SolverSettings
    from advmilp.spec.rows import COLUMNS

    try:
        models = [TreeEnsemble.load(model_path(m.strip())) for m in args.models.split(",")]
    except AdvmilpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    test = load_split("test", args.data_dir)
    spec, settings = ProblemSpec(args.problem), SolverSettings(time_limit=args.time_limit, threads=1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for r in csv.DictReader(out.open()):
            done[(r["network_hash"], r["problem"], r["image_index"], r["time_limit"])] = r
    new = not out.exists()
    with out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS) + ["pixels_changed"])
        if new:
            writer.writeheader()
        table = []
        for ens in models:
            pred = ens.predict(test.images)
            images = [int(i) for i in np.flatnonzero(pred == test.labels)[:args.images]]
            for norm in args.norms:
                rows = []
                for i in images:
                    key = (ens.short_hash(), describe(spec, norm), str(i), str(settings.time_limit))
                    if key not in done:
                        res = run_trees(ens, spec, settings, test.images[i], int(test.labels[i]), i, norm)
                        row = dict(res.row)
                        row["pixels_changed"] = int((res.witness != test.images[i]).sum()) if res.witness is not None else ""
                        writer.writerow(row)
                        fh.flush()
                        done[key] = {k: ("" if v is None else str(v)) for k, v in row.items()}
                        print(f"{ens.name} {norm} image {i}: {row['status']} {row['objective']:.6g} "
                              f"verified {row['verified']} {row['time_s']:.2f} s", file=sys.stderr, flush=True)
                    rows.append(done[key])
                n, solved, med, mean, tmed, tmax = summary(rows, norm)
                pixels = [_f(r, "pixels_changed") for r in rows if r.get("pixels_changed") not in ("", None)]
                acc = ens.metadata.get("test_accuracy", float("nan"))
                table.append(f"| {ens.name} | {ens.n_leaves} | {acc:.4f} | {norm} | {n} | {solved} | {med:.4g} | "
                             f"{mean:.4g} | {statistics.fmean(pixels) if pixels else float('nan'):.1f} | "
                             f"{tmed:.2f} s | {tmax:.2f} s |")
    print(f"{args.problem}, target (label+5) mod 10 where targeted, first {args.images} correctly classified test "
          f"images per model, {args.time_limit:g} s, 1 thread")
    print("| model | leaves | test acc | norm | n | optimal & verified | median | mean | pixels changed (mean) "
          "| median time | max time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(table))
    dnn = Path(args.dnn_results)
    if dnn.exists() and args.problem == "targeted":
        by: dict[str, list] = {}
        for r in csv.DictReader(dnn.open()):
            by.setdefault(r["network"], []).append(r)
        print(f"\nnetworks (minimal L1, from {dnn.relative_to(REPO) if dnn.is_relative_to(REPO) else dnn}):")
        print("| network | n | optimal & verified | median L1 | mean L1 | median time | max time |")
        print("|---|---|---|---|---|---|---|")
        for name, rows in sorted(by.items()):
            n, solved, med, mean, tmed, tmax = summary(rows, "l1")
            print(f"| {name} | {n} | {solved} | {med:.4g} | {mean:.4g} | {tmed:.2f} s | {tmax:.2f} s |")
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
