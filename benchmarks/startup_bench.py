"""Benchmark: the fixed cost of one `advmilp attack` call (issue 16).

Runs, each ``--runs`` times in a fresh process, and prints the median wall time of

    help      ``advmilp --help``
    attack    ``advmilp attack --arch dnn1 --image 0 --method tight`` (the single-instance command)
    solve     the ``time_s`` the attack reports ("... s in all": heuristic, bounds, search)
    fixed     attack − solve, per run: interpreter start, imports, network, MNIST, bounds cache, output

One untimed attack first warms the OS file cache and the decoded-MNIST cache (``$ADVMILP_MNIST_CACHE``);
``--cold N`` also times N attacks that each start from an empty decoded-MNIST cache (the first call on a
machine).  The CPU column is the process' user + system time, less sensitive than wall time to a busy machine.

    python benchmarks/startup_bench.py                       # the figures in RESULTS.md
    python benchmarks/startup_bench.py --runs 9 --cold 3 --arch dnn5 --image 1
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EFFORT = re.compile(r"^effort\s.*?([0-9.]+) s in all", re.M)


def advmilp_command() -> list[str]:
    """The console script beside this interpreter, else ``python -m advmilp``."""
    script = Path(sys.executable).with_name("advmilp")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "advmilp"]


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall, CPU time (user + system) of the process, its stdout)."""
    cpu0, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} exited with {done.returncode}: {done.stderr.strip()}")
    return wall, cpu, done.stdout


def attack_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall, CPU, reported solve time) of one attack."""
    wall, cpu, out = timed(cmd, env)
    found = EFFORT.search(out)
    if not found:
        raise SystemExit(f"error: no 'effort ... s in all' line in the output of {' '.join(cmd)}")
    return wall, cpu, float(found.group(1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each command (median reported)")
    ap.add_argument("--cold", type=int, default=0, help="also time this many attacks from an empty MNIST cache")
    ap.add_argument("--arch", default="dnn1")
    ap.add_argument("--image", type=int, default=0)
    ap.add_argument("--method", default="tight")
    ap.add_argument("--data-dir", default=None, help="MNIST folder (default: $ADVMILP_DATA)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.cold < 0:
        ap.error("--runs must be at least 1 and --cold at least 0")

    env = dict(os.environ)
    base = advmilp_command()
    attack = base + ["attack", "--arch", args.arch, "--image", str(args.image), "--method", args.method]
    if args.data_dir:
        attack += ["--data-dir", args.data_dir]

    helps = [timed(base + ["--help"], env)[:2] for _ in range(args.runs)]
    attack_once(attack, env)  # warm the decoded-MNIST cache and the OS file cache
    warm = [attack_once(attack, env) for _ in range(args.runs)]
    cold = []
    for _ in range(args.cold):
        with tempfile.TemporaryDirectory(prefix="advmilp-mnist-cache-") as empty:
            cold.append(attack_once(attack, {**env, "ADVMILP_MNIST_CACHE": empty}))

    med = statistics.median
    print(f"`{' '.join(['advmilp', *attack[len(base):]])}`, {args.runs} runs each, medians; CPU = user + system "
          f"time of the process (load average {os.getloadavg()[0]:.2f} at the end)\n")
    print("| what | wall | CPU | solve (`time_s`) | fixed cost (wall − solve) | fixed cost of each run |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| `advmilp --help` | {med(w for w, _ in helps):.3f} s | {med(c for _, c in helps):.3f} s | | "
          f"**{med(w for w, _ in helps):.3f} s** | {', '.join(f'{w:.2f}' for w, _ in helps)} |")
    for name, runs in (("attack (after one untimed run)", warm), ("attack, first run (empty MNIST cache)", cold)):
        if runs:
            fixed = [w - s for w, _, s in runs]
            print(f"| {name} | {med(w for w, _, _ in runs):.3f} s | {med(c for _, c, _ in runs):.3f} s | "
                  f"{med(s for _, _, s in runs):.3f} s | **{med(fixed):.3f} s** | "
                  f"{', '.join(f'{f:.2f}' for f in fixed)} |")
    return 0


if __name__ == "__main__":
    from advmilp.experiments.workers import run_script

    run_script(main)    # Ctrl-C (even started as a background job) and bad input: one line, no traceback
