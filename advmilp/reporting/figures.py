"""Thesis-style figures of MNIST images and adversarial examples (matplotlib, Agg).

Colour conventions, identical in every figure:

* images use ``IMAGE_CMAP`` ("gray") with fixed limits 0..1, so 0 is black and 1 white,
  exactly the pixel values the MILP sees (no per-image rescaling);
* perturbations ``x_adv - x_bar`` use the diverging ``DELTA_CMAP`` ("RdBu_r") with
  symmetric limits ``[-m, m]``, ``m = max|delta|``, so white is "unchanged", red is
  "ink added" and blue "ink removed", with a colorbar.

* counts of how often a pixel was perturbed (thesis Fig. 5) use the sequential
  ``COUNTS_CMAP`` ("viridis") from 0 to the largest count, one scale shared by all panels.

Run-level figures read result rows (``results/<name>/instances.csv``, through
`advmilp.reporting.tables.load_rows`): ``save_cactus`` (solved
instances against the time limit) and ``save_run_gallery`` (every verified witness).
``save_comparison`` shows adversarial images with free captions (thesis Fig. 7).

Every ``save_*`` function writes a PNG; it also writes a PDF when the given path ends in
``.pdf`` or ``also_pdf=True``.  Both files share the stem of ``path``; parent directories
are created.  The return value is the list of written paths, PNG first.

matplotlib is imported inside the functions, so ``import advmilp.reporting.figures`` is cheap.
Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot global state).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

IMAGE_CMAP = "gray"
DELTA_CMAP = "RdBu_r"
COUNTS_CMAP = "viridis"
SIDE = 28
PANEL_INCHES = 2.2
DPI = 150


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _as_image(x, name: str = "image") -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.size != SIDE * SIDE:
        raise ValueError(f"{name}: expected {SIDE * SIDE} pixels, got {arr.size}")
    return arr.reshape(SIDE, SIDE)


def _targets(path: str | os.PathLike, also_pdf: bool) -> list[Path]:
    path = Path(path)
    pdf = also_pdf or path.suffix.lower() == ".pdf"
    out = [path.with_suffix(".png")]
    if pdf:
        out.append(path.with_suffix(".pdf"))
    return out


def _save(fig, path: str | os.PathLike, also_pdf: bool) -> list[Path]:
    written = []
    for target in _targets(path, also_pdf):
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=DPI)
        written.append(target)
    return written


def _show_image(ax, img: np.ndarray, title: str) -> None:
    ax.imshow(img, cmap=IMAGE_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _show_delta(fig, ax, delta: np.ndarray, title: str) -> None:
    m = max(float(np.max(np.abs(delta))), 1e-6)
    im = ax.imshow(delta, cmap=DELTA_CMAP, vmin=-m, vmax=m, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.ax.tick_params(labelsize=7)


def _triplet(fig, axes, x_bar, x_adv, label, predicted, l1) -> None:
    orig = _as_image(x_bar, "x_bar")
    adv = _as_image(x_adv, "x_adv")
    _show_image(axes[0], orig, f"original: label {label}")
    _show_delta(fig, axes[1], adv - orig, f"perturbation (L1 {_fmt(l1)})")
    _show_image(axes[2], adv, f"adversarial: predicted {predicted}")


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def save_adversarial(path: str | os.PathLike, x_bar, x_adv, label, target, predicted, l1,
                     title_extra: str = "", also_pdf: bool = False) -> list[Path]:
    """Original | perturbation | adversarial, side by side (images are flat 784-vectors)."""
    fig = _figure(3 * PANEL_INCHES + 0.6, PANEL_INCHES + 0.5)
    axes = fig.subplots(1, 3)
    _triplet(fig, axes, x_bar, x_adv, label, predicted, l1)
    parts = [] if target is None else [f"target {target}"]
    if title_extra:
        parts.append(str(title_extra))
    if parts:
        fig.suptitle(", ".join(parts), fontsize=10)
    return _save(fig, path, also_pdf)


def save_feature(path: str | os.PathLike, x, title: str, also_pdf: bool = False) -> list[Path]:
    """One image in gray 0..1 (thesis Fig. 2/3 style)."""
    fig = _figure(PANEL_INCHES + 0.4, PANEL_INCHES + 0.5)
    ax = fig.subplots(1, 1)
    _show_image(ax, _as_image(x, "x"), title)
    return _save(fig, path, also_pdf)


def _caption(item: Mapping) -> str:
    text = f"{item['name']}: " if item.get("name") else ""
    text += f"label {item.get('label')}"
    if item.get("target") is not None:
        text += f" \u2192 target {item['target']}"
    if item.get("predicted") is not None:
        text += f", predicted {item['predicted']}"
    text += f" | L1 {_fmt(item.get('l1'))}"
    if item.get("time_s") is not None:
        text += f" | {_fmt(item['time_s'], 1)} s"
    return text


def save_gallery(path: str | os.PathLike, items: Iterable[Mapping], ncols: int = 1,
                 title: str = "", also_pdf: bool = False) -> list[Path]:
    """A grid of (original | perturbation | adversarial) rows, ``ncols`` triplets per grid row.

    Each item is a mapping with keys ``x_bar``, ``x_adv``, ``label``, ``l1`` and optionally
    ``target``, ``predicted`` (defaults to ``target``), ``time_s`` and ``name`` (a prefix);
    its caption shows the labels, the L1 distance and the solve time.
    """
    items = list(items)
    if not items:
        raise ValueError("save_gallery: no items")
    ncols = max(1, min(int(ncols), len(items)))
    nrows = -(-len(items) // ncols)
    fig = _figure(ncols * (3 * PANEL_INCHES + 0.6), nrows * (PANEL_INCHES + 0.7))
    subfigs = np.atleast_1d(fig.subfigures(nrows, ncols, squeeze=False)).ravel()
    for i, sub in enumerate(subfigs):
        if i >= len(items):
            continue
        item = items[i]
        predicted = item.get("predicted", item.get("target"))
        axes = sub.subplots(1, 3)
        _triplet(sub, axes, item["x_bar"], item["x_adv"], item.get("label"), predicted,
                 item.get("l1"))
        sub.suptitle(_caption(item), fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path, also_pdf)


# ---- run-level figures ---------------------------------------------------------------------------
GROUP_COLUMNS = ("network", "method", "bounds")


def _present(value) -> bool:
    return value is not None and str(value).strip() not in ("", "nan", "None")


def _group_name(key) -> str:
    key = key if isinstance(key, tuple) else (key,)
    return " ".join(str(k) for k in key if _present(k))


def save_cactus(path: str | os.PathLike, df, title: str = "", also_pdf: bool = False) -> list[Path]:
    """Instances solved within time t against t (log x), one step line per (network, method, bounds).

    ``df`` is a DataFrame (or list of row dicts) with ``status``, ``verified`` and ``time_s``; a
    row is solved when `advmilp.spec.rows.is_solved` says so.  The legend shows solved/total per group.
    """
    import pandas as pd

    from advmilp.reporting.tables import solved_mask

    df = pd.DataFrame(df).copy()
    for col in GROUP_COLUMNS:
        df[col] = df[col].fillna("").astype(str) if col in df else ""
    df["_solved"] = solved_mask(df)
    df["_t"] = pd.to_numeric(df["time_s"], errors="coerce")
    fig = _figure(8.0, 4.2)
    ax = fig.subplots(1, 1)
    solved_times = df.loc[df["_solved"], "_t"].dropna()
    t_max = float(solved_times.max()) if len(solved_times) else 1.0
    if "time_limit" in df:
        limits = pd.to_numeric(df["time_limit"], errors="coerce").dropna()
        t_max = max(t_max, float(limits.max()) if len(limits) else t_max)
    for key, group in df.groupby(list(GROUP_COLUMNS), sort=True):
        times = np.sort(np.maximum(group.loc[group["_solved"], "_t"].dropna().to_numpy(float), 1e-3))
        label = f"{_group_name(key)} ({len(times)}/{len(group)})"
        if len(times) == 0:
            ax.plot([], [], label=label)
            continue
        xs = np.append(times, max(t_max, times[-1]))
        ys = np.append(np.arange(1, len(times) + 1), len(times))
        ax.step(xs, ys, where="post", label=label, linewidth=1.5)
    ax.set_xscale("log")
    ax.set_xlabel("time limit t (s)")
    ax.set_ylabel("instances solved within t")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    if not len(solved_times):
        ax.text(0.5, 0.5, "no solved instances", transform=ax.transAxes, ha="center")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_title(title or "solved instances (optimal or found, verified)", fontsize=10)
    return _save(fig, path, also_pdf)


def witness_rows(df, run_dir: str | os.PathLike):
    """Verified, solved rows whose witness file exists, sorted by network, method, bounds, image."""
    from advmilp.reporting.tables import solved_mask

    run_dir = Path(run_dir)
    df = df[solved_mask(df)]
    if "witness" not in df:
        return df.iloc[0:0]
    df = df[df["witness"].map(lambda w: _present(w) and (run_dir / str(w)).is_file())]
    return df.sort_values([c for c in (*GROUP_COLUMNS, "image_index") if c in df], kind="stable")


def _int_or_none(value):
    return int(float(value)) if _present(value) else None


def save_run_gallery(path: str | os.PathLike, run_dir: str | os.PathLike, split_images, max_items: int = 24,
                     also_pdf: bool = False) -> list[Path]:
    """Every verified witness of a run (up to ``max_items``) via `save_gallery`; [] if there is none.

    The original image is ``split_images[image_index]`` (an (N, 784) array or a ``Split``).
    """
    from advmilp.reporting.tables import load_rows

    images = getattr(split_images, "images", split_images)
    rows = witness_rows(load_rows(run_dir), run_dir)
    items = []
    for _, r in rows.head(max_items).iterrows():
        x_bar = np.asarray(images[int(r["image_index"])], dtype=np.float64)
        x_adv = np.load(Path(run_dir) / str(r["witness"]))
        items.append({"x_bar": x_bar, "x_adv": x_adv, "label": _int_or_none(r.get("label")),
                      "target": _int_or_none(r.get("target")), "predicted": _int_or_none(r.get("predicted")),
                      "l1": float(np.abs(x_adv - x_bar).sum()), "time_s": r.get("time_s"),
                      "name": f"{r.get('network')} {r.get('method')}/{r.get('bounds')} #{int(r['image_index'])}"})
    if not items:
        return []
    ncols = 1 if len(items) <= 4 else 2 if len(items) <= 12 else 3
    title = f"{Path(run_dir).name}: {len(items)} of {len(rows)} verified adversarial examples"
    return save_gallery(path, items, ncols=ncols, title=title, also_pdf=also_pdf)


def save_count_maps(path: str | os.PathLike, counts: list, titles: list[str], suptitle: str = "",
                    also_pdf: bool = False) -> list[Path]:
    """Side-by-side 28x28 maps of per-pixel counts, one shared 0..max scale and colorbar."""
    if not counts:
        raise ValueError("save_count_maps: no count arrays")
    maps = [_as_image(c, "counts") for c in counts]
    vmax = max(1.0, max(float(m.max()) for m in maps))
    fig = _figure(len(maps) * (PANEL_INCHES + 0.4) + 0.8, PANEL_INCHES + 0.9)
    axes = np.atleast_1d(fig.subplots(1, len(maps)))
    for ax, m, t in zip(axes, maps, titles):
        im = ax.imshow(m, cmap=COUNTS_CMAP, vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(t, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    cbar = fig.colorbar(im, ax=list(axes), fraction=0.046, pad=0.04)
    cbar.set_label("times perturbed", fontsize=8)
    cbar.ax.tick_params(labelsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return _save(fig, path, also_pdf)


def save_perturbation_counts(path: str | os.PathLike, counts_complete, counts_constrained, titles,
                             also_pdf: bool = False) -> list[Path]:
    """Thesis Fig. 5: how often each pixel was perturbed, complete vs constrained neighbourhood.

    ``counts_constrained`` may be None (one panel).  ``titles`` gives one caption per panel.
    """
    counts = [counts_complete] + ([] if counts_constrained is None else [counts_constrained])
    return save_count_maps(path, counts, list(titles), also_pdf=also_pdf)


def _comparison_grid(rows, ncols: int) -> list[list]:
    rows = list(rows)
    if not rows:
        raise ValueError("save_comparison: no items")
    first = rows[0]
    is_item = isinstance(first, Mapping) or (len(first) == 2 and isinstance(first[1], str))
    if is_item:
        return [rows[i:i + ncols] for i in range(0, len(rows), ncols)]
    return [list(r) for r in rows]


def save_comparison(path: str | os.PathLike, rows, ncols: int = 2, title: str = "",
                    also_pdf: bool = False) -> list[Path]:
    """Thesis Fig. 7: adversarial images in a grid, each with its own caption.

    ``rows`` is a flat list of items ``(x_adv, caption)`` (laid out ``ncols`` per row) or a
    list of rows of such items; an item may also be a mapping with ``x_adv`` and ``caption``.
    """
    grid = _comparison_grid(rows, ncols)
    width = max(len(r) for r in grid)
    fig = _figure(width * (PANEL_INCHES + 0.3), len(grid) * (PANEL_INCHES + 0.5))
    axes = np.asarray(fig.subplots(len(grid), width, squeeze=False))
    for i, row in enumerate(grid):
        for j in range(width):
            ax = axes[i, j]
            if j >= len(row):
                ax.axis("off")
                continue
            item = row[j]
            x_adv, caption = (item["x_adv"], item.get("caption", "")) if isinstance(item, Mapping) else item
            _show_image(ax, _as_image(x_adv, "x_adv"), str(caption))
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path, also_pdf)


def save_digit_gallery(path: str | os.PathLike, images: list, titles: list[str], suptitle: str = "",
                       ncols: int = 5, also_pdf: bool = False) -> list[Path]:
    """One gray 0..1 panel per image (None: an empty panel), ``ncols`` per row, each with its title:
    the "most ideal digits" (one input per output unit)."""
    if not images:
        raise ValueError("save_digit_gallery: no images")
    ncols = max(1, min(int(ncols), len(images)))
    nrows = -(-len(images) // ncols)
    fig = _figure(ncols * (PANEL_INCHES * 0.8 + 0.2), nrows * (PANEL_INCHES * 0.8 + 0.5) + 0.3)
    axes = np.asarray(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        if i >= len(images) or images[i] is None:
            ax.axis("off")
            if i < len(titles):
                ax.set_title(titles[i], fontsize=8)
            continue
        _show_image(ax, _as_image(images[i], "x"), titles[i] if i < len(titles) else "")
        ax.title.set_fontsize(8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return _save(fig, path, also_pdf)


def save_norms(path: str | os.PathLike, x_bar, items: list[Mapping], suptitle: str = "",
               also_pdf: bool = False) -> list[Path]:
    """One image attacked under several norms, side by side: the original, then per item (keys
    ``norm``, ``x``, ``value``, ``predicted``, ``status``) its perturbation above its adversarial image."""
    n = len(items)
    fig = _figure((n + 1) * PANEL_INCHES + 0.6 * n, 2 * PANEL_INCHES + 0.8)
    axes = fig.subplots(2, n + 1, squeeze=False)
    orig = _as_image(x_bar, "x_bar")
    _show_image(axes[0][0], orig, "original")
    axes[1][0].axis("off")
    for j, item in enumerate(items, start=1):
        adv = _as_image(item["x"], "x")
        value = item["value"]
        shown = f"{int(round(value))} pixels" if item["norm"] == "l0" else _fmt(value, 4)
        _show_delta(fig, axes[0][j], adv - orig, f"min {item['norm']}: {shown} ({item['status']})")
        _show_image(axes[1][j], adv, f"predicted {item['predicted']}")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return _save(fig, path, also_pdf)
