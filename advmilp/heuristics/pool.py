"""The image pool the primal heuristic bisects towards (`primal.pool_starts`).

A pool is a few thousand images of the input domain — for MNIST networks the first 20,000 training
images (`methods.registry.load_pool`).  It is kept as stored: MNIST's uint8 pixel codes, memory-mapped
from the decoded cache, shared by every worker process through the OS page cache.  Pixels are made
(``codes / divisor``, float64: the very values `data.mnist.load_split` gives) only for the rows a start
needs, and the network's outputs over the whole pool are computed block by block (`BLOCK` rows at a
time) and kept per network.  Converting the whole pool to float64 up front cost a single attack ~0.25 s
of CPU and 125 MB per process (benchmarks/RESULTS.md, "Fixed cost of one attack").

A pool with a ``cache`` folder and a ``key`` (what identifies its images, e.g. the training file's md5 and
the rows) also keeps the outputs on disk, one ``.npy`` per network (named by its content hash), written
atomically: every later process reads them instead of a forward pass over the pool (CPU time computed →
read: DNN1 0.127 → 0.0006 s, VNN-COMP 256x2 0.575 → 0.002 s; benchmarks/RESULTS.md).  An unreadable or misshapen file is
recomputed and replaced.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from advmilp.nn.network import Network

BLOCK = 2048        # rows per forward pass over the pool (a 12 MB float64 block for 784 inputs)
KEEP = 4            # networks whose pool outputs are kept at once


class ImagePool:
    """Images as ``codes / divisor`` (float64 pixels), made only for the rows asked for."""

    def __init__(self, codes: np.ndarray, divisor: float = 1.0, cache: str | os.PathLike | None = None,
                 key: str | None = None):
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"a pool is a 2-d array of images (one per row), not shape {codes.shape}")
        self.codes, self.divisor = codes, float(divisor)
        self._outputs: dict[str, np.ndarray] = {}
        self._cache = Path(cache) if cache is not None and key is not None else None
        self._key = key

    @classmethod
    def of(cls, images) -> "ImagePool":
        """``images`` as a pool: a pool is itself; an array (N, n) of pixels is one with divisor 1."""
        return images if isinstance(images, ImagePool) else cls(np.asarray(images, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape

    def pixels(self, rows=slice(None)) -> np.ndarray:
        """The float64 pixels of ``rows`` (indices, a boolean mask or a slice), a new array."""
        x = self.codes[rows].astype(np.float64)
        if self.divisor != 1.0:
            x /= self.divisor
        return x

    def outputs(self, network: Network) -> np.ndarray:
        """The network's outputs on every image, computed once per network (a pool serves every instance
        of a batch) and `BLOCK` rows at a time."""
        key = network.content_hash()
        hit = self._outputs.get(key)
        if hit is None:
            hit = self._read(key, network.n_outputs)
        if hit is None:
            hit = np.empty((len(self), network.n_outputs))
            for start in range(0, len(self), BLOCK):
                hit[start:start + BLOCK] = network.forward(self.pixels(slice(start, start + BLOCK)))
            self._write(key, hit)
        if len(self._outputs) >= KEEP:
            self._outputs.clear()
        self._outputs[key] = hit
        return hit

    def cache_file(self, network_hash: str) -> Path | None:
        """Where the outputs of the network with this content hash are kept on disk (None: no cache)."""
        return None if self._cache is None else self._cache / f"pool-{self._key}-{network_hash[:24]}.npy"

    def _read(self, network_hash: str, n_outputs: int) -> np.ndarray | None:
        path = self.cache_file(network_hash)
        if path is None or not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        ok = arr.shape == (len(self), n_outputs) and arr.dtype == np.float64 and np.isfinite(arr).all()
        return arr if ok else None

    def _write(self, network_hash: str, outputs: np.ndarray) -> None:
        """Atomically (a temporary file renamed into place); a cache that cannot be written is skipped."""
        path = self.cache_file(network_hash)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.save(fh, outputs, allow_pickle=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass
