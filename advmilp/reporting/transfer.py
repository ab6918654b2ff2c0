"""Transfer of adversarial perturbations (notebook §1.8, issue 18 §3): does a batch's minimal δ fool
other images and other networks?

Each verified witness of a batch gives a perturbation δ = witness − x̄ (x̄ the instance's image).
`transfer_table` adds δ to other images x (clipped to [0, 1]) and evaluates networks on them with
numpy forward passes only:

* **same image** — is x̄ + δ still adversarial on another network: its prediction differs from the
  network's prediction of x̄ (``same_fooled``), or equals the δ's target (``same_target``);
* **other images** — over the evaluation images other than x̄: the fraction whose prediction
  changes (``fooled``: untargeted fooling), and, among those not already predicted as the δ's
  target, the fraction sent to it (``to_target``; blank for δs without a target);
* **control** — the same δ with its pixels shuffled (the same values at random positions: the same
  L1 size before clipping), ``control_fooled``: how much of ``fooled`` any perturbation of that size
  would achieve.

`summarise` aggregates the per-δ rows by (source network, evaluated network, norm): the mean of
each rate over the δs, in percent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from advmilp.errors import AdvmilpError
from advmilp.nn.network import Network

PAIR = ["from", "to", "norm"]
RATES = ["same_fooled", "same_target", "fooled", "to_target", "control_fooled"]


@dataclass(frozen=True)
class Delta:
    """One perturbation of a batch: its source network, image, target (None: untargeted) and norm."""

    network: str
    image_index: int
    target: int | None
    norm: str
    delta: np.ndarray
    x_bar: np.ndarray       # the image the δ was found for


def apply(delta: np.ndarray, images: np.ndarray) -> np.ndarray:
    """x + δ for every row x of ``images``, clipped to the pixel range [0, 1]."""
    return np.clip(np.asarray(images, dtype=np.float64) + np.asarray(delta, dtype=np.float64).reshape(1, -1), 0.0, 1.0)


def shuffled(delta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The control perturbation: δ's values at random pixel positions."""
    return rng.permutation(np.asarray(delta, dtype=np.float64).reshape(-1))


def rates(net: Network, delta: np.ndarray, x_bar: np.ndarray, images: np.ndarray, clean: np.ndarray,
          target: int | None, control: np.ndarray | None = None) -> dict[str, float]:
    """The rates of one δ on one network (see the module docstring).  ``images`` exclude x̄;
    ``clean`` is ``net.predict(images)``."""
    own_clean = int(net.predict(np.asarray(x_bar, dtype=np.float64)))
    own_adv = int(net.predict(apply(delta, x_bar[None, :]))[0])
    adv = net.predict(apply(delta, images)) if len(images) else np.zeros(0, dtype=int)
    out = {"same_fooled": float(own_adv != own_clean),
           "same_target": float(own_adv == target) if target is not None else np.nan,
           "fooled": float(np.mean(adv != clean)) if len(images) else np.nan,
           "to_target": np.nan, "control_fooled": np.nan}
    if target is not None:
        eligible = clean != target
        out["to_target"] = float(np.mean(adv[eligible] == target)) if eligible.any() else np.nan
    if control is not None and len(images):
        out["control_fooled"] = float(np.mean(net.predict(apply(control, images)) != clean))
    return out


def transfer_table(deltas: list[Delta], nets: dict[str, Network], images: np.ndarray, image_ids: np.ndarray | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per (δ, evaluated network): from, to, norm, image_index, target, l1 (of δ), the rates.

    ``images`` (N, n) are the evaluation images with their indices ``image_ids`` (default 0..N−1): a δ's own image is left out."""
    images = np.asarray(images, dtype=np.float64)
    ids = np.arange(len(images)) if image_ids is None else np.asarray(image_ids)
    clean = {name: net.predict(images) for name, net in nets.items()}
    rng = np.random.default_rng(seed)
    rows = []
    for d in deltas:
        keep = ids != d.image_index
        control = shuffled(d.delta, rng)
        for name, net in nets.items():
            r = rates(net, d.delta, d.x_bar, images[keep], clean[name][keep], d.target, control)
            rows.append({"from": d.network, "to": name, "norm": d.norm, "image_index": d.image_index,
                         "target": d.target, "l1": float(np.abs(d.delta).sum()), "images": int(keep.sum()), **r})
    return pd.DataFrame(rows, columns=PAIR + ["image_index", "target", "l1", "images"] + RATES)


def summarise(per_delta: pd.DataFrame) -> pd.DataFrame:
    """Per (from, to, norm): deltas, mean L1, and the mean of each rate in percent (blank when no δ
    of the pair has that rate, e.g. ``to_target`` for untargeted δs)."""
    if per_delta.empty:
        return pd.DataFrame(columns=PAIR + ["deltas", "mean_l1", "images"] + [r + "_pct" for r in RATES])
    g = per_delta.groupby(PAIR, sort=False)
    t = pd.DataFrame({"deltas": g.size(), "mean_l1": g["l1"].mean(), "images": g["images"].max()})
    for r in RATES:
        t[r + "_pct"] = 100.0 * g[r].mean()
    return t.reset_index()


def format_summary(t: pd.DataFrame) -> pd.DataFrame:
    """The summary as strings, for printing (`advmilp.reporting.tables.render_text`)."""
    heads = {"same_fooled_pct": "same img fooled %", "same_target_pct": "same img target %",
             "fooled_pct": "fooled %", "to_target_pct": "to target %", "control_fooled_pct": "shuffled δ fooled %"}
    out = pd.DataFrame({"network": t["from"].astype(str) + " -> " + t["to"].astype(str), "norm": t["norm"]})
    out["deltas"] = t["deltas"].map(lambda v: f"{int(v)}")
    out["images"] = t["images"].map(lambda v: f"{int(v)}")
    out["mean L1"] = t["mean_l1"].map(lambda v: f"{v:.2f}")
    for col, head in heads.items():
        out[head] = t[col].map(lambda v: "" if v != v else f"{v:.1f}")
    return out


# ---- reading a batch ------------------------------------------------------------------------------
def run_split(run_dir: str | Path) -> str:
    """The split of a run's images (``images.json``; test when absent)."""
    p = Path(run_dir) / "images.json"
    if p.is_file():
        try:
            return str(json.loads(p.read_text()).get("split", "test"))
        except (ValueError, AttributeError) as exc:
            raise AdvmilpError(f"cannot read {p}: {exc}") from exc
    return "test"


def deltas_from_run(run_dir: str | Path, net: Network, split_images: np.ndarray) -> list[Delta]:
    """The δs of ``net``'s verified witnesses in the run (rows matched on the network's hash), with
    x̄ = ``split_images[image_index]``.  One line of error if the run has none."""
    from advmilp.reporting.robustness import row_norm
    from advmilp.reporting.tables import load_rows

    run_dir = Path(run_dir)
    df = load_rows(run_dir)
    h = net.short_hash()
    mine = df[df["network_hash"].astype(str) == h] if "network_hash" in df else df.iloc[0:0]
    if mine.empty:
        hashes = sorted(set(df.get("network_hash", pd.Series(dtype=str)).dropna().astype(str)))
        raise AdvmilpError(f"{run_dir} has no rows of {net.name} (sha256 {h}); its networks: "
                           + (", ".join(hashes) or "none"))
    out = []
    for r in mine.to_dict("records"):
        w = r.get("witness")
        if not (r.get("verified") and isinstance(w, str) and w.strip() and pd.notna(r.get("image_index"))):
            continue
        path = run_dir / w
        if not path.is_file():
            raise AdvmilpError(f"{run_dir}: witness {path} named in instances.csv does not exist")
        try:
            x = np.load(path).astype(np.float64).reshape(-1)
        except (OSError, ValueError) as exc:
            raise AdvmilpError(f"cannot read witness {path}: {exc}") from exc
        i = int(float(r["image_index"]))
        if x.size != net.n_inputs or not 0 <= i < len(split_images):
            raise AdvmilpError(f"{path}: {x.size} pixels for image {i}; the network has {net.n_inputs} inputs")
        t = r.get("target")
        out.append(Delta(net.name, i, int(float(t)) if pd.notna(t) and str(t) != "" else None, row_norm(r),
                         x - split_images[i], np.asarray(split_images[i], dtype=np.float64)))
    if not out:
        raise AdvmilpError(f"{run_dir} has no verified witness of {net.name} (sha256 {h})")
    return out
