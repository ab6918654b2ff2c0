"""VNN-COMP scoring of a ``verify --instances`` run, beside the published tools' per-instance results.

The published results are read at report time from a results folder of others (never copied):

* VNN-COMP 2021/2022 style — ``results/per_instance_scored_times.csv``: one row per instance
  ``<network stem>-<spec stem>``, per tool a cell ``<seconds> (h)`` (holds), ``<seconds> (v)``
  (violated), ``timeout`` or ``-``; an optional ``true_result(if printed)`` column (sat/unsat).
* VNN-COMP 2020 "MNIST-OVAL" style — ``per_instance_results.csv``: per (net, eps, test image) the
  results and times of MIPVerify, nnenum, Venus and VeriNet.  Our instances of it are the ones
  ``advmilp export-vnnlib`` writes (spec ``<network>_<image>_linf_<eps>.vnnlib``).

`ScoringRules` are VNN-COMP 2021's, as its published table documents them: per instance a correct
``holds``/``violated`` scores 10, a wrong one −100 (the official table gives nnv, 27 correct answers
and one contradicted by the other tools, 186 = 270 − 100 + 16 of time bonus; the brief's −150 is
VNN-COMP 2022's rule and is one field away), an unknown or a timeout 0; the fastest correct tool
gets +2 and the second fastest +1, times within 0.2 s of each other count as equal (so several
tools can share the +2; the +1 is given only when one tool alone was fastest), every time is
floored at 1.0 s.  `score_table` reproduces the official 2021 mnistfc scores from
``per_instance_scored_times.csv`` exactly for 7 of the 10 tools and within 2 points for the other
three (that file rounds times to 0.1 s, which moves a few 0.2 s ties; ``tests/reporting/test_vnncomp.py``).

Truth: among the published tools, the answer of the majority (VNN-COMP 2021's "odd one out"), or
the printed true result when the file has one.  Our answer is **wrong** when it contradicts the
published consensus: ``holds`` where a published tool found a counterexample and the consensus is
not ``holds``, or ``violated`` where two or more tools say ``holds`` (our counterexamples are checked
by a float64 and a float32 forward pass, so one tool's ``holds`` does not outweigh them).  A result
reported after its timeout counts as a timeout, as in VNN-COMP.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from advmilp.errors import AdvmilpError

HOLDS, VIOLATED = "holds", "violated"
OURS = "advmilp"
SCORED_2021 = Path("results") / "per_instance_scored_times.csv"
RESULTS_2020 = Path("per_instance_results.csv")
TOOLS_2020 = {"mipverify": ("mipverify_result", "mipverify_total_s"), "nnenum": ("nnenum_result", "nnenum_s"),
              "venus": ("venus_result", "venus_s"), "verinet": ("verinet_result", "verinet_s")}
_EXPORTED = re.compile(r"^(?P<net>.+)_(?P<image>\d+)_linf_(?P<eps>[0-9.eE+-]+)$")


@dataclass(frozen=True)
class ScoringRules:
    correct: int = 10
    wrong: int = -100
    fastest: int = 2
    second: int = 1
    tie_s: float = 0.2
    min_time_s: float = 1.0


@dataclass(frozen=True)
class Answer:
    result: str | None           # holds | violated | None (timeout, unknown, error, excluded)
    time_s: float | None = None


@dataclass
class Published:
    source: str
    tools: list[str]
    answers: dict[str, dict[str, Answer]] = field(default_factory=dict)    # instance id → tool → answer
    truth: dict[str, str] = field(default_factory=dict)                    # printed true results


# ---- instance names --------------------------------------------------------------------------------------
def instance_id(onnx: str, vnnlib: str) -> str:
    """The published name of an instance: ``mnist-net_256x2-prop_0_0.03`` (2021/2022), or for a spec
    written by ``export-vnnlib`` (``mnist-net_256x2_7_linf_0.02``) ``mnist-net_256x2-img7-eps0.02``."""
    stem = Path(vnnlib).stem
    m = _EXPORTED.match(stem)
    if m:
        return f"{m['net']}-img{int(m['image'])}-eps{float(m['eps']):g}"
    return f"{Path(onnx).stem}-{stem}"


# ---- the published results ---------------------------------------------------------------------------------
def _cell_2021(cell: str) -> Answer:
    m = re.match(r"^\s*([0-9.]+)\s*\((h|v)\)\s*$", cell or "")
    if not m:
        return Answer(None)
    return Answer(HOLDS if m[2] == "h" else VIOLATED, float(m[1]))


def _data_lines(path: Path) -> list[str]:
    try:
        return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    except OSError as exc:
        raise AdvmilpError(f"{path}: cannot read ({exc.strerror or exc})") from None


def load_published(folder: str | os.PathLike) -> Published:
    """The per-instance results of the published tools in ``folder`` (either layout above)."""
    folder = Path(folder)
    if (folder / SCORED_2021).is_file():
        path = folder / SCORED_2021
        rows = list(csv.DictReader(_data_lines(path)))
        fixed = {"instance", "mnist_test_idx", "label", "eps", "true_result(if printed)", "conflict_flag"}
        tools = [c for c in (rows[0].keys() if rows else []) if c not in fixed and c]
        pub = Published(str(path), tools)
        for r in rows:
            pub.answers[r["instance"]] = {t: _cell_2021(r.get(t) or "") for t in tools}
            truth = {"sat": VIOLATED, "unsat": HOLDS}.get((r.get("true_result(if printed)") or "").strip().lower())
            if truth:
                pub.truth[r["instance"]] = truth
        return pub
    if (folder / RESULTS_2020).is_file():
        path = folder / RESULTS_2020
        pub = Published(str(path), list(TOOLS_2020))
        for r in csv.DictReader(_data_lines(path)):
            iid = f"mnist-net_{r['net']}-img{int(r['test_idx'])}-eps{float(r['eps']):g}"
            pub.answers[iid] = {t: _answer_2020(r.get(res), r.get(sec)) for t, (res, sec) in TOOLS_2020.items()}
        return pub
    raise AdvmilpError(f"{folder}: no published results found (expected {SCORED_2021} or {RESULTS_2020})")


def _answer_2020(result, seconds) -> Answer:
    result = (result or "").strip().lower()
    if result not in (HOLDS, VIOLATED):
        return Answer(None)
    try:
        t = float(seconds)
    except (TypeError, ValueError):
        t = math.nan
    return Answer(result, t if math.isfinite(t) else None)


# ---- truth, wrong answers, score -----------------------------------------------------------------------------
def consensus(answers: dict[str, Answer], printed: str | None = None) -> str | None:
    """The printed true result, else the majority answer of the tools; None if none or a tie."""
    if printed:
        return printed
    votes = Counter(a.result for a in answers.values() if a.result)
    if not votes:
        return None
    (top, n), *rest = votes.most_common()
    return None if rest and rest[0][1] == n else top


def ours_wrong(result: str | None, published: dict[str, Answer], printed: str | None = None) -> bool:
    """Does our answer contradict the published consensus (module docstring)?"""
    votes = Counter(a.result for a in published.values() if a.result)
    if result == HOLDS:
        return votes[VIOLATED] > 0 and consensus(published, printed) != HOLDS
    if result == VIOLATED:
        return votes[HOLDS] >= 2 and printed != VIOLATED
    return False


@dataclass
class ToolScore:
    holds: int = 0
    violated: int = 0
    unknown: int = 0
    wrong: int = 0
    fastest: int = 0
    second: int = 0
    score: int = 0
    time_s: float = 0.0          # summed over the correct answers (floored times)

    def add(self, other: "ToolScore") -> None:
        for k, v in vars(other).items():
            setattr(self, k, getattr(self, k) + v)


def score_instance(answers: dict[str, Answer], truth: str | None, rules: ScoringRules = ScoringRules(),
                   wrong: dict[str, bool] | None = None) -> dict[str, ToolScore]:
    """Each tool's score on one instance.  ``wrong`` overrides the tool-vs-truth rule for some tools
    (ours); without a truth, an answer nobody else contradicts counts as correct."""
    wrong = dict(wrong or {})
    out, correct = {}, {}
    for tool, a in answers.items():
        s = out[tool] = ToolScore()
        if a.result is None:
            s.unknown = 1
            continue
        bad = wrong[tool] if tool in wrong else (truth is not None and a.result != truth)
        if bad:
            s.wrong, s.score = 1, rules.wrong
            continue
        setattr(s, a.result, 1)
        s.score = rules.correct
        t = max(a.time_s if a.time_s is not None else math.inf, rules.min_time_s)
        s.time_s = t if math.isfinite(t) else 0.0
        correct[tool] = t
    if correct:
        best = min(correct.values())
        first = [t for t, x in correct.items() if x <= best + rules.tie_s + 1e-9]
        rest = {t: x for t, x in correct.items() if t not in first}
        for t in first:
            out[t].fastest, out[t].score = 1, out[t].score + rules.fastest
        if len(first) == 1 and rest:
            b2 = min(rest.values())
            for t, x in rest.items():
                if x <= b2 + rules.tie_s + 1e-9:
                    out[t].second, out[t].score = 1, out[t].score + rules.second
    return out


def _capped(answers: dict[str, Answer], limit: float | None) -> dict[str, Answer]:
    if limit is None:
        return dict(answers)
    return {t: a if a.time_s is None or a.time_s <= limit else Answer(None, a.time_s) for t, a in answers.items()}


def network_of(iid: str) -> str:
    m = re.match(r"^(.*?net_[^-_]+)", iid)
    return m[1] if m else iid.split("-")[0]


def score_table(published: Published, ours: dict[str, Answer] | None = None, instances=None,
                rules: ScoringRules = ScoringRules(), limits: dict[str, float] | None = None
                ) -> dict[str, dict[str, ToolScore]]:
    """network → tool → summed `ToolScore` over ``instances`` (default: every published one; with
    ``ours``, the instances we ran), our tool as one more participant.  ``limits`` (instance → our
    timeout): a published answer slower than it counts as a timeout, so all run at the same limit."""
    ids = list(instances if instances is not None else (ours.keys() if ours else published.answers.keys()))
    table: dict[str, dict[str, ToolScore]] = {}
    for iid in ids:
        pub = published.answers.get(iid, {})
        answers = _capped(pub, (limits or {}).get(iid))
        wrong = {}
        if ours is not None:
            answers[OURS] = ours.get(iid, Answer(None))
            wrong[OURS] = ours_wrong(answers[OURS].result, pub, published.truth.get(iid))
        scores = score_instance(answers, consensus(pub, published.truth.get(iid)), rules, wrong)
        net = table.setdefault(network_of(iid), {})
        for tool, s in scores.items():
            net.setdefault(tool, ToolScore()).add(s)
    return table


def group_of(iid: str) -> str:
    """``<network> ε <eps>`` of an instance id (2021: ``…-prop_3_0.05``; 2020: ``…-img7-eps0.02``)."""
    m = re.search(r"(?:eps([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)|_([0-9]*\.[0-9]+))$", iid)
    return f"{network_of(iid)} ε {float(m[1] or m[2]):g}" if m else network_of(iid)


def _short(iid: str) -> str:
    """The instance id without its network: ``prop_1_0.03``, ``img7-eps0.02``."""
    return iid[len(network_of(iid)):].lstrip("-_") or iid


@dataclass
class Coverage:
    """Per group (`group_of`): how many instances each tool decided correctly, and which instances a
    published tool decided correctly that we did not (``missed``) or that we alone decided (``only_ours``)."""
    instances: int = 0
    decided: Counter = field(default_factory=Counter)
    missed: list = field(default_factory=list)
    only_ours: list = field(default_factory=list)


def coverage_table(published: Published, ours: dict[str, Answer], limits: dict[str, float] | None = None
                   ) -> dict[str, Coverage]:
    """group → `Coverage` over our instances: correct answers only (a published answer against the
    consensus, or slower than our timeout, does not count; ours not when `ours_wrong`)."""
    out: dict[str, Coverage] = {}
    for iid, a in ours.items():
        pub = published.answers.get(iid, {})
        truth = consensus(pub, published.truth.get(iid))
        capped = _capped(pub, (limits or {}).get(iid))
        tools = [t for t, x in capped.items() if x.result and (truth is None or x.result == truth)]
        mine = a.result is not None and not ours_wrong(a.result, pub, published.truth.get(iid))
        c = out.setdefault(group_of(iid), Coverage())
        c.instances += 1
        c.decided.update(tools + ([OURS] if mine else []))
        if tools and not mine:
            c.missed.append(iid)
        if mine and not tools:
            c.only_ours.append(iid)
    return out


# ---- our rows ------------------------------------------------------------------------------------------------
def our_limits(rows: list[dict]) -> dict[str, float]:
    """instance id → the timeout our row ran with."""
    out = {}
    for r in rows:
        limit = _float(r.get("timeout_s"))
        if limit is not None:
            out[instance_id(r["onnx"], r["vnnlib"])] = limit
    return out


def our_answers(rows: list[dict]) -> tuple[dict[str, Answer], list[str]]:
    """instance id → our answer; a result after its timeout counts as a timeout.  Also notes on the rows."""
    out, late = {}, 0
    for r in rows:
        result = r.get("result")
        t = _float(r.get("time_s"))
        limit = _float(r.get("timeout_s"))
        if result in (HOLDS, VIOLATED) and t is not None and limit is not None and t > limit:
            late += 1
            result = None
        out[instance_id(r["onnx"], r["vnnlib"])] = Answer(result if result in (HOLDS, VIOLATED) else None, t)
    notes = [f"{late} answer(s) came after their timeout and count as timeouts"] if late else []
    changed = sorted({r.get("timeout_note") for r in rows if r.get("timeout_note") not in (None, "", "csv")})
    if changed:
        notes.append(f"our timeouts differ from the benchmark's: {'; '.join(changed[:3])}"
                     + (" ..." if len(changed) > 3 else ""))
    return out, notes


def _float(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# ---- the report ------------------------------------------------------------------------------------------------
def _cell(a: Answer | None) -> str:
    if a is None or a.result is None:
        return "–"
    return f"{a.result[0]} {a.time_s:.1f}" if a.time_s is not None else a.result[0]


def render_report(rows: list[dict], published: Published | None, rules: ScoringRules = ScoringRules()) -> str:
    ours, notes = our_answers(rows)
    lines = ["# VNN-COMP scoring", ""]
    our_total = sum(_float(r.get("time_s")) or 0.0 for r in rows)
    errors = sum(r.get("result") == "error" for r in rows)
    lines.append(f"{len(rows)} instances; our total time {our_total:.1f} s"
                 + (f"; {errors} error row(s)" if errors else ""))
    if published is None:
        counts = Counter(r.get("result") for r in rows)
        lines += ["", "No published results given (--published DIR): our counts only: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), "",
                  "| instance | result | time (s) | how |", "|---|---|---|---|"]
        lines += [f"| {instance_id(r['onnx'], r['vnnlib'])} | {r.get('result')} | {_float(r.get('time_s')) or 0:.2f} | "
                  f"{r.get('how') or r.get('message') or ''} |" for r in rows]
        return "\n".join(lines + [""])
    missing = [i for i in ours if i not in published.answers]
    lines.append(f"published: {published.source}")
    lines += notes
    if missing:
        lines.append(f"{len(missing)} of our instances have no published result (first: {missing[0]})")
    lines += ["", f"Rules (VNN-COMP 2021): correct +{rules.correct}, wrong {rules.wrong}, fastest +{rules.fastest}, "
              f"second +{rules.second} (only when one tool alone is fastest), times within {rules.tie_s:g} s equal, "
              f"floored at {rules.min_time_s:g} s. Published times were measured on other machines (see the "
              "source file's header; VNN-COMP 2021: AWS, after overhead subtraction), ours on this one. A published "
              "answer slower than our timeout for the instance counts as a timeout (the same limit for every tool).",
              ""]
    limits = our_limits(rows)
    table = score_table(published, ours, rules=rules, limits=limits)
    lines += ["| network | tool | holds | violated | unknown | wrong | fastest | time of correct (s) | score |",
              "|---|---|---|---|---|---|---|---|---|"]
    for net in sorted(table):
        for tool, s in sorted(table[net].items(), key=lambda kv: (kv[0] != OURS, -kv[1].score, kv[0])):
            name = f"**{tool}**" if tool == OURS else tool
            lines.append(f"| {net} | {name} | {s.holds} | {s.violated} | {s.unknown} | {s.wrong} | {s.fastest} | "
                         f"{s.time_s:.1f} | {s.score} |")
    cover = coverage_table(published, ours, limits)
    lines += ["", "Decided correctly, per network and ε (at our timeouts); instances a published tool decided and "
              "advmilp did not, and those advmilp alone decided:", "",
              "| network, ε | instances | **advmilp** | " + " | ".join(published.tools) + " | missed by advmilp | "
              "advmilp alone |", "|---|---|---|" + "---|" * len(published.tools) + "---|---|"]
    for group in sorted(cover):
        c = cover[group]
        short, alone = [_short(i) for i in c.missed], [_short(i) for i in c.only_ours]
        lines.append(f"| {group} | {c.instances} | {c.decided[OURS]} | "
                     + " | ".join(str(c.decided[t]) for t in published.tools)
                     + f" | {len(c.missed)}{': ' + ', '.join(short) if short else ''} | "
                     f"{len(c.only_ours)}{': ' + ', '.join(alone) if alone else ''} |")
    lines += ["", "Per instance (h = holds, v = violated, – = no answer; seconds):", ""]
    lines += ["| instance | consensus | **advmilp** | " + " | ".join(published.tools) + " |",
              "|---|---|---|" + "---|" * len(published.tools)]
    for iid, a in ours.items():
        pub = published.answers.get(iid, {})
        truth = consensus(pub, published.truth.get(iid)) or "?"
        flag = " WRONG" if ours_wrong(a.result, pub, published.truth.get(iid)) else ""
        capped = _capped(pub, limits.get(iid))
        lines.append(f"| {iid} | {truth} | {_cell(a)}{flag} | " + " | ".join(
            _cell(pub.get(t)) + (" (late)" if t in pub and pub[t].result and not capped[t].result else "")
            for t in published.tools) + " |")
    return "\n".join(lines + [""])


def is_verify_run(folder) -> bool:
    from advmilp.experiments.verify_batch import RESULTS_FILE

    return (Path(folder) / RESULTS_FILE).is_file()


def write_vnncomp_report(run_dir, out_dir, published_dir=None, rules: ScoringRules = ScoringRules()) -> str:
    """Score ``run_dir``'s verify.csv; the published results from ``published_dir``, else from the
    benchmark's folder (recorded by the batch) if it holds any.  Writes ``out_dir/vnncomp.md``; returns the text."""
    from advmilp.experiments.verify_batch import RESULTS_FILE, benchmark_folder, read_rows

    run_dir = Path(run_dir)
    rows = read_rows(run_dir / RESULTS_FILE)
    if published_dir is not None:
        if not Path(published_dir).is_dir():
            raise AdvmilpError(f"--published {published_dir}: not a folder")
        published = load_published(published_dir)
    else:
        bench = benchmark_folder(run_dir)
        published = None
        if bench is not None and ((bench / SCORED_2021).is_file() or (bench / RESULTS_2020).is_file()):
            published = load_published(bench)
    text = render_report(rows, published, rules)
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "vnncomp.md").write_text(text)
    except OSError as exc:
        raise AdvmilpError(f"cannot write {Path(out_dir) / 'vnncomp.md'}: {exc.strerror or exc}") from None
    return text + f"\nwritten: {Path(out_dir) / 'vnncomp.md'}"
