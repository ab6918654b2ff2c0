"""``verify --instances`` as a library batch: one row per instance, resume, --force, the lock, timeouts."""

from __future__ import annotations

import re

import numpy as np
import pytest

from advmilp.errors import AdvmilpError
from advmilp.experiments.store import FolderBusy, locked_folder
from advmilp.experiments.verify_batch import (BatchOptions, TimeoutPolicy, read_instances, read_rows,
                                              run_verify_batch)
from advmilp.nn.network import Network
from tests.cli.test_verify import SPEC

# identity network, y = x: 'y0 ≥ y1' is impossible when x0 ≤ hi0 < lo1 ≤ x1 (holds), possible otherwise
SPECS = {"h.vnnlib": (0.4, 0.6), "v.vnnlib": (0.7, 0.5), "v2.vnnlib": (0.9, 0.2)}
EXPECTED = {"h.vnnlib": "holds", "v.vnnlib": "violated", "v2.vnnlib": "violated"}


def write_benchmark(folder, timeouts=(10, 10, 20)):
    """A VNN-COMP style folder: a tiny ONNX network, three VNN-LIB specs and instances.csv."""
    pytest.importorskip("onnx")
    from advmilp.nn.interchange import export_onnx

    (folder / "onnx").mkdir(parents=True, exist_ok=True)
    net = Network.from_arrays([np.eye(2), np.eye(2)], [np.zeros(2)] * 2, metadata={"architecture": "identity"})
    export_onnx(net, folder / "onnx" / "identity.onnx")
    for name, (hi0, lo1) in SPECS.items():
        (folder / name).write_text(SPEC.format(hi0=hi0, lo1=lo1))
    lines = [f"onnx/identity.onnx,{name},{t}" for name, t in zip(SPECS, timeouts)]
    (folder / "instances.csv").write_text("\n".join(lines) + "\n")
    return folder / "instances.csv"


def test_three_instances_three_rows_then_a_rerun_adds_nothing(tmp_path):
    instances = write_benchmark(tmp_path / "bench")
    out = tmp_path / "res"
    lines = []
    s = run_verify_batch(instances, out, log=lines.append)
    rows = read_rows(out / "verify.csv")
    assert s.ran == 3 and len(rows) == 3
    assert {r["vnnlib"]: r["result"] for r in rows} == EXPECTED
    assert sum(line.startswith("[") for line in lines) == 3          # a progress line per instance
    for r in rows:
        assert r["network"] == "identity" and len(r["network_sha256"]) == 64 and r["timeout_note"] == "csv"
        assert r["onnx"] == "onnx/identity.onnx" and "HiGHS" in r["versions"]
        if r["result"] == "violated":
            text = (out / r["counterexample"]).read_text()
            assert text.startswith("sat\n")
            v = {k: float(x) for k, x in re.findall(r"\((\w+) ([-0-9.eE+]+)\)", text)}
            lo1 = SPECS[r["vnnlib"]][1]
            assert v["Y_0"] >= v["Y_1"] and v["X_1"] >= lo1 and v["X_0"] <= SPECS[r["vnnlib"]][0]
        else:
            assert r["counterexample"] == "" and float(r["margin"]) > 0
    again = run_verify_batch(instances, out)
    assert again.ran == 0 and again.skipped == 3 and len(read_rows(out / "verify.csv")) == 3


def test_force_redoes_in_place_and_the_timeout_is_noted(tmp_path):
    instances = write_benchmark(tmp_path / "bench")
    out = tmp_path / "res"
    run_verify_batch(instances, out)
    s = run_verify_batch(instances, out, BatchOptions(TimeoutPolicy(scale=0.5), force=True))
    rows = read_rows(out / "verify.csv")
    assert s.ran == 3 and len(rows) == 3
    assert {r["vnnlib"]: float(r["timeout_s"]) for r in rows} == {"h.vnnlib": 5, "v.vnnlib": 5, "v2.vnnlib": 10}
    assert all(r["timeout_note"].startswith("csv ") and "x 0.5" in r["timeout_note"] for r in rows)
    s = run_verify_batch(instances, out, BatchOptions(TimeoutPolicy(override=3)))
    assert s.ran == 0 and s.other_timeout == 3     # recorded with another timeout: said, not redone


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    instances = write_benchmark(tmp_path / "bench")
    with locked_folder(tmp_path / "res"):
        with pytest.raises(FolderBusy):
            run_verify_batch(instances, tmp_path / "res")


def test_a_broken_instance_is_an_error_row_and_the_batch_goes_on(tmp_path):
    instances = write_benchmark(tmp_path / "bench")
    (tmp_path / "bench" / "v.vnnlib").write_text("(declare-const X_0 Real)\n(assert (<= X_0 1)\n")
    run_verify_batch(instances, tmp_path / "res")
    rows = {r["vnnlib"]: r for r in read_rows(tmp_path / "res" / "verify.csv")}
    assert rows["v.vnnlib"]["result"] == "error" and "v.vnnlib" in rows["v.vnnlib"]["message"]
    assert rows["h.vnnlib"]["result"] == "holds" and rows["v2.vnnlib"]["result"] == "violated"


@pytest.mark.parametrize("content, message", [
    ("onnx/identity.onnx,h.vnnlib\n", "line 1: 2 cell(s)"),
    ("onnx/identity.onnx,h.vnnlib,ten\n", "line 1: timeout 'ten' is not a number"),
    ("onnx/identity.onnx,h.vnnlib,10\nonnx/identity.onnx,h.vnnlib,-1\n", "line 2: timeout must be"),
    ("onnx/identity.onnx,missing.vnnlib,10\n", "missing.vnnlib not found"),
    ("onnx/identity.onnx,h.vnnlib,10\nonnx/identity.onnx,h.vnnlib,10\n", "listed twice"),
    ("\n", "no instances"),
])
def test_a_malformed_instances_csv_is_refused_naming_the_line(tmp_path, content, message):
    write_benchmark(tmp_path)
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(AdvmilpError, match=re.escape(message)):
        read_instances(tmp_path / "bad.csv")


def test_options_are_checked():
    with pytest.raises(AdvmilpError, match="not both"):
        TimeoutPolicy(override=1, scale=2)
    with pytest.raises(AdvmilpError, match="executor"):
        BatchOptions(executor="threads")
    with pytest.raises(AdvmilpError, match="--scheduler needs"):
        BatchOptions(scheduler="tcp://x:1")
    assert TimeoutPolicy().apply(120) == (120, "csv")
    assert TimeoutPolicy(override=30).apply(120) == (30, "--timeout 30 (csv 120)")


def test_ctrl_c_stops_the_batch_keeps_finished_rows_and_a_rerun_finishes(tmp_path, monkeypatch):
    """A KeyboardInterrupt inside an instance is not an error row: the batch stops there, the rows before
    it stay, the lock is released, and the rerun does the rest."""
    import advmilp.methods.verify as engine

    instances = write_benchmark(tmp_path / "bench")
    real, calls = engine.verify_property, []

    def interrupted_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "verify_property", interrupted_second)
    with pytest.raises(KeyboardInterrupt):
        run_verify_batch(instances, tmp_path / "res")
    assert [r["vnnlib"] for r in read_rows(tmp_path / "res" / "verify.csv")] == ["h.vnnlib"]
    s = run_verify_batch(instances, tmp_path / "res")
    assert s.ran == 2 and len(read_rows(tmp_path / "res" / "verify.csv")) == 3
