"""The robustness study's report: grid coordinates, proven counts, lower bounds marked, clean errors."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from advmilp.reporting import study
from advmilp.reporting.tables import load_rows
from advmilp.spec.rows import COLUMNS, make_row

T, U = "targeted ratio 1.2", "untargeted factor 0.95"


def _row(net, image, status, objective=math.nan, bound=math.nan, problem=T, verified=True, time_s=1.0):
    return make_row(network=net, network_hash="h" + net, method="tight", bounds="basic", problem=problem,
                    image_index=image, status=status, objective=objective, bound=bound, verified=verified,
                    time_s=time_s)


def _run(tmp_path, rows, images=None):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(run / "instances.csv", index=False)
    if images is not None:
        (run / "images.json").write_text(json.dumps(images))
    return run


def _rows():
    a, b = "mlp-w8-d1-p0", "mlp-w16-d2-p50"
    return [
        _row(a, 0, "optimal", 1.0, 1.0), _row(a, 1, "optimal", 3.0, 3.0), _row(a, 2, "optimal", 8.0, 8.0),
        _row(a, 0, "optimal", 0.5, 0.5, problem=U), _row(a, 1, "optimal", 1.5, 1.5, problem=U),
        _row(b, 0, "optimal", 2.0, 2.0), _row(b, 1, "time_limit", 9.0, 4.0), _row(b, 2, "error", verified=False),
        _row("dnn1", 0, "optimal", 7.0, 7.0),     # not a study network: left out
        _row(a, 2, "infeasible", problem=U, verified=False),   # no example at any distance
    ]


def test_one_line_per_study_network_and_problem_with_lower_bounds_marked(tmp_path, monkeypatch):
    t = study.study_table(load_rows(_run(tmp_path, _rows())), models_dir=tmp_path)
    assert list(zip(t["network"], t["problem"])) == [("mlp-w8-d1-p0", T), ("mlp-w16-d2-p50", T), ("mlp-w8-d1-p0", U)]
    a, b, au = (t.iloc[i] for i in range(3))
    assert (a["width"], a["depth"], a["dropout"], a["params"]) == (8, 1, 0.0, 784 * 8 + 8 + 8 * 10 + 10)
    assert (b["width"], b["depth"], b["dropout"]) == (16, 2, 0.5)
    assert (a["n"], a["proven"], a["mean"], a["median"], bool(a["lower_bound"])) == (3, 3, 4.0, 3.0, False)
    # b: 2.0 proven, 9.0 unproven counts at its bound 4.0, the error row is not a distance
    assert (b["n"], b["proven"], b["mean"], b["exact_mean"], bool(b["lower_bound"])) == (3, 1, 3.0, 2.0, True)
    assert b["upper_mean"] == 5.5 and a["upper_mean"] == 4.0    # b: incumbents 2 and 9 bracket the true mean
    assert au["mean"] == 1.0 and math.isnan(a["test_acc"])    # no weights in tmp_path
    assert (au["n"], au["proven"], au["none"], au["proven_pct"]) == (3, 3, 1, 100.0)


def test_report_text_marks_lower_bounds_and_reads_the_selection(tmp_path):
    run = _run(tmp_path, _rows(), {"split": "test", "selected": [0, 1, 2, 3],
                                   "indices": {"mlp-w8-d1-p0": [0, 1, 2], "mlp-w16-d2-p50": [0, 1, 2, 3]}})
    sel = study.read_selection(run)
    assert sel == {"mlp-w8-d1-p0": (4, 3), "mlp-w16-d2-p50": (4, 4)}
    text = study.study_report(load_rows(run), tmp_path / "rep", tmp_path, sel)
    line = next(x for x in text.splitlines() if x.startswith("mlp-w16-d2-p50"))
    assert "≥ 3.000 ≤ 5.500" in line and "1/3" in line and "4/4" in line
    line = next(x for x in text.splitlines() if x.startswith("mlp-w8-d1-p0"))
    assert "≥" not in line and "3/4" in line and "3/3" in line and "4.000" in line and "3/3 (1 none)" in line
    assert text.index("mlp-w8-d1-p0") < text.index("mlp-w16-d2-p50")
    for name in ("study.csv", "study.md", "study_wide.md"):
        assert (tmp_path / "rep" / name).is_file()
    assert "≥ 3.000" in (tmp_path / "rep" / "study.md").read_text()
    assert study.read_selection(tmp_path) == {}


def test_no_study_network_gives_nothing(tmp_path):
    rows = [_row("dnn1", 0, "optimal", 7.0, 7.0)]
    df = load_rows(_run(tmp_path, rows))
    assert study.study_report(df) == "" and study.save_study_figure(tmp_path / "s.png", df) == []
    assert study.save_study_curves(tmp_path / "c.png", df) == []


def test_figures_are_written_as_png_and_pdf(tmp_path):
    run = _run(tmp_path, _rows(), {"split": "test", "selected": [0, 1, 2, 3],
                                   "indices": {"mlp-w8-d1-p0": [0, 1, 2], "mlp-w16-d2-p50": [0, 1, 2, 3]}})
    df, sel = load_rows(run), study.read_selection(run)
    for paths in (study.save_study_figure(tmp_path / "s.png", df, tmp_path, selection=sel),
                  study.save_study_curves(tmp_path / "c.png", df, selection=sel)):
        png, pdf = paths
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:4] == b"%PDF"


def test_report_and_figures_commands_show_the_study(tmp_path):
    from tests.cli.helpers import cli_env, invoke

    run = _run(tmp_path, _rows(), {"split": "test", "selected": [0, 1, 2, 3],
                                   "indices": {"mlp-w8-d1-p0": [0, 1, 2], "mlp-w16-d2-p50": [0, 1, 2, 3]}})
    proc = invoke(["report", str(run), "--out", str(tmp_path / "rep")], cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Robustness study" in proc.stdout and (tmp_path / "rep" / "study.csv").is_file()
    proc = invoke(["figures", "--results", str(run), "--out", str(tmp_path / "fig")], cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fig" / "study.png").is_file() and (tmp_path / "fig" / "study_curves.pdf").is_file()
    assert not (tmp_path / "fig" / "robustness.png").exists()


def test_the_curve_counts_infeasible_as_robust_and_misclassified_as_not():
    xs, ys = study.study_curve([1.0, 3.0, math.inf, 2.0])
    assert list(xs) == [0.0, 1.0, 2.0, 3.0] and list(ys) == [1.0, 0.75, 0.5, 0.25]
    xs, ys = study.study_curve([1.0, 3.0, math.inf, 2.0], selected=5, attacked=4)   # one clean error
    assert list(ys) == pytest.approx([0.8, 0.6, 0.4, 0.2])
