"""Benchmark: the tight pipeline with and without the ReLU-phase branch-and-bound (`phase_bb`).

For each image, the whole `tight` pipeline (heuristic, ball bounds, solve) is run once per
variant, one after the other, and one line per image gives status, optimum, time, nodes and
binaries of each; a summary line per variant gives mean and median time.

variants   milp        phase search off (HiGHS' MILP for every model: TightPolicy(phase_search=False))
           phase       the phase search for every model (the default, tight.DEFAULT_POLICY)

    python benchmarks/phase_compare.py --network dnn4 --images 25
    python benchmarks/phase_compare.py --network dnn5 --indices 0,2,3,5,4

Records of the runs behind the pipeline's choice are in results/phase-search/ (they compared
size thresholds, phase<=30 and phase<=44; none was kept: the phase search runs for every size).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np


def main(argv=None) -> int:
    from advmilp.bounds.compute import get_bounds
    from advmilp.data.mnist import load_split
    from advmilp.methods.registry import load_pool
    from advmilp.methods.tight import DEFAULT_POLICY, run_tight
    from advmilp.nn.interchange import load_any
    from advmilp.spec.problems import ProblemSpec, SolverSettings
    from advmilp.spec.rows import is_solved

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="dnn1")
    ap.add_argument("--images", type=int, default=10, help="first N test images the network classifies correctly")
    ap.add_argument("--indices", default="", help="comma list of test-image indices (instead of --images)")
    ap.add_argument("--variants", default="milp,phase")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    known = {"milp": replace(DEFAULT_POLICY, phase_search=False), "phase": replace(DEFAULT_POLICY, phase_search=True)}
    policies = {}
    for v in args.variants.split(","):
        if v not in known:
            ap.error(f"unknown variant {v!r} (milp or phase)")
        policies[v] = known[v]
    split = load_split("test", args.data_dir)
    pool = load_pool(args.data_dir)
    net = load_any(args.network, None)
    base = get_bounds(net, "weak")[0]
    spec = ProblemSpec()
    settings = SolverSettings(time_limit=args.time_limit, threads=1, gap_rel=1e-4)
    if args.indices:
        idx = [int(i) for i in args.indices.split(",")]
    else:
        idx = [int(i) for i in np.flatnonzero(net.predict(split.images) == split.labels)[:args.images]]
    times: dict[str, list[float]] = {v: [] for v in policies}
    solved = {v: 0 for v in policies}
    for i in idx:
        x_bar, label = split.images[i].astype(np.float64), int(split.labels[i])
        out = []
        for v, policy in policies.items():
            r = run_tight(net, base, spec, settings, x_bar, label, i, pool, policy=policy).row
            times[v].append(r["time_s"])
            solved[v] += is_solved(r)
            out.append(f"{v}: {r['status'][:4]} {r['objective']:.5f} {r['time_s']:.2f}s "
                       f"n={r['nodes']} b={r['binaries']}")
        print(i, " | ".join(out), flush=True)
    for v, t in times.items():
        a = np.array(t)
        print(f"{v} mean {a.mean():.3f} median {np.median(a):.3f} opt {solved[v]}/{len(a)}", flush=True)
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
