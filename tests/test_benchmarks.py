"""The benchmark scripts run end to end on one DNN1 image and print tables of what they measured."""

import csv
import importlib.util
import runpy
import signal
import subprocess
import sys

import pytest

from tests.nets import REPO, mnist_dir


def run_script(name, argv, monkeypatch):
    monkeypatch.setattr("sys.argv", [name, *argv])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / "benchmarks" / name), run_name="__main__")
    return done.value.code


@pytest.fixture
def data_dir():
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    return str(root)


def test_levers_bench_runs_variants_from_one_heuristic_point_and_resumes(tmp_path, data_dir, monkeypatch, capsys):
    out = tmp_path / "levers.csv"
    args = ["--networks", "dnn1", "--images", "1", "--variants", "tight,all-cuts", "--time-limit", "60",
            "--out", str(out), "--data-dir", data_dir]
    assert run_script("levers_bench.py", args, monkeypatch) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["variant"] for r in rows] == ["tight", "all-cuts"]
    assert all(r["status"] == "optimal" and r["verified"] == "True" for r in rows)
    # both variants start from the same heuristic point, so they prove the same optimum
    assert float(rows[0]["objective"]) == pytest.approx(float(rows[1]["objective"]), rel=1e-4)
    assert rows[0]["heuristic_l1"] == rows[1]["heuristic_l1"]
    printed = capsys.readouterr().out
    assert "| dnn1 | all-cuts | 1 | 100 |" in printed and "1 of 1 |" in printed
    # a rerun skips the recorded rows
    assert run_script("levers_bench.py", args, monkeypatch) == 0
    assert len(list(csv.DictReader(out.open()))) == 2


def test_levers_bench_refuses_unknown_variants(tmp_path, monkeypatch, capsys):
    code = run_script("levers_bench.py", ["--variants", "tight,warp-drive", "--out", str(tmp_path / "x.csv")],
                      monkeypatch)
    assert code == 2 and "unknown variants ['warp-drive']" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_solve_bench_prints_the_target_table(tmp_path, data_dir, monkeypatch, capsys):
    args = ["--methods", "tight", "--networks", "dnn1", "--images", "1", "--time-limit", "60", "--workers", "1",
            "--results-dir", str(tmp_path), "--data-dir", data_dir]
    assert run_script("solve_bench.py", args, monkeypatch) == 0
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if line.startswith("| dnn1 | tight |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "1" and cells[3] == "100" and cells[4] == "0"     # n, %optimal, % proven infeasible
    assert cells[-2] == "94 % / 1.23 s" and cells[-1].startswith("0.12 s (")


def test_phase_compare_runs_both_solvers_to_the_same_optimum(data_dir, monkeypatch, capsys):
    import re

    from advmilp.methods.tight import DEFAULT_POLICY, TightPolicy

    args = ["--network", "dnn1", "--indices", "0", "--variants", "milp,phase", "--data-dir", data_dir]
    assert run_script("phase_compare.py", args, monkeypatch) == 0
    assert DEFAULT_POLICY == TightPolicy() and DEFAULT_POLICY.phase_search   # the pipeline's policy is untouched
    printed = capsys.readouterr().out
    optima = [float(v) for v in re.findall(r"opti ([\d.]+)", printed.splitlines()[0])]
    assert len(optima) == 2 and optima[0] == pytest.approx(optima[1], rel=1e-4)
    assert "milp mean" in printed and "phase mean" in printed and "opt 1/1" in printed
    assert run_script("phase_compare.py", ["--variants", "cplex"], monkeypatch) == 2   # argparse's usage error


def test_trees_vs_networks_compares_on_the_images_every_model_solved(tmp_path, capsys):
    """Image 0 solved by both models, image 1 only by the network, image 2 by the tree with the
    network unverified: only image 0 counts, for both."""
    head = "network,problem,image_index,status,verified,l1,time_s\n"
    (tmp_path / "trees").mkdir()
    (tmp_path / "nets").mkdir()
    (tmp_path / "trees" / "instances.csv").write_text(
        head + "tree-d6,targeted argmax,0,optimal,True,0.5,1.0\n"
               "tree-d6,targeted argmax,1,time_limit,True,0.9,60.0\n"
               "tree-d6,targeted argmax,2,optimal,True,0.7,2.0\n")
    (tmp_path / "nets" / "instances.csv").write_text(
        head + "dnn1,targeted ratio 1.2,0,optimal,True,4.0,0.1\n"
               "dnn1,targeted ratio 1.2,1,optimal,True,6.0,0.2\n"
               "dnn1,targeted ratio 1.2,2,optimal,False,3.0,0.3\n")
    mod = runpy.run_path(str(REPO / "benchmarks" / "trees_vs_networks.py"))
    assert mod["main"](["--trees", str(tmp_path / "trees"), "--networks", str(tmp_path / "nets")]) == 0
    out = capsys.readouterr().out
    assert "over the 1 test images every model solved" in out
    assert "| dnn1 | 1 | 4.0000 | 4.0000 | 0.10 | 0.10 |" in out
    assert "| tree-d6 | 1 | 0.5000 | 0.5000 | 1.00 | 1.00 |" in out


@pytest.mark.skipif(not (REPO.parent / "shared" / "external" / "vnncomp2021_mnistfc").is_dir(),
                    reason="../shared/external absent")
def test_attack_bench_compares_both_attacks_beside_the_published_answer(monkeypatch, capsys):
    """256x2's first instances: prop_0_0.03 holds (no attack may find a point), prop_7_0.03 is violated
    and both attacks find it; an unknown network is refused in one line."""
    assert run_script("attack_bench.py", ["--nets", "256x2", "--limit", "8", "--time-limit", "10"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "| mnist-net_256x2-prop_0_0.03 | holds | – " in out
    row = next(line for line in out.splitlines() if line.startswith("| mnist-net_256x2-prop_7_0.03 |"))
    assert row.count("violated") == 3        # the consensus and both attacks
    assert "counterexamples found: per disjunct 1, joint 1" in out
    assert run_script("attack_bench.py", ["--nets", "128x2"], monkeypatch) == 2
    assert "unknown network" in capsys.readouterr().err


@pytest.mark.skipif(not (REPO.parent / "shared" / "external" / "vnncomp2021_eran").is_dir(),
                    reason="../shared/external absent")
def test_vnncomp_bench_runs_the_eran_stretch_set(tmp_path, data_dir, monkeypatch, capsys):
    """The ERAN 9x200 set's first instance (its ONNX file normalises the input with Sub/Div and ends in a
    ReLU): it holds, advmilp says so, scored beside the published tools' answers."""
    argv = ["--full", "--sets", "eran", "--limit", "1", "--results-dir", str(tmp_path)]
    omlt = importlib.util.find_spec("omlt") is not None
    assert run_script("vnncomp_bench.py", argv + ["--omlt"] * omlt, monkeypatch) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| mnist_relu_9_200-mnist_spec_idx_8098_eps_0.01500 |"))
    consensus, ours = (cell.strip() for cell in row.split("|")[2:4])
    assert consensus == "holds" and ours.startswith("h ")
    assert "| mnist_relu_9_200 | **advmilp** | 1 | 0 | 0 | 0 |" in out
    if omlt:   # OMLT's parser does not take the Sub/Div normalisation: a row that says so, not a crash
        (peer,) = list(csv.DictReader((tmp_path / "eran2021" / "omlt.csv").open()))
        assert peer["result"] == "unknown" and peer["raw"].startswith("error: ")


def test_every_benchmark_accepts_ctrl_c_even_started_in_the_background():
    """A benchmark started with `nohup ... &` by a script inherits SIGINT as ignored; each script's main block
    runs through `experiments.workers.run_script`, which installs the KeyboardInterrupt handler again and
    ends a Ctrl-C in one line."""
    scripts = sorted((REPO / "benchmarks").glob("*.py"))
    assert scripts
    for path in scripts:
        main_block = path.read_text().split('if __name__ == "__main__":', 1)[1]
        assert "run_script(main)" in main_block, path.name


@pytest.mark.parametrize("raised, status, line", [(KeyboardInterrupt, 130, "interrupted"),
                                                  (None, 0, ""), ("bad", 2, "error: no such network: x")])
def test_run_script_ends_in_one_line(raised, status, line, capsys):
    from advmilp.errors import AdvmilpError
    from advmilp.experiments.workers import run_script

    before = signal.getsignal(signal.SIGINT)

    def main():
        if raised is KeyboardInterrupt:
            raise KeyboardInterrupt
        if raised == "bad":
            raise AdvmilpError("no such network: x")
        return None

    try:
        with pytest.raises(SystemExit) as exit_:
            run_script(main)
    finally:
        signal.signal(signal.SIGINT, before)
    assert exit_.value.code == status
    err = capsys.readouterr().err
    assert err.strip() == line and "Traceback" not in err


def test_accept_interrupts_undoes_an_inherited_ignore():
    from advmilp import interrupts

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        interrupts.accept_interrupts()
        assert signal.getsignal(signal.SIGINT) is interrupts._on_sigint    # raises and records (tests/test_interrupts.py)
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no signal masks on this platform")
def test_accept_interrupts_undoes_an_inherited_block_and_ignore():
    """The project's CI started a batch with SIGINT blocked as well as ignored: the Ctrl-C stayed pending
    and the batch ran to the end.  A child that inherits both still stops on SIGINT once it has called
    `accept_interrupts`."""
    child = ("import os, signal, sys, time\n"
             "from advmilp.interrupts import accept_interrupts\n"
             "accept_interrupts()\n"
             "try:\n"
             "    os.kill(os.getpid(), signal.SIGINT)\n"
             "    time.sleep(5)\n"
             "except KeyboardInterrupt:\n"
             "    sys.exit(130)\n"
             "sys.exit(0)\n")

    def inherit_block_and_ignore():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    proc = subprocess.run([sys.executable, "-c", child], cwd=REPO, preexec_fn=inherit_block_and_ignore,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr


@pytest.mark.skipif(not (REPO.parent / "shared" / "external" / "vnncomp2021_mnistfc").is_dir(),
                    reason="../shared/external absent")
def test_vnncomp_bench_keeps_the_specifications_asked_for(tmp_path, monkeypatch, capsys):
    import runpy

    mod = runpy.run_path(str(REPO / "benchmarks" / "vnncomp_bench.py"))
    path = mod["full_2021_csv"](tmp_path, None, ("mnist-net_256x4",), {"prop_3_0.03", "prop_4_0.05"})
    rows = [line.split(",") for line in path.read_text().splitlines()]
    assert [(r[0].rsplit("/", 1)[1], r[1].rsplit("/", 1)[1], r[2]) for r in rows] == [
        ("mnist-net_256x4.onnx", "prop_3_0.03.vnnlib", "300"), ("mnist-net_256x4.onnx", "prop_4_0.05.vnnlib", "300")]
    assert run_script("vnncomp_bench.py", ["--full", "--specs", "prop_99_0.03"], monkeypatch) == 2
    assert "prop_99_0.03 is not a specification" in capsys.readouterr().err


@pytest.mark.skipif(not (REPO.parent / "shared" / "external" / "vnncomp2021_mnistfc").is_dir(),
                    reason="../shared/external absent")
def test_vnncomp_bench_scores_the_omlt_peer_beside_advmilp_and_resumes_it(tmp_path, monkeypatch, capsys):
    """--omlt: OMLT + HiGHS on the same instance and timeout, one row in omlt.csv, a column of the table; a
    second run finds the row recorded and does not solve again."""
    pytest.importorskip("omlt")
    argv = ["--full", "--sets", "2021", "--nets", "256x2", "--specs", "prop_7_0.03", "--timeout-scale", "0.05",
            "--omlt", "--results-dir", str(tmp_path)]
    assert run_script("vnncomp_bench.py", argv, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "| mnist-net_256x2 | omlt+highs (this machine) |" in out
    (row,) = list(csv.DictReader((tmp_path / "mnistfc2021" / "omlt.csv").open()))
    assert row["vnnlib"].endswith("prop_7_0.03.vnnlib") and float(row["timeout_s"]) == pytest.approx(6.0)
    assert row["result"] in ("violated", "unknown")       # prop_7_0.03 is violated: never "holds"
    assert float(row["time_s"]) <= 6.0 + 5.0              # the timeout holds the build and the solve
    assert run_script("vnncomp_bench.py", argv, monkeypatch) == 0
    assert len(list(csv.DictReader((tmp_path / "mnistfc2021" / "omlt.csv").open()))) == 1
    assert "omlt mnist-net_256x2" not in capsys.readouterr().err   # recorded: not run again


def test_a_peers_counterexample_counts_only_if_it_passes_the_forward_pass_check(tmp_path):
    """`omlt_peer.point_verdict` (the OMLT and maraboupy columns): y0 = relu(x0) − relu(x1) on [0, 1]²,
    property violated where y0 ≥ 0.5.  (1, 0) violates it; (0, 1), which a peer might still call sat, does
    not, and is unknown with its margin; a point outside the box is clipped into it first."""
    import numpy as np

    from advmilp.nn.network import Network
    from advmilp.spec.vnnlib import read_vnnlib

    peer = runpy.run_path(str(REPO / "benchmarks" / "omlt_peer.py"))
    net = Network.from_arrays([np.eye(2), np.array([[1.0, -1.0]])], [np.zeros(2), np.zeros(1)])
    spec = tmp_path / "p.vnnlib"
    spec.write_text("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
                    "(assert (>= X_0 0.0))\n(assert (<= X_0 1.0))\n(assert (>= X_1 0.0))\n(assert (<= X_1 1.0))\n"
                    "(assert (>= Y_0 0.5))\n")
    prop = read_vnnlib(spec)
    good = peer["point_verdict"](net, prop, np.array([1.0, 0.0]), 1.0, "sat")
    assert (good.result, good.raw) == ("violated", "sat")
    bad = peer["point_verdict"](net, prop, np.array([0.0, 1.0]), 1.0, "sat")
    assert bad.result == "unknown" and "fails the forward-pass check (margin 1.5)" in bad.raw
    assert peer["point_verdict"](net, prop, np.array([1.7, -0.2]), 1.0, "sat").result == "violated"
