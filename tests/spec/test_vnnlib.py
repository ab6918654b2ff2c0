"""The VNN-LIB reader (spec/vnnlib.py): hand-written files with their (G, h) by hand, VNN-COMP's own
files, and malformed files → one clear error naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from advmilp.errors import AdvmilpError
from advmilp.spec.vnnlib import read_vnnlib

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
