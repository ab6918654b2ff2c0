"""benchmarks/startup_bench.py (issue 16) runs the real command line and prints wall, solve and their difference."""

import re
import runpy

import pytest

from tests.nets import REPO, mnist_dir


def test_startup_bench_prints_fixed_cost_as_wall_minus_solve(monkeypatch, capsys, tmp_path):
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    monkeypatch.setenv("ADVMILP_MNIST_CACHE", str(tmp_path / "decoded"))
    monkeypatch.setattr("sys.argv", ["startup_bench.py", "--runs", "1", "--cold", "1", "--data-dir", str(root)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / "benchmarks" / "startup_bench.py"), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "`advmilp attack --arch dnn1 --image 0 --method tight --data-dir" in out
    assert re.search(r"^\| `advmilp --help` \| [0-9.]+ s \| [0-9.]+ s \|", out, re.M)
    rows = re.findall(r"^\| attack[^|]*\| ([0-9.]+) s \| [0-9.]+ s \| ([0-9.]+) s \| \*\*([0-9.]+) s\*\* \|", out, re.M)
    assert len(rows) == 2  # after a warm-up run, and from an empty MNIST cache
    for wall, solve, fixed in rows:
        assert float(fixed) == pytest.approx(float(wall) - float(solve), abs=0.0015)
    assert len(list((tmp_path / "decoded").glob("*.npy"))) == 4  # the warm-up run filled $ADVMILP_MNIST_CACHE
