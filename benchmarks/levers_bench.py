"""Benchmark: what each lever of the `tight` pipeline contributes, on the same prepared instances.

Every instance is prepared once — the primal heuristic's verified point (incumbent U) and the
bounds over the L1 ball S_U — and then the MILP is solved under each variant, so the variants
differ only in the lever they switch:

    tight          the default (tight.solve_from_incumbent with tight.DEFAULT_POLICY): ball bounds,
                   Σ|δ| ≤ U, the phase search with HiGHS' MILP as fallback; for the MILP: warm
                   start, RINS/RENS off; small models (policy.small_milp_binaries): no cuts, no
                   presolve; the others: 20 rounds of ideal ReLU cuts, presolve, no HiGHS cut
                   separation at the nodes, and bounds
                   tightened on the MILP's LP relaxation (relaxation_bounds) before the solve from
                   policy.upfront_binaries binaries up, below that only in a restart if not
                   solved within policy.escalate_after_s
    relaxation-upfront     the relaxation-tightened bounds before the first solve, whatever the size
    relaxation-restart     the relaxation-tightened bounds only in the restart, whatever the size
    node-cuts-on   tight with HiGHS' own cut separation at the nodes back on
    no-strong-branching    tight with mip_pscost_minreliable 0 (pseudo-costs without strong branching)
    no-relaxation-bounds   never the relaxation-tightened bounds
    all-cuts       cuts and presolve whatever the size, ball bounds only (the default before the
                   small-model rule and the relaxation bounds)
and, each changing one lever of all-cuts:
    no-cuts        without the ideal ReLU cuts
    cuts-50        50 rounds of cuts instead of 20
    presolve-off   without HiGHS' presolve
    rins-rens-on   HiGHS' default sub-MIP heuristics
    no-warm-start  without the heuristic's point as HiGHS' starting solution
    box-bounds     the base bounds over the whole box instead of the ball bounds (cap kept)

Printed per network and variant: %optimal (proven, verified), mean / median time after the
heuristic (ball bounds, any bound tightening, model building, cuts and the solves; the heuristic,
the same for all, excluded), the sum of these times
(time-outs counted at the limit), mean nodes and mean binaries; and whether every optimum
agrees with the `tight` variant's (1e-4 relative).  Rows go to a CSV as they finish; rerunning
the same command skips recorded rows.

    python benchmarks/levers_bench.py --networks dnn1,dnn2 --images 10
    python benchmarks/levers_bench.py --networks dnn5 --indices 5,40,67 --variants tight,no-cuts
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

PIPELINE = {  # variants of the pipeline itself: their changes to tight.DEFAULT_POLICY
    "tight": {},
    "relaxation-upfront": {"upfront_binaries": 0},
    "relaxation-restart": {"upfront_binaries": math.inf},
    "no-relaxation-bounds": {"upfront_binaries": math.inf, "escalate_after_s": math.inf},
    "node-cuts-on": {"cut_milp_options": {"mip_allow_cut_separation_at_nodes": True}},
    "no-ladder": {"ladder": ()},
    "no-certify": {"certify_units": math.inf, "ladder": ()},
    "no-strong-branching": {"highs_options": {"mip_heuristic_run_rins": False, "mip_heuristic_run_rens": False,
                                              "mip_pscost_minreliable": 0}},
}
VARIANTS = {  # name: (use ball bounds, warm start, cut rounds, HiGHS options); None = the pipeline's
    "tight": (True, True, None, None),
    "relaxation-upfront": (True, True, None, None),
    "relaxation-restart": (True, True, None, None),
    "node-cuts-on": (True, True, None, None),
    "no-strong-branching": (True, True, None, None),
    "no-relaxation-bounds": (True, True, None, None),
    "no-ladder": (True, True, None, None),
    "no-certify": (True, True, None, None),
    "all-cuts": (True, True, 20, "rins-rens-off"),
    "no-cuts": (True, True, 0, "rins-rens-off"),
    "cuts-50": (True, True, 50, "rins-rens-off"),
    "presolve-off": (True, True, 20, "presolve-off"),
    "rins-rens-on": (True, True, 20, "highs-default"),
    "no-warm-start": (True, False, 20, "rins-rens-off"),
    "box-bounds": (False, True, 20, "rins-rens-off"),
}
FIELDS = ["network", "image_index", "variant", "status", "objective", "bound", "verified", "after_heuristic_s",
          "nodes", "binaries", "cuts", "heuristic_l1", "heuristic_s", "ball_bounds_s"]


def prepare(net, base, spec, x_bar, label, pool, time_limit):
    """The heuristic's verified point and the L1-ball bounds, as run_tight computes them."""
    from advmilp.methods.tight import ball_bounds_for, incumbent_cap, tight_heuristic

    h = tight_heuristic(net, x_bar, label, spec, time_limit, pool)
    if not h.found:
        return h, None, None
    cap = incumbent_cap(h.l1)
    return h, cap, ball_bounds_for(net, x_bar, cap, base, None)


def run_variant(name, net, base, spec, settings, x_bar, label, index, h, cap, bb) -> dict:
    from advmilp.methods.milp import run_instance
    from advmilp.methods.tight import DEFAULT_POLICY, solve_from_incumbent

    use_ball, warm, rounds, options = VARIANTS[name]
    if name in PIPELINE:   # the pipeline itself from the prepared heuristic point (recomputes the ball bounds)
        r = solve_from_incumbent(net, base, spec, settings, x_bar, label, index, h, time.perf_counter(),
                                 replace(DEFAULT_POLICY, **PIPELINE[name])).row
        after = r["time_s"]
    else:
        rins_rens_off = DEFAULT_POLICY.highs_options
        options = {"rins-rens-off": rins_rens_off, "presolve-off": {**rins_rens_off, "presolve": "off"},
                   "highs-default": {}}[options]
        r = run_instance(net, bb if use_ball else base, spec.with_(output_relu=False), settings, x_bar, label,
                         index, warm_start_x=h.x if warm else None, l1_cap=cap, split_distance=True,
                         solver_options=options, cut_rounds=rounds).row
        after = r["time_s"] + r["build_time_s"] + (bb.time_s if use_ball else 0.0)
    return {"network": net.name, "image_index": index, "variant": name, "status": r["status"],
            "objective": r["objective"], "bound": r["bound"], "verified": r["verified"],
            "after_heuristic_s": after, "nodes": r["nodes"], "binaries": r["binaries"],
            "cuts": r["cuts"], "heuristic_l1": h.l1, "heuristic_s": h.time_s, "ball_bounds_s": bb.time_s}


def report(rows: list[dict], variants: list[str], limit: float) -> None:
    import pandas as pd

    from advmilp.spec.rows import is_solved

    df = pd.DataFrame(rows)
    for c in ("objective", "after_heuristic_s", "nodes", "binaries", "heuristic_l1", "heuristic_s", "ball_bounds_s"):
        df[c] = pd.to_numeric(df[c])
    df["ok"] = [is_solved(r) for r in df[["status", "verified"]].to_dict("records")]
    print(f"\n# levers_bench: each variant from the same heuristic point, {limit:g} s per solve, "
          f"1 thread, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}\n")
    print("| network | variant | n | %optimal | mean time after the heuristic (s) | median (s) | sum (s) | mean nodes | "
          "mean binaries | optima agree with tight |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for net in dict.fromkeys(df["network"]):
        g0 = df[df["network"] == net]
        ref = g0[(g0["variant"] == "tight") & g0["ok"]].set_index("image_index")["objective"]
        for v in variants:
            g = g0[g0["variant"] == v]
            if not len(g):
                continue
            t = np.where(g["ok"], g["after_heuristic_s"], np.maximum(g["after_heuristic_s"], limit))
            mine = g[g["ok"]].set_index("image_index")["objective"]
            both = mine.index.intersection(ref.index)
            rel = np.abs(mine[both] - ref[both]) / np.maximum(ref[both].abs(), 1e-9)
            agree = f"{int((rel <= 1e-4).sum())} of {len(both)}"
            print(f"| {net} | {v} | {len(g)} | {100 * g['ok'].mean():.0f} | {g['after_heuristic_s'].mean():.2f} | "
                  f"{g['after_heuristic_s'].median():.2f} | {t.sum():.1f} | {g['nodes'].mean():,.0f} | "
                  f"{g['binaries'].mean():.1f} | {agree} |")
        prep = g0.drop_duplicates("image_index")
        ok_ref = g0[(g0["variant"] == "tight") & g0["ok"]]
        ratio = (ok_ref["heuristic_l1"] / ok_ref["objective"])
        print(f"| {net} | (preparation) | {len(prep)} | | heuristic {prep['heuristic_s'].mean():.2f} s + ball "
              f"bounds {prep['ball_bounds_s'].mean():.2f} s | | | | | heuristic L1 / optimum: mean "
              f"{ratio.mean():.3f}, max {ratio.max():.3f} |")


def main(argv=None) -> int:
    from advmilp.bounds.compute import get_bounds
    from advmilp.data.mnist import load_split
    from advmilp.methods.registry import load_pool
    from advmilp.nn.interchange import load_any
    from advmilp.spec.problems import ProblemSpec, SolverSettings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", default="dnn1,dnn2,dnn3,dnn4,dnn5")
    ap.add_argument("--images", type=int, default=10, help="first N test images the network classifies correctly")
    ap.add_argument("--indices", default="", help="comma list of test-image indices (instead of --images)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--time-limit", type=float, default=300.0)
    ap.add_argument("--base-bounds", default="weak", help="bounds over the box the ball bounds are intersected with")
    ap.add_argument("--out", default="results/levers/levers.csv")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = list(csv.DictReader(out.open())) if out.exists() else []
    done = {(r["network"], int(r["image_index"]), r["variant"]) for r in rows}
    if not args.report_only:
        split = load_split("test", args.data_dir)
        pool = load_pool(args.data_dir)
        spec = ProblemSpec()
        settings = SolverSettings(time_limit=args.time_limit, threads=1, gap_rel=1e-4)
        new = not out.exists()
        with out.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=FIELDS)
            if new:
                w.writeheader()
            for name in args.networks.split(","):
                net = load_any(name, None)
                base = get_bounds(net, args.base_bounds)[0]
                if args.indices:
                    idx = [int(i) for i in args.indices.split(",")]
                else:
                    pred = net.predict(split.images)
                    idx = [int(i) for i in np.flatnonzero(pred == split.labels)[:args.images]]
                for i in idx:
                    todo = [v for v in variants if (name, i, v) not in done]
                    if not todo:
                        continue
                    x_bar, label = split.images[i].astype(np.float64), int(split.labels[i])
                    h, cap, bb = prepare(net, base, spec, x_bar, label, pool, args.time_limit)
                    if bb is None:
                        print(f"{name} image {i}: the heuristic found no point; skipped", file=sys.stderr)
                        continue
                    for v in todo:
                        r = run_variant(v, net, base, spec, replace(settings), x_bar, label, i, h, cap, bb)
                        w.writerow(r)
                        fh.flush()
                        rows.append({k: str(val) for k, val in r.items()})
                        print(f"{name} image {i} {v}: {r['status']} {r['objective']:.5f} "
                              f"{r['after_heuristic_s']:.2f} s {r['nodes']} nodes", file=sys.stderr)
    if rows:
        report(rows, variants, args.time_limit)
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
