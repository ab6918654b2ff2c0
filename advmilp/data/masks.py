"""Probability masks (thesis §4 and Appendix A): per digit, the mean pixel value of its images.

``masks[c, j]`` is the average grey level of pixel j over the training images of label c, read
by the thesis as "the probability that input neuron j is activated in an image of digit c".
The CDH uses them for the constrained neighbourhood (``masks[d] > 0.01``) and for the guided
random perturbation (``masks[d] > p_h`` → set to 1, ``masks[d] < p_l`` → set to 0), where d is
the false label.

On disk: an ``.npz`` with the array ``masks`` (10, 784) and ``counts`` (images per label), and
optionally a 2×5 PNG grid for the eye (matplotlib, Agg backend, imported only when drawing).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from advmilp.errors import AdvmilpError

N_LABELS = 10
N_PIXELS = 784


def compute_masks(train_split, n_labels: int = N_LABELS) -> np.ndarray:
    """Per label, the mean of its images' pixels: an array (n_labels, n_pixels) in [0, 1].

    ``train_split`` is a `data.Split` (or anything with ``images`` (n, 784) in [0, 1] and
    ``labels`` (n,)).  A label with no image raises: its mask would be undefined.
    """
    images = np.asarray(train_split.images, dtype=np.float64)
    labels = np.asarray(train_split.labels).reshape(-1)
    if images.ndim != 2 or len(images) != len(labels):
        raise AdvmilpError(f"masks need images (n, pixels) and n labels; got {images.shape} and {labels.shape}")
    counts = np.bincount(labels, minlength=n_labels)[:n_labels]
    if np.any(counts == 0):
        missing = [int(c) for c in np.flatnonzero(counts == 0)]
        raise AdvmilpError(f"no training image with label(s) {missing}: cannot compute their masks")
    sums = np.zeros((n_labels, images.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, images)
    return sums / counts[:, None]


def save_masks(masks: np.ndarray, path_npz: str | os.PathLike, png_path: str | os.PathLike | None = None,
               counts: np.ndarray | None = None) -> Path:
    """Write the masks to ``path_npz`` (atomically) and, if asked, a 2×5 PNG grid."""
    masks = _check(np.asarray(masks, dtype=np.float64), str(path_npz))
    path = Path(path_npz)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"masks": masks}
    if counts is not None:
        arrays["counts"] = np.asarray(counts, dtype=np.int64)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    if png_path is not None:
        draw_masks(masks, png_path)
    return path


def draw_masks(masks: np.ndarray, png_path: str | os.PathLike) -> Path:
    """A 2×5 grid of the 28×28 masks, gray colormap on 0..1, one titled panel per digit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    masks = np.asarray(masks, dtype=np.float64)
    side = int(round(np.sqrt(masks.shape[1])))
    fig, axes = plt.subplots(2, 5, figsize=(10, 4.4))
    for c, ax in enumerate(axes.ravel()):
        if c < len(masks):
            ax.imshow(masks[c].reshape(side, side), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_title(f"digit {c}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def load_masks(path: str | os.PathLike) -> np.ndarray:
    """The (10, 784) masks saved by `save_masks`; raises AdvmilpError if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise AdvmilpError(f"{path}: mask file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            masks = np.asarray(data["masks"], dtype=np.float64)
    except Exception as exc:
        raise AdvmilpError(f"{path}: unreadable mask file ({type(exc).__name__}: {exc})") from exc
    return _check(masks, str(path))


def get_masks(path: str | os.PathLike, data_dir: str | os.PathLike | None = None,
              png_path: str | os.PathLike | None = None) -> np.ndarray:
    """Masks from ``path`` if it exists, else computed from the MNIST training split and saved."""
    path = Path(path)
    if path.is_file():
        return load_masks(path)
    from advmilp.data.mnist import load_split

    train = load_split("train", data_dir)
    masks = compute_masks(train)
    save_masks(masks, path, png_path, counts=np.bincount(train.labels, minlength=N_LABELS))
    return masks


def _check(masks: np.ndarray, where: str) -> np.ndarray:
    if masks.ndim != 2 or masks.shape[0] != N_LABELS:
        raise AdvmilpError(f"{where}: masks must have shape ({N_LABELS}, pixels), got {masks.shape}")
    if not np.all(np.isfinite(masks)) or masks.min() < 0 or masks.max() > 1:
        raise AdvmilpError(f"{where}: mask values must be finite and in [0, 1]")
    return masks
