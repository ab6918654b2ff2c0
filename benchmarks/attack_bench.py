"""The counterexample search of `advmilp verify` alone: its joint attack (`methods.verify._joint_attack`)
against the per-disjunct attack it replaced (kept here as the baseline), on VNN-COMP 2021 mnistfc
instances (every disjunct, no bounds, no search).

For each instance: which attack finds a checked counterexample (float64 and float32 forward pass, as
`verify` requires) and how long it takes, beside the published tools' consensus.  The published answers
are read from ``../shared/external`` (``$ADVMILP_EXTERNAL``), never copied.

    python benchmarks/attack_bench.py                        # 256x2 and 256x4, 30 s per attack
    python benchmarks/attack_bench.py --nets 256x4 --limit 30 --time-limit 10
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
EXTERNAL = Path(os.environ.get("ADVMILP_EXTERNAL", REPO.parent / "shared" / "external"))
MNISTFC = EXTERNAL / "vnncomp2021_mnistfc"


def per_disjunct_attack(network, prop, d: int, deadline: float, rng: np.random.Generator, starts: int = 4,
                        steps: int = 40):
    """The attack `verify` used before the joint attack: projected sign-gradient descent on disjunct d's
    margin from the box centre and ``starts`` − 1 random starts, a step from a quarter of the box's width
    decaying by 0.85 per step; a checked counterexample or None."""
    from advmilp.methods.verify import _check

    G, h = prop.disjuncts[d]
    lb, ub = prop.x_lb, prop.x_ub
    last = network.layers[-1].act
    for x in [(lb + ub) / 2] + [lb + rng.random(len(lb)) * (ub - lb) for _ in range(starts - 1)]:
        step = (ub - lb) / 4
        for _ in range(steps):
            if time.perf_counter() > deadline:
                return None
            ok, y = _check(network, prop, d, x)
            if ok:
                return x, y
            z = network.forward(x)
            r = int(np.argmax(G @ last(z) - h))
            grad = network.input_gradient(x, G[r] * np.where(z >= 0, 1.0, last.slope))
            if not np.any(grad):
                break
            x = np.clip(x - step * np.sign(grad), lb, ub)
            step = step * 0.85
    return None


def main(argv=None) -> int:
    from advmilp.methods.verify import _joint_attack
    from advmilp.nn.interchange import load_any
    from advmilp.reporting.vnncomp import consensus, instance_id, load_published
    from advmilp.spec.vnnlib import read_vnnlib

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", default="256x2,256x4", help="comma list of 256x2, 256x4, 256x6")
    ap.add_argument("--limit", type=int, default=None, help="the first N instances of each network")
    ap.add_argument("--time-limit", type=float, default=30.0, help="seconds per attack and instance")
    args = ap.parse_args(argv)
    if not MNISTFC.is_dir():
        print(f"error: {MNISTFC} not found (set ADVMILP_EXTERNAL)", file=sys.stderr)
        return 2
    nets = [f"mnist-net_{n.strip()}" for n in args.nets.split(",") if n.strip()]
    if bad := [n for n in nets if not (MNISTFC / "onnx" / f"{n}.onnx").is_file()]:
        print(f"error: --nets: unknown network {bad[0]}", file=sys.stderr)
        return 2
    published = load_published(MNISTFC)
    rows = list(csv.reader((MNISTFC / "mnistfc_instances.csv").read_text().splitlines()))
    print(f"# attack_bench: {args.time_limit:g} s per attack, {time.strftime('%Y-%m-%d')}\n")
    print("| instance | consensus | per disjunct | joint |")
    print("|---|---|---|---|")
    found = {"per disjunct": 0, "joint": 0}
    for net_name in nets:
        net = load_any(str(MNISTFC / "onnx" / f"{net_name}.onnx"))
        mine = [r for r in rows if Path(r[0].strip()).stem == net_name][: args.limit]
        for onnx, spec, _ in mine:
            prop = read_vnnlib(MNISTFC / "vnnlib" / spec.strip())
            iid = instance_id(onnx.strip(), spec.strip())
            cells = []
            for name in found:
                rng = np.random.default_rng(0)
                t0 = time.perf_counter()
                deadline = t0 + args.time_limit
                if name == "joint":
                    hit = _joint_attack(net, prop, list(range(len(prop.disjuncts))), deadline, rng) is not None
                else:
                    hit = any(per_disjunct_attack(net, prop, d, deadline, rng) is not None
                              for d in range(len(prop.disjuncts)))
                found[name] += hit
                cells.append(f"{'violated' if hit else '–'} {time.perf_counter() - t0:.1f} s")
            print(f"| {iid} | {consensus(published.answers.get(iid, {})) or '?'} | {' | '.join(cells)} |", flush=True)
    print(f"\ncounterexamples found: per disjunct {found['per disjunct']}, joint {found['joint']}")
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
