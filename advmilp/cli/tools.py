"""More ``advmilp`` commands: report, figures, masks and the interchange exports.

Registered on the `advmilp.cli.common.main` group when `advmilp.cli` is imported.
"""

from __future__ import annotations

from pathlib import Path

import click

from advmilp.cli.common import (DATA_DIR, MODEL, MODELS_DIR, OutputFile, Positive, _need_network, clean_errors,
                                main, refuse_shipped)
from advmilp.errors import AdvmilpError


def parse_eps(texts) -> dict[str, tuple[float, ...]]:
    """``--eps l1=1,2,4`` (repeatable) → {"l1": (1.0, 2.0, 4.0)}; a bad value is one error line."""
    import math

    from advmilp.reporting.robustness import DEFAULT_EPS

    out: dict[str, tuple[float, ...]] = {}
    for text in texts:
        norm, sep, values = text.partition("=")
        norm = norm.strip().lower()
        if not sep or norm not in DEFAULT_EPS:
            raise AdvmilpError(f"--eps {text!r}: give NORM=E1,E2,... with NORM one of {', '.join(DEFAULT_EPS)}")
        try:
            eps = tuple(float(v) for v in values.split(","))
        except ValueError:
            raise AdvmilpError(f"--eps {text!r}: the values must be numbers separated by commas") from None
        if not all(math.isfinite(e) and e >= 0 for e in eps):
            raise AdvmilpError(f"--eps {text!r}: every ε must be a finite number ≥ 0")
        if norm in out:
            raise AdvmilpError(f"--eps gives {norm} twice")
        out[norm] = tuple(sorted(set(eps)))
    return out


@main.command()
@click.argument("runs", nargs=-1, type=click.Path())
@click.option("--gap1-run", type=click.Path(), default=None,
              help="A run stopped at 1 % gap, for Table 3 and the right half of Table 4.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Report directory (default: <run>/report for one run, results/report for several).")
@click.option("--force", is_flag=True, help="Replace a shipped report (files tracked by git in this checkout).")
@click.option("--published", type=click.Path(file_okay=False), default=None,
              help="For a 'verify --instances' run: the folder of the published VNN-COMP results "
                   "(default: the benchmark's own folder).")
@click.option("--eps", "eps_text", multiple=True, metavar="NORM=E1,E2,...",
              help="The ε of the robustness table for one norm, e.g. --eps l1=0.02,0.05,0.1 (tree ensembles' "
                   "distances are ~100x the networks' smaller); repeat for another norm. Default: l1=1,2,4,8, "
                   "linf=0.01,0.02,0.05,0.1.")
@clean_errors
def report(runs, gap1_run, out, force, published, eps_text):
    """Thesis-style tables (%solved, %gap, nodes, time) from result runs, thesis figures beside ours;
    for a 'verify --instances' run, the VNN-COMP score beside the published tools'.

    The reports shipped with advmilp (tracked by git, e.g. results/core10/report/) are never rewritten
    without --force: give --out DIR to write a report of a shipped run elsewhere."""
    from advmilp.bounds.compute import default_results_dir
    from advmilp.reporting.tables import load_rows, write_report
    from advmilp.reporting.vnncomp import is_verify_run, write_vnncomp_report

    if any(is_verify_run(r) for r in runs):
        if eps_text:
            raise AdvmilpError("--eps is for the robustness table of attack runs, not a 'verify --instances' run")
        if len(runs) != 1 or gap1_run:
            raise AdvmilpError("a 'verify --instances' run is reported alone (one folder, no --gap1-run)")
        out_dir = Path(out) if out else Path(runs[0]) / "report"
        refuse_shipped([out_dir], force)
        click.echo(write_vnncomp_report(runs[0], out_dir, published))
        return
    if published:
        raise AdvmilpError("--published is for a 'verify --instances' run (a folder with verify.csv)")

    if not runs:
        root = default_results_dir()
        runs = sorted(str(p.parent) for p in root.glob("*/instances.csv"))
        if not runs:
            raise AdvmilpError(f"no results under {root} (run 'advmilp attack --config configs/smoke.yaml' first)")
    df = load_rows(list(runs))
    g = load_rows([gap1_run]) if gap1_run else None
    out_dir = Path(out) if out else (Path(runs[0]) / "report" if len(runs) == 1 and Path(runs[0]).is_dir()
                                     else default_results_dir() / "report")
    refuse_shipped([out_dir], force)
    click.echo(write_report(df, out_dir, g))
    click.echo(f"written: {out_dir}/table{{2,3,4}}.{{md,csv,tex}}")
    from advmilp.reporting.robustness import robustness_report

    robust = robustness_report(df, out_dir, parse_eps(eps_text))
    if robust:
        click.echo("\n" + robust)
        click.echo(f"written: {out_dir}/robustness.{{md,csv}}")
    from advmilp.reporting.study import read_selection, study_report

    study = study_report(df, out_dir, selection=read_selection(runs[0]) if len(runs) == 1 else None)
    if study:
        click.echo("\n" + study)
        click.echo(f"written: {out_dir}/study.{{md,csv}}, {out_dir}/study_wide.md")


# ---- interchange and heuristics' data ----------------------------------------------------------
@main.command()
@click.option("--arch", default=None, help="Network name or model file.")
@MODEL
@click.option("--onnx", "onnx_path", required=True, type=OutputFile(), help="Output .onnx file.")
@MODELS_DIR
@clean_errors
def export(arch, model, onnx_path, models_dir):
    """Write a network as ONNX (checked with onnx.checker)."""
    from advmilp.nn.interchange import export_onnx, load_any

    net = load_any(_need_network(arch, model), models_dir)
    path = export_onnx(net, onnx_path)
    click.echo(f"wrote {path} ({'-'.join(map(str, net.sizes))}, sha256 {net.short_hash()})")


@main.command("export-vnnlib")
@click.option("--arch", default=None, help="Network name or model file.")
@MODEL
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Benchmark folder.")
@click.option("--epsilon", type=Positive(), required=True, help="L-infinity radius around each image.")
@click.option("--norm", type=click.Choice(["linf", "l1"]), default="linf", show_default=True)
@click.option("--images", "n_images", type=click.IntRange(min=1), default=10, show_default=True,
              help="First N correctly classified test images.")
@click.option("--target", type=int, default=None, help="Targeted property (default: untargeted).")
@click.option("--timeout", type=Positive(), default=300, show_default=True)
@DATA_DIR
@MODELS_DIR
@clean_errors
def export_vnnlib_cmd(arch, model, out, epsilon, norm, n_images, target, timeout, data_dir, models_dir):
    """Write a VNN-COMP style benchmark (onnx/, vnnlib/, instances.csv) for other verifiers."""
    import numpy as np

    from advmilp.data.mnist import load_split
    from advmilp.nn.interchange import load_any
    from advmilp.spec.vnnlib import export_vnnlib

    net = load_any(_need_network(arch, model), models_dir)
    test = load_split("test", data_dir)
    correct = np.flatnonzero(net.predict(test.images) == test.labels)[:n_images]
    rows = export_vnnlib(net, out, test.images, test.labels, [int(i) for i in correct], epsilon, norm,
                         targets=target, timeout=timeout)
    click.echo(f"wrote {len(rows)} instances to {Path(out) / 'instances.csv'}")


@main.command()
@click.option("--out", type=OutputFile(), default=None,
              help="npz file (default results/masks/mnist_train_masks.npz; a PNG grid is written beside it).")
@DATA_DIR
@clean_errors
def masks(out, data_dir):
    """Probability masks of the training set per label (thesis Appendix A), used by the CDH."""
    from advmilp.bounds.compute import default_results_dir
    from advmilp.data.mnist import load_split
    from advmilp.data.masks import compute_masks, save_masks

    path = Path(out) if out else default_results_dir() / "masks" / "mnist_train_masks.npz"
    m = compute_masks(load_split("train", data_dir))
    save_masks(m, path, png_path=path.with_suffix(".png"))
    click.echo(f"wrote {path} and {path.with_suffix('.png')}")


@main.command()
@click.option("--results", "run_dir", type=click.Path(file_okay=False), default=None,
              help="A results/<name> run: cactus plot, gallery, perturbation counts, MILP-vs-CDH comparison.")
@click.option("--thesis", is_flag=True, help="Solve and draw thesis Figs. 2, 3 and 4.")
@click.option("--gallery", is_flag=True, help="The most ideal digits of --arch: per output k, the input maximising "
                                              "output k minus the others (10 exact solves, one figure).")
@click.option("--norms", is_flag=True, help="Test image --image of --arch attacked under L1, L∞ and L0, side by "
                                            "side (exact minimal targeted examples).")
@click.option("--arch", default=None, help="--gallery/--norms: network name or model file.")
@click.option("--near-image", type=click.IntRange(min=0), default=None, help="--gallery: not supported (refused).")
@click.option("--l1-budget", type=Positive(), default=None, help="--gallery: not supported (refused).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default <run>/figures, or results/figures with --thesis).")
@click.option("--image", type=click.IntRange(min=0), default=0, show_default=True, help="Test image of Fig. 4 and of --norms.")
@click.option("--time-limit", type=Positive(), default=60.0, show_default=True)
@click.option("--force", is_flag=True, help="Replace shipped figures (files tracked by git in this checkout).")
@DATA_DIR
@MODELS_DIR
@clean_errors
def figures(run_dir, thesis, gallery, norms, arch, near_image, l1_budget, out, image, time_limit, force, data_dir,
            models_dir):
    """Figures, PNG + PDF: from a results run and/or the thesis' feature and adversarial figures.

    The figures shipped with advmilp (tracked by git: results/figures/, results/<run>/figures/) are
    never rewritten without --force: give --out DIR to draw them elsewhere."""
    from advmilp.bounds.compute import default_results_dir
    from advmilp.reporting.thesis_figures import make_adversarial_figure, make_feature_figures, make_run_figures

    if not (run_dir or thesis or gallery or norms):
        raise AdvmilpError("give --results results/<name>, --thesis, --gallery --arch NAME and/or --norms --arch NAME")
    if near_image is not None or l1_budget is not None:
        raise AdvmilpError("--near-image/--l1-budget are not supported: the feature problem maximises over the whole "
                           "box [0,1]^784 and has no distance constraint")
    if (gallery or norms) and not arch:
        raise AdvmilpError(f"--{'gallery' if gallery else 'norms'} needs --arch NAME (or a model file)")
    if arch and not (gallery or norms):
        raise AdvmilpError("--arch is for --gallery and --norms")
    paths = []
    run_out = Path(out) if out else Path(run_dir or ".") / "figures"
    folder = Path(out) if out else default_results_dir() / "figures"
    net = None
    if gallery or norms:
        from advmilp.nn.interchange import load_any

        net = load_any(arch, models_dir)
    refuse_shipped(([run_out] if run_dir else []) + ([folder] if thesis else [])
                   + ([folder / f"ideal_digits_{net.name}.{ext}" for ext in ("png", "pdf", "npy")] if gallery else [])
                   + ([folder / f"norms_{net.name}_image{image}.{ext}" for ext in ("png", "pdf")] if norms else []),
                   force)
    if run_dir:
        from advmilp.reporting.robustness import save_robustness
        from advmilp.reporting.tables import load_rows

        paths += make_run_figures(run_dir, run_out, data_dir)
        from advmilp.reporting.study import read_selection, save_study_curves, save_study_figure

        rows = load_rows(run_dir)
        chosen = read_selection(run_dir)
        study = save_study_figure(run_out / "study.png", rows, models_dir, title=Path(run_dir).name, selection=chosen)
        if study:   # the study's curves: one panel per problem and dropout rate, not 72 curves in one
            study += save_study_curves(run_out / "study_curves.png", rows, title=Path(run_dir).name, selection=chosen)
        paths += study or save_robustness(run_out / "robustness.png", rows, title=Path(run_dir).name)
    if thesis:
        p, objectives = make_feature_figures(folder, models_dir, time_limit)
        paths += p
        p, _ = make_adversarial_figure(folder, image, data_dir, time_limit, models_dir)
        paths += p
    if gallery:
        from advmilp.reporting.gallery import make_digit_gallery

        paths += make_digit_gallery(net, folder, time_limit)
    if norms:
        from advmilp.reporting.norms import make_norms_figure

        paths += make_norms_figure(net, image, folder, time_limit, data_dir, models_dir)
    for p in paths:
        click.echo(f"figure  {p}")
