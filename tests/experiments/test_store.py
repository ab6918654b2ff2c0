"""The results folder: one writer (the lock), one row per key (replace), nothing half-written."""

import csv
import errno
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from advmilp.errors import AdvmilpError
from advmilp.experiments import store
from advmilp.experiments.store import (FolderBusy, StorageError, append_row, locked_folder, read_done, replace_row,
                                       save_array)
from advmilp.spec.rows import COLUMNS

ROW = {"network": "a", "network_hash": "h", "method": "milp", "bounds": "basic", "problem": "p",
       "image_index": 3, "status": "optimal"}


def rows_of(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_append_and_torn_line_repair(tmp_path):
    path = tmp_path / "instances.csv"
    append_row(path, ROW)
    append_row(path, {**ROW, "image_index": 4})
    with open(path, "a") as fh:
        fh.write("a,h,milp,basic,p,5,opt")   # a kill in the middle of a write
    done = read_done(path)
    assert done == {("a", "h", "milp", "basic", "p", "3"), ("a", "h", "milp", "basic", "p", "4")}
    rows = rows_of(path)
    assert len(rows) == 2 and tuple(rows[0]) == COLUMNS     # the header is ResultRow's field order


def test_replace_row_takes_the_old_rows_place(tmp_path):
    path = tmp_path / "instances.csv"
    append_row(path, ROW)
    append_row(path, {**ROW, "image_index": 4})
    append_row(path, {**ROW, "status": "time_limit"})      # a duplicate left by an older version
    replace_row(path, {**ROW, "status": "infeasible"})
    rows = rows_of(path)
    assert [(r["image_index"], r["status"]) for r in rows] == [("4", "optimal"), ("3", "infeasible")]
    assert [p.name for p in tmp_path.iterdir()] == ["instances.csv"]   # no temporary file left


def full_disk(monkeypatch):
    """`store.write_all` writes half of what it is given, then the disk is full (ENOSPC)."""
    real = store.write_all

    def half_then_full(fd, data):
        real(fd, bytes(data)[:len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store, "write_all", half_then_full)


@pytest.mark.parametrize("write", [append_row, replace_row], ids=["append", "replace"])
def test_a_failed_write_leaves_the_file_as_it_was(tmp_path, monkeypatch, write):
    path = tmp_path / "instances.csv"
    append_row(path, ROW)
    before = path.read_bytes()
    full_disk(monkeypatch)
    with pytest.raises(StorageError, match="cannot write .*instances.csv: No space left on device"):
        write(path, {**ROW, "status": "infeasible"})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["instances.csv"]


def test_a_failed_witness_leaves_no_file(tmp_path, monkeypatch):
    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", no_space)
    with pytest.raises(StorageError, match="cannot write .*w.npy: No space left on device"):
        save_array(tmp_path / "w.npy", np.zeros(3))
    assert list(tmp_path.iterdir()) == []


def test_the_folder_has_one_writer(tmp_path):
    with locked_folder(tmp_path / "run"):
        with pytest.raises(FolderBusy) as err:
            with locked_folder(tmp_path / "run"):
                pass
        message = str(err.value)
        assert str(tmp_path / "run") in message and f"pid {os.getpid()}" in message and "\n" not in message
    with locked_folder(tmp_path / "run"):   # released when the block ends
        pass


def test_the_lock_dies_with_its_holder(tmp_path):
    """A holder killed by SIGKILL leaves no stale lock: the kernel releases it."""
    folder = tmp_path / "run"
    code = ("import sys, time; from pathlib import Path; from advmilp.experiments.store import locked_folder\n"
            "with locked_folder(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderBusy, match=f"pid {holder.pid}"):
            with locked_folder(folder):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with locked_folder(folder):
        pass


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(AdvmilpError, match="cannot use results folder .*file/run") as err:
        with locked_folder(tmp_path / "file" / "run"):
            pass
    assert "\n" not in str(err.value)
