"""Ctrl-C: the one SIGINT handler of every advmilp process, and a record that one arrived.

Python's own handler raises KeyboardInterrupt, and code between the handler and the batch may turn that
into another exception: pybind11 (highspy, which PuLP drives) reports a KeyboardInterrupt raised while it
converts a call's arguments as ``TypeError: incompatible function arguments``, and a batch then recorded
an ``error`` row and ran on to its end (CI, 2026-11-30).  So the handler also records the signal, and
every broad ``except Exception`` around a solve asks `reraise_interrupt` first."""

from __future__ import annotations

import signal
import threading

_ARRIVED = threading.Event()


def _on_sigint(signum, frame) -> None:
    _ARRIVED.set()
    raise KeyboardInterrupt


def accept_interrupts() -> None:
    """Ctrl-C raises KeyboardInterrupt again, whatever this process inherited, and is recorded
    (`interrupt_arrived`; a fresh record from this call on).

    A process started in the background by a non-interactive shell (as CI runners start jobs, and as
    ``nohup cmd &`` starts a long benchmark) inherits SIGINT as *ignored*, and Python then installs no
    KeyboardInterrupt handler: Ctrl-C, or a SIGINT from a supervisor, would be ignored.  A process may
    also inherit SIGINT *blocked* (the signal mask survives fork and exec): the signal then stays
    pending and the run goes on to the end (the project's CI ran a whole batch through a SIGINT that
    way), so SIGINT is unblocked too — in this thread, and so in every thread and process started
    after.  Called first thing by the CLI and by every benchmark script (a ninth-session benchmark run
    ignored ``pkill -INT``)."""
    _ARRIVED.clear()
    signal.signal(signal.SIGINT, _on_sigint)
    if hasattr(signal, "pthread_sigmask"):    # POSIX; on Windows there is no mask to inherit
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def interrupt_arrived() -> bool:
    """Whether a SIGINT reached this process's handler since `accept_interrupts`."""
    return _ARRIVED.is_set()


def reraise_interrupt(exc: BaseException | None = None) -> None:
    """Raise KeyboardInterrupt (from ``exc``) if a SIGINT has arrived: ``exc`` may be the interrupt
    in another exception's clothes.  Else return, and the caller handles ``exc`` as it would."""
    if interrupt_arrived():
        raise KeyboardInterrupt("interrupted") from exc
