"""What every process that runs solves sets up first (the CLI entry and each batch worker)."""

from __future__ import annotations

import os


def limit_blas_threads() -> None:
    """One BLAS thread per process: one solve per core.

    numpy's OpenBLAS would otherwise start a thread per core in every worker process, and two workers
    on two cores then fight over them (measured on DNN1 with the other core busy: 0.40 s per instance
    with one BLAS thread, 0.42-0.46 s with two).  It only takes effect before numpy loads, so it is
    called first thing by the CLI and by each worker process; an explicit OPENBLAS_NUM_THREADS in the
    environment wins.  Importing advmilp as a library never changes the environment."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
