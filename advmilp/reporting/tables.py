"""Result rows → thesis-style tables, with the thesis' own published figures beside ours.

Pure pandas: this module never imports a solver, PuLP, highspy or TensorFlow.

Input is one or more result directories, each holding ``instances.csv`` (one row per
finished instance, written by the experiment runner). Every table has one row per
(network, method, bounds) cell and an ``n`` column, so partial results are reported as
they are. The thesis' figures (``thesis_tables.json``) sit in ``thesis_*`` columns, matched
on network and bounds ("Basic model" = basic, "Improved model" = improved, the
parenthesised DNN4/DNN5 figures of Table 2 = weak); blank where the thesis has none.

* Table 2 — ``%solved`` = 100·mean(`advmilp.spec.rows.is_solved`: optimal and verified, for the
  exact methods this table shows); ``%gap``, ``nodes``,
  ``time_s`` are plain means over the cell.
* Table 3 — the same, but solved = verified and gap_pct ≤ 1 (within 1 % of optimality).
* Table 4 — Table 2's %solved, time and the mean objective over verified incumbents, then
  the same for the gap ≤ 1 % criterion (optionally computed from a second, gap-1 % run).

An unverified witness is never counted as solved.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from advmilp.errors import AdvmilpError
from advmilp.methods.registry import method_of
from advmilp.reporting.replication import replication_report
from advmilp.spec.rows import KEY_COLUMNS, as_bool, is_solved

KEYS = ["network", "method", "bounds"]
NUMERIC = ["objective", "bound", "gap_pct", "nodes", "time_s", "bounds_time_s", "l1", "linf"]
_BOUNDS_ORDER = {"basic": 0, "improved": 1, "weak": 2}
_METHOD_ORDER = {"milp": 0}


def cell_keys(df: pd.DataFrame) -> list[str]:
    """What a table cell groups by: network, method, bounds — and the problem when a run mixes several
    (a config's ``problems:`` list), so that no cell averages a targeted and an untargeted distance."""
    if len(df) and "problem" in df and (df.groupby(KEYS)["problem"].nunique() > 1).any():
        return KEYS + ["problem"]
    return KEYS


TITLES = {
    "table2": "Table 2: adversarial examples, solved = proven optimal (gap 0) and verified",
    "table3": "Table 3: adversarial examples, solved = verified and within 1 % of optimality",
    "table4": "Table 4: recap, gap = 0 vs gap <= 1 %; obj = mean L1 of verified incumbents",
    "heuristics": "Heuristics (thesis Tables 5-7): %found = verified adversarial example; time and obj "
                  "averaged over found instances",
}


def _heuristic(name: str) -> bool:
    """A method without an optimality proof (registry entry not exact); unknown names count as exact."""
    try:
        return not method_of(name).exact
    except AdvmilpError:
        return False


def is_heuristic(df: pd.DataFrame) -> pd.Series:
    """Rows of methods without an optimality proof: fast, cdh and its variants cdh-<name>."""
    m = df["method"].astype(str)
    return m.map({name: _heuristic(name) for name in m.unique()}).astype(bool)


def solved_mask(df: pd.DataFrame) -> pd.Series:
    """`advmilp.spec.rows.is_solved` of every row: status optimal or found, and verified."""
    cols = [c for c in ("status", "verified") if c in df]
    return pd.Series([is_solved(r) for r in df[cols].to_dict("records")], index=df.index, dtype=bool)


def table_heuristics(df: pd.DataFrame) -> pd.DataFrame:
    """Per (network, method, bounds): %found, mean time and mean L1 over the found (solved) instances."""
    rows = []
    keys = cell_keys(df)
    for key, g in df.groupby(keys, sort=False):
        found = g[solved_mask(g)]
        rows.append(dict(zip(keys, key), n=len(g), **{"%found": 100.0 * len(found) / max(len(g), 1)},
                         time_s=found["time_s"].mean() if len(found) else float("nan"),
                         obj=found["l1"].mean() if len(found) else float("nan")))
    t = pd.DataFrame(rows, columns=keys + ["n", "%found", "time_s", "obj"])
    matches = [thesis_heuristic_row(r["network"], r["method"]) for _, r in t.iterrows()]
    for col, field in (("thesis_%found", "solved_pct"), ("thesis_time_s", "time_s"), ("thesis_obj", "obj")):
        t[col] = [m.get(field, float("nan")) if m else float("nan") for m in matches]
    return _sort(t) if len(t) else t


def thesis_heuristic_row(network: str, method: str) -> dict | None:
    """The thesis' figures for a CDH run, matched by the variant names of configs/table5-7.yaml:
    cdh (DNN5: Table 7), cdh-<simple|diff>-<unbounded|fixed> (DNN5: Table 5), cdh-none,
    cdh-random-k<k>-r<maxRand>, cdh-guided-<050|065>-r<maxRand> (DNN1: Table 6)."""
    tables, net, m = thesis_tables(), str(network).lower(), str(method)
    if m == "cdh" and net == tables["table7"]["network"]:
        return tables["table7"]
    parts = m.split("-")[1:]
    if net == tables["table5"]["network"] and len(parts) == 2:
        rule = {"unbounded": "unbounded", "fixed": "fixed_absolute"}.get(parts[1])
        for row in tables["table5"]["rows"]:
            if row["objective_function"] == parts[0] and row["solve_rule"] == rule:
                return row
    if net == tables["table6"]["network"] and parts:
        want: dict = {"escape": parts[0]}
        for p in parts[1:]:
            if p.startswith("k") and p[1:].isdigit():
                want["k"] = int(p[1:])
            elif p.startswith("r") and p[1:].isdigit():
                want["max_rand"] = int(p[1:])
            elif p.isdigit():
                want["p_h"] = {"050": 0.5, "065": 0.65}.get(p)
        for row in tables["table6"]["rows"]:
            if all(row.get(k) == v for k, v in want.items()) and len(want) == len(
                    [k for k in ("escape", "k", "max_rand", "p_h") if k in row]):
                return row
    return None


@functools.lru_cache(maxsize=1)
def _thesis_text() -> str:
    return importlib.resources.files("advmilp.reporting").joinpath("thesis_tables.json").read_text(encoding="utf-8")


def thesis_tables() -> dict:
    """The thesis' published figures (Tables 1–7) as a fresh dict."""
    return json.loads(_thesis_text())


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def load_rows(paths: str | Path | Iterable[str | Path], warn: Callable[[str], None] = _stderr) -> pd.DataFrame:
    """Read ``<dir>/instances.csv`` (or a CSV path) for each path, tagged with a ``run`` column: the one
    reader of result files (tables, figures, benchmarks).  ``method`` defaults to milp and ``bounds``
    to none (older files), ``verified`` is read with `advmilp.spec.rows.as_bool`.

    A file never counts an instance twice: if it holds several rows of one instance key (written by
    an older version: ``--force`` appended, two runs wrote at once), the last one is kept and ``warn``
    says so in one line.  Two different networks under one name (``A/twin.npz``, ``B/twin.npz``) are
    shown as ``name@hash`` so that their rows never share a table cell."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames = []
    for p in map(Path, paths):
        csv, run = (p / "instances.csv", p.name) if p.is_dir() else (p, p.parent.name)
        if not csv.is_file():
            raise AdvmilpError(f"no results at {p}: {csv} does not exist")
        try:
            f = pd.read_csv(csv, low_memory=False)
        except pd.errors.EmptyDataError as e:
            raise AdvmilpError(f"cannot read {csv}: the file is empty") from e
        except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
            raise AdvmilpError(f"cannot read {csv}: {e}") from e
        missing = sorted({"network", "status"} - set(f.columns))
        if missing:
            raise AdvmilpError(f"{csv} is not a result file: missing column(s) {', '.join(missing)}")
        frames.append(_last_per_key(f, csv, warn).assign(run=run))
    if not frames:
        raise AdvmilpError("no result directories given")
    return _name_by_hash(_normalise(pd.concat(frames, ignore_index=True)))


def _last_per_key(f: pd.DataFrame, csv: Path, warn: Callable[[str], None]) -> pd.DataFrame:
    keys = [c for c in KEY_COLUMNS if c in f.columns]
    if "image_index" not in keys:     # not an instance file (hand-made): nothing identifies a row
        return f
    dup = f.duplicated(keys, keep="last")
    if dup.any():
        n_keys = len(f[dup].drop_duplicates(keys))
        warn(f"warning: {csv} holds {int(dup.sum())} extra row(s) for {n_keys} instance(s) recorded more than "
             f"once; counting the last row of each")
    return f[~dup]


def _name_by_hash(df: pd.DataFrame) -> pd.DataFrame:
    if "network_hash" not in df:
        return df
    hashes = df.dropna(subset=["network_hash"]).groupby("network")["network_hash"].nunique()
    shared = set(hashes[hashes > 1].index)
    if shared:
        clash = df["network"].isin(shared) & df["network_hash"].notna()
        df.loc[clash, "network"] = df.loc[clash, "network"] + "@" + df.loc[clash, "network_hash"].astype(str)
    return df


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["method"] = df["method"].fillna("milp") if "method" in df else "milp"
    df["bounds"] = df["bounds"].fillna("none") if "bounds" in df else "none"
    for col in KEYS + ["status"]:
        df[col] = df[col].astype(str)
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else float("nan")
    df["verified"] = df["verified"].map(as_bool).astype(bool) if "verified" in df else False
    return df


def _net_key(name: str) -> tuple:
    s = str(name).lower()
    return (0, int(s[3:]), s) if s[:3] == "dnn" and s[3:].isdigit() else (1, 0, s)


def _sort(t: pd.DataFrame) -> pd.DataFrame:
    """dnn1..dnn5 first, then other networks by name; milp first; basic, improved, weak."""
    k = [(_net_key(n), _METHOD_ORDER.get(m, 1), m, _BOUNDS_ORDER.get(b, 3), b)
         for n, m, b in zip(t["network"], t["method"], t["bounds"])]
    order = sorted(range(len(t)), key=k.__getitem__)
    return t.iloc[order].reset_index(drop=True)


def _solved(df: pd.DataFrame, max_gap_pct: float | None) -> pd.Series:
    """Solved (`solved_mask`; exact rows: proven optimal and verified) when ``max_gap_pct`` is None,
    else verified with gap ≤ max_gap_pct."""
    if max_gap_pct is None:
        return solved_mask(df).astype(float)
    return (df["gap_pct"].le(max_gap_pct) & df["verified"]).astype(float)


def _add_thesis(t: pd.DataFrame, table: str, fields: dict[str, str]) -> pd.DataFrame:
    data = thesis_tables()[table]
    for col, key in fields.items():
        vals = [data.get(b, {}).get(str(n).lower(), {}).get(key) for n, b in zip(t["network"], t["bounds"])]
        t["thesis_" + col] = pd.Series(vals, index=t.index, dtype=float)
    return t


def _empty(cols: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c in KEYS else float) for c in KEYS + cols})


def _stats(df: pd.DataFrame, max_gap_pct: float | None) -> pd.DataFrame:
    cols = ["n", "%solved", "%gap", "nodes", "time_s"]
    if df.empty:
        return _empty(cols)
    g = df.assign(_solved=_solved(df, max_gap_pct)).groupby(cell_keys(df), sort=False)
    t = pd.DataFrame({"n": g.size(), "%solved": 100 * g["_solved"].mean(), "%gap": g["gap_pct"].mean(),
                      "nodes": g["nodes"].mean(), "time_s": g["time_s"].mean()})
    return _sort(t.reset_index())


_T23 = {"%solved": "solved_pct", "%gap": "gap_pct", "nodes": "nodes", "time_s": "time_s"}


def table2(df: pd.DataFrame) -> pd.DataFrame:
    """Thesis Table 2: %solved (optimal and verified), %gap, nodes, time per cell."""
    return _add_thesis(_stats(df, None), "table2", _T23)


def table3(df: pd.DataFrame) -> pd.DataFrame:
    """Thesis Table 3: as Table 2, but solved = verified and gap_pct ≤ 1."""
    return _add_thesis(_stats(df, 1.0), "table3", _T23)


def _recap(df: pd.DataFrame, max_gap_pct: float | None, suffix: str, keys: list[str]) -> pd.DataFrame:
    cols = ["n", "%solved", "time_s", "obj"]
    if df.empty:
        return _empty([c + suffix for c in cols])
    obj = df["objective"].where(df["verified"] & df["objective"].notna())
    g = df.assign(_solved=_solved(df, max_gap_pct), _obj=obj).groupby(keys, sort=False)
    t = pd.DataFrame({"n": g.size(), "%solved": 100 * g["_solved"].mean(), "time_s": g["time_s"].mean(),
                      "obj": g["_obj"].mean()})
    return t.add_suffix(suffix).reset_index()


def table4(df: pd.DataFrame, df_gap1: pd.DataFrame | None = None) -> pd.DataFrame:
    """Thesis Table 4: (%solved, time, obj) at gap 0 and at gap ≤ 1 %.

    The gap ≤ 1 % half comes from ``df_gap1`` (e.g. a run stopped at 1 %, as the thesis
    did) when given, else from ``df``; ``obj`` averages the objective of verified incumbents.
    """
    keys = cell_keys(df if df_gap1 is None else pd.concat([df, df_gap1]))
    t = _recap(df, None, "", keys).merge(_recap(df if df_gap1 is None else df_gap1, 1.0, "_1pct", keys), on=keys,
                                         how="outer")
    if df_gap1 is None:
        t = t.drop(columns="n_1pct")
    t = _sort(t)
    return _add_thesis(t, "table4", {"%solved": "solved_pct", "time_s": "time_s", "obj": "obj",
                                     "%solved_1pct": "solved_1pct_pct", "time_s_1pct": "time_1pct_s",
                                     "obj_1pct": "obj_1pct"})


def _fmt(col: str, v) -> str:
    if isinstance(v, str):
        return v
    if pd.isna(v):
        return ""
    base = col.removeprefix("thesis_").removesuffix("_1pct")
    if base in ("%solved", "%found"):
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"
    if base == "nodes":
        return f"{v:,.0f}"
    if base == "n":
        return f"{int(v)}"
    if base in ("%gap", "time_s", "obj"):
        return f"{v:.2f}"
    return str(v)


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings, formatted as the thesis prints its figures."""
    return pd.DataFrame({c: [_fmt(c, v) for v in table[c]] for c in table.columns}, dtype=object)


def _cells(table: pd.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    f = format_table(table)
    return list(f.columns), f.values.tolist(), [c not in KEYS for c in f.columns]


def render_text(table: pd.DataFrame) -> str:
    """Aligned plain text: key columns left-aligned, figures right-aligned."""
    head, rows, right = _cells(table)
    w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.rjust(w[i]) if right[i] else c.ljust(w[i]) for i, c in enumerate(cells)).rstrip()
    return "\n".join([line(head), "  ".join("-" * x for x in w)] + [line(r) for r in rows]) + "\n"


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown pipe table (hand-written: the same output whatever is installed)."""
    head, rows, right = _cells(table)
    esc = lambda s: s.replace("|", "\\|")
    out = ["| " + " | ".join(map(esc, head)) + " |", "|" + "|".join("---:" if r else ":---" for r in right) + "|"]
    return "\n".join(out + ["| " + " | ".join(map(esc, r)) + " |" for r in rows]) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def to_latex(table: pd.DataFrame) -> str:
    """A LaTeX tabular (hand-written: the same output whatever is installed)."""
    head, rows, right = _cells(table)
    out = [r"\begin{tabular}{" + "".join("r" if r else "l" for r in right) + "}", r"\hline",
           " & ".join(map(_tex_escape, head)) + r" \\", r"\hline"]
    out += [" & ".join(map(_tex_escape, r)) + r" \\" for r in rows]
    return "\n".join(out + [r"\hline", r"\end{tabular}"]) + "\n"


def footer(df: pd.DataFrame) -> str:
    """One line: how many rows and runs, how many unverified, and mixed-problem warnings."""
    unverified = int((~df["verified"]).sum()) if len(df) else 0
    failed = int((~df["verified"] & df["objective"].notna()).sum()) if len(df) else 0
    runs = df["run"].nunique() if "run" in df else 1
    text = (f"{len(df)} rows from {runs} run(s); {unverified} unverified "
            f"({failed} with an incumbent that failed verification, never counted as solved)")
    if cell_keys(df) != KEYS:
        text += "; one row per problem (the run has several)"
    return text


def write_report(df: pd.DataFrame, out_dir: str | Path, df_gap1: pd.DataFrame | None = None) -> str:
    """Write table{2,3,4}.{md,csv,tex} into ``out_dir`` (and replication.{md,csv} for rows of the CPLEX
    replication's networks, `advmilp.reporting.replication`); return the plain-text report.

    ``df_gap1`` (optional) holds a run stopped at 1 % gap, used for Table 3 and the
    gap ≤ 1 % half of Table 4 as in the thesis; without it both come from ``df``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    heur = df[is_heuristic(df)]
    exact = df[~is_heuristic(df)]
    if df_gap1 is not None:
        df_gap1 = df_gap1[~is_heuristic(df_gap1)]
    gap1 = exact if df_gap1 is None else df_gap1
    tables = {}
    if len(exact) or not len(heur):
        tables.update(table2=table2(exact), table3=table3(gap1), table4=table4(exact, df_gap1))
    if len(heur):
        tables["heuristics"] = table_heuristics(heur)
    foot = footer(df) + ("" if df_gap1 is None else f"\ngap-1 % rows: {footer(df_gap1)}")
    parts = []
    for name, t in tables.items():
        t.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(f"**{TITLES[name]}**\n\n{to_markdown(t)}\n{foot}\n", encoding="utf-8")
        comment = "% " + f"{TITLES[name]}\n{foot}".replace("\n", "\n% ")
        (out / f"{name}.tex").write_text(f"{comment}\n{to_latex(t)}", encoding="utf-8")
        parts.append(f"{TITLES[name]}\n\n{render_text(t)}")
    beside = replication_report(exact, out)   # rows of the CPLEX replication's networks, beside its figures
    return "\n".join(parts) + "\n" + foot + "\n" + (f"\n{beside}" if beside else "")
