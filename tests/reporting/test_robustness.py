"""advmilp.reporting.robustness: robust accuracy vs ε from hand-made rows with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from advmilp.reporting import robustness as rb
from advmilp.reporting.tables import load_rows
from advmilp.spec.rows import COLUMNS, make_row

PROBLEM = "targeted ratio 1.2"


def _row(image, status, objective=math.nan, bound=math.nan, verified=True, network="net", method="tight",
         problem=PROBLEM, **extra):
    return make_row(network=network, network_hash="h" + network, method=method, bounds="weak", problem=problem,
                    image_index=image, status=status, objective=objective, bound=bound, verified=verified, **extra)


def _rows():
    """Exact distances 1, 3, 5; a timed-out instance proven ≥ 2 (incumbent 6); one without any bound;
    an infeasible and an error row (excluded); a verified optimum whose check failed (bound 4)."""
    return [
        _row(0, "optimal", 1.0, 1.0),
        _row(1, "optimal", 3.0, 3.0),
        _row(2, "optimal", 5.0, 4.9999),
        _row(3, "time_limit", 6.0, 2.0),
        _row(4, "time_limit", math.nan, math.nan, verified=False),
        _row(5, "infeasible", verified=False),
        _row(6, "error", verified=False),
        _row(7, "optimal", 4.5, 4.0, verified=False),
    ]


def _frame(tmp_path, rows) -> pd.DataFrame:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(run / "instances.csv", index=False)
    return load_rows(run)


def test_classify_uses_the_optimum_or_the_proven_lower_bound():
    assert rb.classify(_row(0, "optimal", 1.0, 0.9)) == (rb.EXACT, 1.0)
    assert rb.classify(_row(0, "time_limit", 6.0, 2.0)) == (rb.LOWER, 2.0)
    assert rb.classify(_row(0, "time_limit", 6.0, math.nan)) == (rb.LOWER, 0.0)
    assert rb.classify(_row(0, "optimal", 4.5, 4.0, verified=False)) == (rb.LOWER, 4.0)
    assert rb.classify(_row(0, "infeasible"))[0] == rb.EXCLUDED
    assert rb.classify(_row(0, "error"))[0] == rb.EXCLUDED
    assert rb.classify(_row(0, "invalid"))[0] == rb.EXCLUDED


def test_row_norm_reads_a_norm_column_or_the_problem_text():
    assert rb.row_norm({"problem": PROBLEM}) == "l1"
    assert rb.row_norm({"problem": "targeted ratio 1.2 linf<=0.2"}) == "l1"    # a cap, not the norm
    assert rb.row_norm({"problem": "untargeted factor 0.95 norm linf"}) == "linf"
    assert rb.row_norm({"problem": PROBLEM, "norm": "linf"}) == "linf"


def test_robust_fraction_counts_strictly_greater():
    assert rb.robust_fraction([1, 2, 3], 2.0) == pytest.approx(1 / 3)
    assert rb.robust_fraction([1, 2, 3], 0.5) == 1.0
    assert math.isnan(rb.robust_fraction([], 1.0))


def test_table_counts_exact_lower_bounded_and_excluded(tmp_path):
    df = _frame(tmp_path, _rows())
    t = rb.robustness_table(df, {"l1": (0.5, 1.5, 2.5, 4.5)})
    assert list(t["eps"]) == [0.5, 1.5, 2.5, 4.5]
    first = t.iloc[0]
    assert (first["n"], first["exact"], first["lower_bounds"], first["excluded"]) == (6, 3, 3, 2)
    assert first["excluded_statuses"] == "1 error, 1 infeasible"
    # distances used: 1, 3, 5 (exact), 2, 0, 4 (lower bounds)
    assert list(t["robust_pct"]) == pytest.approx([100 * 5 / 6, 100 * 4 / 6, 100 * 3 / 6, 100 * 1 / 6])
    # the no-bound instance (0) makes every cell a lower bound of the robust accuracy
    assert t["lower_bound"].all()


def test_a_cell_is_exact_when_every_lower_bound_exceeds_eps(tmp_path):
    rows = [_row(0, "optimal", 1.0, 1.0), _row(1, "optimal", 3.0, 3.0), _row(3, "time_limit", 6.0, 2.0)]
    t = rb.robustness_table(_frame(tmp_path, rows), {"l1": (0.5, 1.5, 2.5)})
    assert list(t["robust_pct"]) == pytest.approx([100.0, 100 * 2 / 3, 100 * 1 / 3])
    assert list(t["lower_bound"]) == [False, False, True]
    text = rb.robustness_report(_frame(tmp_path, rows), tmp_path / "out", {"l1": (0.5, 1.5, 2.5)})
    assert "≥ 33.3" in text and "66.7" in text and "≥ 66.7" not in text
    assert (tmp_path / "out" / "robustness.csv").is_file() and (tmp_path / "out" / "robustness.md").is_file()


def test_groups_per_network_and_heuristics_and_other_problems_left_out(tmp_path):
    rows = [_row(0, "optimal", 1.0, 1.0, network="a"), _row(0, "optimal", 2.0, 2.0, network="b"),
            _row(1, "found", 0.5, verified=True, network="a", method="fast"),
            _row(2, "optimal", 9.0, 9.0, network="a", problem="max-target 3 l1<=6.0")]
    t = rb.robustness_table(_frame(tmp_path, rows), {"l1": (1.5,)})
    assert list(t["network"]) == ["a", "b"]
    assert list(t["robust_pct"]) == [0.0, 100.0]
    assert list(t["n"]) == [1, 1]


def test_no_distance_rows_gives_nothing(tmp_path):
    df = _frame(tmp_path, [_row(0, "found", 0.5, method="fast")])
    assert rb.robustness_table(df).empty
    assert rb.robustness_report(df) == ""
    assert rb.save_robustness(tmp_path / "r.png", df) == []


def test_curve_is_the_fraction_above_each_eps():
    xs, ys = rb.curve([3.0, 1.0, 2.0])
    assert list(xs) == [0.0, 1.0, 2.0, 3.0]
    assert list(ys) == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])


def test_save_robustness_writes_png_and_pdf(tmp_path):
    png, pdf = rb.save_robustness(tmp_path / "robustness.png", _frame(tmp_path, _rows()))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:4] == b"%PDF"


def test_report_command_prints_and_writes_the_robustness_table(tmp_path):
    from tests.cli.helpers import cli_env, invoke

    _frame(tmp_path, _rows())
    proc = invoke(["report", str(tmp_path / "run"), "--out", str(tmp_path / "rep")], cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Robust accuracy" in proc.stdout and "2 (1 error, 1 infeasible)" in proc.stdout
    long = pd.read_csv(tmp_path / "rep" / "robustness.csv")
    assert list(long["eps"]) == list(rb.DEFAULT_EPS["l1"])
    assert list(long["robust_pct"]) == pytest.approx([100 * 4 / 6, 100 * 3 / 6, 100 * 1 / 6, 0.0])


def test_report_eps_option_sets_the_columns_and_refuses_bad_values(tmp_path):
    from tests.cli.helpers import cli_env, invoke

    _frame(tmp_path, _rows())
    proc = invoke(["report", str(tmp_path / "run"), "--out", str(tmp_path / "rep"), "--eps", "l1=2.5,0.5"],
                  cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    long = pd.read_csv(tmp_path / "rep" / "robustness.csv")
    assert list(long["eps"]) == [0.5, 2.5]
    assert list(long["robust_pct"]) == pytest.approx([100 * 5 / 6, 100 * 3 / 6])   # distances 1,3,5,2,0,4
    for bad, words in (("l7=1", "NORM=E1"), ("l1", "NORM=E1"), ("l1=a,b", "numbers"), ("l1=-1", "≥ 0"),
                       ("l1=nan", "finite")):
        proc = invoke(["report", str(tmp_path / "run"), "--out", str(tmp_path / "rep2"), "--eps", bad], cli_env(tmp_path))
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
