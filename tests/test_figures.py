"""advmilp.figures: every save_* function writes a real PNG (and PDF on request)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from advmilp import figures

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
    code = "import sys, advmilp.figures; print('matplotlib' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
