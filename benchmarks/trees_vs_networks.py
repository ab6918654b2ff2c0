"""Benchmark report: tree ensembles against the networks on the same test images (issue 19 part 2).

Reads recorded batch rows — the tree ensembles' run (`advmilp attack --config configs/trees.yaml`,
`results/trees/`) and the networks' runs (`results/bench-100x300s-tight/`: DNN1-DNN5 targeted, 300 s;
`results/bench-untargeted-25x300s-tight/`: the notebook net and DNN1-DNN5 untargeted) — and, per
problem kind (targeted: target (label+5) mod 10; untargeted), keeps the test images on which *every*
model of that kind has a proven-optimal, verified row, so each model's mean is over the same images.
Prints one markdown table per kind: model, images, mean / median minimal L1, median / max time.

The criteria differ by model kind (networks: the thesis' ratio 1.2 on the outputs, or the notebook's
0.95 factor; ensembles: the target's score is the largest, or the label's is not), as each model's own
notion of "classified as"; the distances are L1 in [0, 1] pixel units for all.

    python benchmarks/trees_vs_networks.py
    python benchmarks/trees_vs_networks.py --trees results/trees --networks results/bench-100x300s-tight
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NETWORKS = "results/bench-100x300s-tight,results/bench-untargeted-25x300s-tight"


def kind_of(problem: str) -> str:
    """targeted / untargeted from a row's problem text."""
    return str(problem).split()[0]


def compare(frames, kinds=("targeted", "untargeted")) -> dict:
    """{kind: DataFrame of per-model figures over the images every model of that kind solved}."""
    import pandas as pd

    from advmilp.spec.rows import is_solved

    rows = pd.concat(frames, ignore_index=True)
    rows["kind"] = rows["problem"].map(kind_of)
    rows["solved"] = [is_solved(r) and r["status"] == "optimal" for r in rows[["status", "verified"]].to_dict("records")]
    out = {}
    for kind in kinds:
        k = rows[rows["kind"] == kind]
        if k.empty:
            continue
        solved = k[k["solved"]]
        per_model = solved.groupby("network")["image_index"].apply(set)
        models = sorted(k["network"].unique(), key=lambda n: (not n.startswith(("dnn", "notebook")), n))
        common = set.intersection(*[per_model.get(m, set()) for m in models])
        s = solved[solved["image_index"].isin(common)]
        table = pd.DataFrame([{
            "model": m,
            "images": int((s["network"] == m).sum()),
            "mean L1": s.loc[s["network"] == m, "l1"].mean(),
            "median L1": s.loc[s["network"] == m, "l1"].median(),
            "median time s": s.loc[s["network"] == m, "time_s"].median(),
            "max time s": s.loc[s["network"] == m, "time_s"].max(),
        } for m in models])
        out[kind] = table
    return out


def main(argv=None) -> int:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", default="results/trees", help="the tree ensembles' results folder")
    ap.add_argument("--networks", default=DEFAULT_NETWORKS, help="comma list of the networks' results folders")
    args = ap.parse_args(argv)
    folders = [args.trees] + [f for f in args.networks.split(",") if f]
    frames = []
    for folder in folders:
        path = ROOT / folder / "instances.csv" if not Path(folder).is_absolute() else Path(folder) / "instances.csv"
        if not path.exists():
            print(f"error: no rows at {path}", file=sys.stderr)
            return 2
        frames.append(pd.read_csv(path))
    for kind, table in compare(frames).items():
        print(f"\n{kind}: minimal L1 over the {table['images'].iloc[0]} test images every model solved\n")
        print("| model | images | mean L1 | median L1 | median time (s) | max time (s) |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in table.itertuples(index=False):
            print(f"| {r[0]} | {r[1]} | {r[2]:.4f} | {r[3]:.4f} | {r[4]:.2f} | {r[5]:.2f} |")
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
