"""What every process that runs solves sets up first (the CLI entry and each batch worker)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from advmilp.interrupts import accept_interrupts, interrupt_arrived

PR_SET_PDEATHSIG = 1      # <linux/prctl.h>
PARENT_POLL_S = 0.5       # the portable fallback's polling period
INTERRUPTED = 130         # the shell's status for a process ended by SIGINT (the CLI's and every script's)


def limit_blas_threads() -> None:
    """One BLAS thread per process: one solve per core.

    numpy's OpenBLAS would otherwise start a thread per core in every worker process, and two workers
    on two cores then fight over them (measured on DNN1 with the other core busy: 0.40 s per instance
    with one BLAS thread, 0.42-0.46 s with two).  It only takes effect before numpy loads, so it is
    called first thing by the CLI and by each worker process; an explicit OPENBLAS_NUM_THREADS in the
    environment wins.  Importing advmilp as a library never changes the environment."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def run_script(main) -> None:
    """The main block of a script (every benchmark): ``main()`` with Ctrl-C accepted (`accept_interrupts`)
    and ended as the CLI ends it — one line ``interrupted`` and status 130 —, a user's error
    (`advmilp.errors.AdvmilpError`) as one ``error:`` line and status 2, never a traceback; else exits
    with ``main()``'s status."""
    from advmilp.errors import AdvmilpError

    accept_interrupts()
    try:
        status = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)
    except Exception as exc:
        if interrupt_arrived():     # a Ctrl-C that an extension turned into another error (`advmilp.interrupts`)
            print("interrupted", file=sys.stderr)
            sys.exit(INTERRUPTED)
        if isinstance(exc, AdvmilpError):
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
    sys.exit(status or 0)


def init_worker(parent_pid: int) -> None:
    """The initializer of every process-pool worker: one BLAS thread, and die with the parent.

    A worker whose parent is killed (SIGKILL: no chance to shut the pool down) would otherwise run
    on, solving for minutes and holding the batch's stdout open, so ``advmilp … | tee`` hangs.  On
    Linux the kernel sends the worker SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``);
    elsewhere a daemon thread polls ``os.getppid()``.  Either way a parent that died before this
    ran is caught by comparing the parent pid with the one the pool was created by."""
    limit_blas_threads()
    if not _ask_kernel_for_death_signal():
        threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), name="advmilp-parent-watch",
                         daemon=True).start()
    if os.getppid() != parent_pid:
        os._exit(1)


def _ask_kernel_for_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)
