"""convcli gradcheck through Typer's CliRunner: the suite passes (exit 0), a broken backward
fails (exit 1) with its worst coordinates, --json parses, a user's image is sampled, usage
errors exit 2, float32 warns, and the progress bar appears only on a slow terminal run."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

import convcli.gradcheck.whole
from convcli.cli import app
from convcli.cli.progress import LateProgress
from convcli.gradcheck import SUITE
from convcli.gradcheck.suite import EXTRA


def run(*args, expect=0):
    result = CliRunner().invoke(app, ["gradcheck", *map(str, args)])
    assert result.exit_code == expect, (result.output, result.exception)
    return result


@pytest.fixture
def dw_off_by_one_percent(monkeypatch):
    correct = convcli.gradcheck.whole.conv2d_backward

    def backward(grad_output, x, w, **options):
        dx, dw, db = correct(grad_output, x, w, **options)
        return dx, dw * 1.01, db

    monkeypatch.setattr(convcli.gradcheck.whole, "conv2d_backward", backward)


@pytest.fixture
def picture(tmp_path, rng):
    path = tmp_path / "small.png"
    Image.fromarray(rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8), "RGB").save(path)
    return path


def test_suite_passes_with_a_table():
    result = run()
    assert "✓ all" in result.stdout and "✗" not in result.stdout
    for name in ("valid", "groups2", "1x1", "depthwise-x2-stride2"):
        assert name in result.stdout
    for tensor in ("grad_input", "grad_weight", "grad_bias", "routes_agree", "adjoint"):
        assert tensor in result.stdout
    assert result.stderr == ""


def test_suite_json_parses():
    payload = json.loads(run("--json").stdout)
    assert payload["passed"] is True
    assert len(payload["configurations"]) == len(SUITE) + len(EXTRA)   # convcli's own: all
    assert {r["tensor"] for r in payload["results"]} == {
        "grad_input", "grad_weight", "grad_bias", "routes_agree", "adjoint"}
    first = payload["results"][0]
    assert {"configuration", "passed", "checked", "size", "max_abs_err", "max_rel_err",
            "max_ratio", "worst"} <= set(first)
    assert (payload["eps"], payload["atol"], payload["rtol"]) == (1e-6, 1e-5, 1e-3)


def test_a_wrong_backward_exits_1_and_shows_its_worst_coordinates(dw_off_by_one_percent):
    result = run(expect=1)
    assert "✗ grad_weight" not in result.stdout  # failure tables are titled "✗ config: tensor"
    assert ": grad_weight" in result.stdout and "analytic" in result.stdout
    assert "numeric" in result.stdout and "checks failed" in result.stdout
    payload = json.loads(run("--json", expect=1).stdout)
    assert payload["passed"] is False
    failed = {r["tensor"] for r in payload["results"] if not r["passed"]}
    assert failed == {"grad_weight"}
    worst = next(r for r in payload["results"] if not r["passed"])["worst"][0]
    assert worst["analytic"] == pytest.approx(1.01 * worst["numeric"], rel=1e-6)


def test_user_image_is_sampled(picture):
    payload = json.loads(run(picture, "sobel-x", "--stride", "2", "--samples", "30",
                             "--json").stdout)
    assert payload["passed"] is True
    checked = {r["tensor"]: (r["checked"], r["size"]) for r in payload["results"]}
    assert checked["grad_input"] == (30, 3 * 30 * 40)
    assert checked["grad_weight"] == (27, 27)  # sobel-x on each of 3 channels: (3, 1, 3, 3)
    assert checked["grad_bias"] == (3, 3)
    assert payload["geometry"]["stride"] == [2, 2] and payload["geometry"]["groups"] == 3
    assert payload["input"]["shape"] == [1, 3, 30, 40]


def test_user_image_table_and_failure(picture, dw_off_by_one_percent):
    result = run(picture, "1 2 0; -1 3 1", "--padding", "0,1", "--samples", "20", expect=1)
    assert "20 of 3,600" in result.stdout and "small.png" in result.stdout
    assert "padding" in result.stdout  # the summary rows of the user's case


def test_float32_warns_on_stderr_and_keeps_json_clean():
    result = run("--dtype", "float32", "--json")
    assert "warning: float32" in result.stderr
    payload = json.loads(result.stdout)
    assert payload["passed"] is True and payload["warnings"]
    assert (payload["eps"], payload["atol"], payload["rtol"]) == (0.1, 1e-2, 3e-3)


def test_quiet_prints_nothing_but_keeps_the_exit_code(dw_off_by_one_percent):
    assert run("--quiet", expect=1).stdout == ""


@pytest.mark.parametrize("args, message", [
    (["IMAGE_ONLY"], "give a KERNEL after IMAGE"),
    (["--stride", "2"], "--stride applies to IMAGE KERNEL"),
    (["--samples", "10"], "--samples applies to IMAGE KERNEL"),
    (["--dtype", "float16"], "Invalid value for '--dtype'"),
    (["--eps", "0"], "eps must be"),
    (["--atol", "-1"], "atol must be"),
    (["PICTURE", "box3", "--samples", "0"], "--samples must be at least 1"),
    (["PICTURE", "box3", "--stride", "0"], "--stride must be at least 1"),
    (["PICTURE", "nope-preset"], "nope-preset"),
    (["missing.png", "box3"], "missing.png"),
])
def test_usage_errors_exit_2_with_one_line(args, message, picture):
    args = [str(picture) if a in ("IMAGE_ONLY", "PICTURE") else a for a in args]
    result = run(*args, expect=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_a_misspelled_option_is_named():
    result = run("--sample", "10", expect=2)
    assert "No such option: --sample" in result.stderr


def test_help_states_the_method_with_an_example():
    result = CliRunner().invoke(app, ["gradcheck", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for phrase in ("central differences", "atol + rtol·|numeric|", "adjoint",
                   "Examples: convcli gradcheck"):
        assert phrase in result.stdout, phrase


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("terminal, elapsed, shown", [
    (True, 2.0, True), (True, 0.5, False), (False, 2.0, False)])
def test_progress_bar_only_on_a_terminal_after_a_second(monkeypatch, terminal, elapsed, shown):
    clock = Clock()
    monkeypatch.setattr("convcli.cli.progress.time.perf_counter", clock)
    console = Console(file=io.StringIO(), force_terminal=terminal, width=80)
    bar = LateProgress(console, "gradcheck")
    clock.now = elapsed
    bar(5, 10)
    assert (bar.bar is not None) == shown
    bar.close()
    assert bar.bar is None


@pytest.mark.slow
def test_installed_script_exit_code():
    done = subprocess.run([sys.executable, "-m", "convcli", "gradcheck", "--quiet"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout == "", done.stderr
