"""Issue 15, the command line: a value out of range, a target equal to the label, a method that does not
solve the problem or ignores the solver are refused with one line naming the option (status 2), never
run as something else; the documented defaults are real."""

from __future__ import annotations

import pytest

from tests.cli.helpers import cli_env, invoke, need_mnist, one_error_line, run_cli

# (arguments after `advmilp`, a fragment the one error line must contain)
REFUSED = [
    # a target that is the label (test image 1 is a 2) or not an output: refused, never "solved"
    (["attack", "--arch", "dnn1", "--image", "1", "--target", "2"], "--target 2 is the image's label"),
    (["attack", "--arch", "dnn1", "--image", "1", "--target", "2", "--method", "milp"], "--target 2 is the image's label"),
    (["attack", "--arch", "dnn1", "--image", "1", "--target", "11"], "--target 11 is not an output"),
    (["attack", "--arch", "dnn1", "--image", "1", "--target", "-1"], "--target must be an integer ≥ 0"),
    # numbers: finite and in range, named by their option
    (["attack", "--arch", "dnn1", "--time-limit", "0"], "--time-limit must be a finite number > 0"),
    (["attack", "--arch", "dnn1", "--time-limit", "-1"], "--time-limit must be a finite number > 0"),
    (["attack", "--arch", "dnn1", "--time-limit", "nan"], "--time-limit must be a finite number > 0"),
    (["attack", "--arch", "dnn1", "--threads", "0"], "--threads must be an integer ≥ 1"),
    (["attack", "--arch", "dnn1", "--gap-rel", "-5"], "--gap-rel must be a finite number ≥ 0"),
    (["attack", "--arch", "dnn1", "--ratio", "nan"], "--ratio must be a finite number ≥ 1"),
    (["attack", "--arch", "dnn1", "--epsilon", "-0.5"], "--epsilon must be a finite number > 0"),
    (["attack", "--arch", "dnn1", "--linf-cap", "nan"], "--linf-cap must be a finite number > 0"),
    (["attack", "--arch", "dnn1", "--bounds-time-limit", "-1"], "'--bounds-time-limit'"),
    (["attack", "--config", "configs/smoke.yaml", "--workers", "0"], "'--workers'"),
    (["attack", "--config", "configs/smoke.yaml", "--workers", "-2"], "'--workers'"),
    (["attack", "--config", "configs/smoke.yaml", "--workers", "abc"], "'--workers'"),
    (["attack", "--config", "configs/smoke.yaml", "--images", "0"], "'--images'"),
    (["attack", "--arch", "dnn1", "--threads", "abc"], "'--threads'"),
    (["bounds", "--arch", "dnn1", "--time-limit", "-1"], "'--time-limit'"),
    (["bounds", "--arch", "dnn1", "--cap", "nan"], "'--cap'"),
    (["bounds", "--arch", "dnn1", "--workers", "0"], "'--workers'"),
    (["bounds", "--arch", "dnn1", "--method", "improved", "--time-limit", "1"], "--time-limit is the per-solve limit of weak"),
    # feature: a hidden layer is 1..K-1 (layer 0 used to maximise output unit 0); --objective is for outputs
    (["feature", "--arch", "dnn1", "--layer", "0"], "--layer must be an integer ≥ 1"),
    (["feature", "--arch", "dnn1", "--layer", "4"], "--layer must be a hidden layer 1..3"),
    (["feature", "--arch", "dnn1", "--unit", "10"], "--unit must be 0..9"),
    (["feature", "--arch", "dnn1", "--layer", "1", "--objective", "diff"], "--objective is for an output unit"),
    # never substitute: a method that does not solve the problem, or does not use the solver
    (["attack", "--arch", "dnn1", "--method", "fast", "--problem", "max-target", "--target", "3"],
     "method fast does not solve max-target problems (methods that do: milp, tight)"),
    (["attack", "--arch", "dnn1", "--method", "fast", "--norm", "l0"],
     "method fast does not minimise or cap the l0 distance (methods that do: milp, tight)"),
    (["attack", "--arch", "dnn1", "--method", "fast", "--l0-cap", "5"],
     "method fast does not minimise or cap the l0 distance (methods that do: milp, tight)"),
    (["attack", "--arch", "dnn1", "--problem", "max-target", "--target", "3", "--norm", "linf"],
     "--norm is for the targeted and untargeted problems"),
    (["attack", "--arch", "dnn1", "--l1-cap", "0"], "--l1-cap must be a finite number > 0"),
    (["attack", "--arch", "dnn1", "--l0-cap", "0"], "--l0-cap must be an integer ≥ 1"),
    (["attack", "--arch", "dnn1", "--method", "cdh", "--problem", "untargeted"], "method cdh does not solve untargeted"),
    (["attack", "--arch", "dnn1", "--solver", "gurobi"], "method tight runs on highs only, not solver gurobi"),
    (["attack", "--arch", "dnn1", "--method", "fast", "--solver", "scip"], "method fast runs on highs only"),
    (["attack", "--arch", "dnn1", "--problem", "max-target", "--method", "milp"], "--target is required for max-target"),
    # options the chosen mode would ignore
    (["attack", "--config", "configs/smoke.yaml", "--method", "fast"], "--method applies to a single attack"),
    (["attack", "--arch", "dnn1", "--workers", "2"], "--workers applies to a batch"),
]


@pytest.mark.parametrize("args,fragment", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_refused_with_one_line(tmp_path, args, fragment):
    need_mnist()
    proc = invoke(args, cli_env(tmp_path))
    assert fragment in one_error_line(proc)
    assert not (tmp_path / "results").exists()     # nothing written


def test_help_states_real_defaults():
    from click.testing import CliRunner

    from advmilp.cli import main

    text = " ".join(CliRunner().invoke(main, ["attack", "--help"], terminal_width=400).output.split())
    assert "max-target (required)" in text and "under the untargeted criterion" in text
    assert "Default: tight for every problem it solves (all but inference), else milp" in text
    assert "milp only" not in text.split("--solver")[0]   # l0 and --l0-cap run on tight too
    assert "else basic" in text


def test_a_problem_tight_does_not_solve_runs_milp_by_default_and_says_so(tmp_path):
    """The documented default method of a problem tight does not solve is milp (not a substitution)."""
    need_mnist()
    proc = run_cli(["attack", "--arch", "dnn1", "--image", "0", "--problem", "inference", "--time-limit", "60"],
                   cli_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "method milp" in proc.stdout and "with milp" in proc.stderr


# every option naming a file to write, with its command: refused before any work when the file cannot be
# written there (a long universal run used to end on "File exists" after its search)
OUTPUT_FILES = [
    (["universal", "--arch", "dnn1", "--images", "0-1", "--target", "2", "--out"], "{}"),
    (["verify", "--arch", "dnn1", "--vnnlib", "missing.vnnlib", "--counterexample"], "{}"),
    (["attack", "--arch", "dnn1", "--image", "0", "--save-png"], "{}.png"),
    (["feature", "--arch", "dnn1", "--unit", "0", "--save-png"], "{}.png"),
    (["export", "--arch", "dnn1", "--onnx"], "{}.onnx"),
    (["masks", "--out"], "{}.npz"),
]


@pytest.mark.parametrize("args,name", OUTPUT_FILES, ids=[a[0] for a, _ in OUTPUT_FILES])
def test_an_output_file_that_cannot_be_written_is_refused_first(tmp_path, args, name):
    need_mnist()
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    proc = invoke(args + [name.format(blocker / "sub" / "x")], cli_env(tmp_path))
    assert f"{blocker} is a file, not a folder" in one_error_line(proc)
    (tmp_path / "a-folder").mkdir()
    proc = invoke(args + [str(tmp_path / "a-folder")], cli_env(tmp_path))
    assert "is a folder; give a file name" in one_error_line(proc)
    assert not (tmp_path / "results").exists()     # nothing written
