"""The side-by-side table of our rows and the CPLEX replication's figures (issue 16)."""

import math

import pandas as pd
import pytest

from advmilp.errors import AdvmilpError
from advmilp.reporting.replication import (dnn_of, read_cplex_figures, read_cplex_optima, replication_dir,
                                           replication_report, side_by_side)
from advmilp.reporting.tables import load_rows, write_report

FIGURES = """# a comment, as in the real file
DNN1,improved,100,2.78e-05,894.75,6.002,0.6,2.0
DNN1,weak,99,2.78e-05,894.75,5.944,0.8,2.1
DNN2,improved,96,0.1,5625.5,12.93,4.0,3.0
"""
OPTIMA = """# comment
img_order,source_set,mnist_idx,label,target,l1,witness_ok
0,test,3,0,5,1.5,True
0,test,3,0,1,9.0,True
1,test,4,4,9,2.0,True
"""
COLUMNS = "network,network_hash,method,bounds,problem,image_index,label,target,status,objective,verified,time_s\n"
ROWS = COLUMNS + """DNN1_8_8_8,aa,tight,weak,targeted ratio 1.2,3,0,5,optimal,1.5003,True,0.2
DNN1_8_8_8,aa,tight,weak,targeted ratio 1.2,4,4,9,optimal,2.0,True,0.4
DNN1_8_8_8,aa,tight,weak,targeted ratio 1.2,5,1,6,time_limit,7.0,True,300
DNN1_8_8_8,aa,tight,weak,targeted ratio 1.2,6,4,9,optimal,3.0,False,0.3
DNN2_8_8_8_8_8,bb,tight,weak,targeted ratio 1.2,0,7,2,optimal,4.0,True,1.0
dnn1,cc,tight,improved,targeted ratio 1.2,0,7,2,optimal,9.0,True,1.0
"""


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "fj"
    (d / "dnn1_all_targets").mkdir(parents=True)
    (d / "solveData_parsed.csv").write_text(FIGURES)
    (d / "dnn1_all_targets" / "dnn1_450_optimal_l1.csv").write_text(OPTIMA)
    return d


@pytest.fixture
def rows(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "instances.csv").write_text(ROWS)
    return load_rows([run])


def test_replication_networks_are_recognised_by_name():
    assert dnn_of("DNN3_20_10_8_8") == "DNN3" and dnn_of("DNN1_8_8_8_reluout") == "DNN1"
    assert dnn_of("dnn1") is None and dnn_of("DNN6_8") is None and dnn_of("mnist-net_256x2") is None


def test_figures_and_optima_are_read(folder):
    f = read_cplex_figures(folder / "solveData_parsed.csv")
    assert set(f) == {("DNN1", "improved"), ("DNN1", "weak"), ("DNN2", "improved")}
    assert f[("DNN1", "weak")].optimal == 99 and f[("DNN1", "weak")].mean_time_s == 0.8
    assert f[("DNN2", "improved")].mean_l1 == 3.0 and f[("DNN2", "improved")].bounds_time_s == 12.93
    assert read_cplex_optima(folder / "dnn1_all_targets" / "dnn1_450_optimal_l1.csv") == \
        {(3, 5): 1.5, (3, 1): 9.0, (4, 9): 2.0}


@pytest.mark.parametrize("text, words", [
    ("DNN1,improved,100,0,1,2,3\n", ["data line 1", "7 fields"]),
    ("DNN1,improved,99.5,0,1,2,3,4\n", ["data line 1", "whole optimal count"]),
    ("DNN1,improved,100,0,1,2,fast,4\n", ["data line 1"]),
    ("# only a comment\n", ["no data lines"]),
])
def test_a_malformed_figures_file_is_one_line(tmp_path, text, words):
    path = tmp_path / "f.csv"
    path.write_text(text)
    with pytest.raises(AdvmilpError) as err:
        read_cplex_figures(path)
    assert "\n" not in str(err.value) and all(w in str(err.value) for w in words)


def test_side_by_side_figures(folder, rows):
    t = side_by_side(rows, read_cplex_figures(folder / "solveData_parsed.csv"),
                     read_cplex_optima(folder / "dnn1_all_targets" / "dnn1_450_optimal_l1.csv"))
    assert list(t["network"]) == ["DNN1_8_8_8", "DNN2_8_8_8_8_8"]   # the shipped dnn1 is not theirs
    d1 = t.iloc[0]
    # optimal and verified: images 3 and 4; image 6 is unverified, image 5 timed out
    assert d1["n"] == 4 and d1["%optimal"] == 50.0
    assert d1["time_mean_s"] == pytest.approx((0.2 + 0.4 + 300 + 0.3) / 4)
    assert d1["time_median_s"] == pytest.approx((0.3 + 0.4) / 2)
    assert d1["l1_mean"] == pytest.approx((1.5003 + 2.0) / 2)
    assert d1["cplex_improved_optimal"] == 100 and d1["cplex_weak_optimal"] == 99
    assert d1["cplex_improved_time_s"] == 0.6 and d1["cplex_weak_l1"] == 2.1
    assert d1["x_faster"] == pytest.approx(0.6 / d1["time_mean_s"])
    assert d1["l1_diff"] == pytest.approx(d1["l1_mean"] - 2.0)
    # per instance: (3, 5) and (4, 9) have CPLEX optima; (3, 1) is another target
    assert d1["matched"] == 2 and d1["max_rel_diff"] == pytest.approx(0.0003 / 1.5)
    d2 = t.iloc[1]
    assert d2["%optimal"] == 100 and d2["l1_diff"] == pytest.approx(1.0) and math.isnan(d2["cplex_weak_l1"])
    assert math.isnan(d2["matched"])   # per-instance optima exist for DNN1 only


def test_the_report_writes_the_table_beside_the_thesis_tables(folder, rows, tmp_path):
    text = replication_report(rows, tmp_path / "rep", folder)
    assert "DNN1_8_8_8" in text and "dnn1 " not in text and "x_faster" in text
    md = (tmp_path / "rep" / "replication.md").read_text()
    assert "| DNN2_8_8_8_8_8 | tight | weak | 1 | 100 |" in md
    assert pd.read_csv(tmp_path / "rep" / "replication.csv")["cplex_improved_time_s"].tolist() == [0.6, 4.0]
    # rows of other networks only: nothing; the replication's folder absent: one line saying where
    assert replication_report(rows[rows["network"] == "dnn1"], tmp_path / "rep2", folder) == ""
    assert "ADVMILP_EXTERNAL" in replication_report(rows, tmp_path / "rep3", tmp_path / "absent")


def test_write_report_appends_it(folder, rows, tmp_path, monkeypatch):
    monkeypatch.setenv("ADVMILP_EXTERNAL", str(folder.parent))
    (folder.parent / "fj_replication_tim25432").mkdir()
    for name in ("solveData_parsed.csv",):
        (folder.parent / "fj_replication_tim25432" / name).write_text(FIGURES)
    text = write_report(rows, tmp_path / "report")
    assert "Independent replication" in text and (tmp_path / "report" / "replication.md").is_file()
    assert replication_dir() == folder.parent / "fj_replication_tim25432"


REAL = replication_dir()


@pytest.mark.skipif(not (REAL / "solveData_parsed.csv").is_file(), reason="../shared/external not present")
def test_the_real_figures_file():
    f = read_cplex_figures(REAL / "solveData_parsed.csv")
    assert {d for d, _ in f} == {"DNN1", "DNN2", "DNN3", "DNN4", "DNN5"}
    assert {v for _, v in f} == {"improved", "weak", "base"}
    assert f[("DNN1", "improved")].optimal == 100 and f[("DNN1", "improved")].mean_time_s == pytest.approx(0.62366)
    assert f[("DNN5", "weak")].optimal == 58 and f[("DNN4", "improved")].mean_l1 == pytest.approx(3.226436452)
    optima = read_cplex_optima(REAL / "dnn1_all_targets" / "dnn1_450_optimal_l1.csv")
    assert len(optima) == 450 and all(v > 0 for v in optima.values())
