"""advmilp on VNN-COMP's MNIST fully-connected benchmarks, scored the VNN-COMP 2021 way beside the published tools.

Quick mode (the default): VNN-COMP 2021 ``mnistfc``, mnist-net_256x2, props 0-4 at eps 0.03, 30 s each.
Full mode (``--full``): the whole 2021 set at its published timeouts (120 s / 300 s), then the 2020
"MNIST-OVAL" set (the same three networks, test images 0-24, eps 0.02 and 0.05, 900 s), whose
VNN-LIB files are generated here with ``export_vnnlib`` (no VNN-LIB files were published for it).
``--sets eran`` runs the stretch test instead: VNN-COMP 2021's ERAN mnist_relu_9_200 (1,600 ReLUs, its ONNX
file normalising the input and ending in a ReLU), 36 specifications at ε 0.015, 300 s each.
``--limit N`` keeps the first N instances of each set (to check the full mode quickly); ``--nets 256x2,256x4``
keeps those networks, ``--specs prop_3_0.03,prop_4_0.05`` those specifications of the 2021 set, ``--sets 2021``
that set, ``--eps 0.02`` that radius of the 2020 set, ``--images 1,3``
those of its test images.

Both run ``advmilp verify --instances`` (the same batch: resumable, one row per instance) into
``--results-dir`` (default ``results/vnncomp_bench``) and print the table of ``advmilp report``.
``--marabou`` adds a same-machine peer: maraboupy (``pip install maraboupy onnxruntime``), each instance
in a subprocess with the same timeout and one worker, recorded in ``marabou.csv`` (resumable).  ``--omlt``
adds another: OMLT's big-M MILP of the ONNX file over the property's box, solved by HiGHS on one thread
(`omlt_peer.omlt_verify`; the ``peers`` extra), recorded in ``omlt.csv`` (resumable).

The published results are read from ``../shared/external`` (``$ADVMILP_EXTERNAL``), never copied.

    python benchmarks/vnncomp_bench.py                       # quick: 5 instances, about 3 minutes
    python benchmarks/vnncomp_bench.py --quick --marabou     # with the maraboupy column
    python benchmarks/vnncomp_bench.py --quick --omlt        # with the OMLT + HiGHS column
    python benchmarks/vnncomp_bench.py --full --limit 2      # check the full mode on 2 instances per set
    python benchmarks/vnncomp_bench.py --full --sets eran    # the 2021 ERAN 9x200 set (36 specs, 300 s)
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
EXTERNAL = Path(os.environ.get("ADVMILP_EXTERNAL", REPO.parent / "shared" / "external"))
MNISTFC = EXTERNAL / "vnncomp2021_mnistfc"
OVAL2020 = EXTERNAL / "vnncomp2020_mnist_oval"
ERAN2021 = EXTERNAL / "vnncomp2021_eran"
NETS = ("mnist-net_256x2", "mnist-net_256x4", "mnist-net_256x6")
MARABOU = "marabou (this machine)"
OMLT = "omlt+highs (this machine)"
PEER_COLUMNS = ["onnx", "vnnlib", "result", "time_s", "timeout_s", "raw"]
OVAL_EPS = (0.02, 0.05)     # the 2020 set's two L∞ radii

# One Marabou query in a fresh interpreter: a crash or a hang cannot take the benchmark with it.
MARABOU_SCRIPT = """
import sys
import time
from maraboupy import Marabou, MarabouCore
net = Marabou.read_onnx(sys.argv[1])
ipq = net.getInputQuery()
MarabouCore.loadProperty(ipq, sys.argv[2])
opts = Marabou.createOptions(timeoutInSeconds=max(1, round(float(sys.argv[3]))), verbosity=0, numWorkers=1)
t0 = time.perf_counter()
result, values, _ = MarabouCore.solve(ipq, opts, "")
print("RESULT", result, time.perf_counter() - t0)
if result == "sat":
    print("POINT", " ".join(repr(float(values[int(v)])) for v in net.inputVars[0].flatten()))
"""


def quick_csv(folder: Path) -> Path:
    """256x2, props 0-4 at 0.03: an instances.csv with absolute paths."""
    rows = [(MNISTFC / "onnx" / "mnist-net_256x2.onnx", MNISTFC / "vnnlib" / f"prop_{p}_0.03.vnnlib", 30)
            for p in range(5)]
    return write_csv(folder / "quick_instances.csv", rows)


def full_2021_csv(folder: Path, limit: int | None, nets=NETS, specs=None) -> Path:
    """The published mnistfc_instances.csv, with the files where this copy keeps them (onnx/, vnnlib/);
    ``specs``: only these specifications (file stems, e.g. prop_3_0.03)."""
    rows = []
    for onnx, spec, timeout in csv.reader((MNISTFC / "mnistfc_instances.csv").read_text().splitlines()):
        if Path(onnx.strip()).stem in nets and (specs is None or Path(spec.strip()).stem in specs):
                rows.append((MNISTFC / "onnx" / onnx.strip(), MNISTFC / "vnnlib" / spec.strip(), float(timeout)))
    return write_csv(folder / "mnistfc2021_instances.csv", rows[:limit])


def eran2021_csv(folder: Path, limit: int | None) -> Path:
    """VNN-COMP 2021 ``eran``, its ReLU half: ERAN's mnist_relu_9_200 (1,600 ReLUs; Sub/Div input
    normalisation and a ReLU on the logits in the ONNX file), 36 L∞ specifications at ε 0.015, 300 s.  The
    published list names ``specs/mnist/...``; this copy keeps the files in ``specs/``."""
    rows = []
    for onnx, spec, timeout in csv.reader((ERAN2021 / "eran_instances_relu.csv").read_text().splitlines()):
        found = ERAN2021 / "specs" / Path(spec.strip()).name
        rows.append((ERAN2021 / onnx.strip(), found, float(timeout)))
    return write_csv(folder / "eran2021_instances.csv", rows[:limit])


def oval2020_csv(folder: Path, limit: int | None, nets=NETS, epsilons=OVAL_EPS, images=range(25)) -> Path:
    """The 2020 set: per network and eps, the L∞ box clip(x ± eps, 0, 1) around test images 0-24 (or those of
    ``images``), untargeted, 900 s, written by export_vnnlib into ``folder/oval2020`` (its instances.csv)."""
    from advmilp.data.mnist import load_split
    from advmilp.nn.interchange import load_any
    from advmilp.spec.vnnlib import export_vnnlib

    test = load_split("test")
    out = folder / "oval2020"
    written = 0
    for name in nets:
        net = load_any(str(MNISTFC / "onnx" / f"{name}.onnx"))
        for eps in epsilons:
            chosen = list(images)[: None if limit is None else max(limit - written, 0)]
            if chosen:
                written += len(export_vnnlib(net, out, test.images, test.labels, chosen, eps, timeout=900))
    return out / "instances.csv"


def write_csv(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{a},{b},{t:g}\n" for a, b, t in rows))
    return path


def run_batch(instances: Path, results: Path, workers: int, timeout_scale: float | None) -> None:
    cmd = [sys.executable, "-m", "advmilp", "verify", "--instances", str(instances), "--results-dir", str(results),
           "--workers", str(workers)] + (["--timeout-scale", f"{timeout_scale:g}"] if timeout_scale else [])
    print("$", " ".join(cmd[2:]), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode:
        sys.exit(proc.returncode)


# ---- the maraboupy column ------------------------------------------------------------------------------------
def _peer_rows(instances: Path, out: Path):
    """The instances not yet in the peer's CSV ``out`` (created with its header), and a writer appending
    whole rows to it: (rows to run, writer, file handle)."""
    from advmilp.experiments.verify_batch import read_instances

    done = {(r["onnx"], r["vnnlib"]) for r in csv.DictReader(out.open())} if out.exists() else set()
    new = not out.exists()
    fh = out.open("a", newline="")
    w = csv.writer(fh)
    if new:
        w.writerow(PEER_COLUMNS)
        fh.flush()
    return [inst for inst in read_instances(instances) if inst.key not in done], w, fh


def run_marabou(instances: Path, results: Path, scale: float = 1.0) -> Path:
    """Each instance once (resumable): marabou.csv with onnx, vnnlib, result (holds/violated/unknown), time_s."""
    out = results / "marabou.csv"
    todo, w, fh = _peer_rows(instances, out)
    with fh:
        for inst in todo:
            limit = inst.csv_timeout * scale
            t0 = time.perf_counter()
            try:
                proc = subprocess.run([sys.executable, "-c", MARABOU_SCRIPT, str(Path(inst.folder) / inst.onnx),
                                       str(Path(inst.folder) / inst.vnnlib), str(limit)],
                                      capture_output=True, text=True, timeout=limit + 60)
                said = next((ln.split() for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
                raw, solve_s = (said[1], float(said[2])) if said else (f"exit {proc.returncode}", None)
                point = next((ln.split()[1:] for ln in proc.stdout.splitlines() if ln.startswith("POINT")), None)
            except subprocess.TimeoutExpired:
                raw, solve_s, point = "killed", None, None
            # the solve's own time (loading TensorFlow, ONNX and the property excluded, as advmilp's time_s
            # excludes loading the network); the wall time when Marabou did not answer
            elapsed = solve_s if solve_s is not None else time.perf_counter() - t0
            result = {"sat": "violated", "unsat": "holds"}.get(raw, "unknown")
            if result == "violated":     # Marabou's point counts only if it passes advmilp's check
                result, raw = marabou_point_verdict(inst, point, elapsed)
            if elapsed > limit:
                result = "unknown"
            w.writerow([inst.onnx, inst.vnnlib, result, f"{elapsed:.3f}", limit, raw])
            fh.flush()
            print(f"marabou {Path(inst.onnx).stem} {Path(inst.vnnlib).stem}: {result} ({raw}) {elapsed:.1f} s",
                  file=sys.stderr, flush=True)
    return out


def marabou_point_verdict(inst, point: list[str] | None, elapsed: float) -> tuple[str, str]:
    """(result, raw) of a ``sat`` answer: ``violated`` only if Marabou's point passes advmilp's float64 and
    float32 check (`omlt_peer.point_verdict`; one Marabou answer on VNN-COMP 2021 256x4 ``prop_6_0.05`` named
    a point of margin +0.996, where α,β-CROWN and advmilp prove the property), else ``unknown``."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from omlt_peer import point_verdict

    from advmilp.nn.interchange import load_any
    from advmilp.spec.vnnlib import read_vnnlib

    if not point:
        return "unknown", "sat without a point"
    net = load_any(str(Path(inst.folder) / inst.onnx))
    v = point_verdict(net, read_vnnlib(Path(inst.folder) / inst.vnnlib), np.array([float(t) for t in point]),
                      elapsed, "sat")
    return v.result, v.raw


def run_omlt(instances: Path, results: Path, scale: float = 1.0) -> Path:
    """Each instance once (resumable) with OMLT's big-M MILP and HiGHS (`omlt_peer.omlt_verify`: one thread, the
    instance's timeout for the model build and the solve): omlt.csv, the columns of marabou.csv."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from omlt_peer import omlt_verify

    from advmilp.errors import AdvmilpError

    out = results / "omlt.csv"
    todo, w, fh = _peer_rows(instances, out)
    with fh:
        for inst in todo:
            limit = inst.csv_timeout * scale
            try:
                v = omlt_verify(Path(inst.folder) / inst.onnx, Path(inst.folder) / inst.vnnlib, limit)
                result, elapsed, raw = v.result, v.time_s, v.raw
            except AdvmilpError as exc:   # e.g. a network OMLT's parser does not take: no answer, said why
                result, elapsed, raw = "unknown", 0.0, f"error: {exc}"
            except Exception as exc:      # a failure inside OMLT or Pyomo on one instance is a row, not a crash
                result, elapsed, raw = "unknown", 0.0, f"error: {type(exc).__name__}: {exc}"
            w.writerow([inst.onnx, inst.vnnlib, result, f"{elapsed:.3f}", limit, raw])
            fh.flush()
            print(f"omlt {Path(inst.onnx).stem} {Path(inst.vnnlib).stem}: {result} ({raw}) {elapsed:.1f} s",
                  file=sys.stderr, flush=True)
    return out


def omlt_available() -> str | None:
    try:
        import omlt  # noqa: F401
        import pyomo  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def marabou_available() -> str | None:
    proc = subprocess.run([sys.executable, "-c", "import maraboupy, onnxruntime"], capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["import failed"])[-1]


# ---- the table -------------------------------------------------------------------------------------------------
def report(results: Path, published_dir: Path, peers: dict[str, Path] | None = None) -> str:
    """advmilp's rows scored beside the published tools and the same-machine peers (tool name → its CSV)."""
    from advmilp.experiments.verify_batch import RESULTS_FILE, read_rows
    from advmilp.reporting.vnncomp import Answer, instance_id, load_published, render_report

    published = load_published(published_dir)
    for tool, path in (peers or {}).items():
        published.tools.append(tool)
        for r in csv.DictReader(path.open()):
            res = r["result"] if r["result"] in ("holds", "violated") else None
            iid = instance_id(r["onnx"], r["vnnlib"])
            published.answers.setdefault(iid, {})[tool] = Answer(res, float(r["time_s"]))
    return render_report(read_rows(results / RESULTS_FILE), published)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="256x2 props 0-4 at 0.03, 30 s (the default)")
    mode.add_argument("--full", action="store_true", help="the 2021 set at its timeouts, then the 2020 set")
    ap.add_argument("--limit", type=int, default=None, help="full mode: the first N instances of each set")
    ap.add_argument("--nets", default=",".join(n.split("_")[1] for n in NETS),
                    help="full mode: these networks (default 256x2,256x4,256x6)")
    ap.add_argument("--sets", default="2021,2020",
                    help="full mode: these sets (default 2021,2020; eran = the 2021 ERAN 9x200 set, the stretch test)")
    ap.add_argument("--eps", default=",".join(f"{e:g}" for e in OVAL_EPS),
                    help="full mode, the 2020 set: these radii (default 0.02,0.05)")
    ap.add_argument("--images", default=None,
                    help="full mode, the 2020 set: these test images (e.g. 1,3,11,13; default 0-24)")
    ap.add_argument("--specs", default=None,
                    help="full mode, the 2021 set: only these specifications (e.g. prop_3_0.03,prop_4_0.05)")
    ap.add_argument("--results-dir", type=Path, default=REPO / "results" / "vnncomp_bench")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--timeout-scale", type=float, default=None,
                    help="multiply every timeout (advmilp's and Marabou's); the report says so")
    ap.add_argument("--marabou", action="store_true", help="add maraboupy on this machine as a column")
    ap.add_argument("--omlt", action="store_true",
                    help="add OMLT's big-M MILP + HiGHS on this machine as a column (benchmarks/omlt_peer.py)")
    args = ap.parse_args()
    if not MNISTFC.is_dir():
        print(f"error: {MNISTFC} not found (the offline copy of ../shared/external; set ADVMILP_EXTERNAL)",
              file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be ≥ 1", file=sys.stderr)
        return 2
    if args.marabou and (why := marabou_available()):
        print(f"error: --marabou needs maraboupy and onnxruntime ({why})", file=sys.stderr)
        return 2
    if args.omlt and (why := omlt_available()):
        print(f"error: --omlt needs omlt and pyomo: pip install -e '.[peers]' ({why})", file=sys.stderr)
        return 2
    nets = tuple(f"mnist-net_{n.strip()}" for n in args.nets.split(",") if n.strip())
    sets_wanted = {s.strip() for s in args.sets.split(",") if s.strip()}
    if bad := [n for n in nets if n not in NETS]:
        print(f"error: --nets: unknown network {bad[0].split('_')[1]} (choose from 256x2, 256x4, 256x6)",
              file=sys.stderr)
        return 2
    if not nets or not sets_wanted or not sets_wanted <= {"2021", "2020", "eran"}:
        print("error: --nets needs one of 256x2, 256x4, 256x6 and --sets one of 2021, 2020, eran", file=sys.stderr)
        return 2
    try:
        epsilons = tuple(float(e) for e in args.eps.split(",") if e.strip())
    except ValueError:
        epsilons = ()
    if not epsilons or not set(epsilons) <= set(OVAL_EPS):
        print(f"error: --eps: choose from {', '.join(f'{e:g}' for e in OVAL_EPS)} (the 2020 set's radii)", file=sys.stderr)
        return 2
    try:
        images = sorted({int(i) for i in args.images.split(",") if i.strip()}) if args.images else list(range(25))
    except ValueError:
        images = []
    if not images or not set(images) <= set(range(25)):
        print("error: --images: test images of the 2020 set, between 0 and 24, separated by commas", file=sys.stderr)
        return 2
    specs = {x.strip().removesuffix(".vnnlib") for x in args.specs.split(",") if x.strip()} if args.specs else None
    if args.specs and not specs:
        print("error: --specs: give specification names such as prop_3_0.03", file=sys.stderr)
        return 2
    if specs:
        listed = csv.reader((MNISTFC / "mnistfc_instances.csv").read_text().splitlines())
        unknown = sorted(specs - {Path(row[1].strip()).stem for row in listed})
    if specs and unknown:
        print(f"error: --specs: {unknown[0]} is not a specification of the 2021 mnistfc set", file=sys.stderr)
        return 2
    os.environ.setdefault("ADVMILP_DATA", str(REPO.parent / "shared" / "data" / "mnist"))
    sets = []
    gen = args.results_dir / "instances"      # the generated instances.csv files (and the 2020 VNN-LIB files)
    if args.full:
        if "2021" in sets_wanted:
            sets.append(("2021 mnistfc (published timeouts)", full_2021_csv(gen, args.limit, nets, specs),
                         args.results_dir / "mnistfc2021", MNISTFC))
        if "2020" in sets_wanted and OVAL2020.is_dir():
            sets.append(("2020 MNIST-OVAL (900 s)", oval2020_csv(gen, args.limit, nets, epsilons, images),
                         args.results_dir / "oval2020", OVAL2020))
        if "eran" in sets_wanted:
            if not ERAN2021.is_dir():
                print(f"error: --sets eran: {ERAN2021} not found", file=sys.stderr)
                return 2
            sets.append(("2021 ERAN mnist_relu_9_200 (300 s)", eran2021_csv(gen, args.limit),
                         args.results_dir / "eran2021", ERAN2021))
    else:
        sets.append(("2021 mnistfc, 256x2 props 0-4 at 0.03, 30 s", quick_csv(gen),
                     args.results_dir / "quick", MNISTFC))
    for title, instances, results, published in sets:
        run_batch(instances, results, args.workers, args.timeout_scale)
        peers = {}
        if args.marabou:
            peers[MARABOU] = run_marabou(instances, results, args.timeout_scale or 1.0)
        if args.omlt:
            peers[OMLT] = run_omlt(instances, results, args.timeout_scale or 1.0)
        print(f"\n## {title}\n")
        print(report(results, published, peers))
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
