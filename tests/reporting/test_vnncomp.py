"""VNN-COMP scoring: the rules on a hand-made table with known answers (including wrong ones), the
published 2021 mnistfc scores recomputed from the per-instance file, and ``advmilp report`` on a run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from advmilp.experiments.verify_batch import COLUMNS
from advmilp.reporting.vnncomp import (OURS, Answer, ScoringRules, consensus, instance_id, load_published,
                                       coverage_table, group_of, ours_wrong, render_report, score_instance,
                                       score_table)
from tests.cli.helpers import cli_env, invoke
from tests.nets import REPO

EXTERNAL = REPO.parent / "shared" / "external"
PUBLISHED = """# hand-made, in the layout of VNN-COMP 2021's per_instance_scored_times.csv
instance,mnist_test_idx,label,eps,true_result(if printed),A,B,C,conflict_flag
net_1x1-p0,0,0,0.1,,1.0 (h),2.0 (h),timeout,
net_1x1-p1,0,0,0.1,,3.0 (v),timeout,timeout,
net_1x1-p2,0,0,0.1,,1.0 (h),1.1 (h),5.0 (v),*multiple results*
net_1x1-p3,0,0,0.1,,timeout,timeout,-,
net_1x1-p4,0,0,0.1,,1.0 (v),timeout,timeout,
"""
# ours: p0 violated where two tools say holds (wrong), p1 holds where the consensus is violated (wrong),
# p2 holds with the majority, p3 violated after its timeout (a timeout), p4 violated, second fastest
OURS_ROWS = [("p0", "violated", 0.5, 30), ("p1", "holds", 2.0, 30), ("p2", "holds", 1.05, 30),
             ("p3", "violated", 50.0, 30), ("p4", "violated", 4.0, 30)]


@pytest.fixture
def published_dir(tmp_path):
    (tmp_path / "pub" / "results").mkdir(parents=True)
    (tmp_path / "pub" / "results" / "per_instance_scored_times.csv").write_text(PUBLISHED)
    return tmp_path / "pub"


def our_rows():
    return [{"onnx": "onnx/net_1x1.onnx", "vnnlib": f"vnnlib/{p}.vnnlib", "result": r, "time_s": t, "timeout_s": lim,
             "timeout_note": "csv"} for p, r, t, lim in OURS_ROWS]


def test_scores_of_a_hand_made_table_with_wrong_answers(published_dir):
    pub = load_published(published_dir)
    assert pub.tools == ["A", "B", "C"]
    from advmilp.reporting.vnncomp import our_answers

    ours, notes = our_answers(our_rows())
    assert "1 answer(s) came after their timeout" in notes[0]
    table = score_table(pub, ours)["net_1x1"]
    a, b, c, us = table["A"], table["B"], table["C"], table[OURS]
    # A: correct on p0, p1, p2, p4 (10 each), fastest alone on p0, p1, p4 and tied fastest on p2 (2 each)
    assert (a.holds, a.violated, a.unknown, a.wrong, a.fastest, a.score) == (2, 2, 1, 0, 4, 48)
    # B: p0 second fastest (+1), p2 tied fastest with A and us (+2)
    assert (b.holds, b.unknown, b.fastest, b.second, b.score) == (2, 3, 1, 1, 23)
    # C: 'violated' on p2 against the majority's 'holds'
    assert (c.wrong, c.score) == (1, -100)
    # us: two wrong (-200), p2 correct and tied fastest (12), p3 late = timeout, p4 correct and second (11)
    assert (us.holds, us.violated, us.unknown, us.wrong, us.score) == (1, 1, 1, 2, -177)
    assert us.time_s == pytest.approx(1.05 + 4.0)


def test_coverage_counts_correct_answers_per_network_and_eps_and_lists_what_we_missed(published_dir):
    from advmilp.reporting.vnncomp import our_answers

    ours, _ = our_answers(our_rows())
    c = coverage_table(load_published(published_dir), ours)["net_1x1"]
    # ours correct on p2 and p4 only (p0, p1 wrong, p3 late); A on p0, p1, p2, p4; B on p0, p2; C wrong on p2
    assert c.instances == 5 and (c.decided[OURS], c.decided["A"], c.decided["B"], c.decided["C"]) == (2, 4, 2, 0)
    assert c.missed == ["net_1x1-p0", "net_1x1-p1"] and c.only_ours == []
    assert "| net_1x1 | 5 | 2 | 4 | 2 | 0 | 2: p0, p1 | 0 |" in render_report(our_rows(), load_published(published_dir))
    # a tool slower than our timeout does not count; an instance no tool decided is ours alone
    c = coverage_table(load_published(published_dir), {"net_1x1-p3": Answer("holds", 1.0)}, {"net_1x1-p3": 30})
    assert c["net_1x1"].only_ours == ["net_1x1-p3"]
    c = coverage_table(load_published(published_dir), {"net_1x1-p1": Answer(None)}, {"net_1x1-p1": 2.0})
    assert c["net_1x1"].decided["A"] == 0 and c["net_1x1"].missed == []
    assert group_of("mnist-net_256x2-prop_1_0.03") == "mnist-net_256x2 ε 0.03"
    assert group_of("mnist-net_256x4-img7-eps0.05") == "mnist-net_256x4 ε 0.05"


def test_the_rules_one_by_one():
    rules = ScoringRules()
    s = score_instance({"x": Answer("holds", 0.2), "y": Answer("holds", 1.15), "z": Answer("holds", 1.5)}, "holds")
    # times floored at 1 s, within 0.2 s of each other are equal: x and y share the +2, nobody gets the +1
    assert [s[t].score for t in "xyz"] == [12, 12, 10]
    s = score_instance({"x": Answer("violated", 3.0), "y": Answer("violated", 9.0), "z": Answer(None)}, "violated")
    assert [s[t].score for t in "xyz"] == [12, 11, 0]
    assert score_instance({"x": Answer("holds", 1.0)}, "violated")["x"].score == rules.wrong
    assert consensus({"a": Answer("holds"), "b": Answer("violated")}) is None
    assert consensus({"a": Answer("holds"), "b": Answer("violated")}, "violated") == "violated"
    one_holds = {"a": Answer("holds"), "b": Answer("violated"), "c": Answer("violated")}
    assert not ours_wrong("violated", one_holds) and ours_wrong("holds", one_holds)
    assert ours_wrong("violated", {"a": Answer("holds"), "b": Answer("holds")})
    assert not ours_wrong("holds", {"a": Answer("holds"), "b": Answer("holds"), "c": Answer("violated")})
    assert not ours_wrong(None, one_holds)


def test_published_answers_slower_than_our_timeout_count_as_timeouts(published_dir):
    pub = load_published(published_dir)
    table = score_table(pub, {"net_1x1-p1": Answer(None, 2.5)}, limits={"net_1x1-p1": 2.5})["net_1x1"]
    assert table["A"].unknown == 1 and table["A"].score == 0          # A's 3.0 s answer is past 2.5 s
    table = score_table(pub, {"net_1x1-p1": Answer(None, 2.5)}, limits={"net_1x1-p1": 3.0})["net_1x1"]
    assert table["A"].violated == 1 and table["A"].score == 12


def test_instance_names_match_the_published_ones():
    assert instance_id("x/mnist-net_256x2.onnx", "vnnlib/prop_0_0.03.vnnlib") == "mnist-net_256x2-prop_0_0.03"
    assert instance_id("onnx/mnist-net_256x4.onnx", "vnnlib/mnist-net_256x4_7_linf_0.02.vnnlib") == \
        "mnist-net_256x4-img7-eps0.02"


@pytest.mark.skipif(not (EXTERNAL / "vnncomp2021_mnistfc").is_dir(), reason="../shared/external absent")
def test_the_official_2021_mnistfc_scores_are_recomputed_from_the_per_instance_file():
    """Official table (official_summary_table.tex): exact for seven tools; within 2 points for three whose
    times sit 0.2 s from the fastest (the file rounds times to 0.1 s, so those ties are undecidable)."""
    table = score_table(load_published(EXTERNAL / "vnncomp2021_mnistfc"))
    total = {}
    for per_net in table.values():
        for tool, s in per_net.items():
            total[tool] = total.get(tool, 0) + s.score
    official = {"a-b-CROWN": 772, "VeriNet": 716, "Debona": 688, "oval": 676, "ERAN": 654, "Marabou": 540,
                "venus2": 522, "nnenum": 512, "nnv": 186, "DNNF": 70}
    exact = {"VeriNet", "Debona", "ERAN", "Marabou", "venus2", "nnv", "DNNF"}
    for tool, score in official.items():
        assert abs(total[tool] - score) <= (0 if tool in exact else 2), tool
    assert table["mnist-net_256x2"]["nnv"].wrong == 1     # 'holds' on prop_14_0.03 against eight counterexamples


@pytest.mark.skipif(not (EXTERNAL / "vnncomp2020_mnist_oval").is_dir(), reason="../shared/external absent")
def test_the_2020_results_are_read_per_network_eps_and_image():
    pub = load_published(EXTERNAL / "vnncomp2020_mnist_oval")
    assert len(pub.answers) == 150 and pub.tools == ["mipverify", "nnenum", "venus", "verinet"]
    first = pub.answers["mnist-net_256x2-img0-eps0.02"]
    assert first["mipverify"].result == "violated" and first["mipverify"].time_s == pytest.approx(4.313285231)


def test_report_command_scores_a_run_beside_the_published_folder(tmp_path, published_dir):
    run = tmp_path / "run"
    run.mkdir()
    with (run / "verify.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(our_rows())
    out = invoke(["report", str(run), "--published", str(published_dir)], cli_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "| net_1x1 | **advmilp** | 1 | 1 | 1 | 2 | 1 | 5.0 | -177 |" in out.stdout
    assert "| net_1x1 | A | 2 | 2 | 1 | 0 | 4 | 6.0 | 48 |" in out.stdout
    assert out.stdout.count("WRONG") == 2 and (run / "report" / "vnncomp.md").is_file()
    text = render_report(our_rows(), None)
    assert "our counts only" in text


def _bench(monkeypatch, *args) -> int:
    """benchmarks/vnncomp_bench.py run in this process with ``args`` on the local MNIST copy: its exit status."""
    import runpy

    from tests.nets import mnist_dir

    if mnist_dir() is None:
        pytest.skip("MNIST not found")
    monkeypatch.setenv("ADVMILP_DATA", str(mnist_dir()))
    monkeypatch.setattr("sys.argv", ["vnncomp_bench.py", *args])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / "benchmarks" / "vnncomp_bench.py"), run_name="__main__")
    return done.value.code


@pytest.mark.skipif(not all((EXTERNAL / d).is_dir() for d in ("vnncomp2020_mnist_oval", "vnncomp2021_mnistfc")),
                    reason="../shared/external absent")
def test_the_benchmark_script_runs_its_full_mode_on_one_instance_per_set(tmp_path, monkeypatch, capsys):
    """benchmarks/vnncomp_bench.py --full --limit 1: the 2021 set's first instance and the 2020 set's first,
    generated by export_vnnlib, each through the batch and scored beside the published tools."""
    assert _bench(monkeypatch, "--full", "--limit", "1", "--timeout-scale", "0.02",
                  "--results-dir", str(tmp_path)) == 0
    printed = capsys.readouterr().out
    assert "## 2021 mnistfc" in printed and "## 2020 MNIST-OVAL" in printed
    assert "| mnist-net_256x2-prop_0_0.03 | holds |" in printed
    assert "| mnist-net_256x2-img0-eps0.02 | violated |" in printed        # the published tools' consensus
    assert "WRONG" not in printed
    rows = list(csv.DictReader((tmp_path / "oval2020" / "verify.csv").open()))
    assert len(rows) == 1 and rows[0]["timeout_s"] == "18.0" and rows[0]["result"] in ("violated", "unknown")
    assert bool(rows[0]["counterexample"]) == (rows[0]["result"] == "violated")


@pytest.mark.skipif(not (EXTERNAL / "vnncomp2021_mnistfc").is_dir(), reason="../shared/external absent")
def test_the_benchmark_script_keeps_the_networks_and_sets_asked_for(tmp_path, monkeypatch, capsys):
    """--nets/--sets narrow the full mode (here: 2021 only, 256x4 only, its first instance); an unknown
    network is refused in one line before anything runs."""
    assert _bench(monkeypatch, "--full", "--sets", "2021", "--nets", "256x4", "--limit", "1",
                  "--timeout-scale", "0.01", "--results-dir", str(tmp_path)) == 0
    printed = capsys.readouterr().out
    assert "## 2021 mnistfc" in printed and "## 2020 MNIST-OVAL" not in printed and not (tmp_path / "oval2020").exists()
    rows = list(csv.DictReader((tmp_path / "mnistfc2021" / "verify.csv").open()))
    assert [Path(r["vnnlib"]).name for r in rows] == ["prop_0_0.03.vnnlib"]
    assert Path(rows[0]["onnx"]).name == "mnist-net_256x4.onnx" and rows[0]["result"] != "violated"
    assert _bench(monkeypatch, "--full", "--nets", "128x2", "--results-dir", str(tmp_path)) == 2
    assert "unknown network 128x2" in capsys.readouterr().err


@pytest.mark.skipif(not (EXTERNAL / "vnncomp2020_mnist_oval").is_dir(), reason="../shared/external absent")
def test_the_benchmark_script_keeps_the_2020_radius_asked_for(tmp_path, monkeypatch, capsys):
    """--eps 0.05 writes and runs only that radius of the 2020 set; a radius the set does not have is refused."""
    assert _bench(monkeypatch, "--full", "--sets", "2020", "--nets", "256x2", "--eps", "0.05",
                  "--limit", "1", "--timeout-scale", "0.01", "--results-dir", str(tmp_path)) == 0
    assert "| mnist-net_256x2 ε 0.05 | 1 |" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "oval2020" / "verify.csv").open()))
    assert [Path(r["vnnlib"]).name for r in rows] == ["mnist-net_256x2_0_linf_0.05.vnnlib"]
    assert _bench(monkeypatch, "--full", "--eps", "0.1", "--results-dir", str(tmp_path)) == 2
    assert "--eps: choose from 0.02, 0.05" in capsys.readouterr().err


@pytest.mark.skipif(not (EXTERNAL / "vnncomp2020_mnist_oval").is_dir(), reason="../shared/external absent")
def test_the_benchmark_script_keeps_the_2020_images_asked_for(tmp_path, monkeypatch, capsys):
    """--images 3,1 writes and runs only those test images of the 2020 set (in order); an image outside
    0-24 is refused in one line before anything runs."""
    assert _bench(monkeypatch, "--full", "--sets", "2020", "--nets", "256x2", "--eps", "0.02",
                  "--images", "3,1", "--timeout-scale", "0.01", "--results-dir", str(tmp_path)) == 0
    rows = list(csv.DictReader((tmp_path / "oval2020" / "verify.csv").open()))
    assert [Path(r["vnnlib"]).name for r in rows] == ["mnist-net_256x2_1_linf_0.02.vnnlib",
                                                      "mnist-net_256x2_3_linf_0.02.vnnlib"]
    capsys.readouterr()
    assert _bench(monkeypatch, "--full", "--images", "7,25", "--results-dir", str(tmp_path)) == 2
    assert "--images: test images of the 2020 set" in capsys.readouterr().err
