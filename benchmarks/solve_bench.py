"""Benchmark: the thesis-faithful MILP against advmilp's default exact pipeline (`tight`).

Runs one instance set — DNN1..DNN5, the first N test images every network classifies
correctly, targeted spec (ratio 1.2, min L1), one thread per solve — through the batch
runner (so it is resumable: rerun the same command to continue), then prints per network
and method: %optimal (proven and verified), % proven infeasible (no point exists), mean / median time, mean nodes, and whether
every optimum of `tight` agrees with the thesis model's optimum (1e-4 relative).

    python benchmarks/solve_bench.py --quick          # 10 images, 60 s per instance
    python benchmarks/solve_bench.py                  # 100 images, 300 s (hours)
    python benchmarks/solve_bench.py --methods tight --networks dnn5 --images 20
    python benchmarks/solve_bench.py --problem untargeted --networks notebook,dnn1 --methods tight,milp-improved
    python benchmarks/solve_bench.py --problem max-target --target 7 --l1-budget 6 --networks notebook

(a) milp/basic and milp/improved = the thesis' basic and improved models; (b) tight = the new
default pipeline; (c) gurobi = the thesis model on Gurobi through PuLP, when gurobipy imports.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

THESIS_CPLEX = {  # thesis Table 2, improved model: %solved, mean time (s)
    "dnn1": (94, 1.23), "dnn2": (80, 13.78), "dnn3": (40, 92.65), "dnn4": (44, 65.83), "dnn5": (5, 250.94),
}


def main(argv=None) -> int:
    from advmilp.bounds.compute import default_results_dir
    from advmilp.experiments.config import parse_config
    from advmilp.experiments.runner import run_batch
    from advmilp.reporting.tables import load_rows, solved_mask

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 images per network at 60 s")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--networks", default="dnn1,dnn2,dnn3,dnn4,dnn5")
    ap.add_argument("--problem", default="targeted", choices=("targeted", "untargeted", "max-target"),
                    help="targeted (ratio 1.2, min L1); untargeted (notebook §1.6, min L1); max-target "
                         "(notebook §1.7: maximise output --target with L1 <= --l1-budget)")
    ap.add_argument("--norm", default="l1", choices=("l1", "linf", "l0"),
                    help="targeted/untargeted: the distance minimised")
    ap.add_argument("--target", type=int, default=7, help="max-target: the output maximised (notebook: 7)")
    ap.add_argument("--l1-budget", type=float, default=6.0, help="max-target: the L1 budget (notebook: 6)")
    ap.add_argument("--methods", default="milp-basic,milp-improved,tight",
                    help="comma list of milp-basic, milp-improved, milp-weak, tight, fast, gurobi")
    ap.add_argument("--workers", default="auto")
    ap.add_argument("--results-dir", default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--report-only", action="store_true",
                    help="print the tables from the runs already recorded; solve nothing")
    ap.add_argument("--agree-with", default="",
                    help="comma list of further result folders (e.g. results/core10) whose proven "
                         "optima tight is checked against")
    args = ap.parse_args(argv)
    images = args.images or (10 if args.quick else 100)
    limit = args.time_limit or (60.0 if args.quick else 300.0)
    nets = args.networks.split(",")
    methods = args.methods.split(",")
    if "gurobi" in methods:
        try:
            import gurobipy  # noqa: F401
        except ImportError:
            print("gurobipy not importable: skipping the Gurobi column", file=sys.stderr)
            methods.remove("gurobi")
    tag = f"bench-{images}x{limit:g}s" if args.problem == "targeted" else f"bench-{args.problem}-{images}x{limit:g}s"
    if args.norm != "l1":
        tag += f"-{args.norm}"
    problem = {"kind": args.problem, "ratio": 1.2}
    if args.norm != "l1":
        problem["norm"] = args.norm
    if args.problem == "max-target":
        problem.update(target=args.target, l1_budget=args.l1_budget)
    runs = []
    for m in methods:
        if m.startswith("milp-"):
            method, bounds, solver = "milp", m.split("-", 1)[1], "highs"
        elif m == "gurobi":
            method, bounds, solver = "milp", "improved", "gurobi"
        else:
            # tight needs no expensive preprocessing: the thesis' cheap weak bounds (1 s per solve,
            # cached) as the base that its L1-ball bounds are intersected with
            method, bounds, solver = m, "weak" if m == "tight" else "basic", "highs"
        name = f"{tag}-{m}"
        cfg = parse_config({
            "name": name, "networks": nets, "bounds": [bounds], "methods": [method],
            "problem": problem,
            "images": {"count": images, "first": 0, "correctly_classified": True},
            "solver": {"name": solver, "time_limit": limit, "threads": 1, "gap_rel": 1e-4},
            "workers": args.workers if args.workers == "auto" else int(args.workers), "executor": "process",
        }, src=f"<benchmark {name}>")
        if args.report_only:
            out = Path(args.results_dir or default_results_dir()) / name
            if (out / "instances.csv").exists():
                runs.append((m, out))
            continue
        t0 = time.perf_counter()
        s = run_batch(cfg, data_dir=args.data_dir, results_dir=args.results_dir,
                      log=lambda msg: print(msg, file=sys.stderr))
        print(f"{name}: {s.ran} run, {s.skipped} already recorded, {time.perf_counter() - t0:.0f} s wall",
              file=sys.stderr)
        runs.append((m, s.out_dir))
    extra = [Path(d) for d in args.agree_with.split(",") if d]
    runs += [(str(d), d) for d in extra]
    # this benchmark's runs labelled by method, further folders (--agree-with) by their path: a folder of
    # another session may bear this run's own name (results/bench-100x300s-tight beside
    # results/<session>/bench-100x300s-tight)
    df = pd.concat([load_rows([d]).assign(label_m=m) for m, d in runs], ignore_index=True)
    df = df[df["network"].isin(nets) & (df["status"] != "invalid")].copy()   # invalid: target = label
    print(f"\n# solve_bench: {args.problem}, {images} images per network, {limit:g} s per instance, 1 thread per solve, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}\n")
    print("| network | method | n | %optimal | % proven infeasible | mean time (s) | median time (s) | max time (s) | mean nodes | "
          "mean heuristic + bounds (s) | heuristic L1 / optimum | thesis CPLEX %solved / mean time | "
          "target: 1/10 of CPLEX |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for net in nets:
        for m, _ in runs[:len(runs) - len(extra)]:
            g = df[(df["network"] == net) & (df["label_m"] == m)]
            if not len(g):
                continue
            ok = solved_mask(g)
            th = THESIS_CPLEX.get(net) if args.problem == "targeted" else None
            prep = g["prep_time_s"].mean() if "prep_time_s" in g else np.nan
            ratio = (g["heuristic_l1"] / g["objective"])[ok].mean() if "heuristic_l1" in g else np.nan
            target = f"{th[1] / 10:.2f} s ({g['time_s'].mean() / (th[1] / 10):.2f}×)" if th else ""
            infeasible = (g["status"] == "infeasible").mean()     # a proof that no point exists (max-target: none
            #                                                       misclassified within the budget), not a failure
            print(f"| {net} | {m} | {len(g)} | {100 * ok.mean():.0f} | {100 * infeasible:.0f} | {g['time_s'].mean():.2f} | "
                  f"{g['time_s'].median():.2f} | {g['time_s'].max():.1f} | {g['nodes'].mean():,.0f} | "
                  f"{prep:.2f} | {ratio:.3f} | {f'{th[0]} % / {th[1]} s' if th else ''} | {target} |")
    # optimum agreement: tight vs every thesis-faithful run, instance by instance
    if "tight" in [m for m, _ in runs]:
        t = df[(df["label_m"] == "tight") & solved_mask(df)]
        for m, _ in runs:
            if m == "tight":
                continue
            o = df[(df["label_m"] == m) & solved_mask(df)]
            both = t.merge(o, on=["network", "image_index"], suffixes=("_t", "_o"))
            if not len(both):
                continue
            rel = np.abs(both["objective_t"] - both["objective_o"]) / np.maximum(both["objective_o"].abs(), 1e-9)
            bad = both[rel > 1e-4]
            print(f"\noptima agree (1e-4 relative), tight vs {m}: {len(both) - len(bad)} of {len(both)} instances"
                  + ("" if bad.empty else f"; DISAGREE on {bad[['network', 'image_index']].values.tolist()}"))
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
