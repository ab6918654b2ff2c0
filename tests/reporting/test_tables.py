"""Tests for advmilp.report: hand-written result CSVs with hand-computed averages."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from advmilp.reporting import tables as report
from advmilp.errors import AdvmilpError

ROOT = Path(__file__).resolve().parents[2]
THESIS_TEXT = ROOT.parent / "shared" / "seeds" / "thesis-adversarial-milp-local-search.txt"

# Older file: no `method` column (-> "milp"). dnn1/basic has 4 rows:
#   optimal+verified (obj 8), optimal but NOT verified (obj 9), time_limit verified gap 0.5 (obj 10),
#   time_limit without incumbent (gap 100).
# dnn4/improved has only 2 rows (partial result).
RUN_A = """network,network_hash,bounds,problem,image_index,label,target,status,objective,bound,gap_pct,nodes,time_s,verified,solver
dnn1,h1,basic,targeted,0,7,2,optimal,8.0,8.0,0.0,1000,2.0,True,highs
dnn1,h1,basic,targeted,1,2,7,optimal,9.0,9.0,0.0,3000,4.0,False,highs
dnn1,h1,basic,targeted,2,1,6,time_limit,10.0,9.95,0.5,5000,300.0,True,highs
dnn1,h1,basic,targeted,3,0,5,time_limit,,0.0,100.0,7000,300.0,False,highs
dnn4,h4,improved,targeted,0,7,2,optimal,5.0,5.0,0.0,10,1.0,True,highs
dnn4,h4,improved,targeted,1,2,7,time_limit,6.0,5.88,2.0,30,300.0,True,highs
"""

# Newer file with a `method` column and an extra unknown column; verified as text.
RUN_B = """network,method,bounds,problem,image_index,status,objective,bound,gap_pct,nodes,time_s,verified,extra_col
dnn4,tight,weak,targeted,0,optimal,4.0,4.0,0.0,100,3.0,True,x
dnn4,tight,weak,targeted,1,optimal,6.0,6.0,0.0,300,5.0,True,y
notebook,milp,basic,targeted,0,infeasible,,,,,0.5,False,z
"""


@pytest.fixture
def runs(tmp_path):
    a, b = tmp_path / "runA", tmp_path / "runB"
    a.mkdir()
    b.mkdir()
    (a / "instances.csv").write_text(RUN_A)
    (b / "instances.csv").write_text(RUN_B)
    return a, b


@pytest.fixture
def df(runs):
    return report.load_rows(runs)


def cell(table, network, bounds, method="milp"):
    sel = table[(table.network == network) & (table.bounds == bounds) & (table.method == method)]
    assert len(sel) == 1, (network, bounds, method, table)
    return sel.iloc[0]


def test_load_rows_tags_runs_defaults_method_and_normalises_verified(df, runs):
    assert len(df) == 9
    assert set(df["run"]) == {"runA", "runB"}
    assert (df[df.run == "runA"]["method"] == "milp").all()
    assert df["verified"].dtype == bool
    assert df["verified"].tolist() == [True, False, True, False, True, True, True, True, False]
    # a CSV path works as well as a directory
    assert len(report.load_rows(runs[0] / "instances.csv")) == 6


def test_verified_strings_and_blanks(tmp_path):
    (tmp_path / "instances.csv").write_text(
        "network,bounds,status,gap_pct,verified\nn,basic,optimal,0,True\nn,basic,optimal,0,false\n"
        "n,basic,optimal,0,\nn,basic,optimal,0,1\n")
    d = report.load_rows([tmp_path])
    assert d["verified"].tolist() == [True, False, False, True]
    assert cell(report.table2(d), "n", "basic")["%solved"] == pytest.approx(50.0)


def test_table2_counts_only_verified_optimal_rows(df):
    c = cell(report.table2(df), "dnn1", "basic")
    assert c["n"] == 4
    assert c["%solved"] == pytest.approx(100 * 1 / 4)  # the unverified optimal row is not solved
    assert c["%gap"] == pytest.approx((0 + 0 + 0.5 + 100) / 4)
    assert c["nodes"] == pytest.approx((1000 + 3000 + 5000 + 7000) / 4)
    assert c["time_s"] == pytest.approx((2 + 4 + 300 + 300) / 4)


def test_unverified_optimal_cell_is_not_solved(tmp_path):
    (tmp_path / "instances.csv").write_text(
        "network,bounds,status,objective,gap_pct,verified\nd,basic,optimal,3,0,False\nd,basic,optimal,3,0,False\n")
    d = report.load_rows([tmp_path])
    assert cell(report.table2(d), "d", "basic")["%solved"] == 0
    assert cell(report.table3(d), "d", "basic")["%solved"] == 0
    assert math.isnan(cell(report.table4(d), "d", "basic")["obj"])
    assert "2 unverified (2 with an incumbent" in report.footer(d)


def test_table3_uses_gap_le_1(df):
    t3 = report.table3(df)
    assert cell(t3, "dnn1", "basic")["%solved"] == pytest.approx(50.0)  # gap 0 and gap 0.5, both verified
    assert cell(t3, "dnn4", "improved")["%solved"] == pytest.approx(50.0)  # gap 2.0 is not within 1 %
    assert cell(t3, "dnn4", "weak", "tight")["%solved"] == pytest.approx(100.0)


def test_table3_boundary_is_inclusive(tmp_path):
    (tmp_path / "instances.csv").write_text(
        "network,bounds,status,objective,gap_pct,verified\nd,basic,time_limit,3,1.0,True\n"
        "d,basic,time_limit,3,1.01,True\nd,basic,time_limit,3,0.2,False\n")
    d = report.load_rows([tmp_path])
    assert cell(report.table3(d), "d", "basic")["%solved"] == pytest.approx(100 / 3)
    assert cell(report.table2(d), "d", "basic")["%solved"] == 0


def test_table4_objective_over_verified_incumbents(df, runs, tmp_path):
    c = cell(report.table4(df), "dnn1", "basic")
    assert c["%solved"] == pytest.approx(25.0)
    assert c["%solved_1pct"] == pytest.approx(50.0)
    assert c["obj"] == pytest.approx((8 + 10) / 2)  # obj 9 is unverified, row 4 has none
    assert c["time_s"] == pytest.approx(151.5)
    # a separate gap-1 % run feeds the right half
    g = tmp_path / "gap1"
    g.mkdir()
    (g / "instances.csv").write_text(
        "network,bounds,status,objective,gap_pct,time_s,verified\ndnn1,basic,optimal,7,0.8,1.0,True\n")
    t4 = report.table4(df, report.load_rows([g]))
    c = cell(t4, "dnn1", "basic")
    assert (c["n"], c["n_1pct"], c["%solved_1pct"], c["time_s_1pct"], c["obj_1pct"]) == (4, 1, 100.0, 1.0, 7.0)
    assert math.isnan(cell(t4, "dnn4", "improved")["n_1pct"])


def test_thesis_columns_match_json(df):
    data = json.loads((ROOT / "advmilp" / "reporting" / "thesis_tables.json").read_text())
    c2 = cell(report.table2(df), "dnn1", "basic")
    want = data["table2"]["basic"]["dnn1"]
    assert (c2["thesis_%solved"], c2["thesis_%gap"], c2["thesis_nodes"], c2["thesis_time_s"]) == (
        want["solved_pct"], want["gap_pct"], want["nodes"], want["time_s"])
    assert c2["thesis_nodes"] == 2575
    c3 = cell(report.table3(df), "dnn1", "basic")
    assert c3["thesis_%gap"] == data["table3"]["basic"]["dnn1"]["gap_pct"] == 0.54
    weak = cell(report.table2(df), "dnn4", "weak", "tight")
    assert (weak["thesis_%solved"], weak["thesis_%gap"], weak["thesis_nodes"]) == (44, 0.31, 100730)
    blank = cell(report.table2(df), "notebook", "basic")
    assert math.isnan(blank["thesis_%solved"]) and math.isnan(blank["thesis_time_s"])
    assert math.isnan(cell(report.table4(df), "dnn1", "basic")["thesis_obj"])  # thesis Table 4: improved only


@pytest.mark.skipif(not THESIS_TEXT.exists(), reason="thesis text not available")
def test_json_transcribes_thesis_tables_2_and_3():
    data = report.thesis_tables()
    text = THESIS_TEXT.read_text()
    for table, start, end in (("table2", "**Table 2**", "**Table 3**"), ("table3", "**Table 3**", "## 5.2")):
        block = text[text.index(start):text.index(end)]
        lines = [ln for ln in block.splitlines() if ln.startswith("DNN")]
        assert len(lines) == 5
        for ln in lines:
            net, *vals = ln.split("\t")
            vals = [float(v.replace(",", "")) for v in vals]
            for model, part in (("basic", vals[:4]), ("improved", vals[4:])):
                d = data[table][model][net.lower()]
                assert [d["solved_pct"], d["gap_pct"], d["nodes"], d["time_s"]] == part, (table, net, model)
    paren = [ln for ln in text[text.index("**Table 2**"):].splitlines() if ln.strip().startswith("(")][:2]
    for net, ln in zip(("dnn4", "dnn5"), paren):
        vals = [float(v.strip("()").replace(",", "")) for v in ln.split()]
        d = data["table2"]["weak"][net]
        assert [d["solved_pct"], d["gap_pct"], d["nodes"], d["time_s"]] == vals


def test_partial_cell_and_order(df):
    t = report.table2(df)
    assert cell(t, "dnn4", "improved")["n"] == 2
    assert cell(t, "dnn4", "weak", "tight")["n"] == 2
    assert list(zip(t.network, t.bounds)) == [("dnn1", "basic"), ("dnn4", "improved"), ("dnn4", "weak"),
                                              ("notebook", "basic")]
    nb = cell(t, "notebook", "basic")
    assert nb["n"] == 1 and nb["%solved"] == 0 and math.isnan(nb["%gap"])


def test_formatting_follows_thesis(df):
    text = report.render_text(report.table2(df))
    row = next(ln for ln in text.splitlines() if ln.startswith("dnn1"))
    fields = row.split()
    assert fields[:4] == ["dnn1", "milp", "basic", "4"]
    assert fields[4] == "25"           # %solved: whole number, 0 decimals
    assert fields[6] == "4,000"        # nodes with thousands separator
    assert fields[7] == "151.50"       # time with 2 decimals
    assert fields[8:] == ["89", "0.00", "2,575", "2.10"]
    header = text.splitlines()[0]
    assert header.index("%solved") > header.index("network")


def test_write_report_creates_files(df, tmp_path):
    out = tmp_path / "report"
    text = report.write_report(df, out)
    for name in ("table2", "table3", "table4"):
        for ext in ("md", "csv", "tex"):
            f = out / f"{name}.{ext}"
            assert f.is_file() and f.stat().st_size > 0, f
        back = pd.read_csv(out / f"{name}.csv")
        assert len(back) == 4 and "thesis_%solved" in back
    assert "| dnn1 |" in (out / "table2.md").read_text()
    tex = (out / "table2.tex").read_text()
    assert "tabular" in tex and r"\%solved" in tex
    assert "9 rows from 2 run(s); 3 unverified (1 with an incumbent that failed verification" in text
    assert re.search(r"^dnn1\s+milp\s+basic\s+4\s+25\b", text, re.M)


def test_write_report_on_empty_results(tmp_path):
    (tmp_path / "instances.csv").write_text("network,bounds,status,gap_pct,verified\n")
    text = report.write_report(report.load_rows([tmp_path]), tmp_path / "out")
    assert "0 rows" in text
    assert (tmp_path / "out" / "table4.tex").stat().st_size > 0


def test_missing_directory_names_path(tmp_path):
    missing = tmp_path / "no_such_run"
    with pytest.raises(AdvmilpError, match=re.escape(str(missing))):
        report.load_rows([missing])


@pytest.mark.parametrize("content", ["", "foo,bar\n1,2\n", "\x00\xff\xfe garbage"])
def test_unreadable_file_names_path(tmp_path, content):
    f = tmp_path / "instances.csv"
    f.write_bytes(content.encode("latin-1"))
    with pytest.raises(AdvmilpError, match=re.escape(str(f))):
        report.load_rows([tmp_path])


def test_import_does_not_pull_solvers_or_tensorflow():
    code = ("import sys, advmilp.reporting.tables; "
            "bad = [m for m in ('tensorflow', 'pulp', 'highspy') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_heuristic_rows_get_their_own_table(tmp_path):
    (tmp_path / "instances.csv").write_text(
        "network,method,bounds,status,objective,l1,gap_pct,time_s,verified\n"
        "dnn5,cdh,basic,found,10,10,,2.0,True\n"
        "dnn5,cdh,basic,found,14,14,,4.0,True\n"
        "dnn5,cdh,basic,not_found,,,,9.0,False\n"
        "dnn5,cdh,basic,found,1,1,,1.0,False\n")   # claimed found but unverified: not counted
    df = report.load_rows([tmp_path])
    t = report.table_heuristics(df)
    row = t.iloc[0]
    assert row["n"] == 4 and row["%found"] == 50.0
    assert row["time_s"] == pytest.approx(3.0) and row["obj"] == pytest.approx(12.0)
    assert row["thesis_%found"] == 84 and row["thesis_obj"] == pytest.approx(10.96)
    text = report.write_report(df, tmp_path / "out")
    assert "Heuristics" in text and not (tmp_path / "out" / "table2.md").exists()


@pytest.mark.parametrize("network, method, expected", [
    ("dnn5", "cdh", (84, 10.96)),
    ("dnn5", "cdh-diff-unbounded", (75, 10.81)),
    ("dnn5", "cdh-simple-fixed", (77, 12.34)),
    ("dnn1", "cdh-none", (71, 10.05)),
    ("dnn1", "cdh-random-k2-r75", (92, 15.11)),
    ("dnn1", "cdh-guided-065-r25", (90, 11.85)),
    ("dnn1", "cdh-complete", None),
    ("dnn3", "cdh", None),
])
def test_thesis_heuristic_rows_matched_by_variant_name(network, method, expected):
    row = report.thesis_heuristic_row(network, method)
    if expected is None:
        assert row is None
    else:
        assert (row["solved_pct"], row["obj"]) == expected


# ---- issue 15: a result file never counts an instance twice -------------------------------------------
DUPLICATED = """network,network_hash,method,bounds,problem,image_index,status,objective,bound,gap_pct,nodes,time_s,verified
dnn1,h1,milp,basic,targeted,0,time_limit,9.0,8.0,11.0,10,300.0,True
dnn1,h1,milp,basic,targeted,1,optimal,7.0,7.0,0.0,10,2.0,True
dnn1,h1,milp,basic,targeted,0,optimal,8.0,8.0,0.0,10,2.0,True
dnn1,h1,milp,basic,targeted,1,optimal,7.0,7.0,0.0,10,2.0,True
"""


def test_duplicate_instance_keys_keep_the_last_row_and_say_so(tmp_path, capsys):
    (tmp_path / "instances.csv").write_text(DUPLICATED)
    df = report.load_rows(tmp_path)
    assert len(df) == 2 and df.sort_values("image_index")["status"].tolist() == ["optimal", "optimal"]
    t = report.table2(df)
    assert t["n"].tolist() == [2] and t["%solved"].tolist() == [100.0]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning:") and "2 extra row(s) for 2 instance(s)" in err[0]


def test_no_warning_without_duplicates(tmp_path, capsys):
    (tmp_path / "instances.csv").write_text("\n".join(DUPLICATED.splitlines()[:3]) + "\n")
    assert len(report.load_rows(tmp_path)) == 2 and capsys.readouterr().err == ""


def test_two_networks_with_one_name_get_two_cells(tmp_path):
    (tmp_path / "instances.csv").write_text(
        "network,network_hash,method,bounds,problem,image_index,status,objective,verified\n"
        "twin,aaa,milp,basic,targeted,0,optimal,1.0,True\n"
        "twin,bbb,milp,basic,targeted,0,time_limit,2.0,True\n"
        "dnn1,h1,milp,basic,targeted,0,optimal,3.0,True\n")
    t = report.table2(report.load_rows(tmp_path))
    assert sorted(t["network"]) == ["dnn1", "twin@aaa", "twin@bbb"] and t["n"].tolist() == [1, 1, 1]


def test_a_run_of_several_problems_gets_one_row_per_problem(tmp_path):
    """A config's ``problems:`` list: targeted L1 8 and 10 beside untargeted 2 and 4 on one network must
    not average to 6 in one cell."""
    rows = ("network,method,bounds,problem,image_index,status,objective,bound,gap_pct,nodes,time_s,verified\n"
            "dnn1,tight,basic,targeted ratio 1.2,0,optimal,8.0,8.0,0.0,10,1.0,True\n"
            "dnn1,tight,basic,targeted ratio 1.2,1,optimal,10.0,10.0,0.0,30,3.0,True\n"
            "dnn1,tight,basic,untargeted factor 0.95,0,optimal,2.0,2.0,0.0,5,0.5,True\n"
            "dnn1,tight,basic,untargeted factor 0.95,1,time_limit,4.0,3.0,25.0,7,9.0,True\n")
    path = tmp_path / "instances.csv"
    path.write_text(rows)
    df = report.load_rows([path])
    t4 = report.table4(df).set_index("problem")
    assert list(t4.index) == ["targeted ratio 1.2", "untargeted factor 0.95"]
    assert t4.loc["targeted ratio 1.2", "obj"] == 9.0 and t4.loc["untargeted factor 0.95", "obj"] == 3.0
    t2 = report.table2(df).set_index("problem")
    assert t2.loc["targeted ratio 1.2", "%solved"] == 100 and t2.loc["untargeted factor 0.95", "%solved"] == 50
    assert "one row per problem" in report.footer(df)
    # one problem: no problem column, as before
    single = df[df["problem"].str.startswith("targeted")]
    assert "problem" not in report.table2(single) and "one row per problem" not in report.footer(single)
