"""Issue 15, where commands write: never over the files shipped with advmilp (tracked by git) unless
--force, computed bounds in a user cache (not the repository), and figures as PNG *and* PDF."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.cli.helpers import cli_env, need_mnist, one_error_line, run_cli
from tests.nets import REPO, random_net


def _git(cwd, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def checkout(tmp_path):
    """A small advmilp checkout: the package, DNN1's weights, a shipped run with its report and figures,
    shipped thesis figures and bounds — all committed."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "advmilp"
    shutil.copytree(REPO / "advmilp", repo / "advmilp", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".gitignore", repo / ".gitignore")
    (repo / "models").mkdir()
    for name in ("dnn1.npz", "dnn1.json"):
        shutil.copy(REPO / "models" / name, repo / "models" / name)
    shutil.copytree(REPO / "results" / "core10", repo / "results" / "core10")
    (repo / "results" / "figures").mkdir(parents=True)
    (repo / "results" / "figures" / "fig2a_dnn1_layer1_unit0.png").write_bytes(b"shipped")
    shutil.copytree(REPO / "results" / "bounds", repo / "results" / "bounds",
                    ignore=lambda d, names: [n for n in names if not n.startswith("f008e32aa6c0")])  # DNN1's
    _git(repo, "init", "-q")
    _git(repo, "add", "-f", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "shipped")
    return repo


def test_commands_do_not_rewrite_shipped_files(checkout, tmp_path):
    need_mnist()
    env = cli_env(tmp_path, ADVMILP_RESULTS=None, ADVMILP_MODELS=None)
    run = lambda *args, **kw: run_cli(list(args), env, cwd=checkout, package_root=checkout, **kw)  # noqa: E731

    # train, report and figures refuse to overwrite shipped files, naming one and the way out
    assert "models/dnn1.npz" in one_error_line(run("train", "--arch", "dnn1", "--epochs", "1"))
    assert "--force" in one_error_line(run("report", "results/core10"))
    assert "results/core10/figures" in one_error_line(run("figures", "--results", "results/core10"))
    assert "results/figures" in one_error_line(run("figures", "--thesis"))
    # elsewhere they write
    out = tmp_path / "elsewhere"
    assert run("report", "results/core10", "--out", str(out / "report")).returncode == 0
    assert (out / "report" / "table2.tex").is_file()
    # bounds of a network outside the checkout go to the user cache, not results/bounds/
    model = tmp_path / "mine.npz"
    random_net([784, 5, 10], seed=7).save(model)
    proc = run("bounds", "--model", str(model), "--method", "weak", "--time-limit", "0.2")
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "home" / ".cache" / "advmilp" / "bounds").glob("*-weak-tl0.2.npz"))
    # the shipped bounds are still read (DNN1's exact improved bounds: a cache hit, nothing computed)
    proc = run("bounds", "--arch", "dnn1", "--method", "improved")
    assert proc.returncode == 0 and "(cached)" in proc.stdout, proc.stderr
    # the checkout is exactly as shipped: nothing modified, nothing added
    assert _git(checkout, "status", "--porcelain", "--untracked-files=all") == ""


def test_force_replaces_a_shipped_report(checkout, tmp_path):
    need_mnist()
    env = cli_env(tmp_path, ADVMILP_RESULTS=None)
    proc = run_cli(["report", "results/core10", "--force"], env, cwd=checkout, package_root=checkout)
    assert proc.returncode == 0, proc.stderr


def _small_run(run, n: int):
    """The first ``n`` rows of the shipped run core10 that have a witness, with their witnesses."""
    import csv

    src = REPO / "results" / "core10"
    with open(src / "instances.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["witness"]][:n]
        columns = reader.fieldnames
    (run / "witnesses").mkdir(parents=True)
    for r in rows:
        shutil.copy(src / r["witness"], run / r["witness"])
    with open(run / "instances.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)
    shutil.copy(src / "images.json", run / "images.json")
    return run


def test_figures_are_png_and_pdf(tmp_path):
    data = need_mnist()
    from advmilp.reporting.thesis_figures import FEATURE_CASES, make_feature_figures, make_run_figures

    run = _small_run(tmp_path / "run", 3)
    out = tmp_path / "figs"
    paths = make_run_figures(run, out, data)
    paths += make_feature_figures(out, time_limit=30, cases=FEATURE_CASES[:1])[0]
    pngs = [p for p in paths if p.suffix == ".png"]
    assert len(pngs) >= 3
    for png in pngs:
        assert png.is_file() and png.with_suffix(".pdf").is_file(), png
        assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
