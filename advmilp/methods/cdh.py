"""The method ``cdh``: the thesis' local-search matheuristic (`advmilp.heuristics.cdh`, thesis §3.3),
no optimality proof (status ``found`` / ``not_found``).  Config variants ``cdh-<name>`` run it with
their own `CDHSettings`."""

from __future__ import annotations

from dataclasses import replace

from advmilp.methods.result import InstanceResult, point_result


def run_cdh(network, bounds, spec, settings, x_bar, label, image_index, cdh_settings=None,
            masks=None) -> InstanceResult:
    """CDH with ``cdh_settings`` (default: the spec's ratio, epsilon and target — its offset, or the
    spec's explicit target), seeded per image, stopped at the settings' time limit; ``masks`` are the
    per-label masks its guided escape and constrained neighbourhood need."""
    from advmilp.heuristics.cdh import CDHSettings, run_cdh as cdh

    offset = spec.target_offset if spec.target is None else (spec.target - int(label)) % network.n_outputs
    s = cdh_settings or CDHSettings(ratio=spec.ratio, epsilon=spec.epsilon, target_offset=offset)
    limit = settings.time_limit if s.time_limit is None else min(s.time_limit, settings.time_limit)
    s = replace(s, seed=s.seed + int(image_index or 0), time_limit=limit)
    r = cdh(network, x_bar, label, s, masks)
    res = point_result(network, bounds, spec, settings, x_bar, label, image_index, "cdh",
                       r.x if r.found else None, r.time_s, iterations=r.iterations, escapes=r.escapes,
                       prep_time_s=0.0)
    res.extra["perturbed_counts"] = r.perturbed_counts
    return res
