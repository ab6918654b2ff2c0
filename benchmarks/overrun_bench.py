"""Benchmark: how far past its time limit an instance runs (issue 15, "the time limit is not a limit").

``--time-limit T`` must bound the whole instance — heuristic, every bound pass, phase search, MILP,
verification — to T plus a small slack (target: at most 2 s).  This runs a batch of instances at
short limits, one after the other in one process, and records per instance

    over_row    the row's ``time_s`` − T   (what the method reports)
    over_wall   the wall clock of the whole instance − T, measured around it here (for ``fresh``
                bounds: their computation included, with the instance's deadline passed to it)

and prints one line per (network, method, bounds, limit) with the largest of each, then the largest
over the batch.  Instances: the five thesis networks and the notebook net (cached improved bounds),
the independent replication's DNN5 (ONNX) and the ERAN 6x100 net from ../shared/external when
present (basic bounds, and improved bounds computed fresh under the instance's deadline), test images
0..n−1, limits 2, 5, 10 s, methods tight (every image) and milp (the first image), cdh and fast at
the smallest limit.

    python benchmarks/overrun_bench.py                      # the batch recorded in RESULTS.md
    python benchmarks/overrun_bench.py --limits 2 --images 1 --networks dnn1,dnn5
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared" / "external"
EXTERNAL_NETS = (EXTERNAL / "fj_replication_tim25432" / "onnx" / "DNN5_20_20_10_10_10.onnx",
                 EXTERNAL / "eran_mlp_via_abcrown" / "mnist_6_100_nat.onnx")


def instances(networks, limits, n_images):
    """(network, method, bounds, image, limit) in the order they run."""
    out = []
    for name, shipped in networks:
        bound_modes = ("improved",) if shipped else ("basic", "fresh")
        for limit in limits:
            for bounds in bound_modes:
                for image in range(n_images):
                    out.append((name, "tight", bounds, image, limit))
                out.append((name, "milp", bounds, 0, limit))
            if limit == min(limits):
                out += [(name, "cdh", bound_modes[0], 0, limit), (name, "fast", bound_modes[0], 0, limit)]
    return out


def main(argv=None) -> int:
    from advmilp.bounds.compute import compute_bounds, get_bounds
    from advmilp.data.mnist import load_split
    from advmilp.methods.registry import load_inputs, run_method
    from advmilp.nn.interchange import load_any
    from advmilp.spec.problems import ProblemSpec, SolverSettings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", default="dnn1,dnn2,dnn3,dnn4,dnn5,notebook,external",
                    help="comma list; 'external' adds the ../shared/external networks present")
    ap.add_argument("--limits", default="2,5,10", help="time limits in seconds, comma list")
    ap.add_argument("--images", type=int, default=3, help="test images 0..N-1 per (network, limit) for tight")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")     # "capped improved bounds used" notes, once per network
    names = [n for n in args.networks.split(",") if n]
    networks = [(n, True) for n in names if n != "external"]
    if "external" in names:
        networks += [(str(p), False) for p in EXTERNAL_NETS if p.is_file()]
    limits = [float(t) for t in args.limits.split(",")]
    split = load_split("test", args.data_dir)
    nets = {name: load_any(name, None) for name, _ in networks}
    cached = {name: get_bounds(nets[name], "improved")[0] for name, shipped in networks if shipped}
    inputs = {m: load_inputs(m, args.data_dir) for m in ("tight", "milp", "cdh", "fast")}
    spec = ProblemSpec()
    todo = instances(networks, limits, args.images)
    print(f"{len(todo)} instances", flush=True)
    groups: dict[tuple, list[tuple[float, float, str]]] = {}
    for name, method, bounds, image, limit in todo:
        net = nets[name]
        x_bar, label = split.images[image], int(split.labels[image])
        t0 = time.perf_counter()
        deadline = t0 + limit
        if bounds == "improved":
            b = cached[name]
        elif bounds == "basic":
            b = compute_bounds(net, "basic")
        else:   # computed for this instance, under its deadline; the method gets the time left
            b = compute_bounds(net, "improved", deadline=deadline)
        left = max(deadline - time.perf_counter(), 1e-3)
        res = run_method(method, net, b, spec, SolverSettings(time_limit=left), x_bar, label, image, inputs[method])
        wall = time.perf_counter() - t0
        time_s = res.row["time_s"] + (limit - left)      # the bounds' share counts against the limit too
        key = (net.name, method, bounds, limit)
        groups.setdefault(key, []).append((time_s - limit, wall - limit, res.row["status"]))
        print(f"{net.name:<22} {method:<5} {bounds:<8} img {image} T={limit:g}: {res.row['status']:<10} "
              f"time_s {time_s:7.2f}  wall {wall:7.2f}", flush=True)
    print()
    print(f"{'network':<22} {'method':<6} {'bounds':<8} {'T s':>4} {'n':>3} {'max over_row':>12} "
          f"{'max over_wall':>13}  statuses")
    worst_row = worst_wall = -float("inf")
    for (net_name, method, bounds, limit), rows in groups.items():
        over_row = max(r[0] for r in rows)
        over_wall = max(r[1] for r in rows)
        worst_row, worst_wall = max(worst_row, over_row), max(worst_wall, over_wall)
        statuses = ", ".join(f"{s} {sum(r[2] == s for r in rows)}" for s in sorted({r[2] for r in rows}))
        print(f"{net_name:<22} {method:<6} {bounds:<8} {limit:>4g} {len(rows):>3} {over_row:>12.2f} "
              f"{over_wall:>13.2f}  {statuses}")
    print(f"\n{len(todo)} instances: largest overrun {worst_row:.2f} s by time_s, {worst_wall:.2f} s by wall clock")
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
