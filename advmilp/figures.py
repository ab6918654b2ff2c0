"""Thesis-style figures of MNIST images and adversarial examples (matplotlib, Agg).

Colour conventions, identical in every figure:

* images use ``IMAGE_CMAP`` ("gray") with fixed limits 0..1, so 0 is black and 1 white,
  exactly the pixel values the MILP sees (no per-image rescaling);
* perturbations ``x_adv - x_bar`` use the diverging ``DELTA_CMAP`` ("RdBu_r") with
  symmetric limits ``[-m, m]``, ``m = max|delta|``, so white is "unchanged", red is
  "ink added" and blue "ink removed", with a colorbar.

Every ``save_*`` function writes a PNG; it also writes a PDF when the given path ends in
``.pdf`` or ``also_pdf=True``.  Both files share the stem of ``path``; parent directories
are created.  The return value is the list of written paths, PNG first.

matplotlib is imported inside the functions, so ``import advmilp.figures`` is cheap.
Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot global state).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

IMAGE_CMAP = "gray"
DELTA_CMAP = "RdBu_r"
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
    text = f"label {item.get('label')}"
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
    ``target``, ``predicted`` (defaults to ``target``) and ``time_s``; its caption shows the
    labels, the L1 distance and the solve time.
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
