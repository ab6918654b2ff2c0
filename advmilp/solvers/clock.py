"""Deadlines: the one way a time limit reaches every loop of LP and MILP solves.

A time limit of T seconds for an instance becomes one absolute ``deadline = time.perf_counter() + T``
that is passed down (heuristic, every bound pass, phase search, MILP, verification), so the parts
share one budget instead of each taking its own ``T`` (a method that gave each part its own limit
ran past T by the sum of them).  Each solve gets ``min(its own limit, deadline − now)``; a loop that
finds the deadline passed stops and returns what it has proven so far.  ``None`` means no deadline.

``time.perf_counter`` is the clock: on Linux it is CLOCK_MONOTONIC, shared by every process of the
machine, so a deadline is also valid in a worker process that bounds units in parallel.
"""

from __future__ import annotations

import math
import time


def time_left(deadline: float | None) -> float:
    """Seconds until ``deadline`` (+inf without one; negative once it has passed)."""
    return math.inf if deadline is None else deadline - time.perf_counter()


def expired(deadline: float | None) -> bool:
    return time_left(deadline) <= 0.0


def solve_limit(time_limit: float | None, deadline: float | None) -> float | None:
    """The time limit of one solve: its own ``time_limit`` cut to the time left (None: no limit)."""
    limit = min(math.inf if time_limit is None else time_limit, time_left(deadline))
    return None if math.isinf(limit) else limit
