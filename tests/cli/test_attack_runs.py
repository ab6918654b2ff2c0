"""Issue 15, ``advmilp attack`` running: an image whose label is the batch's target is an ``invalid`` row
(never solved), a network without cached bounds is attacked at once (basic bounds, said on one line), a
bound pass that runs shows progress, and Ctrl-C ends a single attack with status 130 and one line."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time

from advmilp.spec.rows import INVALID, is_solved
from tests.cli.helpers import cli_env, need_mnist, run_cli
from tests.nets import REPO, random_net


def test_batch_target_equal_to_the_label_is_an_invalid_row(tmp_path):
    need_mnist()
    cfg = tmp_path / "t2.yaml"
    # test image 1 is a 2, image 0 a 7
    cfg.write_text("name: t2\nnetworks: [dnn1]\nbounds: [basic]\nmethods: [tight, milp]\n"
                   "problem: {target: 2, output_relu: false}\nimages: {indices: [1, 0]}\nexecutor: serial\n"
                   "solver: {time_limit: 60}\n")
    proc = run_cli(["attack", "--config", str(cfg)], cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "results" / "t2" / "instances.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by = {(r["method"], r["image_index"]): r for r in rows}
    assert len(rows) == 4
    for method in ("tight", "milp"):
        bad = by[(method, "1")]
        assert bad["status"] == INVALID and not is_solved(bad) and "label" in bad["message"]
        assert is_solved(by[(method, "0")])


def test_a_new_network_is_attacked_at_once_with_basic_bounds(tmp_path):
    need_mnist()
    model = tmp_path / "mine.npz"
    random_net([784, 12, 10], seed=5).save(model)
    proc = run_cli(["attack", "--model", str(model), "--image", "0", "--target", "3", "--time-limit", "30"],
                   cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "note: no improved bounds cached for" in proc.stderr and "using basic bounds" in proc.stderr
    assert "bounds      basic" in proc.stdout
    assert not (tmp_path / "results" / "bounds").exists()   # nothing computed, nothing cached


def test_a_bound_pass_that_runs_shows_progress(tmp_path):
    need_mnist()
    model = tmp_path / "mine.npz"
    random_net([784, 6, 6, 10], seed=6).save(model)
    proc = run_cli(["attack", "--model", str(model), "--image", "0", "--target", "3", "--time-limit", "30",
                    "--bounds", "weak", "--bounds-time-limit", "0.2", "--method", "fast"], cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "bounds: computing weak bounds of" in proc.stderr
    assert "bounds: layer 2:" in proc.stderr and "bounds: layer 3:" in proc.stderr
    assert list((tmp_path / "results" / "bounds").glob("*-weak-tl0.2.npz"))


def test_ctrl_c_on_a_single_attack_exits_130_with_one_line(tmp_path):
    """Started in the background by a non-interactive shell (as CI runs jobs), so SIGINT is inherited
    as ignored: the CLI must install its handler itself."""
    need_mnist()
    env = {**cli_env(tmp_path), "PYTHONPATH": str(REPO)}
    script = '"$@" & echo "$!"; wait "$!"'
    proc = subprocess.Popen(["bash", "-c", script, "bash", sys.executable, "-m", "advmilp", "attack", "--arch", "dnn5",
                             "--image", "1", "--time-limit", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    pid = int(proc.stdout.readline())
    lines, started = [], threading.Event()

    def read_stderr():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("attacking "):   # bounds loaded, the solve starts
                started.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert started.wait(120), f"no 'attacking' line on stderr: {lines}"
        time.sleep(1.0)
        n_before = len(lines)
        sent = time.perf_counter()
        os.kill(pid, signal.SIGINT)
        proc.wait(timeout=90)
        waited = time.perf_counter() - sent
        reader.join(10)
    finally:
        for p in (pid, proc.pid):   # a failed test ends the attack too, not only its shell
            if proc.poll() is None:
                os.kill(p, signal.SIGKILL)
    assert proc.returncode == 130, (proc.returncode, lines)
    assert lines[n_before:] == ["interrupted"], lines
    print(f"stopped {waited:.1f} s after SIGINT")
