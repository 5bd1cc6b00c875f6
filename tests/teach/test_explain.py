"""convcli explain: the walkthrough's numbers are the core's, every ✓ turns ✗ on a wrong value,
and its renderings (80 columns, NO_COLOR, SVG/HTML/text exports, the GIF) are what they claim."""

import io
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from convcli import conv2d, conv2d_backward, flip_kernel, im2col
from convcli.cli import app
from convcli.teach import CLAIMS, verify, walkthrough
from convcli.teach import arrays as explain_arrays
from convcli.teach.render_gif import frames
from convcli.teach.render_rich import render

COLOR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7])[;m]")     # a foreground colour code


def run(*args, expect=0, env=None):
    result = CliRunner().invoke(app, ["explain", *map(str, args)],
                                env={"COLUMNS": "80", "NO_COLOR": None, **(env or {})})
    assert result.exit_code == expect, (result.output, result.exception)
    return result


def prose(text) -> str:
    """The printed text with the panels' borders and the line breaks taken out."""
    return re.sub(r"[│\s]+", " ", text)


def text_of(walk, width=80, **console_options) -> str:
    console = Console(width=width, file=io.StringIO(), **console_options)
    render(walk, console)
    return console.file.getvalue()


@pytest.fixture
def three_channels(tmp_path, rng):
    """A 3-channel .npy image and a (2, 3, 2, 2) kernel: a full multi-channel convolution."""
    image, kernel = tmp_path / "x.npy", tmp_path / "w.npy"
    np.save(image, rng.integers(0, 6, size=(3, 5, 6)).astype(float))
    np.save(kernel, rng.integers(-2, 3, size=(2, 3, 2, 2)).astype(float))
    return image, kernel


def footprint_by_loop(x, w, pixel, pad, stride, dilation):
    """p times the weight it meets in each window, by the definition (groups = 1)."""
    c, i, j = pixel
    top, _, left, _ = pad
    y_shape = conv2d(x, w, stride=stride, padding=pad, dilation=dilation).shape
    out = np.zeros(y_shape)
    for o in range(w.shape[0]):
        for oi in range(y_shape[2]):
            for oj in range(y_shape[3]):
                for kh in range(w.shape[2]):
                    for kw in range(w.shape[3]):
                        if (oi * stride + kh * dilation, oj * stride + kw * dilation) == (
                                i + top, j + left):
                            out[0, o, oi, oj] += x[0, c, i, j] * w[o, c, kh, kw]
    return out


@pytest.mark.parametrize("args, stride, dilation", [
    ((), 1, 1),
    (("--stride", 2, "--pixel", "2,1"), 2, 1),
    (("--dilation", 2, "--padding", "2,1,1,0", "--pixel", "3,2", "--seed", 7), 1, 2),
])
def test_json_arrays_are_the_core_results(args, stride, dilation):
    data = json.loads(run("--json", *args).stdout)
    a = {name: np.array(value) for name, value in data["arrays"].items()}
    x, w, dy, pad = a["x"], a["w"], a["dL/dy"], tuple(data["geometry"]["padding"])
    options = {"stride": stride, "padding": pad, "dilation": dilation}
    assert x.shape == (1, 1, 4, 4) and w.shape == (1, 1, 2, 2)
    assert np.all(dy != 0) and len(np.unique(dy)) > 1          # a random, non-uniform dL/dy
    np.testing.assert_array_equal(a["padding"], pad)
    np.testing.assert_array_equal(a["x_padded"][0, 0, pad[0]:pad[0] + 4, pad[2]:pad[2] + 4],
                                  x[0, 0])
    assert a["x_padded"].sum() == x.sum()                       # the border is zeros
    np.testing.assert_allclose(a["y"], conv2d(x, w, **options))
    np.testing.assert_allclose(a["X_col"], im2col(x, 2, **options))
    dx, dw, _ = conv2d_backward(dy, x, w, **options)
    np.testing.assert_allclose(a["dL/dw"], dw)
    np.testing.assert_allclose(a["dL/dx"], dx)
    np.testing.assert_allclose(a["w_flipped"], w[:, :, ::-1, ::-1])
    np.testing.assert_allclose(a["footprint"], footprint_by_loop(x, w, data["pixel"], pad,
                                                                 stride, dilation))
    assert all(check["ok"] for check in data["checks"]) and len(data["checks"]) == len(CLAIMS)


@pytest.mark.slow
def test_json_of_a_three_channel_image(three_channels):
    image, kernel = three_channels
    data = json.loads(run("--image", image, "--kernel", kernel, "--pixel", "1,2,3",
                          "--json").stdout)
    a = {name: np.array(value) for name, value in data["arrays"].items()}
    x, w = np.load(image)[None], np.load(kernel)
    pad = tuple(data["geometry"]["padding"])
    np.testing.assert_array_equal(a["x"], x)
    np.testing.assert_allclose(a["y"], conv2d(x, w, padding=pad))
    np.testing.assert_allclose(a["w_flipped"], flip_kernel(w))
    assert a["w_flipped"].shape == (3, 2, 2, 2)                  # in/out channels swapped
    dx, dw, _ = conv2d_backward(a["dL/dy"], x, w, padding=pad)
    np.testing.assert_allclose(a["dL/dx"], dx)
    np.testing.assert_allclose(a["dL/dw"], dw)
    np.testing.assert_allclose(a["footprint"], footprint_by_loop(x, w, (1, 2, 3), pad, 1, 1))


def test_tables_show_the_core_numbers():
    """The default walkthrough's y, dL/dw and dL/dx tables, row by row, in the printed text."""
    walk = walkthrough()
    x, w, dy = walk.arrays["x"], walk.arrays["w"], walk.arrays["dL/dy"]
    options = {"padding": (1, 0, 1, 0)}
    dx, dw, _ = conv2d_backward(dy, x, w, **options)
    text = text_of(walk)
    for array in (conv2d(x, w, **options)[0, 0], dw[0, 0], dx[0, 0]):
        for row in array:
            cells = r"\s+".join(r"\[?" + f"{v:.0f}".replace("-", "−") + r"\]?" for v in row)
            assert re.search(r"\s" + cells + r"\s", text), (row, text)


def test_article_default_says_p_times_the_flipped_kernel():
    text = prose(text_of(walkthrough()))
    assert "p·d, p·c, p·b, p·a: p times [[d, c], [b, a]], the flipped kernel" in text
    assert "padding (top, bottom, left, right) = (1, 0, 1, 0)" in text
    assert "20 of 20 checks pass" in text and "✗" not in text


@pytest.mark.parametrize("index", range(len(CLAIMS)), ids=[c[2] for c in CLAIMS])
@pytest.mark.parametrize("side", [2, 3], ids=["computed", "expected"])
def test_every_check_turns_false_on_a_wrong_value(index, side):
    walk = walkthrough(stride=2, pixel=(1, 1))
    arrays = dict(walk.arrays)
    name = CLAIMS[index][side]
    wrong = np.array(arrays[name], dtype=float)
    if CLAIMS[index][4:] == ("differ",):       # a contrast fails when the two sides agree
        wrong = np.array(arrays[CLAIMS[index][5 - side]], dtype=float)
    else:
        wrong.flat[np.argmax(np.abs(wrong))] += 1e-6           # a small error still shows
    arrays[name] = wrong
    checks = verify(arrays)
    assert not checks[index].ok
    if CLAIMS[index][4:] != ("differ",):
        assert checks[index].max_abs_diff == pytest.approx(1e-6)
    for claim, check in zip(CLAIMS, checks):
        assert check.ok or name in claim[2:]                   # only the checks that use it
    walk.steps[-1].checks = checks
    assert f"✗ {CLAIMS[index][1]}" in text_of(walk, width=120)


def test_a_kernel_that_is_not_flipped_fails_the_flip_checks(monkeypatch):
    """The footprint and the full-convolution claims really depend on flipping the kernel."""
    monkeypatch.setattr(explain_arrays, "flip_kernel", lambda w, groups=1: flip_kernel(w, groups)[
        ..., ::-1, ::-1].copy())                                # channels swapped, not flipped
    failed = {claim[2] for claim, check in zip(CLAIMS, walkthrough().checks) if not check.ok}
    assert failed == {"dy/dp", "dL/dx_flipped"}


def test_a_failed_check_is_shown_and_exits_1(monkeypatch):
    monkeypatch.setattr(explain_arrays, "flip_kernel", lambda w, groups=1: flip_kernel(w, groups)[
        ..., ::-1, ::-1].copy())
    output = run(expect=1).stdout
    assert "✗ ∂y/∂p is the flipped kernel" in output and "17 of 20 checks pass" in output


def test_stride_2_walkthrough_dilates_dy_and_passes():
    output = prose(run("--stride", 2, "--pixel", "1,1").stdout)
    assert "20 of 20 checks pass" in output and "✗" not in output
    assert "dilate dL/dy" in output and "dL/dy, dilated and padded" in output
    walk = walkthrough(stride=2)
    assert walk.arrays["dL/dy_dilated"].shape == (1, 1, 3, 3)   # 2×2 with a zero between
    assert walk.arrays["dL/dy_dilated"][0, 0, 1].tolist() == [0, 0, 0]


@pytest.mark.slow
def test_three_channel_walkthrough_swaps_channels_and_passes(three_channels):
    image, kernel = three_channels
    output = prose(run("--image", image, "--kernel", kernel, "--pixel", "2,4,5").stdout)
    assert "20 of 20 checks pass" in output and "✗" not in output
    assert "the flip also swaps them" in output and "(3, 2, 2, 2)" in output


@pytest.mark.slow
def test_a_2d_kernel_on_a_colour_image_is_depthwise(tmp_path, rng):
    image = tmp_path / "rgb.npy"
    np.save(image, rng.random((3, 6, 5)))
    data = json.loads(run("--image", image, "--kernel", "1 0 -1; 2 0 -2", "--json").stdout)
    assert data["geometry"]["groups"] == 3 and all(c["ok"] for c in data["checks"])


@pytest.mark.slow                                     # a 64×64 image, rendered three times
@pytest.mark.parametrize("args", [(), ("--stride", 3, "--dilation", 2, "--pixel", "30,40"),
                                  ("--kernel", "gaussian5", "--pixel", "0,2,59")])
def test_80_columns_and_large_inputs_are_cropped(args, tmp_path, rng):
    image = tmp_path / "big.npy"
    np.save(image, rng.random((3, 50, 60)))
    output = run("--image", image, *args).stdout
    assert max(len(line) for line in output.splitlines()) <= 80
    assert "⋯" in output and re.search(r"cropped from 5\d×6\d", output)   # cropped, full shape said
    assert "✗" not in output


@pytest.mark.slow
def test_no_color_still_marks_the_highlighted_cells():
    walk = walkthrough()
    text = text_of(walk, force_terminal=True, no_color=True)
    assert not COLOR.search(text) and "\x1b[1" in text          # bold, but no colour
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    p = f"{walk.arrays['p']:.0f}"
    assert f"[{p}]" in plain and "[p·d]" in plain and "·" in plain   # p, footprint, padding
    assert f"[{walk.arrays['y'][0, 0, 0, 0]:.0f}]" in plain       # the first window's output
    assert COLOR.search(text_of(walk, force_terminal=True))      # colour when it is allowed
    assert "[p·d]" in run(env={"NO_COLOR": "1"}).stdout


@pytest.mark.parametrize("suffix", ["svg", "html", "txt"])
def test_exports(suffix, tmp_path):
    path = tmp_path / f"walk.{suffix}"
    run("--export", path)
    document = path.read_text(encoding="utf-8")
    assert "Conclusion" in document and "✓" in document
    if suffix == "svg":
        assert ET.fromstring(document).tag.endswith("svg")
    elif suffix == "html":
        assert document.lstrip().lower().startswith("<!doctype html") and "</html>" in document
    else:
        assert "\x1b" not in document and "20 of 20 checks pass" in document


def test_export_with_json_still_writes_the_walkthrough(tmp_path):
    path = tmp_path / "walk.txt"
    data = json.loads(run("--json", "--export", path).stdout)
    assert data["checks"] and "1. Setup" in path.read_text(encoding="utf-8")


@pytest.mark.slow
def test_gif_has_one_frame_per_output_pixel_and_the_footprint(tmp_path):
    path = tmp_path / "walk.gif"
    run("--animate", path)
    with Image.open(path) as gif:
        assert gif.n_frames == 4 * 4 + 1 + 5 * 5             # forward, footprint, backward
    walk = walkthrough(np.arange(100.0).reshape(10, 10), stride=2, pixel=(9, 9))
    assert len(frames(walk)) == 5 * 5 + 1 + 6 * 6                # 5×5 outputs, all shown
    assert len(frames(walkthrough(np.ones((30, 30))))) == 6 * 6 + 1 + 6 * 6   # cropped


@pytest.mark.slow
def test_step_pauses_only_on_a_terminal():
    pauses = []
    render(walkthrough(), Console(file=io.StringIO()), pause=lambda: pauses.append(1))
    assert len(pauses) == 9                                       # after every step but the last
    assert "20 of 20" in run("--step").stdout                       # piped: no pause, no input


@pytest.mark.parametrize("args, message", [
    (("--pixel", "9,9"), "pixel must be"),
    (("--pixel", "a"), "--pixel must be"),
    (("--export", "walk.pdf"), "--export must end in"),
    (("--kernel", "nonsense"), "unknown kernel preset"),
    (("--stride", 0), "--stride must be at least 1"),
])
def test_user_errors_are_one_line_exit_2(args, message, tmp_path):
    result = run(*args, expect=2)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
