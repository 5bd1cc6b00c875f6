"""gradcheck on a user's own backward and forward (tests/gradcheck/user_backwards.py): through
the CLI (--backward FILE.py:NAME, --case, --list-cases, --write-cases/--answers) and the
library (run_suite, check_case, convcli.testing.assert_conv2d_backward). Whatever the user's
code does, convcli gives a verdict naming the case and the tensor; it never crashes."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import convcli.gradcheck.routes
from convcli import conv2d_backward
from convcli.cli import app
from convcli.errors import InputError
from convcli.gradcheck import (
    ADJOINT,
    ROUTES,
    SUITE,
    check_case,
    grade_answers,
    run_suite,
    write_suite_cases,
)
from convcli.testing import assert_conv2d_backward
from tests.gradcheck import user_backwards as user

HERE = Path(__file__).parent
FILE = HERE / "user_backwards.py"
GROUPED = {case.name for case in SUITE if case.options.get("groups", 1) > 1}


def run(*args, expect=0):
    result = CliRunner().invoke(app, ["gradcheck", *map(str, args)])
    assert result.exit_code == expect, (result.output, result.exception)
    return result


def verdicts(report):
    return {(r.configuration, r.tensor): r for r in report.results}


def test_correct_backward_passes_through_the_cli_by_path():
    result = run("--backward", f"{FILE}:correct", "--json")
    report = json.loads(result.stdout)
    assert report["passed"] and report["counts"] == {"passed": 18, "failed": 0, "skipped": 0}
    tensors = {r["tensor"] for r in report["results"]}
    assert ROUTES not in tensors          # convcli's own routes are not the user's business
    assert {"grad_input", "grad_weight", "grad_bias", ADJOINT} <= tensors


def test_a_dotted_module_importable_from_the_current_folder(monkeypatch, tmp_path):
    (tmp_path / "my_conv.py").write_text(FILE.read_text())
    monkeypatch.chdir(tmp_path)
    result = run("--backward", "my_conv:strict", "--case", "article", "--case", "groups2")
    assert "✓ all" in result.stdout and "2 passed" in result.stdout


def test_the_calling_convention_holds_on_every_case():
    """stride/dilation pairs, padding the explicit 4-tuple, float64 C-contiguous copies (the
    function scribbles on them afterwards and still passes)."""
    report = run_suite(user.strict)
    assert report.passed and report.counts()["passed"] == len(SUITE)


@pytest.mark.parametrize("name, tensor, words", [
    ("raising", "backward", "raised RuntimeError: my kernel crashed"),
    ("no_keywords", "backward", "raised TypeError"),
    ("missing_db", "backward", "returned 2 values; expected 3"),
    ("one_array", "backward", "returned one array of shape"),
    ("dx_cropped", "grad_input", "shape (1, 1, 4, 3), expected (1, 1, 4, 4)"),
    ("nan_dw", "grad_weight", "non-finite"),
    ("integer_db", "grad_bias", "dtype int64"),
])
def test_each_mistake_is_a_failing_case_naming_the_tensor(name, tensor, words):
    report = run_suite(getattr(user, name), cases=["article"])
    assert not report.passed
    failed = [r for r in report.failures if r.tensor == tensor]
    assert failed and failed[0].configuration == "article"
    assert words in failed[0].note, failed[0].note
    if tensor == "backward":
        assert len(report.results) == 1          # nothing else could be checked
    result = run("--backward", f"{FILE}:{name}", "--case", "article", expect=1)
    assert words.split(":")[0].split(";")[0] in " ".join(result.stdout.split())
    assert "✗ article: " + tensor in result.stdout and "Traceback" not in result.output


def test_missing_db_is_never_a_pass():
    """A backward that forgets dL/db used to pass: the missing tensor disappeared."""
    report = run_suite(user.missing_db)
    assert report.counts() == {"passed": 0, "failed": len(SUITE), "skipped": 0}


def test_debug_adds_the_traceback():
    plain = run_suite(user.raising, cases=["article"]).results[0].error
    debug = run_suite(user.raising, cases=["article"], debug=True).results[0].error
    assert plain == "RuntimeError: my kernel crashed"
    assert debug.startswith(plain) and "Traceback" in debug and "user_backwards.py" in debug
    result = run("--backward", f"{FILE}:raising", "--case", "article", "--debug", expect=1)
    assert "Traceback" in result.stdout


def test_not_implemented_skips_the_case_and_still_passes():
    report = run_suite(user.no_groups)
    assert report.passed
    assert report.counts() == {"passed": len(SUITE) - len(GROUPED), "failed": 0,
                               "skipped": len(GROUPED)}
    skipped = {r.configuration for r in report.results if r.skipped}
    assert skipped == GROUPED
    result = run("--backward", f"{FILE}:no_groups", "--json")
    data = json.loads(result.stdout)
    assert data["configurations"]["groups2"]["skipped"] is True
    assert data["configurations"]["groups2"]["error"] == "NotImplementedError: groups > 1"
    assert data["configurations"]["article"]["skipped"] is False
    text = run("--backward", f"{FILE}:no_groups").stdout
    assert "skipped" in text and f"{len(GROUPED)} skipped" in text


PLANTED = {"dx_kernel_not_flipped": "dx kernel not flipped",
           "dw_kernel_axes_flipped": "dw kernel axes flipped",
           "dw_off_by_1_percent": "dw off by 1%", "db_zero": "db zero",
           "dx_shifted_one_pixel": "dx shifted one pixel",
           "dilation_axes_swapped": "dilation axes swapped",
           "groups_use_group_0": "groups use group 0's weights",
           "stride_ignored_in_dx": "stride ignored in dx"}


@pytest.mark.parametrize("name", PLANTED)
def test_each_planted_bug_from_a_file_fails_on_the_right_cases_and_tensor(name):
    """Every bug of the teeth tests, handed over as a user would (--backward FILE:NAME)."""
    from tests.gradcheck.test_gradcheck import BUGS

    _, tensor, allowed, breaks = BUGS[PLANTED[name]]
    result = run("--backward", f"{FILE}:{name}", "--json", expect=1)
    data = json.loads(result.stdout)
    failed = {c for c, facts in data["configurations"].items() if not facts["passed"]}
    assert failed == {case.name for case in SUITE if breaks(case)}
    tensors = {r["tensor"] for r in data["results"] if not r["passed"]}
    assert tensor in tensors and tensors <= allowed | {tensor}


def test_forward_is_checked_against_conv2d():
    good = run_suite(user.correct, forward=user.forward)
    assert good.passed and all((c.name, "y") in verdicts(good) for c in SUITE)
    bad = run_suite(user.correct, forward=user.forward_flipped)
    assert {r.configuration for r in bad.failures} == {
        c.name for c in SUITE if c.w_shape[2:] != (1, 1)}
    assert {r.tensor for r in bad.failures} == {"y"}
    result = run("--backward", f"{FILE}:correct", "--forward", f"{FILE}:forward_flipped",
                 "--case", "odd-3x3", expect=1)
    assert "your y" in result.stdout


def test_adjoint_check_fails_on_its_own():
    """A dx scaled by 2: the adjoint row fails, with ⟨x, dL/dx⟩ twice ⟨conv2d(x, w), g⟩."""
    def doubled(grad_output, x, w, **options):
        dx, dw, db = conv2d_backward(grad_output, x, w, **options)
        return 2 * dx, dw, db

    results = verdicts(run_suite(doubled, cases=["odd-3x3"]))
    assert not results[("odd-3x3", ADJOINT)].passed
    assert results[("odd-3x3", ADJOINT)].worst[0].analytic == pytest.approx(
        2 * results[("odd-3x3", ADJOINT)].worst[0].numeric)


def test_routes_check_fails_on_its_own(monkeypatch):
    """Break one of convcli's own routes where the routes check calls it: only that row fails
    (the backward under test, convcli's, is still right)."""
    real = convcli.gradcheck.routes.grad_input_flipped

    def off(*args, **kwargs):
        return real(*args, **kwargs) * 1.01

    monkeypatch.setattr(convcli.gradcheck.routes, "grad_input_flipped", off)
    report = run_suite(cases=["odd-3x3", "stride3x2-pad2"])
    assert {(r.configuration, r.tensor) for r in report.failures} == {
        ("odd-3x3", ROUTES), ("stride3x2-pad2", ROUTES)}


def test_routes_are_compared_band_by_band_on_every_pixel(monkeypatch):
    """The routes check cuts x into bands of rows: with tiny bands every pixel is still
    compared once, and a one-pixel error anywhere is found at its place."""
    monkeypatch.setattr(convcli.gradcheck.routes, "GRADCHECK_CHUNK_ELEMENTS", 1)
    real = convcli.gradcheck.routes.grad_input_col2im
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 23, 17)), rng.standard_normal((4, 3, 3, 2))
    options = {"stride": (2, 3), "padding": (2, 1, 0, 3), "dilation": (2, 1)}
    result = next(r for r in check_case(x, w, samples=5, **options).results
                  if r.tensor == ROUTES)
    assert result.passed and result.checked == x.size
    seen = []

    def marked(grad_output, x_shape, w, **kw):
        dx = real(grad_output, x_shape, w, **kw)
        seen.append(x_shape)
        return dx + 1.0      # wrong everywhere: every band must fail
    monkeypatch.setattr(convcli.gradcheck.routes, "grad_input_col2im", marked)
    result = next(r for r in check_case(x, w, samples=5, **options).results
                  if r.tensor == ROUTES)
    assert not result.passed and result.checked == x.size and len(seen) > 5


def test_non_finite_data_is_a_usage_error(tmp_path):
    x = np.ones((1, 1, 6, 6))
    x[0, 0, 2, 3] = np.nan
    with pytest.raises(InputError, match="x has 1 non-finite value"):
        check_case(x, np.ones((1, 1, 3, 3)))
    with pytest.raises(InputError, match="b has 1 non-finite"):
        check_case(np.ones((1, 1, 6, 6)), np.ones((1, 1, 3, 3)), np.array([np.inf]))
    g = np.full((1, 1, 6, 6), np.nan)
    with pytest.raises(InputError, match="grad_output has 36 non-finite"):
        check_case(np.ones((1, 1, 6, 6)), np.ones((1, 1, 3, 3)), padding="same", grad_output=g)
    np.save(tmp_path / "nan.npy", x[0, 0])
    result = run(tmp_path / "nan.npy", "sobel-x", expect=2)
    assert "x has 1 non-finite value (1 NaN, 0 inf)" in result.output
    result = run(tmp_path / "nan.npy".replace("nan", "nan"), "box3", "--bias", "nan", expect=2)
    assert "non-finite" in result.output


def test_a_given_grad_output_is_used():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 2, 8, 8)), rng.standard_normal((3, 2, 3, 3))
    g = rng.standard_normal((1, 3, 8, 8))
    report = check_case(x, w, padding="same", grad_output=g, backward=user.correct)
    assert report.passed
    adjoint = verdicts(report)[("your case", ADJOINT)]
    dx = conv2d_backward(g, x, w, padding="same")[0]
    assert adjoint.worst[0].analytic == pytest.approx(np.vdot(x, dx), rel=1e-12)


@pytest.mark.parametrize("args, message", [
    (["--backward", "nosuchmodule_xyz:f"], "cannot import 'nosuchmodule_xyz'"),
    (["--backward", "nosuch.py:f"], "no such file 'nosuch.py'"),
    (["--backward", f"{FILE}:nosuch"], "has no 'nosuch'"),
    (["--backward", "justaname"], "takes MODULE:FUNCTION"),
    (["--case", "nope"], "unknown case 'nope'"),
    (["--answers", "d", "--backward", f"{FILE}:correct"], "cannot go with it"),
    (["--write-cases", "d", "--backward", f"{FILE}:correct"], "cannot go with it"),
])
def test_usage_errors_name_the_option(args, message):
    result = run(*args, expect=2)
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_an_import_that_raises_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("1 / 0\n")
    result = run("--backward", f"{bad}:f", expect=2)
    assert "ZeroDivisionError" in result.output


def test_list_cases_names_every_case():
    result = run("--list-cases", "--json")
    from convcli.gradcheck.suite import EVERY

    listed = json.loads(result.stdout)
    assert [c["name"] for c in listed] == [c.name for c in EVERY]
    assert sum(c["extra"] for c in listed) == 7
    text = run("--list-cases").stdout
    assert all(c.name in text for c in EVERY)


def test_write_cases_and_grade_answers(tmp_path):
    """Answers computed from the written files (here by convcli's own backward standing in for
    another language) pass; a missing answer, a wrong one and a skipped one are named."""
    folder = tmp_path / "cases"
    result = run("--write-cases", folder)
    assert "--answers" in result.stdout
    assert (folder / "INDEX.md").read_text().count("| ") > len(SUITE)
    for case in SUITE:
        with np.load(folder / f"{case.name}.npz") as f:
            assert f["padding"].shape == (4,) and ("b" in f.files) == case.bias
            options = {"stride": tuple(f["stride"]), "padding": tuple(f["padding"]),
                       "dilation": tuple(f["dilation"]), "groups": int(f["groups"])}
            dx, dw, db = conv2d_backward(f["grad_output"], f["x"], f["w"], **options)
        if case.name == "valid":
            dw = dw * 1.01
        if case.name == "groups2":
            np.savez(folder / "answers" / f"{case.name}.npz", skipped="groups")
        elif case.name != "1x1":
            np.savez(folder / "answers" / f"{case.name}.npz", grad_input=dx, grad_weight=dw,
                     grad_bias=db)
    report = grade_answers(folder)
    assert report.counts() == {"passed": len(SUITE) - 3, "failed": 2, "skipped": 1}
    assert {(r.configuration, r.tensor) for r in report.failures} == {
        ("valid", "grad_weight"), ("1x1", "backward")}
    assert "no answer file answers/1x1.npz" in verdicts(report)[("1x1", "backward")].note
    result = run("--answers", folder, expect=1)
    assert "✗ 1x1: backward" in result.stdout


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_a_torch_autograd_backward_passes_the_whole_suite(torch):
    result = run("--backward", f"{FILE}:torch_backward")
    assert "all" in result.stdout and "18 passed" in result.stdout


def test_torch_answers_pass_and_an_unflipped_kernel_fails(torch, tmp_path):
    import torch.nn.functional as F

    write_suite_cases(tmp_path)
    for unflipped in (False, True):
        for path in sorted(tmp_path.glob("*.npz")):
            case = np.load(path)
            x = torch.tensor(case["x"], requires_grad=True)
            w = torch.tensor(case["w"], requires_grad=True)
            top, bottom, left, right = case["padding"].tolist()
            b = torch.tensor(case["b"]) if "b" in case.files else None
            y = F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride=tuple(case["stride"]),
                         dilation=tuple(case["dilation"]), groups=int(case["groups"]))
            y.backward(torch.tensor(case["grad_output"]))
            dx = x.grad.numpy()
            if unflipped:  # dL/dx computed with the kernel as given: the article's mistake
                w2 = torch.tensor(case["w"][..., ::-1, ::-1].copy(), requires_grad=False)
                x2 = torch.tensor(case["x"], requires_grad=True)
                F.conv2d(F.pad(x2, (left, right, top, bottom)), w2, stride=tuple(case["stride"]),
                         dilation=tuple(case["dilation"]), groups=int(case["groups"])).backward(
                    torch.tensor(case["grad_output"]))
                dx = x2.grad.numpy()
            np.savez(tmp_path / "answers" / path.name, grad_input=dx,
                     grad_weight=w.grad.numpy(), grad_bias=case["grad_output"].sum((0, 2, 3)),
                     y=y.detach().numpy())
        report = grade_answers(tmp_path)
        if unflipped:
            assert {r.configuration for r in report.failures} == {
                c.name for c in SUITE if c.w_shape[2:] != (1, 1)}
            assert {r.tensor for r in report.failures} <= {"grad_input", ADJOINT}
        else:
            assert report.passed, [(r.configuration, r.tensor) for r in report.failures]


def test_assert_conv2d_backward_one_line_in_a_test():
    assert assert_conv2d_backward(user.correct, forward=user.forward).passed
    with pytest.raises(AssertionError) as caught:
        assert_conv2d_backward(user.dw_off_by_one_percent, cases=["odd-3x3"])
    message = str(caught.value)
    assert "✗ odd-3x3: grad_weight" in message and "err/tol" in message
    assert "\x1b[" not in message                       # plain text, no colour codes
    assert_conv2d_backward(user.no_groups)              # skipped cases pass by default
    with pytest.raises(AssertionError, match="skipped"):
        assert_conv2d_backward(user.no_groups, allow_skipped=False)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_table_keeps_case_tensor_and_verdict_at_any_width(width):
    """A user's image case with long "checked" counts: the ✓/✗ column stays."""
    rng = np.random.default_rng(0)
    report = check_case(rng.random((1, 3, 300, 300)), rng.standard_normal((2, 3, 3, 3)),
                        padding="same", samples=30, backward=user.dw_off_by_one_percent,
                        name="a-long-image-name.png")
    from rich.console import Console

    from convcli.gradcheck import render

    with open(os.devnull, "w") as sink:
        console = Console(width=width, file=sink, record=True, no_color=True)
        console.print(render.results_table(report, width))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    assert any("grad_weight" in line and "✗" in line for line in lines), lines
    assert any("grad_input" in line and "✓" in line for line in lines), lines


def test_progress_counts_the_work_and_ends_at_the_total():
    rng = np.random.default_rng(2)
    x, w = rng.random((1, 3, 200, 200)), rng.standard_normal((4, 3, 5, 5))
    calls = []
    check_case(x, w, padding=2, samples=50,
               progress=lambda done, total: calls.append((done, total)))
    totals = {total for _, total in calls}
    assert len(totals) == 1
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == totals.pop()
    # the whole-image steps (forward, backward, routes) are most of the work: the first
    # call (after the forward) is already a visible part of it, not 1 of 100 units
    assert done[0] / calls[0][1] > 0.02


def test_write_cases_refuses_an_unwritable_folder_before_writing(tmp_path, monkeypatch):
    """Mocked: as root (most CI containers) a read-only folder is writable anyway."""
    from convcli.gradcheck import answers

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(answers.tempfile, "TemporaryFile", refuse)
    result = run("--write-cases", tmp_path, expect=2)
    assert "cannot write in" in result.output and "choose a writable folder" in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_case_makes_no_folder(tmp_path):
    run("--write-cases", tmp_path / "new", "--case", "nope", expect=2)
    assert not (tmp_path / "new").exists()


def test_printing_and_exiting_user_code_keeps_json_clean():
    result = run("--backward", f"{FILE}:chatty_exit", "--case", "article", "--json", expect=1)
    data = json.loads(result.stdout)                    # the print went to stderr
    assert data["configurations"]["article"]["error"] == "SystemExit: 3"
    assert "computing dx..." in result.stderr


def test_a_user_backward_on_your_own_image(tmp_path):
    """IMAGE KERNEL with --backward: the user's case, sampled, graded the same way."""
    image = tmp_path / "x.npy"
    np.save(image, np.random.default_rng(3).random((2, 17, 23)))
    good = json.loads(run(image, "sobel-x", "--stride", "2", "--backward", f"{FILE}:strict",
                          "--samples", "30", "--json").stdout)
    assert good["passed"] and {r["tensor"] for r in good["results"]} == {
        "grad_input", "grad_weight", "grad_bias", ADJOINT}
    bad = json.loads(run(image, "sobel-x", "--stride", "2", "--backward",
                         f"{FILE}:dx_not_flipped", "--json", expect=1).stdout)
    assert {r["tensor"] for r in bad["results"] if not r["passed"]} == {"grad_input", ADJOINT}


BORDER_CASES = ["reflect-stride2", "symmetric-even", "replicate-dilation", "circular-groups"]


def test_border_flip_and_transposed_cases_pass_for_convcli_and_catch_bugs():
    """convcli's own backward passes every extra case; a backward that ignores the border
    mode (zero padding's gradient) fails exactly the border cases, on dL/dx; one that ignores
    flip fails the flip case; a transposed backward with dL/dw 1% off fails on grad_weight."""
    from convcli import conv2d_backward as plain
    from convcli.gradcheck.suite import EXTRA
    from convcli.transposed import conv_transpose2d_backward

    own = run_suite(cases=[c.name for c in EXTRA])
    assert own.passed and max(r.max_ratio for r in own.results) < 1e-2

    def ignores_mode(grad_output, x, w, *, padding_mode="zeros", **options):
        return plain(grad_output, x, w, **options)

    report = run_suite(ignores_mode, cases=BORDER_CASES)
    assert {r.configuration for r in report.failures} == set(BORDER_CASES)
    assert "grad_input" in {r.tensor for r in report.failures}

    def ignores_flip(grad_output, x, w, *, flip=False, **options):
        return plain(grad_output, x, w, **options)

    assert {r.configuration for r in run_suite(ignores_flip, cases=["flip"]).failures} == {"flip"}

    def transposed_dw_off(grad_output, x, w, **options):
        dx, dw, db = conv_transpose2d_backward(grad_output, x, w, **options)
        return dx, dw * 1.01, db

    report = run_suite(transposed_dw_off, cases=["transpose-stride2", "transpose-groups"])
    assert {(r.configuration, r.tensor) for r in report.failures} == {
        ("transpose-stride2", "grad_weight"), ("transpose-groups", "grad_weight")}


def test_a_user_backward_runs_the_extra_cases_only_when_named():
    report = run_suite(user.correct)
    assert set(report.configurations) == {case.name for case in SUITE}
    with_extra = run_suite(lambda g, x, w, **options: conv2d_backward(g, x, w, **options),
                           cases=["article", "flip"])
    assert set(with_extra.configurations) == {"article", "flip"}
    assert with_extra.passed                   # flip=True reaches the user's backward
    strict = run_suite(user.correct, cases=["flip"])       # it takes no flip keyword: a verdict
    assert "unexpected keyword argument 'flip'" in strict.results[0].error


def test_gradcheck_on_your_image_with_a_border_mode(tmp_path):
    image = tmp_path / "x.npy"
    np.save(image, np.random.default_rng(4).random((12, 10)))
    data = json.loads(run(image, "sobel-x", "--border", "reflect", "--flip", "--samples", "15",
                          "--json").stdout)
    assert data["passed"] and data["geometry"]["padding_mode"] == "reflect"
    assert data["configurations"]["x.npy"]["padding_mode"] == "reflect"
    result = run("--border", "reflect", expect=2)
    assert "--border applies to IMAGE KERNEL" in result.output


def test_a_given_grad_output_of_the_wrong_shape_is_refused():
    with pytest.raises(InputError, match=r"grad_output must have y's shape \(1, 1, 4, 4\)"):
        check_case(np.ones((1, 1, 6, 6)), np.ones((1, 1, 3, 3)), grad_output=np.ones((1, 1, 6, 6)))


@pytest.mark.parametrize("args, message", [
    (["--eps", "0"], "--eps must be a finite number > 0"),
    (["--atol", "0", "--rtol", "0"], "--atol and --rtol cannot both be 0"),
])
def test_tolerance_options_are_named_as_typed(args, message):
    assert message in run(*args, expect=2).output
