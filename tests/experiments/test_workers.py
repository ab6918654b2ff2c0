"""Process-pool workers die with their parent (issue 15: ``advmilp … | tee`` hung on orphaned workers)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.experiments.batch import batch_command, wait_for_rows
from tests.nets import REPO


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_only_the_parent_is_killed(tmp_path, tiny_models):
    cmd, env, csv_path = batch_command(tmp_path, tiny_models, "orphans", 200, "executor: process\nworkers: 2\n")
    parent = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    workers = []
    try:
        wait_for_rows(csv_path, 2, parent)
        workers = children(parent.pid)
        assert len(workers) >= 2, "the batch finished or never started its pool"
        os.kill(parent.pid, signal.SIGKILL)      # the parent only, not its process group
        parent.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(alive(w) for w in workers):
            time.sleep(0.1)
        assert [w for w in workers if alive(w)] == []
    finally:
        for w in workers:
            if alive(w):
                os.kill(w, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_portable_fallback_exits_an_orphan(tmp_path):
    """The polling thread used where prctl is missing: a child watching its parent exits with it."""
    code = """if True:
        import os, sys, threading, time
        from advmilp.experiments.workers import _exit_when_orphaned
        parent = os.getpid()
        child = os.fork()
        if child == 0:
            threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
            time.sleep(60)
            os._exit(0)
        print(child, flush=True)
        time.sleep(60)
    """
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        parent.kill()
        parent.wait()
        deadline = time.time() + 5
        while time.time() < deadline and alive(child):
            time.sleep(0.1)
        assert not alive(child)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
