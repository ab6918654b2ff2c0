"""A Ctrl-C stops advmilp even when an extension turns its KeyboardInterrupt into another exception
(`advmilp.interrupts`): pybind11, which highspy is built with, reports a KeyboardInterrupt raised while it
converts a call's arguments as ``TypeError: incompatible function arguments``; CI saw a batch record that
as an instance's error row and run on to its end."""

import os
import subprocess
import sys

import pytest

from tests.nets import REPO

# raise the KeyboardInterrupt of a real SIGINT, then dress it as pybind11 does
DRESSED = """
import os, signal
from advmilp.interrupts import accept_interrupts
accept_interrupts()

def convert():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10 ** 6):
            pass
    except KeyboardInterrupt:
        raise TypeError("addRow(): incompatible function arguments") from None
    raise SystemExit("the signal did not arrive")
"""


def _run(body: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DRESSED + body], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)


def test_an_interrupt_in_another_errors_clothes_is_reraised_and_a_plain_error_is_not():
    out = _run("""
from advmilp.interrupts import reraise_interrupt
try:
    convert()
except TypeError as exc:
    try:
        reraise_interrupt(exc)
    except KeyboardInterrupt as ki:
        print("interrupt from", type(ki.__cause__).__name__)
""")
    assert out.stdout.strip() == "interrupt from TypeError", out.stderr
    plain = _run("\nfrom advmilp.interrupts import reraise_interrupt\nreraise_interrupt(TypeError('x'))\nprint('went on')")
    assert plain.stdout.strip() == "went on", plain.stderr


def test_a_batch_task_does_not_record_an_interrupt_as_its_error_row():
    """`runner.run_task` turns a method's failure into an ``error`` row; after a SIGINT it raises instead."""
    out = _run("""
from advmilp.experiments.runner import Instance, run_task
try:
    convert()
except TypeError:
    pass
task = {"instance": Instance("net", "0000", "no-such-method", "basic", "targeted ratio 1.2", 0), "label": 7,
        "git_sha": ""}
try:
    row = run_task(task)
    print("row", row["status"])
except KeyboardInterrupt:
    print("interrupted")
""")
    assert out.stdout.strip() == "interrupted", out.stdout + out.stderr


@pytest.mark.parametrize("script", ["cli", "bench"])
def test_the_cli_and_the_scripts_end_an_interrupt_in_another_errors_clothes_as_interrupted(script):
    if script == "cli":
        body = """
from advmilp.cli.common import clean_errors

@clean_errors
def command():
    convert()

command()
"""
    else:
        body = """
from advmilp.experiments.workers import run_script
run_script(convert)
"""
    out = _run(body)
    assert out.returncode == 130 and out.stderr.strip() == "interrupted" and "Traceback" not in out.stderr, \
        (out.returncode, out.stderr)


def test_a_batch_stops_after_the_instance_that_swallowed_an_interrupt_whole(tmp_path):
    """An interrupt caught and dropped inside a solve leaves no exception at all: the serial executor
    still stops before the next instance (the row of the one that swallowed it is kept)."""
    out = _run(f"""
from advmilp.experiments.runner import Instance, _run_serial
from advmilp.methods.milp import SolverSettings
from tests.nets import small_targeted_instance
inst = small_targeted_instance(0)
task = {{"instance": Instance(inst.net.name, "0000", "milp", "basic", "targeted", 0), "network": inst.net,
        "bounds": inst.box, "spec": inst.spec, "settings": SolverSettings(time_limit=30), "x_bar": inst.x_bar,
        "label": inst.label, "git_sha": "", "witness_dir": {str(tmp_path)!r}}}
rows = []
def on_row(row):
    rows.append(row["status"])
    try:
        convert()
    except TypeError:
        pass          # swallowed whole
try:
    _run_serial([task, task, task], on_row)
    print("ran", rows)
except KeyboardInterrupt:
    print("stopped after", rows)
""")
    assert out.stdout.strip() == "stopped after ['optimal']", out.stdout + out.stderr
