"""The thesis' figures (§5.1.1 Figs. 2–3, §5.1.2 Fig. 4, §5.2.1 Fig. 5, §5.3 Fig. 7), made here.

This module runs the few solves the figures need, then draws them with `figures`:

* `make_feature_figures` — Fig. 2 (inputs maximising hidden units) and Fig. 3 (DNN1 output
  unit 1, "simple" vs "diff" objective), each an exact feature-visualisation MILP over the box
  [0, 1]^784 (`FEATURE_CASES` lists the units).  The units were picked as follows: the thesis
  names no units for Fig. 2, so 2a/2b are unit 0 of DNN1's first and second hidden layers; 2c
  is DNN4 (thesis: "improved model with weak bounds, solved to optimality in seconds") layer 4
  unit 0, a deep unit HiGHS proves optimal in ~6 s with the cached weak bounds (layers 3 and 5
  hit a 20 s limit).  Each optimal input is also saved as ``<name>.npy``.
* `make_adversarial_figure` — Fig. 4: a DNN1 adversarial example for one test image, without
  and with the per-pixel cap |δ_j| ≤ 0.2 (Fig. 4c), by the exact method ``tight`` with interval
  ("basic") bounds; the capped instance uses interval bounds over the capped box, which are
  valid (and tighter) for it.
* `make_run_figures` — from a finished run ``results/<name>/``: the cactus plot, the gallery of
  verified witnesses, the Fig. 5 heatmap of per-pixel perturbation counts of heuristic runs
  (``witnesses/<slug>.counts.npy``, summed over the verified instances of each method) and a
  Fig. 7 style MILP-vs-CDH comparison when the run has both on the same images.

Every figure is written as PNG and PDF (the PDF for papers); every function returns the written
paths (PNG first for each figure).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from advmilp.errors import AdvmilpError
from advmilp.reporting import figures
from advmilp.reporting.tables import load_rows

# (figure name, network, bounds method, ProblemSpec keyword arguments, title)
FEATURE_CASES = (
    ("fig2a_dnn1_layer1_unit0", "dnn1", "basic", dict(layer=1, unit=0), "DNN1 layer 1, unit 0"),
    ("fig2b_dnn1_layer2_unit0", "dnn1", "basic", dict(layer=2, unit=0), "DNN1 layer 2, unit 0"),
    ("fig2c_dnn4_layer4_unit0", "dnn4", "weak", dict(layer=4, unit=0), "DNN4 layer 4, unit 0 (weak bounds)"),
    ("fig3a_dnn1_output1_simple", "dnn1", "basic", dict(objective="simple", unit=1), "DNN1 output 1, simple"),
    ("fig3b_dnn1_output1_diff", "dnn1", "basic", dict(objective="diff", unit=1), "DNN1 output 1, diff"),
)
FIG4_CAP = 0.2


def _solver(time_limit: float):
    from advmilp.methods.milp import SolverSettings

    return SolverSettings(time_limit=float(time_limit))


def make_feature_figures(out_dir, models_dir=None, time_limit: float = 60, cache_dir=None,
                         cases=FEATURE_CASES) -> tuple[list[Path], dict[str, float]]:
    """Figs. 2 and 3.  Returns (written paths, {figure name: objective value}).

    Each optimal (or best found, status in the title) input goes to ``<out_dir>/<name>.png`` and
    ``<name>.npy``; weak bounds come from the bounds cache (computed and cached if absent).
    """
    from advmilp.methods.milp import run_instance
    from advmilp.bounds.compute import get_bounds, interval_bounds
    from advmilp.nn.network import load_network
    from advmilp.spec.problems import ProblemSpec

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nets, bounds, paths, values = {}, {}, [], {}
    for name, net_name, method, kwargs, title in cases:
        if net_name not in nets:
            nets[net_name] = load_network(net_name, models_dir)
        net = nets[net_name]
        if (net_name, method) not in bounds:
            bounds[(net_name, method)] = (interval_bounds(net) if method == "basic"
                                          else get_bounds(net, method, cache_dir=cache_dir)[0])
        res = run_instance(net, bounds[(net_name, method)], ProblemSpec("feature", **kwargs), _solver(time_limit))
        row = res.row
        if res.witness is None:
            warnings.warn(f"{name}: no solution within {time_limit:g} s ({row['status']})", stacklevel=2)
            continue
        values[name] = float(row["objective"])
        npy = out_dir / f"{name}.npy"
        np.save(npy, res.witness)
        caption = f"{title}\nmax {values[name]:.2f} ({row['status']}, {row['time_s']:.1f} s)"
        paths += figures.save_feature(out_dir / f"{name}.png", res.witness, caption, also_pdf=True)
        paths.append(npy)
    return paths, values


def make_adversarial_figure(out_dir, image_index: int = 0, data_dir=None, time_limit: float = 60,
                            models_dir=None, network: str = "dnn1",
                            method: str = "tight") -> tuple[list[Path], dict[str, dict]]:
    """Fig. 4: targeted adversarial examples for test image ``image_index``, unbounded and capped.

    Returns (written paths, {"unbounded"|"capped": {"x_bar", "x_adv", "row"}}); ``x_adv`` is the
    verified witness (None, and no figure, if the solve found none).
    """
    from advmilp.bounds.compute import interval_bounds
    from advmilp.data.mnist import load_split
    from advmilp.nn.network import load_network
    from advmilp.methods.registry import load_inputs, run_method
    from advmilp.spec.problems import ProblemSpec

    out_dir = Path(out_dir)
    net = load_network(network, models_dir)
    test = load_split("test", data_dir)
    x_bar, label = test.images[image_index], int(test.labels[image_index])
    inputs = load_inputs(method, data_dir)
    paths, results = [], {}
    for key, cap in (("unbounded", None), ("capped", FIG4_CAP)):
        spec = ProblemSpec("targeted", linf_cap=cap)
        lo, up = (0.0, 1.0) if cap is None else (np.maximum(0.0, x_bar - cap), np.minimum(1.0, x_bar + cap))
        res = run_method(method, net, interval_bounds(net, lo, up), spec, _solver(time_limit), x_bar, label,
                         image_index, inputs)
        row = res.row
        x_adv = res.witness if res.witness is not None and row.get("verified") else None
        results[key] = {"x_bar": x_bar, "x_adv": x_adv, "row": row}
        if x_adv is None:
            warnings.warn(f"fig4 {key}: no verified adversarial example ({row['status']})", stacklevel=2)
            continue
        extra = f"{net.name.upper()}, {method}, {row['status']}, {row['time_s']:.1f} s"
        if cap is not None:
            extra += f", |\u03b4| \u2264 {cap:g}"
        stem = f"fig4_{net.name}_image{image_index}_{key if cap is None else f'linf{cap:g}'}"
        paths += figures.save_adversarial(out_dir / f"{stem}.png", x_bar, x_adv, label, row["target"],
                                          row["predicted"], row["l1"], title_extra=extra, also_pdf=True)
    return paths, results


def _counts_path(run_dir: Path, witness: str) -> Path:
    """``witnesses/<slug>.npy`` → ``<run_dir>/witnesses/<slug>.counts.npy``."""
    w = str(witness)
    return run_dir / ((w[: -len(".npy")] if w.endswith(".npy") else w) + ".counts.npy")


def _count_groups(df, run_dir: Path) -> dict[str, dict]:
    """Summed counts per method (network-qualified when the run has several networks)."""
    several = df["network"].nunique() > 1 if "network" in df else False
    groups: dict[str, dict] = {}
    for _, r in df.iterrows():
        path = _counts_path(run_dir, r["witness"])
        if not path.is_file():
            continue
        name = f"{r['network']} {r['method']}" if several else str(r["method"])
        g = groups.setdefault(name, {"counts": np.zeros(figures.SIDE * figures.SIDE), "times": [], "objs": []})
        g["counts"] += np.load(path).reshape(-1)
        g["times"].append(float(r["time_s"]))
        g["objs"].append(float(r["objective"]))
    return groups


def _comparison_items(df, run_dir: Path, max_images: int = 2) -> list[list]:
    """Fig. 7: images solved by both an exact method and cdh — the best and the worst cdh/exact ratio."""
    method = df["method"].astype(str)
    exact = df[method.isin(("milp", "tight"))].drop_duplicates(["network", "image_index"])
    cdh = df[method.str.startswith("cdh")].drop_duplicates(["network", "image_index"])
    both = exact.merge(cdh, on=["network", "image_index"], suffixes=("_e", "_c"))
    if both.empty:
        return []
    both = both.assign(_r=both["objective_c"].astype(float) / both["objective_e"].astype(float)).sort_values("_r")
    picks = both.iloc[[0, -1]].drop_duplicates(["network", "image_index"]).head(max_images)
    grid = []
    for _, r in picks.iterrows():
        grid.append([(np.load(run_dir / str(r[f"witness_{s}"])),
                      f"{str(r[f'method_{s}']).upper()} ({r['network']} #{int(r['image_index'])}): "
                      f"time {float(r[f'time_s_{s}']):.1f} s, obj {float(r[f'objective_{s}']):.1f}")
                     for s in ("e", "c")])
    return grid


def make_run_figures(run_dir, out_dir, data_dir=None) -> list[Path]:
    """Cactus plot, witness gallery, Fig. 5 count maps and Fig. 7 comparison of one run."""
    import json

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not (run_dir / "instances.csv").is_file():
        raise AdvmilpError(f"{run_dir}: no instances.csv (run 'advmilp attack --config ...' first)")
    df = load_rows(run_dir)
    paths = figures.save_cactus(out_dir / "cactus.png", df, title=f"{run_dir.name}: solved within t", also_pdf=True)
    solved = figures.witness_rows(df, run_dir)
    if solved.empty:
        return paths
    split = "test"
    if (run_dir / "images.json").is_file():
        split = json.loads((run_dir / "images.json").read_text()).get("split", "test")
    try:
        from advmilp.data.mnist import load_split

        images = load_split(split, data_dir).images
    except AdvmilpError as exc:
        warnings.warn(f"gallery skipped: {exc}", stacklevel=2)
    else:
        paths += figures.save_run_gallery(out_dir / "gallery.png", run_dir, images, also_pdf=True)
    groups = _count_groups(solved, run_dir)
    if groups:
        names = sorted(groups)
        # thesis Fig. 5: complete vs constrained neighbourhood, when the run has both; else a few
        fig5 = [n for n in names if n.endswith(("-complete", "-none", "-constrained"))]
        names = fig5[:2] if len(fig5) >= 2 else names[:4]
        titles = [f"{n}: time(s) = {np.mean(groups[n]['times']):.2f}, obj = {np.mean(groups[n]['objs']):.2f}"
                  f"\n(sum of {len(groups[n]['times'])} instances)" for n in names]
        paths += figures.save_count_maps(out_dir / "perturbation_counts.png", [groups[n]["counts"] for n in names],
                                         titles, suptitle=f"{run_dir.name}: how often each pixel was perturbed",
                                         also_pdf=True)
    grid = _comparison_items(solved, run_dir)
    if grid:
        paths += figures.save_comparison(out_dir / "comparison.png", grid,
                                         title=f"{run_dir.name}: exact MILP vs CDH", also_pdf=True)
    return paths
