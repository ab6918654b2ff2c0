"""Benchmark: the CPLEX replication's own model, without the ε on the target output (issue 16).

The replication's ``Main.java`` (which wrote ``solveData_parsed.csv``) builds ``MILPAdversarial``,
whose target constraint is ``x_t ≥ 1.2·x_j`` on the *ReLU'd* outputs with its lower bound
``x_t ≥ 0.01`` commented out.  Then an input that drives every output to ≤ 0 (all ReLU'd outputs
0, ``0 ≥ 1.2·0``) counts as an "adversarial example" although the network does not predict the
target.  advmilp always asks ``x_t ≥ ε`` (ε = 0.01; README "The model and why results are
sound"), so its optima can only be larger.

This script solves exactly that model — advmilp's thesis-faithful MILP (`encode.milp.build_model`,
ReLU split on the outputs, margin 0) with the ``target_min`` row removed — with HiGHS on the
replication's DNN1..DNN3 and images, and prints the mean L1 (to set beside the replication's mean
L1) and how many optima are degenerate (every output ≤ 0, the target not predicted).

    python benchmarks/fj_no_epsilon.py --networks DNN1 --time-limit 60
    python benchmarks/fj_no_epsilon.py --networks DNN1,DNN2 --limit 20
    python benchmarks/fj_no_epsilon.py --networks DNN3 --images 11,21,22

Rows go to ``results/fj-no-epsilon/rows.csv`` (rerunning resumes).  The bounds are advmilp's
``weak`` bounds (1 s per bound solve; cached), as in ``configs/fj_replication.yaml``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = Path(os.environ.get("ADVMILP_EXTERNAL", REPO.parent / "shared" / "external"))
REPLICATION = EXTERNAL / "fj_replication_tim25432"
FIELDS = ["dnn", "mnist_idx", "label", "target", "status", "l1", "bound", "time_s", "target_out", "max_other_out",
          "predicted", "degenerate"]
FILES = {"DNN1": "DNN1_8_8_8", "DNN2": "DNN2_8_8_8_8_8", "DNN3": "DNN3_20_10_8_8", "DNN4": "DNN4_20_10_8_8_8",
         "DNN5": "DNN5_20_20_10_10_10"}


def main(argv=None) -> int:
    from advmilp.bounds.compute import get_bounds
    from advmilp.data.mnist import load_split
    from advmilp.encode.milp import build_model
    from advmilp.experiments.config import read_index_file
    from advmilp.nn.interchange import load_any
    from advmilp.solvers.pulp import solve
    from advmilp.spec.problems import ProblemSpec

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", default="DNN1", help="comma list of DNN1..DNN5")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images per network")
    ap.add_argument("--images", default=None, help="only these MNIST test indices (comma list)")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--out", default=str(REPO / "results" / "fj-no-epsilon"))
    args = ap.parse_args(argv)
    index = REPLICATION / "testdata_index.csv"
    if not index.is_file():
        print(f"error: {index} not found (the offline copy of ../shared/external, or $ADVMILP_EXTERNAL)",
              file=sys.stderr)
        return 2
    names = [n.strip().upper() for n in args.networks.split(",") if n.strip()]
    bad = [n for n in names if n not in FILES]
    if bad or not names:
        print(f"error: --networks takes DNN1..DNN5, not {args.networks!r}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "rows.csv"
    done = {}
    if path.is_file():
        with path.open() as f:
            done = {(r["dnn"], int(r["mnist_idx"])): r for r in csv.DictReader(f)}
    _, rows = read_index_file(index)
    test = load_split("test")
    # the replication's model: ReLU'd outputs, x_t ≥ 1.2 x_j, no margin, and no x_t ≥ ε (removed below)
    spec = ProblemSpec("targeted", ratio=1.2, output_relu=True, margin=0.0)
    new = not path.is_file()
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, FIELDS)
        if new:
            w.writeheader()
        for dnn in names:
            net = load_any(REPLICATION / "onnx" / f"{FILES[dnn]}.onnx")
            bounds, _ = get_bounds(net, "weak", 1.0)
            mine = [r for r in rows if r["dnn"] == dnn][:args.limit]
            if args.images:
                wanted = {int(i) for i in args.images.split(",")}
                mine = [r for r in mine if int(r["mnist_test_idx"]) in wanted]
            for r in mine:
                i, label = int(r["mnist_test_idx"]), int(r["label"])
                if (dnn, i) in done:
                    continue
                x_bar = test.images[i]
                form = build_model(net, bounds, spec, x_bar, label, name=f"{dnn}_{i}", split_distance=True)
                del form.prob.constraints["target_min"]
                res = solve(form.prob, "highs", args.time_limit, 1e-4, 1)
                row = {"dnn": dnn, "mnist_idx": i, "label": label, "target": form.target, "status": res.status,
                       "l1": res.objective, "bound": res.bound, "time_s": round(res.time_s, 3)}
                if res.has_solution:
                    x = np.clip(form.input_point(res.values), 0, 1)
                    y = np.maximum(net.forward(x), 0)
                    others = np.delete(y, form.target)
                    row.update(l1=float(np.abs(x - x_bar).sum()), target_out=float(y[form.target]),
                               max_other_out=float(others.max()), predicted=int(np.argmax(net.forward(x))),
                               degenerate=bool(y.max() <= 1e-6))
                w.writerow(row)
                fh.flush()
                done[(dnn, i)] = {k: str(v) for k, v in row.items()}
    for dnn in names:
        got = [r for (d, _), r in done.items() if d == dnn]
        opt = [r for r in got if r["status"] == "optimal"]
        l1 = [float(r["l1"]) for r in opt if r["l1"] not in ("", "nan")]
        degenerate = sum(str(r.get("degenerate")) == "True" for r in opt)
        mean = sum(l1) / len(l1) if l1 else math.nan
        print(f"{dnn}: {len(got)} images, {len(opt)} optimal without ε; mean L1 {mean:.4f}; "
              f"{degenerate} degenerate (every output ≤ 0, the target not predicted)")
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
