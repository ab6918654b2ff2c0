"""Our rows beside the independent Java + CPLEX replication of Fischetti & Jo (issue 16).

The replication (tim25432/ThesisCodeJava; offline copy in ``../shared/external/
fj_replication_tim25432/``, or ``$ADVMILP_EXTERNAL/fj_replication_tim25432``) trained its own
DNN1–DNN5 and attacked the first 100 test images each classifies correctly, target (label+5) mod
10, ratio 1.2, 300 s.  Its figures are read here at report time, never copied into advmilp:

* ``solveData_parsed.csv`` — per DNN and bound variant (improved, weak, base): optimal count of
  100, total relative gap, mean nodes, bound-tightening seconds, mean solve seconds over all 100
  images (time-outs count 300 s), mean L1 over the optimal ones (`read_cplex_figures`);
* ``dnn1_all_targets/dnn1_450_optimal_l1.csv`` — 450 CPLEX-optimal L1 distances on its DNN1
  (50 images × 9 targets), which gives a per-instance check where our rows hit the same
  (image, target) (`read_cplex_optima`).

Our rows of the replication's networks are recognised by name (the ONNX file stem,
``DNN1_8_8_8`` … ``DNN5_20_20_10_10_10``, optionally ``_reluout``).  `side_by_side` gives one
row per (network, method, bounds): our % proven optimal (and verified), mean and median time,
mean L1 over our optimal rows, CPLEX's improved and weak figures, the ratio of mean times
(CPLEX improved / ours) and the per-instance agreement.  The replication published no
per-image results for these 100 images, so the mean L1s are each over the side's own optimal
instances (the same set when both prove all 100).
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from advmilp.errors import AdvmilpError
from advmilp.spec.rows import is_solved

KEYS = ["network", "method", "bounds"]   # as in `reporting.tables` (which calls this module: no import back)

FOLDER = "fj_replication_tim25432"
FIGURES_FILE = "solveData_parsed.csv"
OPTIMA_FILE = Path("dnn1_all_targets") / "dnn1_450_optimal_l1.csv"
NETWORK_NAME = re.compile(r"^(DNN[1-5])_\d+(?:_\d+)*(?:_reluout)?(?:@[0-9a-f]+)?$")
TITLE = ("Independent replication (tim25432, Java + CPLEX, 300 s) beside ours: % proven optimal, "
         "time, mean optimal L1")
NOTE = ("cplex_*: the replication's solveData (optimal of 100; mean s over all 100 images, time-outs "
        "at 300 s; mean L1 over its optimal ones). ours: %optimal = proven optimal and verified, time "
        "over all rows, L1 over our optimal rows. x_faster = CPLEX improved mean s / our mean s. "
        "per-instance: rows matching its 450 DNN1 optima (image, target), max |relative L1 difference|.")


@dataclass(frozen=True)
class CplexFigures:
    """One line of ``solveData_parsed.csv``."""

    dnn: str
    variant: str            # improved, weak or base
    optimal: int            # of `n` images
    total_gap: float
    mean_nodes: float
    bounds_time_s: float    # bound tightening, once per network
    mean_time_s: float      # over all n images, time-outs at 300 s
    mean_l1: float          # over the optimal ones
    n: int = 100


def replication_dir() -> Path:
    """``$ADVMILP_EXTERNAL/fj_replication_tim25432``, else ``../shared/external/...`` beside the checkout."""
    env = os.environ.get("ADVMILP_EXTERNAL")
    root = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "external"
    return root / FOLDER


def _data_lines(path: Path) -> list[str]:
    try:
        return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise AdvmilpError(f"cannot read {path}: {exc}") from None


def read_cplex_figures(path: str | os.PathLike) -> dict[tuple[str, str], CplexFigures]:
    """``{(dnn, variant): CplexFigures}`` from ``solveData_parsed.csv`` (``#`` lines are comments;
    columns dnn, variant, nSolved, totalGap, aveNodes, presolveTime, avgTime, avgObj, no header)."""
    path = Path(path)
    out = {}
    for n, line in enumerate(_data_lines(path), 1):
        cells = [c.strip() for c in line.split(",")]
        try:
            if len(cells) != 8:
                raise ValueError(f"{len(cells)} fields, expected 8")
            nums = [float(c) for c in cells[2:]]
            if not all(math.isfinite(v) for v in nums) or not nums[0].is_integer():
                raise ValueError("not finite numbers / a whole optimal count")
        except ValueError as exc:
            raise AdvmilpError(f"{path}: data line {n} is not 'dnn,variant,nSolved,totalGap,aveNodes,"
                               f"presolveTime,avgTime,avgObj' ({exc})") from None
        dnn, variant = cells[0].upper(), cells[1].lower()
        out[(dnn, variant)] = CplexFigures(dnn, variant, int(nums[0]), *nums[1:])
    if not out:
        raise AdvmilpError(f"{path}: no data lines")
    return out


def read_cplex_optima(path: str | os.PathLike) -> dict[tuple[int, int], float]:
    """``{(MNIST test index, target): CPLEX-optimal L1}`` on the replication's DNN1."""
    path = Path(path)
    rows = list(csv.DictReader(_data_lines(path)))
    try:
        return {(int(r["mnist_idx"]), int(r["target"])): float(r["l1"]) for r in rows
                if r.get("source_set", "test") == "test"}
    except (KeyError, ValueError, TypeError) as exc:
        raise AdvmilpError(f"{path}: expected columns mnist_idx, target, l1 ({exc})") from None


def dnn_of(network: str) -> str | None:
    """``DNN3`` for a replication network name (``DNN3_20_10_8_8``), None for any other network."""
    m = NETWORK_NAME.match(str(network))
    return m.group(1) if m else None


def _agreement(rows: pd.DataFrame, optima: dict[tuple[int, int], float]) -> tuple[int, float]:
    """How many of ``rows`` (optimal ones) have a CPLEX optimum for their (image, target), and the
    largest |ours − CPLEX| / CPLEX among them (NaN if none)."""
    diffs = []
    for img, tgt, obj in zip(rows["image_index"], rows["target"], rows["objective"]):
        try:
            key = (int(img), int(tgt))
        except (TypeError, ValueError):
            continue
        if key in optima and pd.notna(obj):
            diffs.append(abs(float(obj) - optima[key]) / optima[key])
    return len(diffs), (max(diffs) if diffs else float("nan"))


def side_by_side(df: pd.DataFrame, figures: dict[tuple[str, str], CplexFigures],
                 optima: dict[tuple[int, int], float] | None = None) -> pd.DataFrame:
    """One row per (network, method, bounds) of the replication's networks in ``df`` (numbers, not
    strings; empty if none).  ``optima`` (DNN1's 450, or None) adds the per-instance columns."""
    cols = KEYS + ["dnn", "n", "%optimal", "time_mean_s", "time_median_s", "l1_mean",
                   "cplex_improved_optimal", "cplex_improved_time_s", "cplex_improved_l1",
                   "cplex_weak_optimal", "cplex_weak_time_s", "cplex_weak_l1", "x_faster", "l1_diff",
                   "matched", "max_rel_diff"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    df = df.assign(dnn=df["network"].map(dnn_of))
    df = df[df["dnn"].notna()]
    out = []
    for (net, method, bounds), g in df.groupby(KEYS, sort=True):
        dnn = g["dnn"].iloc[0]
        solved = pd.Series([is_solved(r) for r in g[["status", "verified"]].to_dict("records")], index=g.index,
                           dtype=bool)
        opt = g[solved]
        time = pd.to_numeric(g["time_s"], errors="coerce")
        imp, weak = figures.get((dnn, "improved")), figures.get((dnn, "weak"))
        row = {"network": net, "method": method, "bounds": bounds, "dnn": dnn, "n": len(g),
               "%optimal": 100.0 * solved.mean(), "time_mean_s": time.mean(), "time_median_s": time.median(),
               "l1_mean": opt["objective"].mean() if len(opt) else float("nan")}
        for name, f in (("improved", imp), ("weak", weak)):
            row[f"cplex_{name}_optimal"] = f.optimal if f else float("nan")
            row[f"cplex_{name}_time_s"] = f.mean_time_s if f else float("nan")
            row[f"cplex_{name}_l1"] = f.mean_l1 if f else float("nan")
        row["x_faster"] = imp.mean_time_s / row["time_mean_s"] if imp and row["time_mean_s"] > 0 else float("nan")
        row["l1_diff"] = row["l1_mean"] - imp.mean_l1 if imp else float("nan")
        if optima is not None and dnn == "DNN1" and {"image_index", "target"} <= set(g.columns):
            row["matched"], row["max_rel_diff"] = _agreement(opt, optima)
        else:
            row["matched"], row["max_rel_diff"] = float("nan"), float("nan")
        out.append(row)
    t = pd.DataFrame(out, columns=cols)
    return t.sort_values(["dnn", "network", "method", "bounds"]).reset_index(drop=True)


def _format(t: pd.DataFrame) -> pd.DataFrame:
    def f(v, spec: str) -> str:
        return "" if pd.isna(v) else format(v, spec)

    specs = {"n": "d", "%optimal": ".0f", "time_mean_s": ".2f", "time_median_s": ".2f", "l1_mean": ".4f",
             "cplex_improved_optimal": ".0f", "cplex_improved_time_s": ".2f", "cplex_improved_l1": ".4f",
             "cplex_weak_optimal": ".0f", "cplex_weak_time_s": ".2f", "cplex_weak_l1": ".4f", "x_faster": ".1f",
             "l1_diff": "+.4f", "matched": ".0f", "max_rel_diff": ".1e"}
    shown = {c: [f(v, specs[c]) if c in specs else str(v) for v in t[c]] for c in t.columns if c != "dnn"}
    return pd.DataFrame(shown, dtype=object)


def _render(t: pd.DataFrame, markdown: bool) -> str:
    """Aligned text (key columns left, figures right) or a Markdown pipe table of strings."""
    head, rows = list(t.columns), t.values.tolist()
    right = [c not in KEYS for c in head]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if r else ":---" for r in right) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"
    w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(c.rjust(w[i]) if right[i] else c.ljust(w[i]) for i, c in enumerate(cells)).rstrip()

    return "\n".join([line(head), "  ".join("-" * x for x in w)] + [line(r) for r in rows]) + "\n"


def replication_report(df: pd.DataFrame, out_dir: str | Path, folder: str | Path | None = None) -> str:
    """The side-by-side table as text, written to ``out_dir/replication.{md,csv}``; "" when ``df``
    holds no replication network, or the replication's folder is absent (then one line says so)."""
    if df.empty or not df["network"].map(dnn_of).notna().any():
        return ""
    folder = Path(folder) if folder is not None else replication_dir()
    if not (folder / FIGURES_FILE).is_file():
        return (f"(the replication's figures are not at {folder / FIGURES_FILE}: set ADVMILP_EXTERNAL "
                f"to the folder holding {FOLDER}/)\n")
    figures = read_cplex_figures(folder / FIGURES_FILE)
    optima = read_cplex_optima(folder / OPTIMA_FILE) if (folder / OPTIMA_FILE).is_file() else None
    t = side_by_side(df, figures, optima)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t.to_csv(out / "replication.csv", index=False)
    shown = _format(t)
    (out / "replication.md").write_text(f"**{TITLE}**\n\n{_render(shown, True)}\n{NOTE}\n", encoding="utf-8")
    return f"{TITLE}\n\n{_render(shown, False)}\n{NOTE}\n"
