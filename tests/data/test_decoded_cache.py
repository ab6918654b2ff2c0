"""The decoded-MNIST cache: a verified IDX file is decompressed and checked once, then read back as
.npy — with exactly the values of an uncached load, and never for a file that changed since."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advmilp.data import mnist as data
from advmilp.errors import DataError
from tests.nets import REPO, mnist_dir

TEST_STEMS = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture
def test_files(tmp_path) -> Path:
    """A private copy of the test split's two files (so they can be changed)."""
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    dest = tmp_path / "mnist"
    dest.mkdir()
    for stem in TEST_STEMS:
        src = data._find_file(root, stem)
        shutil.copyfile(src, dest / src.name)
    return dest


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "decoded"
    monkeypatch.setenv(data.CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def uncached(test_files, monkeypatch) -> data.Split:
    """The test split as read without any cache (decompressed and md5-checked)."""
    monkeypatch.setenv(data.CACHE_ENV, "off")
    split = data.load_split("test", test_files)
    monkeypatch.delenv(data.CACHE_ENV)
    return split


def _same(a: data.Split, b: data.Split) -> bool:
    return (a.images.dtype == b.images.dtype and a.images.shape == b.images.shape
            and a.images.tobytes() == b.images.tobytes() and np.array_equal(a.labels, b.labels)
            and a.labels.dtype == b.labels.dtype)


def _reads(monkeypatch) -> list[Path]:
    """Record every decompression of an IDX file from now on."""
    seen: list[Path] = []
    real = data.read_bytes

    def counting(path):
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(data, "read_bytes", counting)
    return seen


def test_second_load_comes_from_the_cache_with_the_same_values(test_files, uncached, cache, monkeypatch):
    first = data.load_split("test", test_files)
    assert _same(first, uncached)
    assert sorted(p.name for p in cache.glob("*.npy")) == sorted(
        f"{stem}-{data.FILES[key][1]}.npy" for key, (stem, _) in data.FILES.items() if key.startswith("test"))
    assert len(list(cache.glob("*.verified"))) == 2
    reads = _reads(monkeypatch)
    second = data.load_split("test", test_files)
    assert reads == []
    assert _same(second, uncached)


def test_rows_and_split_size_match_the_whole_split(test_files, uncached, cache):
    part = data.load_split("test", test_files, rows=slice(5, 9))
    assert part.images.tobytes() == uncached.images[5:9].tobytes()
    assert part.labels.tolist() == uncached.labels[5:9].tolist() and part.labels.dtype == np.int64
    one = data.load_split("test", test_files, rows=slice(0, 1))
    assert one.images[0].tobytes() == uncached.images[0].tobytes() and int(one.labels[0]) == 7
    assert data.split_size("test", test_files) == 10000
    with pytest.raises(DataError, match="unknown split"):
        data.split_size("validation", test_files)


def test_a_file_changed_after_caching_is_checked_again(test_files, uncached, cache, monkeypatch):
    data.load_split("test", test_files)
    labels = data._find_file(test_files, TEST_STEMS[1])
    raw = bytearray(data.read_bytes(labels))
    raw[100] = (raw[100] + 1) % 10  # another valid label: only the checksum can tell
    labels.write_bytes(gzip.compress(bytes(raw)))  # same path, rewritten in place
    with pytest.raises(DataError, match="checksum mismatch"):
        data.load_split("test", test_files)


def test_a_touched_file_is_decompressed_again(test_files, uncached, cache, monkeypatch):
    data.load_split("test", test_files)
    images = data._find_file(test_files, TEST_STEMS[0])
    st = images.stat()
    os.utime(images, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    reads = _reads(monkeypatch)
    assert _same(data.load_split("test", test_files), uncached)
    assert reads == [images]


def test_a_damaged_cached_array_is_ignored_and_rewritten(test_files, uncached, cache):
    data.load_split("test", test_files)
    array = next(cache.glob("t10k-images*.npy"))
    whole = array.read_bytes()
    array.write_bytes(whole[: len(whole) // 2])
    assert _same(data.load_split("test", test_files), uncached)
    assert array.read_bytes() == whole
    assert not list(cache.glob(".tmp-*"))


def test_no_cache_when_off_or_unwritable(test_files, uncached, tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_ENV, "off")
    assert data.decoded_cache_dir() is None
    assert _same(data.load_split("test", test_files), uncached)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(data.CACHE_ENV, str(blocker / "decoded"))
    assert _same(data.load_split("test", test_files), uncached)


def test_default_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(data.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.decoded_cache_dir() == tmp_path / "advmilp" / "mnist-decoded"


def test_two_processes_filling_the_cache_at_once(test_files, uncached, cache):
    code = ("import hashlib, sys; from advmilp.data.mnist import load_split; "
            "s = load_split('test', sys.argv[1]); "
            "print(hashlib.sha256(s.images.tobytes() + s.labels.tobytes()).hexdigest())")
    env = {**os.environ, data.CACHE_ENV: str(cache), "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(test_files)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    expected = hashlib.sha256(uncached.images.tobytes() + uncached.labels.tobytes()).hexdigest()
    assert [out.strip() for out, _ in outs] == [expected, expected]
    assert not list(cache.glob(".tmp-*"))
    assert _same(data.load_split("test", test_files), uncached)



def test_data_check_reads_the_files_themselves(cache, monkeypatch):
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    data.load_split("test", root)  # now in the cache
    reads = _reads(monkeypatch)
    data.check(root)
    assert sorted(reads) == sorted(data._find_file(root, stem) for stem, _ in data.FILES.values())
