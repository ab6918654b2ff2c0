"""``advmilp verify --instances`` and ``advmilp report`` on its folder, from the command line."""

from __future__ import annotations

import csv

import pytest

from tests.cli.helpers import cli_env, invoke, one_error_line
from tests.experiments.test_verify_batch import EXPECTED, write_benchmark


def test_batch_writes_a_row_per_instance_resumes_and_reports(tmp_path):
    instances = write_benchmark(tmp_path / "bench")
    env = cli_env(tmp_path)
    res = tmp_path / "res"
    out = invoke(["verify", "--instances", str(instances), "--results-dir", str(res), "--timeout", "15"], env)
    assert out.returncode == 0, out.stderr
    assert "ran 3 of 3" in out.stdout and out.stderr.count("\n[") + out.stderr.startswith("[") >= 3
    rows = list(csv.DictReader((res / "verify.csv").open()))
    assert {r["vnnlib"]: r["result"] for r in rows} == EXPECTED
    assert all(r["timeout_s"] == "15.0" and r["timeout_note"].startswith("--timeout 15") for r in rows)
    out = invoke(["verify", "--instances", str(instances), "--results-dir", str(res), "--timeout", "15"], env)
    assert out.returncode == 0 and "ran 0 of 3 (3 already recorded)" in out.stdout
    assert len(list(csv.DictReader((res / "verify.csv").open()))) == 3
    out = invoke(["report", str(res)], env)
    assert out.returncode == 0, out.stderr
    assert "holds 1, violated 2" in out.stdout and (res / "report" / "vnncomp.md").is_file()


def test_default_results_folder_is_named_after_the_benchmark(tmp_path):
    instances = write_benchmark(tmp_path / "mybench")
    out = invoke(["verify", "--instances", str(instances)], cli_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "results" / "mybench" / "verify.csv").is_file()


@pytest.mark.parametrize("args, message", [
    (["--instances", "{csv}", "--vnnlib", "x.vnnlib"], "--vnnlib does not go with --instances"),
    (["--instances", "{csv}", "--arch", "dnn1"], "--arch does not go with --instances"),
    (["--instances", "{csv}", "--timeout", "5", "--timeout-scale", "2"], "not both"),
    (["--instances", "{csv}", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --executor dask"),
    (["--arch", "dnn1", "--vnnlib", "x.vnnlib", "--force"], "--force needs --instances"),
    (["--arch", "dnn1"], "give --vnnlib"),
    (["--instances", "{bad}"], "line 2: 4 cell(s)"),
    (["--instances", "{missing}"], "cannot read"),
])
def test_refusals_are_one_error_line(tmp_path, args, message):
    instances = write_benchmark(tmp_path / "bench")
    (tmp_path / "bench" / "bad.csv").write_text("onnx/identity.onnx,h.vnnlib,10\na,b,c,d\n")
    subst = {"{csv}": str(instances), "{bad}": str(tmp_path / "bench" / "bad.csv"),
             "{missing}": str(tmp_path / "nothing.csv")}
    out = invoke(["verify", *[subst.get(a, a) for a in args]], cli_env(tmp_path))
    assert message in one_error_line(out)
    assert not (tmp_path / "results").exists()     # nothing written before the refusal


def test_report_refuses_published_for_an_attack_run(tmp_path):
    out = invoke(["report", str(tmp_path), "--published", str(tmp_path)], cli_env(tmp_path))
    assert "--published is for" in one_error_line(out) or "no results" in one_error_line(out)
