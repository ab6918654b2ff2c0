"""Batch runner: instance expansion, resume after a kill, error rows, executors, CLI."""

import os
import signal
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from advmilp.cli import main
from advmilp.experiments.config import parse_config
from advmilp.data.mnist import Split
from advmilp.experiments.runner import expand, run_batch, select_images

from tests.experiments.batch import batch_command, need_mnist, rows_of, wait_for_rows
from tests.nets import REPO


class FakeNet:
    def __init__(self, name, preds):
        self.name, self._p = name, np.asarray(preds)

    def predict(self, x):
        return self._p

    def short_hash(self):
        return "abc"


def test_select_images_all_networks_correct():
    split = Split(np.zeros((6, 4)), np.array([1, 2, 3, 4, 5, 6]))
    a = FakeNet("a", [1, 2, 0, 4, 5, 6])   # wrong on 2
    b = FakeNet("b", [1, 0, 3, 4, 5, 6])   # wrong on 1
    c = parse_config({"name": "t", "images": {"count": 3}})
    assert select_images(c, [a, b], split) == [0, 3, 4]
    c = parse_config({"name": "t", "images": {"count": 2, "first": 4}})
    assert select_images(c, [a, b], split) == [4, 5]
    c = parse_config({"name": "t", "images": {"indices": [2, 1]}})
    assert select_images(c, [a, b], split) == [2, 1]


def test_expand_is_image_major_and_complete():
    c = parse_config({"name": "t", "bounds": ["basic", "improved"]})
    insts = expand(c, [FakeNet("a", []), FakeNet("b", [])], [7, 9])
    assert len(insts) == 2 * 2 * 2 and len({i.key for i in insts}) == 8
    assert [i.image_index for i in insts[:4]] == [7, 7, 7, 7]


def test_batch_runs_and_resumes(tmp_path, tiny_models):
    data = need_mnist()
    cfg = parse_config({**{"name": "b", "networks": [str(tiny_models)], "bounds": ["basic"],
                           "images": {"count": 3, "correctly_classified": False},
                           "solver": {"time_limit": 20}, "executor": "serial"}})
    s1 = run_batch(cfg, data_dir=data, results_dir=tmp_path / "res")
    assert s1.ran == 3 and s1.skipped == 0
    rows = rows_of(tmp_path / "res" / "b" / "instances.csv")
    assert len(rows) == 3
    for r in rows:
        assert r["git_sha"] and r["advmilp_version"] and r["solver_version"].startswith("HiGHS")
        if r["verified"] == "True":
            assert (tmp_path / "res" / "b" / r["witness"]).exists()
    s2 = run_batch(cfg, data_dir=data, results_dir=tmp_path / "res")
    assert s2.ran == 0 and s2.skipped == 3
    s3 = run_batch(cfg, data_dir=data, results_dir=tmp_path / "res", force=True)
    assert s3.ran == 3


def test_solver_failure_becomes_an_error_row(tmp_path, tiny_models, monkeypatch):
    data = need_mnist()
    import advmilp.experiments.runner as ex

    def boom(*a, **k):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(ex, "run_method", boom)
    cfg = parse_config({"name": "e", "networks": [str(tiny_models)], "bounds": ["basic"],
                        "images": {"count": 2, "correctly_classified": False}, "executor": "serial"})
    s = run_batch(cfg, data_dir=data, results_dir=tmp_path)
    rows = rows_of(tmp_path / "e" / "instances.csv")
    assert s.errors == 2 and [r["status"] for r in rows] == ["error", "error"]
    assert "solver exploded" in rows[0]["message"]


def test_kill_and_resume_loses_nothing_and_duplicates_nothing(tmp_path, tiny_models):
    """SIGKILL a batch subprocess mid-way, rerun, and every instance appears exactly once."""
    cmd, env, csv_path = batch_command(tmp_path, tiny_models, "k", 8, "executor: process\nworkers: 2\n")
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_for_rows(csv_path, 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = len(rows_of(csv_path))
    assert 2 <= first
    subprocess.run(cmd, env=env, cwd=REPO, check=True, capture_output=True)
    rows = rows_of(csv_path)
    keys = [r["image_index"] for r in rows]
    assert len(keys) == 8 and len(set(keys)) == 8


def test_dask_executor_local_cluster(tmp_path, tiny_models):
    pytest.importorskip("dask.distributed")
    data = need_mnist()
    cfg = parse_config({"name": "d", "networks": [str(tiny_models)], "bounds": ["basic"],
                        "images": {"count": 2, "correctly_classified": False}, "solver": {"time_limit": 20},
                        "executor": "dask", "workers": 2})
    s = run_batch(cfg, data_dir=data, results_dir=tmp_path)
    assert s.ran == 2 and len(rows_of(tmp_path / "d" / "instances.csv")) == 2


def test_cli_batch_and_report(tmp_path, tiny_models):
    data = need_mnist()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: c\nnetworks: ['{tiny_models}']\nbounds: [basic]\n"
                   "images: {count: 2, correctly_classified: false}\nexecutor: serial\n")
    runner = CliRunner()
    r = runner.invoke(main, ["attack", "--config", str(cfg), "--time-limit", "10", "--data-dir", str(data),
                             "--results-dir", str(tmp_path / "res")])
    assert r.exit_code == 0, r.output
    assert "2 instances run" in r.output
    r = runner.invoke(main, ["report", str(tmp_path / "res" / "c")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "res" / "c" / "report" / "table2.md").exists()


def test_cli_bad_config_is_one_clean_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: x\nnetworks: [dnn42]\n")
    r = CliRunner().invoke(main, ["attack", "--config", str(cfg)])
    assert r.exit_code == 2
    assert r.output.strip().startswith("error:") and "dnn42" in r.output and "Traceback" not in r.output


def test_cdh_and_fast_methods_through_the_runner(tmp_path):
    data = need_mnist()
    cfg = parse_config({"name": "h", "networks": ["dnn1"], "bounds": ["basic"], "methods": ["fast", "cdh"],
                        "cdh": {"neighbourhood": "complete", "escape": "none"},
                        "images": {"count": 3}, "executor": "serial"})
    s = run_batch(cfg, data_dir=data, results_dir=tmp_path)
    rows = rows_of(tmp_path / "h" / "instances.csv")
    assert s.ran == 6 and {r["method"] for r in rows} == {"fast", "cdh"}
    for r in rows:
        assert r["status"] in ("found", "not_found")
        assert (r["status"] == "found") == (r["verified"] == "True")
    cdh_rows = [r for r in rows if r["method"] == "cdh"]
    assert len(cdh_rows) == 3
    assert len(list((tmp_path / "h" / "witnesses").glob("*cdh*.counts.npy"))) == 3


def test_ctrl_c_stops_cleanly_and_the_rerun_completes(tmp_path, tiny_models):
    cmd, env, csv_path = batch_command(tmp_path, tiny_models, "i", 6, "executor: serial\n")
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = wait_for_rows(csv_path, 1, proc)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, (
        f"status {proc.returncode} after a SIGINT sent with {seen} of 6 rows written (batch "
        f"{'running' if alive else 'already ended'} then); stderr:\n{err[-2000:]}")
    assert csv_path.read_bytes().endswith(b"\n")
    subprocess.run(cmd, env=env, cwd=REPO, check=True, capture_output=True)
    keys = [r["image_index"] for r in rows_of(csv_path)]
    assert len(keys) == 6 and len(set(keys)) == 6


def test_expand_crosses_every_problem_and_each_row_keeps_its_own(tmp_path, tiny_models):
    c = parse_config({"name": "t", "problems": [{"kind": "targeted"}, {"kind": "untargeted"}]})
    insts = expand(c, [FakeNet("a", [])], [7, 9])
    assert len(insts) == 4 and {i.problem.split()[0] for i in insts[:2]} == {"targeted", "untargeted"}
    data = need_mnist()
    cfg = parse_config({"name": "p", "networks": [str(tiny_models)], "bounds": ["basic"], "methods": ["tight"],
                        "problems": [{"kind": "targeted"}, {"kind": "untargeted"}],
                        "images": {"count": 2, "correctly_classified": False},
                        "solver": {"time_limit": 20}, "executor": "serial"})
    s = run_batch(cfg, data_dir=data, results_dir=tmp_path / "res")
    assert s.ran == 4
    rows = rows_of(tmp_path / "res" / "p" / "instances.csv")
    assert sorted(r["problem"].split()[0] for r in rows) == ["targeted", "targeted", "untargeted", "untargeted"]
    for r in rows:
        if r["status"] == "optimal":
            assert r["verified"] == "True"
    assert run_batch(cfg, data_dir=data, results_dir=tmp_path / "res").skipped == 4


def test_each_network_meets_the_same_images_and_a_subset_rerun_keeps_the_others_lists(tmp_path):
    """``correctly_classified: each``: one selection, each network attacked on the images it gets right;
    images.json keeps every network's list when a later run names only some of the networks."""
    import json

    from tests.experiments.batch import tiny_net_file

    data = need_mnist()
    a = tiny_net_file(tmp_path / "m" / "a.npz", seed=3, name="a")
    b = tiny_net_file(tmp_path / "m" / "b.npz", seed=5, name="b")
    base = {"name": "e", "bounds": ["basic"], "methods": ["fast"], "executor": "serial",
            "images": {"count": 6, "correctly_classified": "each"}, "solver": {"time_limit": 5}}
    cfg = parse_config({**base, "networks": [str(a), str(b)]})
    from advmilp.data.mnist import load_split
    from advmilp.experiments.runner import images_per_network

    split = load_split("test", data)
    from advmilp.nn.network import Network

    nets = [Network.load(a), Network.load(b)]
    lists = images_per_network(cfg, nets, split)
    for net in nets:
        right = [i for i in range(6) if net.predict(split.images[i:i + 1])[0] == split.labels[i]]
        assert lists[net.short_hash()] == right
    run_batch(cfg, data_dir=data, results_dir=tmp_path / "res")
    record = json.loads((tmp_path / "res" / "e" / "images.json").read_text())
    assert record["selected"] == list(range(6)) and set(record["indices"]) == {"a", "b"}
    run_batch(parse_config({**base, "networks": [str(a)]}), data_dir=data, results_dir=tmp_path / "res")
    again = json.loads((tmp_path / "res" / "e" / "images.json").read_text())
    assert again == record
