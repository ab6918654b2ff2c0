"""Issue 15 in the batch: no lost, duplicated or wrong row, and every user error one line.

Each test names the case of the issue it shows."""

import errno
import fcntl
import os
import re
import shlex
import socket
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from advmilp.cli import main
from advmilp.data.mnist import Split
from advmilp.errors import AdvmilpError, ConfigError
from advmilp.experiments.config import apply_overrides, parse_config
from advmilp.experiments.runner import run_batch, select_images

from tests.experiments.batch import batch_command, need_mnist, rows_of, tiny_net_file
from tests.nets import REPO


def config(name, networks, count=2, **extra):
    return parse_config({"name": name, "networks": [str(n) for n in networks], "bounds": ["basic"],
                         "images": {"count": count, "correctly_classified": False},
                         "solver": {"time_limit": 20}, "executor": "serial", **extra})


# ---- two networks with the same file stem ----------------------------------------------------------
def test_two_networks_with_the_same_stem_are_two_networks(tmp_path):
    data = need_mnist()
    a = tiny_net_file(tmp_path / "A" / "twin.npz", seed=3, name="twin")
    b = tiny_net_file(tmp_path / "B" / "twin.npz", seed=4, name="twin")
    from advmilp.nn.interchange import load_any

    hashes = {load_any(a).short_hash(), load_any(b).short_hash()}
    assert len(hashes) == 2
    cfg = config("twins", [a, b])
    s = run_batch(cfg, data_dir=data, results_dir=tmp_path / "res")
    rows = rows_of(tmp_path / "res" / "twins" / "instances.csv")
    assert s.ran == 4 and len(rows) == 4
    assert Counter(r["network_hash"] for r in rows) == {h: 2 for h in hashes}   # each network attacked
    assert {r["network"] for r in rows} == {"twin"}                             # the name, for display
    witnesses = [r["witness"] for r in rows if r["witness"]]
    assert witnesses and len(set(witnesses)) == len(witnesses)
    again = run_batch(cfg, data_dir=data, results_dir=tmp_path / "res")
    assert again.ran == 0 and again.skipped == 4 and len(rows_of(tmp_path / "res" / "twins" / "instances.csv")) == 4


def test_the_same_weights_under_two_paths_are_refused(tmp_path):
    need_mnist()
    a = tiny_net_file(tmp_path / "A" / "net.npz")
    b = tiny_net_file(tmp_path / "B" / "copy.npz")
    with pytest.raises(ConfigError, match="are the same network"):
        run_batch(config("same", [a, b]), data_dir=need_mnist(), results_dir=tmp_path / "res")


# ---- image counts and ranges --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, -1])
def test_images_flag_must_be_positive(n):
    with pytest.raises(ConfigError, match="--images must be ≥ 1"):
        apply_overrides(parse_config({"name": "t"}), images=n)


@pytest.mark.parametrize("n", ["0", "-1"])
def test_images_flag_is_one_line_on_the_command_line(tmp_path, n):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\n")
    r = CliRunner().invoke(main, ["attack", "--config", str(cfg), "--images", n])
    assert r.exit_code == 2 and r.output.startswith("error:") and "--images" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_a_range_past_the_end_of_the_split_is_refused():
    class AllRight:
        def predict(self, x):
            return np.arange(6)

    split = Split(np.zeros((6, 4)), np.arange(6))
    with pytest.raises(ConfigError, match="images.first 4 \\+ images.count 3 runs past the end"):
        select_images(parse_config({"name": "t", "images": {"count": 3, "first": 4}}), [AllRight()], split)
    assert select_images(parse_config({"name": "t", "images": {"count": 2, "first": 4}}), [AllRight()], split) == [4, 5]


def test_too_few_correctly_classified_images_are_refused():
    class WrongOnOdd:
        def predict(self, x):
            return np.array([0, 9, 2, 9, 4, 9])

    split = Split(np.zeros((6, 4)), np.arange(6))
    with pytest.raises(ConfigError, match="only 3 of the test images .* images.count asks for 4"):
        select_images(parse_config({"name": "t", "images": {"count": 4}}), [WrongOnOdd()], split)


# ---- duplicates ------------------------------------------------------------------------------------------
def test_force_replaces_the_rows_it_reruns(tmp_path, tiny_models):
    data = need_mnist()
    cfg = config("f", [tiny_models])
    run_batch(cfg, data_dir=data, results_dir=tmp_path)
    first = rows_of(tmp_path / "f" / "instances.csv")
    s = run_batch(cfg, data_dir=data, results_dir=tmp_path, force=True)
    rows = rows_of(tmp_path / "f" / "instances.csv")
    assert s.ran == 2 and len(rows) == 2 and len({r["image_index"] for r in rows}) == 2
    assert [r["started_at"] for r in rows] != [r["started_at"] for r in first] or \
        [r["time_s"] for r in rows] != [r["time_s"] for r in first]          # the new rows, not the old ones


def test_a_second_writer_is_refused_with_one_line(tmp_path, tiny_models):
    """Two runs of one config at once would each append a row per instance: the second is refused."""
    data = need_mnist()
    folder = tmp_path / "l"
    folder.mkdir()
    with open(folder / ".lock", "w") as held:     # what a running batch holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        with pytest.raises(AdvmilpError) as err:
            run_batch(config("l", [tiny_models]), data_dir=data, results_dir=tmp_path)
    message = str(err.value)
    assert str(folder) in message and "pid 4242" in message and "\n" not in message
    assert not (folder / "instances.csv").exists()
    assert run_batch(config("l", [tiny_models]), data_dir=data, results_dir=tmp_path).ran == 2   # released


def test_make_demo_twice_does_not_duplicate_rows(tmp_path):
    """The demo target's batch command, run twice (on one image), leaves one row per instance."""
    need_mnist()
    recipe = (REPO / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    line = next(ln for ln in recipe.splitlines() if "attack --config" in ln)
    args = shlex.split(line.strip())[1:]                      # drop $(BIN)/advmilp
    cmd = [sys.executable, "-m", "advmilp", *args, "--images", "1", "--time-limit", "10",
           "--results-dir", str(tmp_path)]
    env = {**os.environ, "ADVMILP_DATA": str(need_mnist())}
    for _ in range(2):
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
    (csv_path,) = tmp_path.glob("*/instances.csv")
    keys = [(r["network_hash"], r["method"], r["bounds"], r["image_index"]) for r in rows_of(csv_path)]
    assert len(keys) == len(set(keys)) >= 1


# ---- a full disk ---------------------------------------------------------------------------------------
def no_space(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("executor", ["serial", "process"])
def test_a_witness_that_cannot_be_written_stops_the_batch_and_the_rerun_redoes_it(tmp_path, tiny_models,
                                                                                   monkeypatch, executor):
    data = need_mnist()
    cfg = config("full", [tiny_models], count=3, executor=executor, workers=2)
    with monkeypatch.context() as m:
        m.setattr(np, "save", no_space)      # every witness write fails as on a full disk
        with pytest.raises(AdvmilpError) as err:
            run_batch(cfg, data_dir=data, results_dir=tmp_path)
    assert re.fullmatch(r"cannot write \S+\.npy: No space left on device", str(err.value))
    csv_path = tmp_path / "full" / "instances.csv"
    recorded = rows_of(csv_path) if csv_path.exists() else []
    assert all(r["status"] != "error" and not r["witness"] for r in recorded)   # nothing solved became an error
    assert not [p for p in (tmp_path / "full" / "witnesses").iterdir() if "tmp" in p.name]
    s = run_batch(cfg, data_dir=data, results_dir=tmp_path)
    rows = rows_of(csv_path)
    assert s.ran == 3 - len(recorded) and len(rows) == 3 and len({r["image_index"] for r in rows}) == 3
    assert all(r["status"] != "error" for r in rows)
    for r in rows:
        if r["verified"] == "True":
            assert (tmp_path / "full" / r["witness"]).is_file()


def test_a_full_disk_is_one_line_on_the_command_line(tmp_path, tiny_models, monkeypatch):
    data = need_mnist()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: c\nnetworks: ['{tiny_models}']\nbounds: [basic]\n"
                   "images: {count: 1, correctly_classified: false}\nexecutor: serial\n")
    monkeypatch.setattr(np, "save", no_space)
    r = CliRunner().invoke(main, ["attack", "--config", str(cfg), "--data-dir", str(data),
                                  "--results-dir", str(tmp_path / "res")])
    last = r.output.strip().splitlines()[-1]
    assert r.exit_code == 2 and last.startswith("error: cannot write ") and last.endswith("No space left on device")
    assert "Traceback" not in r.output


# ---- the results folder and the scheduler ----------------------------------------------------------------
def test_a_results_folder_that_is_a_file_is_one_line(tmp_path, tiny_models):
    (tmp_path / "res").write_text("not a folder")
    with pytest.raises(AdvmilpError, match="cannot use results folder") as err:
        run_batch(config("r", [tiny_models]), data_dir=need_mnist(), results_dir=tmp_path / "res")
    assert "\n" not in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_results_folder_is_one_line(tmp_path, tiny_models):
    (tmp_path / "res").mkdir()
    (tmp_path / "res").chmod(0o500)
    try:
        with pytest.raises(AdvmilpError, match="cannot use results folder"):
            run_batch(config("r", [tiny_models]), data_dir=need_mnist(), results_dir=tmp_path / "res")
    finally:
        (tmp_path / "res").chmod(0o700)


def test_an_unreachable_scheduler_is_one_line(tmp_path, tiny_models):
    pytest.importorskip("dask.distributed")
    with socket.socket() as s:           # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = config("d", [tiny_models], executor="dask", scheduler=f"tcp://127.0.0.1:{port}")
    with pytest.raises(AdvmilpError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}") as err:
        run_batch(cfg, data_dir=need_mnist(), results_dir=tmp_path)
    assert "\n" not in str(err.value)


def test_a_target_that_is_not_an_output_is_refused(tmp_path, tiny_models):
    cfg = config("t", [tiny_models], problem={"kind": "targeted", "target": 11})
    with pytest.raises(ConfigError, match="problem.target 11 is not an output"):
        run_batch(cfg, data_dir=need_mnist(), results_dir=tmp_path)


# ---- rows ----------------------------------------------------------------------------------------------
def test_nodes_is_an_integer_for_every_method(tmp_path, tiny_models):
    data = need_mnist()
    run_batch(config("n", [tiny_models], methods=["milp", "tight", "fast"]), data_dir=data, results_dir=tmp_path)
    rows = rows_of(tmp_path / "n" / "instances.csv")
    assert {r["method"] for r in rows} == {"milp", "tight", "fast"}
    assert all(re.fullmatch(r"\d*", r["nodes"]) for r in rows), [r["nodes"] for r in rows]


@pytest.mark.parametrize("executor", ["executor: serial\n", "executor: process\nworkers: 2\n"])
def test_a_batch_prints_no_solver_banner_on_stdout(tmp_path, tiny_models, executor):
    """stdout carries the summary and the report only (the HiGHS banner broke the progress bar and pipes)."""
    cmd, env, _ = batch_command(tmp_path, tiny_models, "quiet", 2, executor)
    r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "HiGHS" not in r.stdout and r.stdout.startswith("2 instances run")
