"""Benchmark: the scale frontier — minimal-L1 targeted (and untargeted) examples on networks others
trained, 500 to 1,600 ReLUs (issue "Networks others trained", part 2).

Networks (from ../shared/external, or $ADVMILP_EXTERNAL; skipped if absent): ERAN 6x100 (500 ReLUs),
MIPVerify's RSL18a 784-500-10, VNN-COMP mnist-net_256x2 (512), 256x4 (1,024), ERAN 6x200 (1,000),
9x200, 256x6 (1,536).  Per network its first N correctly classified test images, target
(label + 5) mod 10, ratio 1.2; the VNN-COMP nets also untargeted (their outputs are near-one-hot
scores, so ratio 1.2 on the logits is another geometry).  Each (network, problem, method) is one
resumable batch under results/<tag>-<net>-<problem>-<method>/ (rerun to continue).

    python benchmarks/scale_bench.py --quick      # ERAN 6x100 and 256x2, 3 images, 60 s, tight
    python benchmarks/scale_bench.py              # every network, 25 images, 300 s, tight
    python benchmarks/scale_bench.py --methods tight,milp --networks eran6x100 --images 5
    python benchmarks/scale_bench.py --quick --methods tight,omlt
    python benchmarks/scale_bench.py --networks dnn1,dnn2,dnn3 --images 5 --time-limit 60 --methods omlt,tight,milp

Methods: ``tight`` (the default exact pipeline), ``milp`` (the thesis-style MILP with interval
bounds, a same-machine peer) and ``omlt`` (the peer OMLT + Pyomo + HiGHS: OMLT's big-M model built
from the ONNX file, `benchmarks/omlt_peer.py`; needs ``pip install -e '.[peers]'``; run in this
process, one instance after another, its rows beside advmilp's in results/<tag>-<net>-<problem>-omlt/).
The thesis networks ``dnn1`` … ``dnn5`` (shipped) can be named in --networks too (never by default);
``omlt`` reads them from an ONNX export written into their run folder.  Prints per network: % proven
optimal, mean gap of the rest, mean / median time, and the peak memory of the worker processes
(ru_maxrss of the children) and of this process (where ``omlt`` runs).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

NETWORKS = {   # name: (path under the external folder, also untargeted)
    "eran6x100": ("eran_mlp_via_abcrown/mnist_6_100_nat.onnx", False),
    "rsl18a": ("mipverify_RSL18a/RSL18a_linf0.1_784-500-10.onnx", False),
    "256x2": ("vnncomp2021_mnistfc/onnx/mnist-net_256x2.onnx", True),
    "256x4": ("vnncomp2021_mnistfc/onnx/mnist-net_256x4.onnx", True),
    "eran6x200": ("eran_mlp_via_abcrown/mnist_6_200_nat.onnx", False),
    "256x6": ("vnncomp2021_mnistfc/onnx/mnist-net_256x6.onnx", True),
    "eran9x200": ("eran_mlp_via_abcrown/mnist_9_200_nat.onnx", False),
}
THESIS = ("dnn1", "dnn2", "dnn3", "dnn4", "dnn5")   # shipped networks (models/), named only on request
METHODS = ("tight", "milp", "omlt")


def external_dir() -> Path:
    env = os.environ.get("ADVMILP_EXTERNAL")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "external"


def run_omlt(cfg, net, model: str, results_dir, log) -> Path:
    """The OMLT peer on ``cfg``'s images (the same `select_images` choice as a batch), rows appended to
    results/<cfg.name>/instances.csv (resumable); ``model`` is an ONNX file or a shipped name (exported)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from omlt_peer import model_file, run_images

    from advmilp.bounds.compute import default_results_dir
    from advmilp.data.mnist import load_split
    from advmilp.experiments.runner import select_images

    out = Path(results_dir or default_results_dir()) / cfg.name
    indices = select_images(cfg, [net], load_split(cfg.images.split))
    run_images(model_file(model, out), indices, cfg.problem, cfg.solver, out, log=log)
    return out


def log(message: str) -> None:
    print(message, file=sys.stderr)


def main(argv=None) -> int:
    from advmilp.errors import AdvmilpError
    from advmilp.experiments.config import parse_config
    from advmilp.experiments.runner import run_batch
    from advmilp.nn.interchange import load_any
    from advmilp.reporting.tables import load_rows, solved_mask

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="eran6x100 and 256x2, 3 images, 60 s")
    ap.add_argument("--networks", default=None, help=f"comma list of {', '.join(NETWORKS)} (and {', '.join(THESIS)})")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--methods", default="tight", help=f"comma list of {', '.join(METHODS)}")
    ap.add_argument("--problems", default=None, help="comma list of targeted, untargeted (default: targeted, and "
                                                     "untargeted on the VNN-COMP nets)")
    ap.add_argument("--workers", default="1")
    ap.add_argument("--results-dir", default=None)
    args = ap.parse_args(argv)
    images = args.images or (3 if args.quick else 25)
    limit = args.time_limit or (60.0 if args.quick else 300.0)
    names = (args.networks or ("eran6x100,256x2" if args.quick else ",".join(NETWORKS))).split(",")
    unknown = [n for n in names if n not in NETWORKS and n not in THESIS]
    if unknown:
        ap.error(f"unknown network(s) {', '.join(unknown)} (choose from {', '.join([*NETWORKS, *THESIS])})")
    methods = args.methods.split(",")
    if any(m not in METHODS for m in methods):
        ap.error(f"unknown method(s) {', '.join(m for m in methods if m not in METHODS)} "
                 f"(choose from {', '.join(METHODS)})")
    root = external_dir()
    tag = f"scale-{images}x{limit:g}s"
    runs = []
    for name in names:
        rel, also_untargeted = NETWORKS.get(name, (None, False))
        path = root / rel if rel else None
        if path is not None and not path.is_file():
            print(f"{name}: {path} not found, skipped", file=sys.stderr)
            continue
        model = str(path) if path is not None else name   # a shipped network by name
        net = load_any(model)
        relus = sum(net.sizes[1:-1])
        problems = args.problems.split(",") if args.problems else ["targeted"] + (["untargeted"] if also_untargeted
                                                                                  else [])
        for problem in problems:
            for method in methods:
                run = f"{tag}-{name}-{problem}-{method}"
                cfg = parse_config({   # omlt: a batch config for its images, problem and solver settings
                    "name": run, "networks": [model], "bounds": ["basic"],
                    "methods": [method if method != "omlt" else "milp"],
                    "problem": {"kind": problem, "ratio": 1.2, "output_relu": False},
                    "images": {"count": images, "first": 0, "correctly_classified": True},
                    "solver": {"name": "highs", "time_limit": limit, "threads": 1, "gap_rel": 1e-4},
                    "workers": args.workers if args.workers == "auto" else int(args.workers),
                    "executor": "process"}, src=f"<benchmark {run}>")
                t0 = time.perf_counter()
                if method == "omlt":
                    try:
                        out = run_omlt(cfg, net, model, args.results_dir, log)
                    except AdvmilpError as exc:
                        print(f"{run}: {exc}", file=sys.stderr)
                        continue
                    print(f"{run}: {time.perf_counter() - t0:.0f} s wall", file=sys.stderr)
                else:
                    s = run_batch(cfg, results_dir=args.results_dir, log=log)
                    print(f"{run}: {s.ran} run, {s.skipped} recorded, {time.perf_counter() - t0:.0f} s wall",
                          file=sys.stderr)
                    out = s.out_dir
                runs.append((name, relus, problem, method, out))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n# scale_bench: {images} images per network, {limit:g} s per instance, 1 thread per solve, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; peak worker memory {peak:.0f} MB, "
          f"this process (omlt) {own:.0f} MB\n")
    print("| network | ReLUs | problem | method | n | % optimal | mean gap of the rest (%) | mean time (s) | "
          "median time (s) | mean nodes |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for name, relus, problem, method, out in runs:
        g = load_rows([out])
        g = g[g["status"] != "invalid"]
        if not len(g):
            continue
        ok = solved_mask(g)
        rest = g[~ok]["gap_pct"].mean() if (~ok).any() else float("nan")
        print(f"| {name} | {relus} | {problem} | {method} | {len(g)} | {100 * ok.mean():.0f} | {rest:.1f} | "
              f"{g['time_s'].mean():.1f} | {g['time_s'].median():.1f} | {g['nodes'].mean():,.0f} |")
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    os.environ.setdefault("ADVMILP_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
