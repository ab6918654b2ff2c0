"""The same image attacked under L1, L∞ and L0 (issue: "how would you make the noise less visible?"):
three exact minimal targeted examples, one figure (`figures.save_norms`)."""

from __future__ import annotations

from pathlib import Path

from advmilp.bounds.compute import find_cached, interval_bounds
from advmilp.data.mnist import load_split
from advmilp.methods.registry import MethodInputs, load_pool, run_method
from advmilp.nn.network import Network
from advmilp.reporting.figures import save_norms
from advmilp.spec.problems import ProblemSpec, SolverSettings

# the method per norm: the default exact pipeline for all three (for L0: the L1 problem first, then the
# MILP with a binary per pixel over the L1 ball the incumbent allows; `methods.tight.run_l0`)
NORM_METHODS = (("l1", "tight"), ("linf", "tight"), ("l0", "tight"))


def make_norms_figure(network: Network, image: int, out_dir: str | Path, time_limit: float = 300.0,
                      data_dir=None, models_dir=None) -> list[Path]:
    """Minimal targeted examples of test image ``image`` (target (label + 5) mod 10) under each norm,
    drawn side by side in ``out_dir``/norms_<net>_image<i>.png/.pdf.  Returns the written paths."""
    test = load_split("test", data_dir, rows=slice(image, image + 1))
    x_bar, label = test.images[0], int(test.labels[0])
    bounds = find_cached(network, "improved", say=lambda m: None) or interval_bounds(network)
    pool = load_pool(data_dir)
    items, missing = [], []
    for norm, method in NORM_METHODS:
        spec = ProblemSpec("targeted", norm=norm)
        res = run_method(method, network, bounds, spec, SolverSettings(time_limit=time_limit), x_bar, label, image,
                         MethodInputs(pool=pool))
        if res.witness is None or not res.row["verified"]:
            missing.append(f"{norm} ({res.row['status']})")
            continue
        items.append({"norm": norm, "x": res.witness, "value": res.row["objective"],
                      "predicted": res.row["predicted"], "status": res.row["status"]})
    target = ProblemSpec("targeted").target_for(label)
    return save_norms(Path(out_dir) / f"norms_{network.name}_image{image}.png", x_bar, items,
                      f"{network.name}, test image {image} (label {label}) -> target {target}: minimal L1, L∞ and L0"
                      + (f"; no example: {', '.join(missing)}" if missing else ""),
                      also_pdf=True)
