"""advmilp.reporting.figures: every save_* function writes a real PNG (and PDF on request)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from advmilp.reporting import figures
from advmilp.reporting.tables import load_rows, solved_mask

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pair(seed: int = 0):
    rng = np.random.default_rng(seed)
    x_bar = rng.random(784)
    x_adv = np.clip(x_bar + rng.normal(0, 0.1, 784), 0, 1)
    return x_bar, x_adv


def _assert_png(path):
    assert path.suffix == ".png"
    assert path.is_file()
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC


def _assert_pdf(path):
    assert path.suffix == ".pdf"
    assert path.is_file()
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:4] == b"%PDF"


def test_save_adversarial_png(tmp_path):
    x_bar, x_adv = _pair()
    out = figures.save_adversarial(tmp_path / "adv.png", x_bar, x_adv, label=7, target=2,
                                   predicted=2, l1=4.98, title_extra="DNN1")
    assert out == [tmp_path / "adv.png"]
    _assert_png(out[0])


def test_save_adversarial_zero_perturbation(tmp_path):
    x_bar, _ = _pair(1)
    (png,) = figures.save_adversarial(tmp_path / "same.png", x_bar, x_bar.copy(), 3, None, 3, 0.0)
    _assert_png(png)


def test_save_adversarial_pdf_path_writes_both(tmp_path):
    x_bar, x_adv = _pair(2)
    png, pdf = figures.save_adversarial(tmp_path / "sub" / "adv.pdf", x_bar, x_adv, 1, 8, 8, 1.5)
    _assert_png(png)
    _assert_pdf(pdf)


def test_save_feature(tmp_path):
    x, _ = _pair(3)
    (png,) = figures.save_feature(tmp_path / "feature.png", x, "feature of neuron 3")
    _assert_png(png)


def test_save_feature_also_pdf(tmp_path):
    x, _ = _pair(4)
    png, pdf = figures.save_feature(tmp_path / "feature.png", x, "feature", also_pdf=True)
    _assert_png(png)
    _assert_pdf(pdf)


def _items(n):
    out = []
    for i in range(n):
        x_bar, x_adv = _pair(10 + i)
        out.append({"x_bar": x_bar, "x_adv": x_adv, "label": i, "target": (i + 1) % 10,
                    "predicted": (i + 1) % 10, "l1": float(np.abs(x_adv - x_bar).sum()),
                    "time_s": 1.5 * i})
    return out


@pytest.mark.parametrize("n,ncols", [(1, 1), (3, 1), (5, 2)])
def test_save_gallery(tmp_path, n, ncols):
    (png,) = figures.save_gallery(tmp_path / f"gallery{n}.png", _items(n), ncols=ncols)
    _assert_png(png)


def test_save_gallery_pdf_and_missing_optional_keys(tmp_path):
    items = _items(2)
    del items[0]["time_s"], items[0]["predicted"]  # predicted falls back to target
    png, pdf = figures.save_gallery(tmp_path / "gallery.pdf", items, ncols=2, title="DNN2")
    _assert_png(png)
    _assert_pdf(pdf)


def test_bad_shapes_raise(tmp_path):
    with pytest.raises(ValueError, match="784"):
        figures.save_feature(tmp_path / "bad.png", np.zeros(10), "bad")
    with pytest.raises(ValueError):
        figures.save_gallery(tmp_path / "empty.png", [])


def test_import_does_not_load_matplotlib():
    code = "import sys, advmilp.reporting.figures; print('matplotlib' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


# ---- run-level figures, from a small results directory written here ---------------------------------
RUN_COLUMNS = ["network", "method", "bounds", "problem", "image_index", "label", "target", "predicted",
               "status", "objective", "l1", "time_s", "time_limit", "verified", "witness"]


def write_run(root, test_split, with_counts: bool = True):
    """results/<name>/ with 6 rows: milp and cdh on images 0–1, a time-out and an error row."""
    import csv

    run = root / "fixture_run"
    (run / "witnesses").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    specs = [("milp", 0, "optimal", 9.1), ("milp", 1, "optimal", 3.2), ("cdh", 0, "found", 0.4),
             ("cdh", 1, "found", 1.7), ("milp", 2, "time_limit", 30.0), ("cdh", 2, "error", 0.0)]
    for method, idx, status, t in specs:
        x_bar = test_split.images[idx]
        label = int(test_split.labels[idx])
        row = {"network": "dnn1", "method": method, "bounds": "basic", "problem": "targeted ratio 1.2",
               "image_index": idx, "label": label, "target": (label + 5) % 10, "predicted": "",
               "status": status, "objective": "", "l1": "", "time_s": t, "time_limit": 30,
               "verified": status in ("optimal", "found"), "witness": ""}
        if status in ("optimal", "found"):
            x_adv = np.clip(x_bar + rng.normal(0, 0.05 if method == "milp" else 0.1, 784), 0, 1)
            slug = f"dnn1_{method}_basic_targeted-ratio-1.2_{idx}"
            np.save(run / "witnesses" / f"{slug}.npy", x_adv)
            if method == "cdh" and with_counts:
                np.save(run / "witnesses" / f"{slug}.counts.npy", rng.poisson(2.0, 784).astype(np.int64))
            l1 = float(np.abs(x_adv - x_bar).sum())
            row.update(predicted=row["target"], objective=l1, l1=l1, witness=f"witnesses/{slug}.npy")
        rows.append(row)
    with open(run / "instances.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=RUN_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return run


@pytest.fixture
def run_dir(tmp_path, mnist_test):
    return write_run(tmp_path, mnist_test)


def test_save_cactus_from_run(tmp_path, run_dir):
    df = load_rows(run_dir)
    assert solved_mask(df).tolist() == [True, True, True, True, False, False]
    (png,) = figures.save_cactus(tmp_path / "cactus.png", df, title="fixture")
    _assert_png(png)


def test_save_cactus_rows_and_nothing_solved(tmp_path):
    rows = [{"network": "n", "method": "milp", "bounds": "basic", "status": "time_limit",
             "verified": "False", "time_s": 5.0}]
    png, pdf = figures.save_cactus(tmp_path / "none.pdf", rows)
    _assert_png(png)
    _assert_pdf(pdf)


def test_save_run_gallery(tmp_path, run_dir, mnist_test):
    (png,) = figures.save_run_gallery(tmp_path / "gallery.png", run_dir, mnist_test.images)
    _assert_png(png)
    assert len(figures.witness_rows(load_rows(run_dir), run_dir)) == 4
    # a Split works as well as its image array; max_items limits the rows
    (png2,) = figures.save_run_gallery(tmp_path / "gallery2.png", run_dir, mnist_test, max_items=1)
    _assert_png(png2)


def test_save_perturbation_counts(tmp_path):
    rng = np.random.default_rng(5)
    a, b = rng.poisson(3.0, 784), rng.poisson(1.0, 784)
    (png,) = figures.save_perturbation_counts(tmp_path / "fig5.png", a, b,
                                              ["(a) complete", "(b) constrained"])
    _assert_png(png)
    (single,) = figures.save_perturbation_counts(tmp_path / "one.png", a, None, ["only"])
    _assert_png(single)


def test_save_comparison_flat_and_grid(tmp_path):
    (x1, x2), (x3, x4) = _pair(20), _pair(21)
    flat = [(x1, "MILP: time 132.2 s, obj 3.4"), (x2, "CDH: time 45.4 s, obj 4.0"), (x3, "MILP: 300 s")]
    (png,) = figures.save_comparison(tmp_path / "fig7.png", flat)
    _assert_png(png)
    grid = [[(x1, "a"), (x2, "b")], [{"x_adv": x3, "caption": "c"}, (x4, "d")]]
    png, pdf = figures.save_comparison(tmp_path / "grid.png", grid, title="Fig. 7", also_pdf=True)
    _assert_png(png)
    _assert_pdf(pdf)
    with pytest.raises(ValueError):
        figures.save_comparison(tmp_path / "empty.png", [])
