"""Helpers of the batch tests: a tiny network file, MNIST, a batch subprocess, reading the CSV."""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import pytest

from tests.nets import mnist_dir, random_net


def tiny_net_file(path: Path, seed: int = 3, name: str = "tiny") -> Path:
    """A small random 784-6-5-10 network saved as ``path`` (.npz) under the display name ``name``."""
    net = random_net([784, 6, 5, 10], seed=seed, scale=3.0)
    return net.save(path, {"architecture": name})


def need_mnist() -> Path:
    if mnist_dir() is None:
        pytest.skip("MNIST not found")
    return mnist_dir()


def batch_command(tmp_path, model, name, count, executor_lines):
    """(cmd, env, csv path) of an `advmilp attack --config` subprocess on a tiny network."""
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(f"name: {name}\nnetworks: ['{model}']\nbounds: [basic]\n"
                   f"images: {{count: {count}, correctly_classified: false}}\nsolver: {{time_limit: 20}}\n"
                   + executor_lines)
    env = {**os.environ, "ADVMILP_DATA": str(need_mnist()), "ADVMILP_RESULTS": str(tmp_path / "res")}
    cmd = [sys.executable, "-m", "advmilp", "attack", "--config", str(cfg)]
    return cmd, env, tmp_path / "res" / name / "instances.csv"


def rows_of(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def wait_for_rows(csv_path, n, proc=None, timeout=120) -> int:
    """Wait until ``csv_path`` holds at least ``n`` rows and return how many it holds; fail, saying what
    was seen, if ``timeout`` seconds pass or the batch ``proc`` ends first (a test that goes on would
    then signal or kill a process that is no longer running, and fail far from the cause)."""
    deadline = time.time() + timeout
    while True:
        seen = len(rows_of(csv_path)) if csv_path.exists() else 0
        if seen >= n:
            return seen
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the batch ended (status {proc.returncode}) with {seen} of the {n} rows waited for")
        if time.time() > deadline:
            pytest.fail(f"{seen} of the {n} rows waited for in {csv_path} after {timeout} s")
        time.sleep(0.05)
