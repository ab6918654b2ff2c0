"""What a method returns: `InstanceResult` (a result row, the witness, extras), and the row of a point
that a heuristic or the phase search found without a MILP solve (`point_result`)."""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field

import numpy as np

from advmilp import __version__
from advmilp.bounds.compute import Bounds
from advmilp.spec.problems import input_box
from advmilp.nn.network import Network
from advmilp.spec.problems import ProblemSpec, SolverSettings
from advmilp.spec.rows import FOUND, NOT_FOUND, is_solved, make_row
from advmilp.spec.verify import verify_witness


@dataclass
class InstanceResult:
    """One instance's outcome: ``row`` (a full `advmilp.spec.rows.ResultRow` as a dict), the verified
    witness (None without one) and method-specific ``extra`` data (cdh: ``perturbed_counts``)."""

    row: dict
    witness: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def solved(self) -> bool:
        return is_solved(self.row)


def started_at() -> str:
    """The ``started_at`` stamp of a row: local time, ISO 8601."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def point_result(network: Network, bounds: Bounds, spec: ProblemSpec, settings: SolverSettings, x_bar, label,
                 image_index, method: str, x, elapsed: float, **extra) -> InstanceResult:
    """The row of a point ``x`` (or None) found in ``elapsed`` seconds without a solver proof: verified
    here, status ``found`` / ``not_found``, no bound.  ``extra`` sets further columns."""
    target = spec.target_for(label)
    x_lb, x_ub = input_box(spec, len(x_bar), x_bar)
    check = verify_witness(network, x, spec, x_bar, label, target, x_lb, x_ub) if x is not None else None
    found = check is not None and check.verified
    row = make_row(
        network=network.name, method=method, network_hash=network.short_hash(), bounds=bounds.method,
        problem=spec.describe(), image_index=image_index, label=label, target=target,
        status=FOUND if found else NOT_FOUND, objective=check.distance(spec) if found else math.nan, bound=math.nan,
        gap_pct=math.nan, nodes=0, time_s=elapsed, build_time_s=0.0, bounds_time_s=0.0, binaries=0,
        verified=bool(found), verify_note="" if found or check is None else check.reason,
        predicted=check.predicted if check else None, ratio=check.ratio if check else math.nan,
        l1=check.l1 if check else math.nan, linf=check.linf if check else math.nan, solver="none",
        solver_version="", threads=1, time_limit=settings.time_limit, gap_rel=settings.gap_rel,
        advmilp_version=__version__, host=platform.node(), started_at=started_at(), message="", **extra)
    return InstanceResult(row, check.x if found else None)
