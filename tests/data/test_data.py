"""advmilp.data.mnist against the real MNIST files: loading, checksums, download, CLI.

The MNIST directory is ``$ADVMILP_DATA`` if set, else ``../shared/data/mnist`` relative to
the repository root; every test skips if it is absent.  Downloads use a fake opener or a
local HTTP server on 127.0.0.1 -- never the internet.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import os
import shutil
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from advmilp.data import mnist as data
from advmilp.errors import DataError

STEMS = [stem for stem, _ in data.FILES.values()]
FIRST_TEST = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
FIRST_TRAIN = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
LABELS = "t10k-labels-idx1-ubyte"  # the smallest file, used for corruption tests


def _mnist_dir() -> Path:
    env = os.environ.get(data.ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3] / "shared/data/mnist"


@pytest.fixture(scope="module")
def mnist_dir() -> Path:
    root = _mnist_dir()
    missing = [s for s in STEMS if not (root / (s + ".gz")).is_file() and not (root / s).is_file()]
    if missing:
        pytest.skip(f"MNIST not found in {root} (missing {', '.join(missing)}); "
                    f"set {data.ENV_VAR} to a directory with the four IDX files")
    return root


@pytest.fixture(scope="module")
def raw_bytes(mnist_dir) -> dict[str, bytes]:
    """Decompressed IDX bytes of the four real files, by stem."""
    return {stem: data.read_bytes(data._find_file(mnist_dir, stem)) for stem in STEMS}


@pytest.fixture(scope="module")
def gz_bytes(raw_bytes) -> dict[str, bytes]:
    """Gzipped bytes, by stem (what a mirror serves)."""
    return {stem: gzip.compress(raw, compresslevel=1) for stem, raw in raw_bytes.items()}


def _flip(raw: bytes, offset: int = 200) -> bytes:
    """The same bytes with one payload byte changed (header intact)."""
    out = bytearray(raw)
    out[offset] ^= 0xFF
    return bytes(out)


def _copy(mnist_dir: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for stem in STEMS:
        src = data._find_file(mnist_dir, stem)
        shutil.copyfile(src, dest / src.name)
    return dest


def _deflate_corrupted(gz: bytes) -> bytes:
    """gz bytes with one byte flipped so that decompression raises zlib.error."""
    for i in range(20, len(gz) - 8):
        bad = bytearray(gz)
        bad[i] ^= 0xFF
        try:
            gzip.decompress(bytes(bad))
        except zlib.error:
            return bytes(bad)
        except Exception:
            continue
    raise AssertionError("no corruption found that raises zlib.error")


# ---- loading ------------------------------------------------------------------------------
def test_load_test_split(mnist_dir):
    split = data.load_split("test", mnist_dir)
    assert split.images.shape == (10000, 784) and split.images.dtype == np.float64
    assert split.labels.shape == (10000,) and split.labels.dtype == np.int64
    assert split.images.min() >= 0.0 and split.images.max() <= 1.0
    assert split.images.max() == 1.0
    assert split.labels[:10].tolist() == FIRST_TEST
    assert len(split) == 10000


def test_load_train_split(mnist_dir):
    split = data.load_split("train", mnist_dir)
    assert split.images.shape == (60000, 784)
    assert split.labels[:10].tolist() == FIRST_TRAIN
    assert split.images.mean() == pytest.approx(0.1307, abs=1e-3)


def test_load_via_env_var(mnist_dir, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(mnist_dir))
    assert data.default_data_dir() == mnist_dir
    assert data.load_split("test").labels[:10].tolist() == FIRST_TEST


def test_default_dir_is_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.default_data_dir() == tmp_path / "advmilp" / "mnist"


def test_unknown_split(mnist_dir):
    with pytest.raises(DataError, match="unknown split"):
        data.load_split("valid", mnist_dir)


def test_raw_idx_files(raw_bytes, tmp_path):
    for stem, raw in raw_bytes.items():
        (tmp_path / stem).write_bytes(raw)
    split = data.load_split("test", tmp_path)
    assert split.images.shape == (10000, 784)
    assert split.labels[:10].tolist() == FIRST_TEST
    assert len(data.check(tmp_path)) == 4


# ---- corrupted, truncated, missing -------------------------------------------------------
def test_corrupted_payload_fails_checksum(mnist_dir, raw_bytes, tmp_path):
    root = _copy(mnist_dir, tmp_path / "mnist")
    bad = root / (LABELS + ".gz")
    bad.write_bytes(gzip.compress(_flip(raw_bytes[LABELS]), compresslevel=1))
    with pytest.raises(DataError) as exc:
        data.load_split("test", root)
    assert str(bad) in str(exc.value) and "checksum" in str(exc.value)
    with pytest.raises(DataError, match="checksum"):
        data.check(root)
    # without verification the (structurally valid) file still loads
    assert data.load_split("test", root, verify=False).labels.shape == (10000,)


def test_truncated_gzip(mnist_dir, gz_bytes, tmp_path):
    root = _copy(mnist_dir, tmp_path / "mnist")
    bad = root / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gz_bytes["t10k-images-idx3-ubyte"][:100_000])
    with pytest.raises(DataError) as exc:
        data.load_split("test", root)
    assert str(bad) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_truncated_raw_idx(raw_bytes, tmp_path):
    for stem, raw in raw_bytes.items():
        if stem.startswith("t10k"):
            (tmp_path / stem).write_bytes(raw)
    bad = tmp_path / LABELS
    bad.write_bytes(raw_bytes[LABELS][:5000])
    with pytest.raises(DataError, match="truncated"):
        data.load_split("test", tmp_path, verify=False)


def test_missing_file(tmp_path):
    with pytest.raises(DataError) as exc:
        data.load_split("test", tmp_path)
    msg = str(exc.value)
    assert str(tmp_path) in msg
    assert data.ENV_VAR in msg and "--data-dir" in msg


def test_corrupted_deflate_stream_is_data_error(mnist_dir, gz_bytes, tmp_path):
    root = _copy(mnist_dir, tmp_path / "mnist")
    (root / (LABELS + ".gz")).write_bytes(_deflate_corrupted(gz_bytes[LABELS]))
    with pytest.raises(DataError):
        data.load_split("test", root)


# ---- check --------------------------------------------------------------------------------
def test_check(mnist_dir):
    report = data.check(mnist_dir)
    assert len(report) == 4
    assert [e["count"] for e in report] == [60000, 60000, 10000, 10000]
    assert all(e["ok"] for e in report)
    labels = [e for e in report if "first_labels" in e]
    assert [e["first_labels"] for e in labels] == [FIRST_TRAIN, FIRST_TEST]


# ---- download with a fake opener ----------------------------------------------------------
class FakeOpener:
    """url -> BytesIO; ``serve(mirror, stem)`` decides the bytes; records every call."""

    def __init__(self, serve):
        self.serve = serve
        self.calls: list[str] = []

    def __call__(self, url: str):
        self.calls.append(url)
        mirror, _, name = url.rpartition("/")
        return io.BytesIO(self.serve(mirror + "/", name.removesuffix(".gz")))


MIRRORS = ("https://mirror-a.invalid/mnist/", "https://mirror-b.invalid/mnist/")


def _assert_verified(root: Path):
    assert sorted(p.name for p in root.iterdir()) == sorted(s + ".gz" for s in STEMS)
    assert len(data.check(root)) == 4


def test_download_fake_opener(gz_bytes, tmp_path):
    opener = FakeOpener(lambda mirror, stem: gz_bytes[stem])
    logs = []
    root = data.download(tmp_path / "dl", mirrors=MIRRORS, opener=opener, log=logs.append)
    assert root == tmp_path / "dl"
    _assert_verified(root)
    assert opener.calls == [MIRRORS[0] + s + ".gz" for s in STEMS]
    assert len(logs) == 4 and all("checksum OK" in line for line in logs)


def test_download_falls_back_to_second_mirror(gz_bytes, raw_bytes, tmp_path):
    def serve(mirror, stem):
        if mirror == MIRRORS[0]:
            return gzip.compress(_flip(raw_bytes[stem]), compresslevel=1)
        return gz_bytes[stem]

    opener = FakeOpener(serve)
    root = data.download(tmp_path, mirrors=MIRRORS, opener=opener)
    _assert_verified(root)
    assert len(opener.calls) == 8


def test_download_falls_back_on_network_error(gz_bytes, tmp_path):
    def opener(url):
        if url.startswith(MIRRORS[0]):
            raise OSError("connection refused")
        return io.BytesIO(gz_bytes[url.rsplit("/", 1)[1].removesuffix(".gz")])

    _assert_verified(data.download(tmp_path, mirrors=MIRRORS, opener=opener))


def test_download_all_mirrors_bad_leaves_nothing(gz_bytes, tmp_path):
    def serve(mirror, stem):  # A: truncated gzip; B: valid gzip of the wrong content
        return gz_bytes[stem][:5000] if mirror == MIRRORS[0] else gzip.compress(b"not mnist")

    opener = FakeOpener(serve)
    with pytest.raises(DataError) as exc:
        data.download(tmp_path, mirrors=MIRRORS, opener=opener)
    msg = str(exc.value)
    assert STEMS[0] in msg and MIRRORS[0] in msg and MIRRORS[1] in msg
    assert list(tmp_path.iterdir()) == []


def test_download_one_file_bad_leaves_no_partial(gz_bytes, raw_bytes, tmp_path):
    bad_stem = LABELS

    def serve(mirror, stem):
        return gz_bytes[stem][:1000] if stem == bad_stem else gz_bytes[stem]

    with pytest.raises(DataError, match=bad_stem):
        data.download(tmp_path, mirrors=MIRRORS, opener=FakeOpener(serve))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(s + ".gz" for s in STEMS if s != bad_stem)  # no temp files


def test_download_skips_verified_files(mnist_dir, gz_bytes, raw_bytes, tmp_path):
    # one gzipped and one raw file already present and valid; one present but corrupted
    shutil.copyfile(data._find_file(mnist_dir, STEMS[0]), tmp_path / (STEMS[0] + ".gz"))
    (tmp_path / STEMS[1]).write_bytes(raw_bytes[STEMS[1]])
    bad = gzip.compress(_flip(raw_bytes[STEMS[2]]), compresslevel=1)
    (tmp_path / (STEMS[2] + ".gz")).write_bytes(bad)
    opener = FakeOpener(lambda mirror, stem: gz_bytes[stem])
    data.download(tmp_path, mirrors=MIRRORS, opener=opener)
    assert opener.calls == [MIRRORS[0] + s + ".gz" for s in STEMS[2:]]
    assert len(data.check(tmp_path)) == 4

    again = FakeOpener(lambda mirror, stem: gz_bytes[stem])
    data.download(tmp_path, mirrors=MIRRORS, opener=again)
    assert again.calls == []
    data.download(tmp_path, mirrors=MIRRORS, opener=again, force=True)
    assert len(again.calls) == 4


def test_download_falls_back_on_corrupted_deflate(gz_bytes, tmp_path):
    def serve(mirror, stem):
        return _deflate_corrupted(gz_bytes[stem]) if mirror == MIRRORS[0] else gz_bytes[stem]

    _assert_verified(data.download(tmp_path, mirrors=MIRRORS, opener=FakeOpener(serve)))


# ---- download over real HTTP (127.0.0.1 only) ---------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def local_mirror(gz_bytes, tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    for stem, gz in gz_bytes.items():
        (served / (stem + ".gz")).write_bytes(gz)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_over_local_http(local_mirror, tmp_path):
    dest = tmp_path / "dest"
    data.download(dest, mirrors=(local_mirror,))
    _assert_verified(dest)


def test_download_local_http_404_falls_back(local_mirror, tmp_path):
    dest = tmp_path / "dest"
    data.download(dest, mirrors=(local_mirror + "nowhere/", local_mirror))
    _assert_verified(dest)


# ---- CLI ----------------------------------------------------------------------------------
def test_cli_data_check_ok(mnist_dir):
    from click.testing import CliRunner

    from advmilp.cli import main

    result = CliRunner().invoke(main, ["data", "check", "--data-dir", str(mnist_dir)])
    assert result.exit_code == 0, result.output
    ok_lines = [line for line in result.output.splitlines() if line.strip().startswith("OK")]
    assert len(ok_lines) == 4
    assert " ".join(map(str, FIRST_TEST)) in result.output


def test_cli_data_check_corrupted(mnist_dir, raw_bytes, tmp_path):
    from click.testing import CliRunner

    from advmilp.cli import main

    root = _copy(mnist_dir, tmp_path / "mnist")
    (root / (LABELS + ".gz")).write_bytes(gzip.compress(_flip(raw_bytes[LABELS]), compresslevel=1))
    result = CliRunner().invoke(main, ["data", "check", "--data-dir", str(root)])
    assert result.exit_code == 2
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "checksum" in err[0]
    assert "Traceback" not in result.output
