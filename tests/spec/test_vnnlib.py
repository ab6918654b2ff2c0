"""The VNN-LIB reader (spec/vnnlib.py): hand-written files with their (G, h) by hand, VNN-COMP's own
files, and malformed files → one clear error naming the file."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from advmilp.errors import AdvmilpError
from advmilp.nn.network import Network
from advmilp.spec.vnnlib import build_property, export_vnnlib, property_rows, read_vnnlib
from tests.nets import REPO, random_net

needs_onnx = pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="onnx not installed")

EXTERNAL = Path(__file__).resolve().parents[3] / "shared" / "external"

HEADER = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
BOX = "(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (<= X_1 0.5))\n(assert (>= X_1 -0.5))\n"


def write(tmp_path, body: str, name="p.vnnlib") -> Path:
    f = tmp_path / name
    f.write_text(HEADER + BOX + body)
    return f


def test_disjunction_by_hand(tmp_path):
    prop = read_vnnlib(write(tmp_path, "(assert (or (and (>= Y_0 Y_1)) (and (<= Y_1 -0.5) (>= Y_0 0.25))))\n"))
    assert np.array_equal(prop.x_lb, [0, -0.5]) and np.array_equal(prop.x_ub, [1, 0.5])
    (G1, h1), (G2, h2) = prop.disjuncts
    assert np.array_equal(G1, [[-1, 1]]) and np.array_equal(h1, [0])            # Y_1 − Y_0 ≤ 0
    assert np.array_equal(G2, [[0, 1], [-1, 0]]) and np.array_equal(h2, [-0.5, -0.25])
    assert prop.violated_by(np.array([1.0, 0.0])) and not prop.violated_by(np.array([0.0, 1.0]))
    assert prop.margin(np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_linear_terms_and_a_conjunction_of_asserts(tmp_path):
    prop = read_vnnlib(write(tmp_path, "(assert (<= (+ Y_0 (* 2 Y_1)) 3))\n(assert (>= 3 (- Y_0 Y_1)))\n"))
    (G, h), = prop.disjuncts
    assert np.array_equal(G, [[1, 2], [1, -1]]) and np.array_equal(h, [3, 3])


def test_common_constraints_distribute_over_a_disjunction(tmp_path):
    prop = read_vnnlib(write(tmp_path, "(assert (>= Y_0 0))\n(assert (or (and (>= Y_1 1)) (and (<= Y_1 -1))))\n"))
    assert len(prop.disjuncts) == 2 and all(G.shape == (2, 2) for G, _ in prop.disjuncts)


@pytest.mark.parametrize("body, message", [
    ("(assert (< Y_0 Y_1))\n", "unsupported constraint '<'"),
    ("(assert (<= Y_0 X_1))\n", "mixing inputs and outputs"),
    ("(assert (<= (* Y_0 Y_1) 1))\n", "not linear"),
    ("(assert (<= Y_7 1))\n", "Y_7 is not declared"),
    ("(assert (<= Y_0 1)\n", "unbalanced parentheses"),
    ("(assert (or (and (<= X_0 0.5)) (and (>= X_0 0.6))))\n(assert (<= Y_0 1))\n", "disjunctive input sets"),
    ("", "no output constraint"),
    ("(check-sat)\n(exit)\n", "unsupported command 'exit'"),
])
def test_malformed_files_are_one_clear_error(tmp_path, body, message):
    with pytest.raises(AdvmilpError, match=message) as err:
        read_vnnlib(write(tmp_path, body))
    assert str(err.value).startswith(str(tmp_path / "p.vnnlib"))


def test_missing_bound_and_unreadable_files(tmp_path):
    f = tmp_path / "nobox.vnnlib"
    f.write_text(HEADER + "(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (<= X_1 1))\n(assert (<= Y_0 1))\n")
    with pytest.raises(AdvmilpError, match="X_1 has no lower or upper bound"):
        read_vnnlib(f)
    (tmp_path / "bin.vnnlib").write_bytes(b"\xff\xfe(assert")
    with pytest.raises(AdvmilpError, match="not a text file"):
        read_vnnlib(tmp_path / "bin.vnnlib")
    with pytest.raises(AdvmilpError, match="cannot read"):
        read_vnnlib(tmp_path / "absent.vnnlib")


@pytest.mark.skipif(not (EXTERNAL / "vnncomp2021_mnistfc").is_dir(), reason="../shared/external absent")
def test_vnncomp_mnistfc_and_eran_specs():
    prop = read_vnnlib(EXTERNAL / "vnncomp2021_mnistfc" / "vnnlib" / "prop_0_0.03.vnnlib")
    assert prop.x_lb.shape == (784,) and prop.n_outputs == 10 and len(prop.disjuncts) == 9
    assert prop.x_lb[0] == 0.0 and prop.x_ub[0] == pytest.approx(0.03)
    G, h = prop.disjuncts[0]                       # Y_0 >= Y_8  →  Y_8 − Y_0 ≤ 0
    assert G.shape == (1, 10) and G[0, 8] == 1 and G[0, 0] == -1 and h[0] == 0
    eran = read_vnnlib(EXTERNAL / "vnncomp2021_eran" / "specs" / "mnist_spec_idx_1013_eps_0.01500.vnnlib")
    assert len(eran.disjuncts) == 9 and np.all(eran.x_lb <= eran.x_ub) and eran.x_lb.shape == (784,)


# ---- writing VNN-COMP folders --------------------------------------------------------------------------------
@needs_onnx
def test_vnnlib_folder_round_trips(tmp_path):
    net = Network.load(REPO / "models" / "dnn1.npz")
    rng = np.random.default_rng(0)
    images = np.round(rng.random((5, 784)) * 255) / 255
    labels = np.array([3, 1, 4, 1, 5])
    rows = export_vnnlib(net, tmp_path, images, labels, [0, 2, 4], 0.02, timeout=120)
    rows += export_vnnlib(net, tmp_path, images, labels, [1], 0.02, targets=[6])
    csv = (tmp_path / "instances.csv").read_text().splitlines()
    assert csv == [",".join(r) for r in rows] and len(csv) == 4
    assert csv[0] == "onnx/dnn1.onnx,vnnlib/dnn1_0_linf_0.02.vnnlib,120"
    assert csv[3] == "onnx/dnn1.onnx,vnnlib/dnn1_1_linf_0.02_t6.vnnlib,300"
    for (onnx_rel, vnn_rel, _), index, target in zip(rows, [0, 2, 4, 1], [None, None, None, 6]):
        prop = read_vnnlib(tmp_path / vnn_rel)
        np.testing.assert_array_equal(prop.x_lb, np.clip(images[index] - 0.02, 0, 1))
        np.testing.assert_array_equal(prop.x_ub, np.clip(images[index] + 0.02, 0, 1))
        expected = property_rows(build_property(int(labels[index]), 10, target), 10)
        assert len(prop.disjuncts) == len(expected)
        for (G, h), (G2, h2) in zip(prop.disjuncts, expected):
            np.testing.assert_array_equal(G, G2)
            np.testing.assert_array_equal(h, h2)
    assert build_property(3, 4) == (((0, 3),), ((1, 3),), ((2, 3),))
    assert build_property(3, 4, target=1) == (((1, 0), (1, 2), (1, 3)),)
    text = (tmp_path / rows[0][1]).read_text()
    assert "(declare-const X_783 Real)" in text and "(declare-const Y_9 Real)" in text
    assert "(assert (or (and (>= Y_0 Y_3)) (and (>= Y_1 Y_3))" in text and not re.search(r"\d[eE][-+]", text)
    from advmilp.nn.interchange import load_onnx

    back = load_onnx(tmp_path / "onnx" / "dnn1.onnx")
    np.testing.assert_allclose(back.forward(images), net.forward(images), atol=1e-6)
    # re-exporting the same instances does not duplicate rows
    export_vnnlib(net, tmp_path, images, labels, [0], 0.02, timeout=120)
    assert len((tmp_path / "instances.csv").read_text().splitlines()) == 4


def test_vnnlib_refusals(tmp_path):
    net = random_net([4, 3, 2])
    images, labels = np.full((2, 4), 0.5), np.array([0, 1])
    with pytest.raises(AdvmilpError, match="L1 ball is not a box"):
        export_vnnlib(net, tmp_path, images, labels, [0], 1.0, norm="l1")
    with pytest.raises(AdvmilpError, match="unknown norm"):
        export_vnnlib(net, tmp_path, images, labels, [0], 1.0, norm="l2")
    with pytest.raises(AdvmilpError, match="target 0 for image 0"):
        export_vnnlib(net, tmp_path, images, labels, [0], 0.1, targets=0)
    with pytest.raises(AdvmilpError, match="out of range"):
        export_vnnlib(net, tmp_path, images, labels, [7], 0.1)
    with pytest.raises(AdvmilpError, match=r"pixel values must lie in \[0, 1\]"):
        export_vnnlib(net, tmp_path, images * 255, labels, [0], 0.1)
    assert not (tmp_path / "instances.csv").exists()  # refusals write nothing
