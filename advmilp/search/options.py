"""The options of the phase search (`phase_bb.search_phases`), in one frozen dataclass.

Only what measurements kept is here.  Per-node bound re-tightening, ideal cuts below the root and
strong branching were measured and dropped (benchmarks/RESULTS.md, "What each lever contributed").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from advmilp.search.branching import BranchingRule, DualHeightBranching


@dataclass(frozen=True)
class SearchOptions:
    time_limit: float = 300.0          # seconds for the whole search
    gap_rel: float = 1e-4              # nodes within this relative gap of the incumbent are pruned
    max_nodes: int | None = None       # stop (status ``limit``) after this many nodes (racing: per search);
    #                                    None: no limit
    node_time_limit: float | None = None   # seconds for one node's LP; past it the node is branched on its
    #                                    parent's bound (`verify`: HiGHS' dual simplex can stall for seconds
    #                                    on a VNN-COMP node LP that its siblings solve in 10 pivots)
    cut_rounds: int = 0                # rounds of ideal ReLU cuts at the root (`PhaseLP.add_cuts`); the
    #                                    tight pipeline uses them above 24 binaries (RESULTS.md)
    handoff_at: float | None = None    # a time.perf_counter() instant: a search still open then whose gap
    handoff_gap: float = 0.0           # exceeds handoff_gap stops there (status time_limit), so that its
    #                                    caller can spend the rest otherwise (`tight.ladder_rungs`); one
    #                                    within it runs on to its time limit
    branching: BranchingRule = field(default_factory=DualHeightBranching)
    race: tuple = ()                   # further branching rules: a search still open race_after seconds in is
    race_after: float = 1.0            # joined by one search per rule, racing it (`phase_bb.race_phases`)
    race_trailing_share: float = 1 / 32  # the share of a race's nodes each search but the leader gets
    #                                    (`phase_bb.RaceShares`).  With dual × height first, 1/8 over 1/4 and 1/16 (nine
    #                                    DNN4 and two DNN5 instances); with pseudocosts first, 1/32 over 1/8 (thesis DNN4
    #                                    and DNN5, 100 images each, the replication's DNN4 and four DNN5 time-outs;
    #                                    RESULTS.md, twenty-second session), times the leader's doubt when its
    #                                    projection runs beyond its past (twenty-fourth session)
