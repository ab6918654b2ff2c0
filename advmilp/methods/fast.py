"""The method ``fast``: the primal heuristic alone (`advmilp.heuristics.primal`) — a verified
adversarial example within 30 s, no optimality proof (status ``found`` / ``not_found``)."""

from __future__ import annotations

import math
import time

from advmilp.heuristics.primal import find_adversarial
from advmilp.methods.result import InstanceResult, point_result


def run_fast(network, bounds, spec, settings, x_bar, label, image_index, pool=None) -> InstanceResult:
    """The heuristic from x̄ and from the ``pool`` images nearest to the target (``pool`` None: no pool
    starts); its time limit is the settings' (at most 30 s), and nothing runs past the settings' limit."""
    h = find_adversarial(network, x_bar, label, spec, pool=pool, time_limit=min(settings.time_limit, 30.0),
                         deadline=time.perf_counter() + settings.time_limit)
    return point_result(network, bounds, spec, settings, x_bar, label, image_index, "fast", h.x, h.time_s,
                        heuristic_l1=h.l1 if h.found else math.nan, prep_time_s=h.time_s)
