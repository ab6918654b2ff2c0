"""The results folder of a batch: one writer, one row per instance key, nothing half-written.

``results/<name>/`` holds ``instances.csv``, ``witnesses/``, ``logs/``, ``images.json`` and ``.lock``.

* **One writer.**  `locked_folder` takes ``fcntl.flock`` on ``.lock`` for the whole batch and writes
  its pid there.  A second run of the same config is refused with one line naming the folder and
  the holder's pid, instead of both appending a row per instance.  The kernel drops the lock when
  the holder dies (even by SIGKILL), so a crashed run never leaves a stale lock behind.
* **One row per key.**  `append_row` adds the row of a new instance key: one ``write`` on an
  ``O_APPEND`` descriptor, fsync'ed, so a kill loses at most the rows in flight.  `replace_row`
  puts the row of an already recorded key (``--force``) in the place of the old one: the whole
  file is written to a temporary file in the folder and renamed over the old one (atomic).
* **Nothing partial, nothing lost.**  A write that fails (disk full, read-only folder) raises
  `StorageError` after undoing what it wrote — a torn row is truncated away, a temporary file
  removed — so the batch stops with one line and the rerun redoes the instance.  A storage failure
  is never recorded as an ``error`` row: resume would skip that instance for good.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from advmilp.errors import AdvmilpError
from advmilp.spec.rows import COLUMNS, KEY_COLUMNS


class StorageError(AdvmilpError):
    """A result, witness or the folder itself cannot be written (disk full, read-only, not a folder)."""


class FolderBusy(AdvmilpError):
    """Another process holds the results folder's lock."""


def cannot_write(path, exc: OSError) -> StorageError:
    return StorageError(f"cannot write {path}: {exc.strerror or exc}")


# ---- the folder and its lock ------------------------------------------------------------------------
@contextlib.contextmanager
def locked_folder(out_dir: Path) -> Iterator[Path]:
    """Create ``out_dir`` (with witnesses/ and logs/) and hold its lock until the block ends."""
    try:
        (out_dir / "witnesses").mkdir(parents=True, exist_ok=True)
        (out_dir / "logs").mkdir(exist_ok=True)
        fd = os.open(out_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"cannot use results folder {out_dir}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise FolderBusy(f"{out_dir} is in use by another advmilp run (pid {holder}); wait for it to "
                             f"finish or give the config another name") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            raise cannot_write(out_dir / ".lock", exc) from exc
        yield out_dir
    finally:
        os.close(fd)   # closing the descriptor releases the lock


# ---- instances.csv -----------------------------------------------------------------------------------
def row_key(row, key_columns=KEY_COLUMNS) -> tuple[str, ...]:
    """A row's instance key as the CSV stores it (strings; an empty cell for None)."""
    return tuple("" if row.get(c) is None else str(row.get(c)) for c in key_columns)


def repair_csv(path: Path) -> None:
    """Cut a torn last line (no trailing newline) left by a kill in the middle of a write."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def read_done(path: Path, key_columns=KEY_COLUMNS) -> set[tuple]:
    """The instance keys recorded in ``path`` (after cutting a torn last line)."""
    repair_csv(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in key_columns if c not in (reader.fieldnames or [])]
        if missing:
            raise AdvmilpError(f"{path}: not an advmilp results file (missing columns {', '.join(missing)})")
        return {row_key(row, key_columns) for row in reader}


def _header(path: Path) -> list[str] | None:
    """The columns of an existing results file (older versions may have fewer)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, newline="") as fh:
        return next(csv.reader(fh), None)


def _csv_text(columns, rows, header: bool) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return buf.getvalue().encode()


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a short write is not an error by itself)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def append_row(path: Path, row: dict, new_columns=COLUMNS) -> None:
    """Append one row (the header ``new_columns`` first into a new file); on failure the file is left as it was."""
    columns = _header(path)
    data = _csv_text(columns or new_columns, [row], header=columns is None)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise cannot_write(path, exc) from exc
    size = os.fstat(fd).st_size
    try:
        write_all(fd, data)
        os.fsync(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise cannot_write(path, exc) from exc
    finally:
        os.close(fd)


def replace_row(path: Path, row: dict, key_columns=KEY_COLUMNS) -> None:
    """Write ``row`` in place of every recorded row with its key: a new file renamed over the old."""
    key = row_key(row, key_columns)
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or COLUMNS)
        kept = [r for r in reader if row_key(r, key_columns) != key]
    _replace_file(path, _csv_text(columns, kept + [row], header=True))


def write_file(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a new file renamed over the old): a reader never sees half."""
    _replace_file(path, text.encode("utf-8"))


def _replace_file(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise cannot_write(path, exc) from exc


# ---- witnesses ---------------------------------------------------------------------------------------
def save_array(target: Path, array: np.ndarray) -> str:
    """Write ``target`` (.npy) through a temporary file; returns its path relative to the run folder."""
    tmp = target.with_name(target.name + ".tmp.npy")
    try:
        np.save(tmp, array)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise cannot_write(target, exc) from exc
    return f"witnesses/{target.name}"

