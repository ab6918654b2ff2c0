"""``advmilp verify`` end to end: known answers on a hand-built network, the counterexample file, one
error line for a malformed specification, and agreement with ``attack --linf-cap`` on DNN1."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from advmilp.cli import main
from advmilp.nn.network import Network
from tests.nets import mnist_dir

SPEC = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 0.0))
(assert (<= X_0 {hi0}))
(assert (>= X_1 {lo1}))
(assert (<= X_1 1.0))
(assert (>= Y_0 Y_1))
"""


@pytest.fixture
def identity_file(tmp_path):
    net = Network.from_arrays([np.eye(2), np.eye(2)], [np.zeros(2)] * 2, metadata={"architecture": "identity"})
    return str(net.save(tmp_path / "identity.npz"))


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_holds_and_violated_with_a_counterexample_file(tmp_path, identity_file):
    (tmp_path / "h.vnnlib").write_text(SPEC.format(hi0=0.4, lo1=0.6))     # x0 ≤ 0.4 < 0.6 ≤ x1: y0 ≥ y1 impossible
    out = run("verify", "--model", identity_file, "--vnnlib", str(tmp_path / "h.vnnlib"), "--timeout", "30")
    assert out.exit_code == 0 and "result      holds" in out.output
    (tmp_path / "v.vnnlib").write_text(SPEC.format(hi0=0.7, lo1=0.5))
    cex = tmp_path / "new" / "folder" / "cex.txt"      # its folders are made
    out = run("verify", "--model", identity_file, "--vnnlib", str(tmp_path / "v.vnnlib"), "--counterexample", str(cex))
    assert out.exit_code == 0 and "result      violated" in out.output and "float32" in out.output
    text = cex.read_text()
    assert text.startswith("sat\n")
    values = {k: float(v) for k, v in re.findall(r"\((\w+) ([-0-9.eE+]+)\)", text)}
    x, y = np.array([values["X_0"], values["X_1"]]), np.array([values["Y_0"], values["Y_1"]])
    assert 0 <= x[0] <= 0.7 and 0.5 <= x[1] <= 1 and np.allclose(y, x) and y[0] >= y[1]


def test_a_malformed_specification_is_one_error_line(tmp_path, identity_file):
    (tmp_path / "bad.vnnlib").write_text("(declare-const X_0 Real)\n(assert (<= X_0 1)\n")
    out = CliRunner().invoke(main, ["verify", "--model", identity_file, "--vnnlib", str(tmp_path / "bad.vnnlib")])
    lines = [ln for ln in out.output.splitlines() if ln.strip()]
    assert out.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:") and "bad.vnnlib" in lines[0]
    out = CliRunner().invoke(main, ["verify", "--model", identity_file, "--vnnlib", str(tmp_path / "h.vnnlib"),
                                    "--timeout", "0"])
    assert out.exit_code == 2


@pytest.mark.skipif(mnist_dir() is None, reason="MNIST not found")
@pytest.mark.parametrize("eps", [0.005, 0.2])
def test_export_vnnlib_then_verify_agrees_with_attack(tmp_path, monkeypatch, eps):
    """DNN1, test image 1 (label 2), target 7: the exported property 'Y_7 ≥ every Y_j' over the L∞ box.
    If verify says holds, attack --linf-cap (ratio 1) finds nothing; if it says violated, the
    counterexample makes 7 the (weak) argmax; if attack finds a point, verify does not say holds."""
    import advmilp
    from advmilp.data.mnist import load_split
    from advmilp.spec.vnnlib import export_vnnlib

    monkeypatch.setenv("ADVMILP_DATA", str(mnist_dir()))
    net = advmilp.load_network("dnn1")
    test = load_split("test")
    rows = export_vnnlib(net, tmp_path, test.images, test.labels, [1], eps, targets=[7])
    out = run("verify", "--arch", "dnn1", "--vnnlib", str(tmp_path / rows[0][1]), "--timeout", "60",
              "--counterexample", str(tmp_path / "cex.txt"))
    result = re.search(r"result +(\w+)", out.output).group(1)
    attack = advmilp.attack(net, 1, target=7, ratio=1.0, linf_cap=eps, method="milp", time_limit=60)
    if result == "holds":
        assert attack.status == "infeasible"
    if result == "violated":
        y = np.array([float(v) for v in re.findall(r"\(Y_\d+ ([-0-9.eE+]+)\)", (tmp_path / "cex.txt").read_text())])
        assert int(np.argmax(y)) == 7 or y[7] >= y.max()
    if attack.status == "optimal" and attack.verified:
        assert result != "holds"
    assert result in ("holds", "violated") if eps == 0.005 else result != "holds"
