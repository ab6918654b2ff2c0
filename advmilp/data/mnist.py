"""MNIST from its original IDX files (gzipped or raw), with checksum verification.

The directory is, in order: an explicit argument (``--data-dir``), the environment
variable ``ADVMILP_DATA``, or a per-user cache directory (``$XDG_CACHE_HOME/advmilp/mnist``,
default ``~/.cache/advmilp/mnist``).  Every file is checked against the md5 of its
*decompressed* bytes, so a gzip wrapper that differs from the original does not matter.

Decoding is paid once: a verified file's pixels are kept as a ``.npy`` in a user cache folder
(`decoded_cache_dir`: ``$ADVMILP_MNIST_CACHE``, else ``$XDG_CACHE_HOME/advmilp/mnist-decoded``), named
by the md5 of the IDX bytes, and read back (memory-mapped) only for the very file that was verified
(same path, size, mtime, ctime and inode); any other file is decompressed and checked again.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from advmilp.errors import DataError

ENV_VAR = "ADVMILP_DATA"
CACHE_ENV = "ADVMILP_MNIST_CACHE"  # folder of decoded arrays; "off" disables the cache

# md5 of the decompressed IDX bytes (identical to the published originals).
FILES: dict[str, tuple[str, str]] = {
    "train_images": ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
    "train_labels": ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    "test_images": ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    "test_labels": ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
}

# Canonical public mirrors of the original gzipped files, tried in order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

SPLIT_SIZES = {"train": 60000, "test": 10000}


@dataclass(frozen=True)
class Split:
    """One MNIST split: images as float64 in [0, 1], shape (n, 784); labels int64."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def default_data_dir() -> Path:
    """The MNIST directory from ``ADVMILP_DATA`` or the per-user cache."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "advmilp" / "mnist"


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


def _find_file(data_dir: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        path = data_dir / name
        if path.is_file():
            return path
    raise DataError(
        f"{data_dir / (stem + '.gz')}: file not found (set --data-dir or {ENV_VAR}, "
        f"or run 'advmilp data download')"
    )


def read_bytes(path: Path) -> bytes:
    """The decompressed content of an IDX file, gzipped (by magic bytes) or raw."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: cannot read ({exc}); file is corrupted or truncated") from exc


def verify_md5(path: Path, raw: bytes, expected: str) -> None:
    got = hashlib.md5(raw).hexdigest()
    if got != expected:
        raise DataError(
            f"{path}: checksum mismatch (md5 of decompressed bytes {got}, expected {expected}); "
            f"file is corrupted or truncated"
        )


def parse_idx(raw: bytes, path: Path) -> np.ndarray:
    """Parse IDX bytes (unsigned-byte data) into an array of the declared shape."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) if dims else 0
    if len(raw) - header != expected:
        raise DataError(f"{path}: truncated IDX data ({len(raw) - header} bytes, expected {expected})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def decoded_cache_dir() -> Path | None:
    """The folder of decoded, verified IDX arrays: ``$ADVMILP_MNIST_CACHE`` (``off``: no cache), else
    ``$XDG_CACHE_HOME/advmilp/mnist-decoded`` (``~/.cache/advmilp/mnist-decoded``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return None if env == "off" else Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "advmilp" / "mnist-decoded"


def _cache_paths(cache: Path, path: Path, stem: str, md5: str) -> tuple[Path, Path]:
    """(the decoded array, the stamp saying that this very file was verified to hold it).

    The array is named by the md5 of its IDX bytes; the stamp by the source's path, size, mtime, ctime
    and inode, so a file rewritten, replaced or touched in any way is decompressed and checked again."""
    st = path.stat()
    ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
    source = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return cache / f"{stem}-{md5}.npy", cache / f"{stem}-{md5}.{source}.verified"


def _expected_count(key: str) -> int:
    return SPLIT_SIZES[key.split("_")[0]]


def _read_array(array: Path, key: str) -> np.ndarray | None:
    """The cached array (memory-mapped, read-only), or None if it is missing or not a whole one."""
    try:
        arr = np.asarray(np.load(array, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError, EOFError):
        return None
    if arr.dtype != np.uint8 or arr.ndim < 1 or arr.shape[0] != _expected_count(key):
        return None
    return arr


def _publish(tmp: Path, target: Path) -> None:
    """Rename a finished temporary file to ``target``, readable as the umask allows (not mkstemp's 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o644 & ~umask)
    os.replace(tmp, target)


def _write_cached(array: Path, stamp: Path, arr: np.ndarray, key: str) -> None:
    """Write the array (a temporary file renamed: it appears whole or not at all), then the stamp; two
    processes may do this at once.  A cache folder that cannot be written is skipped."""
    tmp = None
    try:
        array.parent.mkdir(parents=True, exist_ok=True)
        if _read_array(array, key) is None:
            fd, name = tempfile.mkstemp(dir=array.parent, prefix=".tmp-", suffix=".npy")
            tmp = Path(name)
            with os.fdopen(fd, "wb") as out:
                np.save(out, np.ascontiguousarray(arr), allow_pickle=False)
            _publish(tmp, array)
            tmp = None
        stamp.touch()  # empty: it exists or not
    except OSError:
        pass
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def load_raw(data_dir: Path, key: str, verify: bool = True) -> np.ndarray:
    """The uint8 array of one IDX file (read-only).  A file verified before is read from the decoded
    cache (`decoded_cache_dir`); otherwise it is decompressed, checked and, once verified, cached."""
    stem, md5 = FILES[key]
    path = _find_file(data_dir, stem)
    cache = decoded_cache_dir()
    if cache is not None:
        array, stamp = _cache_paths(cache, path, stem, md5)
        arr = _read_array(array, key) if stamp.is_file() else None
        if arr is not None:
            return arr
    raw = read_bytes(path)
    if verify:
        verify_md5(path, raw, md5)
    arr = parse_idx(raw, path)
    if verify and cache is not None:
        _write_cached(array, stamp, arr, key)
    return arr


PIXEL_CODES = 255.0     # pixels = codes / PIXEL_CODES


def load_codes(split: str = "test", data_dir: str | os.PathLike | None = None,
               verify: bool = True, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One split ('train' or 'test') as stored: (uint8 pixel codes (N, 784), read-only and memory-mapped
    when the decoded cache holds them; int64 labels), only the images ``rows`` (a slice) if given."""
    if split not in SPLIT_SIZES:
        raise DataError(f"unknown split {split!r} (choose train or test)")
    root = resolve_data_dir(data_dir)
    images = load_raw(root, f"{split}_images", verify)
    labels = load_raw(root, f"{split}_labels", verify)
    if len(images) != len(labels):
        raise DataError(f"{root}: {split} images ({len(images)}) and labels ({len(labels)}) differ in count")
    if rows is not None:
        images, labels = images[rows], labels[rows]
    return images.reshape(len(images), -1), labels.astype(np.int64)


def load_split(split: str = "test", data_dir: str | os.PathLike | None = None,
               verify: bool = True, rows: slice | None = None) -> Split:
    """Load one split ('train' or 'test') as float64 pixels in [0, 1], flattened to 784; only the
    images ``rows`` (a slice) if given — the same values as ``load_split(split)`` has at those rows."""
    codes, labels = load_codes(split, data_dir, verify, rows)
    x = codes.astype(np.float64)
    x /= PIXEL_CODES
    return Split(images=x, labels=labels)


def split_size(split: str = "test", data_dir: str | os.PathLike | None = None) -> int:
    """How many images the split holds (its label file, verified)."""
    if split not in SPLIT_SIZES:
        raise DataError(f"unknown split {split!r} (choose train or test)")
    return len(load_raw(resolve_data_dir(data_dir), f"{split}_labels"))


def check(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """Check all four files; one dict per file with path, count and md5 status.

    Raises DataError on the first missing or corrupted file.
    """
    root = resolve_data_dir(data_dir)
    report = []
    for key, (stem, md5) in FILES.items():
        path = _find_file(root, stem)
        raw = read_bytes(path)
        verify_md5(path, raw, md5)
        arr = parse_idx(raw, path)
        entry = {"file": str(path), "count": int(arr.shape[0]), "md5": md5, "ok": True}
        if key.endswith("labels"):
            entry["first_labels"] = [int(v) for v in arr[:10]]
        report.append(entry)
    return report


Opener = Callable[[str], "object"]


def download(data_dir: str | os.PathLike | None = None, mirrors: tuple[str, ...] = MIRRORS,
             opener: Opener | None = None, force: bool = False,
             log: Callable[[str], None] = lambda msg: None) -> Path:
    """Fetch the four gzipped IDX files into ``data_dir``; every file is checksum-verified.

    ``opener(url)`` returns a binary file-like object (default: ``urllib.request.urlopen``);
    tests pass a fake.  A file already present with the right checksum is kept.  A download
    is written to a temporary file and renamed only after it verifies, so a failed or
    interrupted download never leaves a corrupted file behind.
    """
    root = resolve_data_dir(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    if opener is None:
        import urllib.request  # 25 ms of imports that only a download needs

        opener = lambda url: urllib.request.urlopen(url, timeout=60)  # noqa: E731
    for key, (stem, md5) in FILES.items():
        target = root / (stem + ".gz")
        if not force:
            try:
                existing = _find_file(root, stem)
                verify_md5(existing, read_bytes(existing), md5)
                log(f"{existing}: present, checksum OK")
                continue
            except DataError:
                pass
        errors = []
        for mirror in mirrors:
            url = mirror + stem + ".gz"
            fd, tmp_name = tempfile.mkstemp(dir=root, prefix=".download-")
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out, opener(url) as resp:
                    shutil.copyfileobj(resp, out)
                try:
                    verify_md5(Path(url), read_bytes(tmp), md5)
                except DataError as exc:  # name the URL, not the temporary file
                    raise DataError(str(exc).replace(str(tmp), "downloaded file")) from exc
                _publish(tmp, target)
                log(f"{target}: downloaded from {url}, checksum OK")
                break
            except (OSError, DataError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
            finally:
                if tmp.exists():
                    tmp.unlink()
        else:
            raise DataError(f"could not download {stem}.gz: " + "; ".join(errors))
    return root
