"""The robustness study (issue 19): width, depth and dropout against proven minimal distances.

The rows of a batch over study networks (``mlp-w<width>-d<depth>-p<dropout %>``, see
`advmilp.nn.architectures.find_architecture`) become one line per (network, problem): the grid
coordinates, the parameter count, the test accuracy recorded with the weights, how many instances
were proven optimal, and the mean and median minimal distance.

Which distance an instance contributes is `advmilp.reporting.robustness.classify`'s: the proven
optimum, or — for an instance that stopped at its time limit — its proven lower bound.  A mean or
median over a cell with such instances is then a *lower bound* of the true figure and is printed
with "≥"; a cell is never shown as more robust than what was proven.  ``exact mean`` is the mean
over the proven instances alone (a different, selected population: the easy ones).  ``mean ≤`` is
the mean of the verified witnesses' distances (for a timed-out instance its incumbent): an upper
bound of the true mean, so the true mean lies between ``mean`` and ``mean ≤`` (blank when some
instance has no verified witness).  An instance
proven *infeasible* (no input of the box reaches the criterion: the 3 x 8 network with dropout 0.5
never outputs some digits) has no adversarial example at any distance: it is counted in ``none``,
left out of the means and medians, and robust at every ε in the curves.

A run made with ``images.correctly_classified: each`` attacks every network on the images of a common
selection that it classifies correctly (``images.json``: ``selected`` and each network's
``indices``).  `read_selection` gives each network's share: ``clean`` is the fraction of the
selection it classifies correctly, and the robust accuracy at ε counts its misclassified images as
robust at no ε (so it starts at the clean accuracy).  Means and medians are over the images it
classifies correctly.

Pure pandas and matplotlib; reads the networks' ``.json`` metadata for the test accuracy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from advmilp.nn.architectures import STUDY_FOLDER, find_architecture
from advmilp.reporting.robustness import EXACT, EXCLUDED, LOWER, NORM_LABEL, curve, distance_rows
from advmilp.reporting.tables import render_text, to_markdown
from advmilp.spec.rows import INFEASIBLE

COLUMNS = ["network", "width", "depth", "dropout", "params", "test_acc", "clean", "attacked", "selected", "problem",
           "n", "proven", "none", "proven_pct",
           "mean", "median", "lower_bound", "upper_mean", "exact_mean", "mean_time_s"]
TITLE = ("Robustness study: proven minimal {norm} distance per network and problem (mean and median over the "
         "images; ≥: some instances timed out and count at their proven lower bound, so the figure is a lower "
         "bound; exact mean: over the proven instances only)")


def study_arch(name: str):
    """The study architecture called ``name``, or None for any other network."""
    arch = find_architecture(str(name))
    return arch if arch is not None and arch.folder == STUDY_FOLDER else None


def test_accuracy(name: str, models_dir: str | Path | None = None) -> float:
    """The test accuracy recorded beside the weights (nan when they are absent)."""
    from advmilp.nn.network import default_models_dir

    path = Path(models_dir or default_models_dir()) / f"{study_arch(name).weights_name}.json"
    try:
        return float(json.loads(path.read_text(encoding="utf-8")).get("test_accuracy", math.nan))
    except (OSError, ValueError, TypeError):
        return math.nan


def read_selection(run_dir: str | Path) -> dict[str, tuple[int, int]]:
    """{network name: (images selected, images it is attacked on)} of a run whose ``images.json``
    records a common selection (``correctly_classified: each``); {} otherwise."""
    try:
        record = json.loads((Path(run_dir) / "images.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    selected, indices = record.get("selected"), record.get("indices")
    if not isinstance(selected, list):
        return {}
    if isinstance(indices, dict):
        return {str(k): (len(selected), len(v)) for k, v in indices.items()}
    return {}


def study_rows(df: pd.DataFrame) -> pd.DataFrame:
    """`distance_rows` of the study networks, where an instance proven infeasible — no example at any
    distance — is ``exact`` at distance inf (the one place that says so; errors stay ``excluded``)."""
    d = distance_rows(df)
    if d.empty:
        return d
    infeasible = (d["status"] == INFEASIBLE).to_numpy()
    d = d.assign(distance=np.where(infeasible, np.inf, d["distance"]), how=np.where(infeasible, EXACT, d["how"]))
    return d[np.array([study_arch(n) is not None for n in d["network"]], dtype=bool)]


def study_table(df: pd.DataFrame, models_dir: str | Path | None = None,
                selection: dict[str, tuple[int, int]] | None = None) -> pd.DataFrame:
    """One row per (study network, problem) in grid order (width, depth, dropout); empty when the
    rows hold no study network.  ``selection`` (`read_selection`) adds each network's clean accuracy
    on the selected images and the number it is attacked on."""
    selection = selection or {}
    d = study_rows(df)
    if d.empty:
        return pd.DataFrame(columns=COLUMNS + ["norm"])
    accuracy = {net: test_accuracy(net, models_dir) for net in d["network"].unique()}
    rows = []
    for (net, problem, norm), g in d.groupby(["network", "problem", "norm"], sort=False):
        arch = study_arch(net)
        used = g[g["how"] != EXCLUDED]
        measured = used[np.isfinite(used["distance"].to_numpy(dtype=float))]   # infeasible ones have no distance
        exact = used[used["how"] == EXACT]
        finite_exact = measured[measured["how"] == EXACT]
        n_sel, n_att = selection.get(net, (math.nan, math.nan))
        n = len(g)
        rows.append(dict(network=net, width=arch.hidden[0], depth=len(arch.hidden), dropout=arch.dropout,
                         params=arch.n_parameters, test_acc=accuracy[net],
                         clean=n_att / n_sel if n_sel == n_sel else math.nan, attacked=n_att, selected=n_sel,
                         problem=problem, norm=norm, n=n, proven=len(exact), none=len(used) - len(measured),
                         proven_pct=100.0 * len(exact) / n,
                         mean=float(measured["distance"].mean()) if len(measured) else math.nan,
                         median=float(measured["distance"].median()) if len(measured) else math.nan,
                         lower_bound=bool((used["how"] == LOWER).any()), upper_mean=_upper_mean(measured),
                         exact_mean=float(finite_exact["distance"].mean()) if len(finite_exact) else math.nan,
                         mean_time_s=float(g["time_s"].mean())))
    t = pd.DataFrame(rows, columns=COLUMNS + ["norm"])
    return t.sort_values(["problem", "width", "depth", "dropout"], kind="stable").reset_index(drop=True)


def _upper_mean(used: pd.DataFrame) -> float:
    """The mean distance of the verified witnesses, if every instance has one (else nan)."""
    obj = pd.to_numeric(used["objective"], errors="coerce")
    ok = used["verified"].astype(bool) & obj.notna()
    return float(obj.mean()) if len(used) and ok.all() else math.nan


def _format(t: pd.DataFrame) -> pd.DataFrame:
    ge = np.where(t["lower_bound"], "≥ ", "")
    return pd.DataFrame({
        "network": t["network"], "width": t["width"].astype(str), "depth": t["depth"].astype(str),
        "dropout": t["dropout"].map(lambda v: f"{v:g}"), "params": t["params"].map(lambda v: f"{v:,}"),
        "test acc": t["test_acc"].map(lambda v: "" if v != v else f"{v:.4f}"),
        "problem": t["problem"].astype(str).str.split().str[0],
        "clean": [("" if c != c else f"{int(a)}/{int(s)}") for c, a, s in zip(t["clean"], t["attacked"], t["selected"])],
        "proven": [f"{p}/{n}" for p, n in zip(t["proven"], t["n"])],
        "none": t["none"].astype(str),
        "mean": [f"{g}{v:.3f}" for g, v in zip(ge, t["mean"])],
        "median": [f"{g}{v:.3f}" for g, v in zip(ge, t["median"])],
        "mean ≤": t["upper_mean"].map(lambda v: "" if v != v else f"{v:.3f}"),
        "exact mean": t["exact_mean"].map(lambda v: "" if v != v else f"{v:.3f}"),
        "time s": t["mean_time_s"].map(lambda v: f"{v:.2f}"),
    })


def study_report(df: pd.DataFrame, out_dir: str | Path | None = None, models_dir: str | Path | None = None,
                 selection: dict[str, tuple[int, int]] | None = None) -> str:
    """The study table as text ('' when the rows hold no study network); with ``out_dir``, also
    ``study.csv`` and ``study.md``.  ``clean``: images classified correctly of those selected (the
    ones attacked); ``proven``: instances proven optimal of those recorded."""
    t = study_table(df, models_dir, selection)
    if t.empty:
        return ""
    parts, md, wide_md = [], [], []
    for norm, g in t.groupby("norm", sort=False):
        title = TITLE.format(norm=NORM_LABEL[norm])
        wide = study_wide(g)
        parts.append(f"{WIDE_TITLE.format(norm=NORM_LABEL[norm])}\n\n{render_text(wide)}")
        md.append(f"**{title}**\n\n{to_markdown(_format(g))}\n")
        wide_md.append(f"**{WIDE_TITLE.format(norm=NORM_LABEL[norm])}**\n\n{to_markdown(wide)}\n")
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        t.to_csv(out / "study.csv", index=False)
        (out / "study.md").write_text("\n".join(md), encoding="utf-8")
        (out / "study_wide.md").write_text("\n".join(wide_md), encoding="utf-8")
    return "\n\n".join(parts)


WIDE_TITLE = ("Robustness study, one line per network: mean minimal {norm} distance per problem (proven/recorded "
              "instances; '≥ a ≤ b': some timed out, the true mean lies between a and b)")


def study_wide(t: pd.DataFrame) -> pd.DataFrame:
    """One line per network (strings): grid point, parameters, test accuracy, clean share of the
    selection, and per problem the proven count and the mean (a bracket when some instance timed out)."""
    f = _format(t).assign(_net=t["network"].to_numpy(), _kind=t["problem"].astype(str).str.split().str[0].to_numpy())
    rows = {}
    for r, (_, orig) in zip(f.to_dict("records"), t.iterrows()):
        line = rows.setdefault(r["_net"], {k: r[k] for k in ("network", "width", "depth", "dropout", "params",
                                                             "test acc", "clean")})
        mean = r["mean"] if not orig["lower_bound"] else \
            f"{r['mean']}" + (f" ≤ {orig['upper_mean']:.3f}" if orig["upper_mean"] == orig["upper_mean"] else "")
        line[f"{r['_kind']} proven"] = r["proven"] + (f" ({r['none']} none)" if r["none"] != "0" else "")
        line[f"{r['_kind']} mean"] = mean
    order = sorted(rows, key=lambda n: (study_arch(n).hidden[0], len(study_arch(n).hidden), study_arch(n).dropout))
    return pd.DataFrame([rows[n] for n in order]).fillna("")


# ---- figures ---------------------------------------------------------------------------------------
DEPTH_MARKERS = {1: "o", 2: "s", 3: "^"}


def _colours(dropouts) -> dict[float, tuple]:
    from matplotlib import colormaps

    values = sorted(set(dropouts))
    cmap = colormaps["viridis"]
    return {v: cmap(0.15 + 0.7 * i / max(1, len(values) - 1)) for i, v in enumerate(values)}


def save_study_figure(path, df: pd.DataFrame, models_dir=None, title: str = "", also_pdf: bool = True,
                      selection: dict[str, tuple[int, int]] | None = None) -> list[Path]:
    """Mean proven minimal distance against the number of parameters, one panel per problem (colour:
    dropout, marker: depth; hollow: a lower bound, some instances timed out), then test accuracy and
    the fraction proven optimal against the parameters.  [] when the rows hold no study network."""
    from advmilp.reporting import figures

    t = study_table(df, models_dir, selection)
    if t.empty:
        return []
    problems = list(dict.fromkeys(t["problem"]))
    colours = _colours(t["dropout"])
    fig = figures._figure(4.6 * (len(problems) + 2), 4.4)
    axes = fig.subplots(1, len(problems) + 2)

    def scatter(ax, g, y, hollow):
        for _, r in g.assign(_y=y, _h=hollow).iterrows():
            c = colours[r["dropout"]]
            ax.scatter(r["params"], r["_y"], marker=DEPTH_MARKERS.get(r["depth"], "D"), s=42,
                       facecolors="none" if r["_h"] else [c], edgecolors=[c], linewidths=1.3)

    for ax, problem in zip(axes, problems):
        g = t[t["problem"] == problem]
        scatter(ax, g, g["mean"], g["lower_bound"])
        for _, r in g[g["lower_bound"] & g["upper_mean"].notna()].iterrows():   # the bracket of the true mean
            ax.vlines(r["params"], r["mean"], r["upper_mean"], colors=[colours[r["dropout"]]], linewidth=1.0, alpha=0.7)
        ax.set_title(f"{problem}", fontsize=9)
        ax.set_ylabel(f"mean minimal {NORM_LABEL[g['norm'].iloc[0]]} distance\n(hollow + bar: timed out; the true "
                      "mean lies on the bar)")
    first = t[t["problem"] == problems[0]]
    scatter(axes[-2], first, first["test_acc"], np.zeros(len(first), bool))
    axes[-2].set_ylabel("test accuracy")
    axes[-2].set_title("test accuracy", fontsize=9)
    for problem, style in zip(problems, ("-", "--", ":")):
        g = t[t["problem"] == problem]
        scatter(axes[-1], g, g["proven_pct"], np.asarray(style != "-"))
    axes[-1].set_ylabel(f"% proven optimal ({problems[0].split()[0]} filled, others hollow)")
    axes[-1].set_ylim(-3, 103)
    axes[-1].set_title("% instances proven optimal", fontsize=9)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlim(t["params"].min() / 1.5, t["params"].max() * 1.5)
        ax.set_xlabel("parameters")
        ax.grid(True, alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=f"dropout {v:g}") for v, c in colours.items()]
    handles += [Line2D([], [], marker=m, linestyle="", color="grey", label=f"depth {d}")
                for d, m in DEPTH_MARKERS.items() if d in set(t["depth"])]
    axes[0].legend(handles=handles, fontsize=7, loc="best")
    n = int(t["n"].max())
    fig.suptitle(f"{title + ': ' if title else ''}width x depth x dropout vs proven robustness "
                 f"(up to {n} images per network and problem)", fontsize=10)
    return figures._save(fig, path, also_pdf)


def study_curve(distances, selected: int = 0, attacked: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """ε ↦ robust accuracy from one network's distances (inf: proven infeasible, robust at every ε);
    with ``selected`` images of which it was ``attacked`` on (classified correctly), its misclassified
    images are robust at no ε, so the curve is scaled by ``attacked / selected``."""
    dist = np.asarray(distances, dtype=float)
    finite = dist[np.isfinite(dist)]
    xs, ys = curve(finite)
    ys = (ys * len(finite) + (len(dist) - len(finite))) / max(1, len(dist))
    return xs, ys * attacked / selected if selected else ys


def save_study_curves(path, df: pd.DataFrame, title: str = "", also_pdf: bool = True,
                      selection: dict[str, tuple[int, int]] | None = None) -> list[Path]:
    """Robust accuracy against ε for every study network: one row of panels per problem, one panel per
    dropout rate, one curve per (width, depth) — colour: width, line style: depth; "≥" in the legend
    marks a curve with timed-out instances at their proven lower bound.  With ``selection``, a
    network's misclassified images count as robust at no ε (its curve starts at its clean accuracy)."""
    selection = selection or {}
    from advmilp.reporting import figures

    d = study_rows(df)
    d = d[d["how"] != EXCLUDED] if len(d) else d
    if d.empty:
        return []
    archs = {n: study_arch(n) for n in d["network"].unique()}
    d = d.assign(width=[archs[n].hidden[0] for n in d["network"]], depth=[len(archs[n].hidden) for n in d["network"]],
                 dropout=[archs[n].dropout for n in d["network"]])
    problems = list(dict.fromkeys(d["problem"]))
    dropouts = sorted(d["dropout"].unique())
    widths = sorted(d["width"].unique())
    from matplotlib import colormaps

    wc = {w: colormaps["plasma"](0.1 + 0.75 * i / max(1, len(widths) - 1)) for i, w in enumerate(widths)}
    styles = {1: "-", 2: "--", 3: ":"}
    fig = figures._figure(4.3 * len(dropouts) + 1.5, 3.6 * len(problems))
    axes = np.atleast_2d(fig.subplots(len(problems), len(dropouts), squeeze=False))
    for i, problem in enumerate(problems):
        for j, p in enumerate(dropouts):
            ax = axes[i, j]
            g = d[(d["problem"] == problem) & (d["dropout"] == p)]
            for (w, dep), h in g.groupby(["width", "depth"]):
                xs, ys = study_curve(h["distance"], *selection.get(h["network"].iloc[0], (0, 0)))
                low = "≥ " if (h["how"] == LOWER).any() else ""
                ax.step(xs, 100 * ys, where="post", color=wc[w], linestyle=styles.get(dep, "-."), linewidth=1.3,
                        alpha=0.35 if low else 1.0, label=f"{low}w{w} d{dep}")   # faded: only a lower bound
            ax.set_title(f"{problem.split()[0]}, dropout {p:g}", fontsize=9)
            ax.set_xlabel(f"ε (minimal {NORM_LABEL[g['norm'].iloc[0]] if len(g) else 'L1'} distance)")
            ax.set_ylabel("robust accuracy (%)")
            ax.set_ylim(0, 101)
            ax.set_xlim(left=0)
            ax.grid(True, alpha=0.3)
            if len(g):
                ax.legend(fontsize=6, loc="upper right", ncol=2)
    fig.suptitle(f"{title + ': ' if title else ''}robust accuracy vs ε per study network "
                 "(colour: width, line: depth; ≥ and faded: timed-out instances at their lower bound)", fontsize=10)
    return figures._save(fig, path, also_pdf)
