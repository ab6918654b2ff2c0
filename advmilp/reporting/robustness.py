"""Robust accuracy against ε from the exact minimal distances of a batch (notebook §1.8, issue 18 §5).

A distance-minimising instance (targeted or untargeted) of an exact method proves the smallest
distance at which the image's prediction can be changed (to the target, for targeted problems).
The image is *robust at ε* when that distance exceeds ε, so the fraction of a run's images with
distance > ε is the run's robust accuracy at ε — among the run's images, which a batch chooses
correctly classified by every network (`images.json`), and against the run's problem only (a
targeted run: against its target class, (label + 5) mod 10 by default).

Which distance a row contributes (`classify`):

* **exact** — status optimal and the witness verified: the proven optimum, ``objective``;
* **lower bound** — the solve stopped without closing the gap (time_limit, limit, unproven,
  interrupted) or its optimum failed verification: its proven lower bound ``bound`` (0 when it
  has none).  A curve or a table cell using one is a lower bound of the robust accuracy: shown
  dashed, and a cell is marked "≥" unless every lower bound already exceeds ε;
* **excluded** — anything else (infeasible, unbounded, error, invalid): not counted, but the
  number per status is reported.  Rows of heuristic methods (no proof) and of problems that do
  not minimise a distance (max-target, feature, inference) are not part of any curve.

The norm of a row is its ``norm`` column when the rows carry one, else a ``norm l1|l2|linf`` token
of its ``problem`` text, else L1 (every problem of this version minimises the L1 distance; the
``linf`` column of a row is the L∞ size of its L1-optimal witness, not a minimal L∞ distance, and
is never used here).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from advmilp.reporting.tables import KEYS, _sort, is_heuristic, render_text, to_markdown
from advmilp.spec.rows import INTERRUPTED, LIMIT, OPTIMAL, TIME_LIMIT, UNPROVEN, as_bool

EXACT, LOWER, EXCLUDED = "exact", "lower bound", "excluded"
GROUP = KEYS + ["problem", "norm"]
DISTANCE_KINDS = ("targeted", "untargeted")
STOPPED = (TIME_LIMIT, LIMIT, UNPROVEN, INTERRUPTED)
DEFAULT_EPS = {"l1": (1.0, 2.0, 4.0, 8.0), "l2": (0.5, 1.0, 2.0, 4.0), "linf": (0.01, 0.02, 0.05, 0.1)}
NORM_LABEL = {"l1": "L1", "l2": "L2", "linf": "L∞"}
_NORM_RE = re.compile(r"\bnorm[ =:]*(l1|l2|linf)\b", re.IGNORECASE)


def row_norm(row) -> str:
    """The distance a row minimises: its ``norm`` column, else ``norm <n>`` in its problem, else l1."""
    norm = row.get("norm")
    if isinstance(norm, str) and norm.strip().lower() in DEFAULT_EPS:
        return norm.strip().lower()
    m = _NORM_RE.search(str(row.get("problem", "")))
    return m.group(1).lower() if m else "l1"


def _number(value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x


def classify(row) -> tuple[str, float]:
    """(exact | lower bound | excluded, the distance used); see the module docstring."""
    status = str(row.get("status", "")).strip().lower()
    obj, bound = _number(row.get("objective")), _number(row.get("bound"))
    if status == OPTIMAL and as_bool(row.get("verified")) and math.isfinite(obj):
        return EXACT, obj
    if status in STOPPED or status == OPTIMAL:
        return LOWER, max(bound, 0.0) if math.isfinite(bound) else 0.0
    return EXCLUDED, math.nan


def distance_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``df`` (as `load_rows` reads them) that bear on robustness: exact methods on
    distance-minimising problems, with ``norm``, ``how`` (exact | lower bound | excluded) and
    ``distance`` columns added."""
    if df.empty:
        return df.assign(norm=[], how=[], distance=[])
    kind = df["problem"].astype(str).str.split().str[0] if "problem" in df else pd.Series("", index=df.index)
    df = df[kind.isin(DISTANCE_KINDS) & ~is_heuristic(df)].copy()
    if df.empty:
        return df.assign(norm=[], how=[], distance=[])
    records = df.to_dict("records")
    df["norm"] = [row_norm(r) for r in records]
    how, dist = zip(*(classify(r) for r in records))
    df["how"], df["distance"] = list(how), list(dist)
    return df


def robust_fraction(distances, eps: float) -> float:
    """The fraction of ``distances`` that exceed ``eps`` (nan for none)."""
    d = np.asarray(distances, dtype=float)
    return float(np.mean(d > eps)) if d.size else math.nan


def robustness_table(df: pd.DataFrame, eps: dict[str, tuple[float, ...]] | None = None) -> pd.DataFrame:
    """Long format, one row per (group, ε): n (counted), exact, lower_bounds, excluded (with the
    statuses), eps, robust_pct (lower-bounded instances at their bound), lower_bound (True when that
    figure may be below the true one: a lower-bounded instance has bound ≤ ε)."""
    eps = {**DEFAULT_EPS, **(eps or {})}
    rows = []
    d = distance_rows(df)
    for key, g in d.groupby(GROUP, sort=False):
        used = g[g["how"] != EXCLUDED]
        lower = used[used["how"] == LOWER]
        excl = g[g["how"] == EXCLUDED]["status"].value_counts().sort_index()
        statuses = ", ".join(f"{n} {s}" for s, n in excl.items())
        for e in eps[key[-1]]:
            rows.append(dict(zip(GROUP, key), n=len(used), exact=int((used["how"] == EXACT).sum()),
                             lower_bounds=len(lower), excluded=len(g) - len(used), excluded_statuses=statuses,
                             eps=float(e), robust_pct=100.0 * robust_fraction(used["distance"], e),
                             lower_bound=bool((lower["distance"] <= e).any())))
    cols = GROUP + ["n", "exact", "lower_bounds", "excluded", "excluded_statuses", "eps", "robust_pct", "lower_bound"]
    t = pd.DataFrame(rows, columns=cols)
    if t.empty:
        return t
    order = _sort(t.drop_duplicates(GROUP)[GROUP].reset_index(drop=True))
    rank = {tuple(r): i for i, r in enumerate(order[GROUP].itertuples(index=False))}
    t["_r"] = [rank[tuple(r)] for r in t[GROUP].itertuples(index=False)]
    return t.sort_values(["_r", "eps"], kind="stable").drop(columns="_r").reset_index(drop=True)


def _cell(pct: float, lower: bool) -> str:
    if pct != pct:
        return ""
    return ("≥ " if lower else "") + (f"{pct:.0f}" if round(float(pct), 6).is_integer() else f"{pct:.1f}")


def wide_tables(long: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per norm, one row per group and one column ``robust % ε=<e>`` per ε (strings, "≥" marks a
    lower bound), for printing."""
    out = {}
    for norm, g in long.groupby("norm", sort=False):
        rows = []
        for key, h in g.groupby(GROUP, sort=False):
            r = dict(zip(GROUP, key))
            r.update(n=int(h["n"].iloc[0]), exact=int(h["exact"].iloc[0]), **{"lower bd": int(h["lower_bounds"].iloc[0])},
                     excluded=(f"{int(h['excluded'].iloc[0])}" + (f" ({h['excluded_statuses'].iloc[0]})"
                                                                  if h["excluded_statuses"].iloc[0] else "")))
            for _, c in h.iterrows():
                r[f"robust % {NORM_LABEL[norm]}>{c['eps']:g}"] = _cell(c["robust_pct"], c["lower_bound"])
            rows.append(r)
        out[norm] = pd.DataFrame(rows).drop(columns=["norm"]).astype({"n": str, "exact": str, "lower bd": str})
    return out


TITLE = ("Robust accuracy: % of the run's images whose proven minimal {norm} distance exceeds ε "
         "(exact: proven optimum; lower bd: timed out, counted at its proven lower bound; ≥: a lower bound "
         "of the robust accuracy)")


def robustness_report(df: pd.DataFrame, out_dir: str | Path | None = None,
                      eps: dict[str, tuple[float, ...]] | None = None) -> str:
    """The robustness tables as text ('' when no row minimises a distance with an exact method);
    with ``out_dir``, also ``robustness.csv`` (long format) and ``robustness.md``."""
    long = robustness_table(df, eps)
    if long.empty:
        return ""
    parts, md = [], []
    for norm, t in wide_tables(long).items():
        title = TITLE.format(norm=NORM_LABEL[norm])
        parts.append(f"{title}\n\n{render_text(t)}")
        md.append(f"**{title}**\n\n{to_markdown(t)}")
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        long.to_csv(out / "robustness.csv", index=False)
        (out / "robustness.md").write_text("\n".join(md), encoding="utf-8")
    return "\n".join(parts)


# ---- the curve -----------------------------------------------------------------------------------
def curve(distances) -> tuple[np.ndarray, np.ndarray]:
    """The step curve ε ↦ fraction of ``distances`` > ε: points (ε_i, y_i) for a post-step plot,
    starting at (0, fraction > 0) and ending at the largest distance (y = 0)."""
    d = np.sort(np.asarray(distances, dtype=float))
    if d.size == 0:
        return np.zeros(1), np.zeros(1)
    xs = np.concatenate([[0.0], d])
    ys = np.array([robust_fraction(d, e) for e in xs])
    return xs, ys


def save_robustness(path, df: pd.DataFrame, title: str = "", also_pdf: bool = True) -> list[Path]:
    """``title`` (e.g. the run's name) starts the figure's title.  Robust accuracy against ε, one panel per norm, one step curve per (network, method, bounds,
    problem); dashed where timed-out instances count at their proven lower bound.  [] when no row
    minimises a distance with an exact method."""
    from advmilp.reporting import figures

    d = distance_rows(df)
    d = d[d["how"] != EXCLUDED] if len(d) else d
    if d.empty:
        return []
    norms = list(dict.fromkeys(d["norm"]))
    fig = figures._figure(6.5 * len(norms) + 2.5, 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(norms)))
    several_problems = d["problem"].nunique() > 1
    for ax, norm in zip(axes, norms):
        g = d[d["norm"] == norm]
        keys = _sort(g.drop_duplicates(GROUP)[GROUP].reset_index(drop=True))
        for key in keys[GROUP].itertuples(index=False):
            h = g[(g[GROUP] == pd.Series(key, index=GROUP)).all(axis=1)]
            xs, ys = curve(h["distance"])
            n_low = int((h["how"] == LOWER).sum())
            name = " ".join(str(k) for k in key[:3] + ((key[3],) if several_problems else ()))
            label = f"{name} ({len(h) - n_low} exact" + (f", {n_low} at lower bound, dashed)" if n_low else ")")
            ax.step(xs, 100 * ys, where="post", linestyle="--" if n_low else "-", linewidth=1.5, label=label)
        ax.set_xlabel(f"ε (minimal {NORM_LABEL[norm]} distance)")
        ax.set_ylabel("robust accuracy (% of images)")
        ax.set_ylim(0, 101)
        ax.set_xlim(left=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    problems = ", ".join(sorted(d["problem"].astype(str).unique()))
    lower = "; dashed: timed-out instances at their proven lower bound" if (d["how"] == LOWER).any() else ""
    fig.suptitle(f"{title + ': ' if title else ''}robust accuracy vs ε ({problems}{lower})", fontsize=10)
    return figures._save(fig, path, also_pdf)
