"""explain's words (issue 15): the sentences a teacher found wrong cannot come back, and the
checks that do not reuse the code they verify (a true convolution written out tap by tap)."""

import io
import json
import re

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from convcli import conv2d, conv2d_backward
from convcli.cli import app
from convcli.teach import arrays as explain_arrays
from convcli.teach import walkthrough
from convcli.teach.render_rich import render


def run(*args, expect=0):
    result = CliRunner().invoke(app, ["explain", *map(str, args)])
    assert result.exit_code == expect, result.output
    return result


def text(walk) -> str:
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    render(walk, console)
    return re.sub(r"[│\s]+", " ", console.export_text())


def test_a_pixel_no_window_reaches_says_so():
    """--stride 2 --pixel 3,3: the last row and column are never read."""
    walk = walkthrough(stride=2, pixel=(3, 3))
    words = text(walk)
    assert "No window's tap lands on it: the stride skips it" in words
    assert "dL/dp = 0, which is dL/dx at p (0)" in words
    for wrong in ("0 window(s)", "these are :", "= 0 = 0"):
        assert wrong not in words
    assert words.count("– ") >= 2 and "not applicable: no window's tap lands on p" in words
    assert "18 of 18 checks pass (2 not applicable)" in words
    step4 = [c for c in walk.steps[3].checks]
    assert [c.applicable for c in step4] == [False, False] and all(c.ok for c in step4)
    data = json.loads(run("--stride", 2, "--pixel", "3,3", "--json").stdout)
    assert [c["applicable"] for c in data["checks"]].count(False) == 2


def test_a_pixel_the_dilation_skips():
    x = np.arange(25.0).reshape(5, 5) + 1
    walk = walkthrough(x, np.ones((3, 3)), dilation=2, padding=0, pixel=(0, 1))
    assert "the dilation skips it" in " ".join(walk.steps[3].paragraphs)
    assert walk.arrays["dL/dx"][0, 0, 0, 1] == 0 and all(c.ok for c in walk.checks)


def test_a_reached_pixel_keeps_its_checks():
    walk = walkthrough(stride=2, pixel=(1, 1))
    assert all(c.applicable for c in walk.checks)
    assert "1 window: " in walk.steps[3].paragraphs[0] or "windows and meets" in \
        walk.steps[3].paragraphs[0]


def test_y_is_not_capitalised_into_Y():
    walk = walkthrough()
    words = " ".join(walk.steps[0].paragraphs)
    assert "y is the same size as x." in words and "Y is the same size" not in words
    assert "Stride 2,2: the window jumps" in " ".join(walkthrough(stride=2).steps[0].paragraphs)


def test_depthwise_and_grouped_kernels_are_described_as_they_are(rng):
    x = rng.integers(1, 5, size=(3, 5, 5)).astype(float)
    depthwise = walkthrough(x, np.ones((3, 1, 3, 3)), groups=3)
    words = " ".join(p for s in depthwise.steps for p in s.paragraphs)
    assert "depthwise (groups = C = 3): each input channel has its own 3×3 kernel and output " \
        "channel" in words
    assert "per input channel" not in words and "w_flipped[c, o] = w[o, c]" not in words
    grouped = walkthrough(rng.integers(1, 5, size=(4, 5, 5)).astype(float),
                          np.ones((2, 2, 3, 3)), groups=2)
    words = " ".join(p for s in grouped.steps for p in s.paragraphs)
    assert "groups = 2: each output channel has a 3×3 kernel for each of the 2 input channels " \
        "of its group only" in words
    assert "w_flipped[c, o] = w[o, c] rotated" not in words
    assert "w_flipped[c, j] = w[o, c mod C/groups] rotated 180°" in words
    plain = walkthrough(x, np.ones((2, 3, 3, 3)))
    assert "each with a 3×3 kernel for every one of the 3 input channel(s)" in " ".join(
        plain.steps[0].paragraphs)


def test_two_channels_name_their_weights_apart():
    x = (np.arange(32.0).reshape(2, 4, 4) % 5) + 1
    w = np.arange(16.0).reshape(2, 2, 2, 2) + 1
    first = walkthrough(x, w).steps[0].paragraphs[1]
    assert "y[o=0](0,0) = 0·0:a + 0·0:b + 0·0:c + 1·0:d + 0·1:a" in first
    assert "k:a is weight a of input channel k" in first
    expected = conv2d(x[None], w, padding=(1, 0, 1, 0))[0, 0, 0, 0]
    assert first.endswith(f"= {expected:g} (summed over the input channels; k:a is weight a of "
                          "input channel k).")


def test_the_textbook_convolution_is_not_y_unless_w_is_symmetric():
    walk = walkthrough()
    contrast = next(c for c in walk.checks if c.computed == "y_true_convolution")
    assert contrast.applicable and contrast.holds and contrast.max_abs_diff > 1
    assert "with this w it gives another y" in walk.steps[0].paragraphs[2]
    symmetric = walkthrough(w=np.array([[1.0, 2.0], [2.0, 1.0]]))
    contrast = next(c for c in symmetric.checks if c.computed == "y_true_convolution")
    assert not contrast.applicable and contrast.ok and contrast.max_abs_diff == 0
    assert "the same turned 180°, so here the two agree" in symmetric.steps[0].paragraphs[2]


def test_backward_is_a_true_convolution_and_the_check_is_independent(rng, monkeypatch):
    """dL/dy * w written tap by tap equals dL/dx, and does not use the core's flip: a broken
    flip_kernel fails the flipped-kernel checks but not this one."""
    walk = walkthrough(stride=2, dilation=(1, 2), padding=(2, 1, 1, 3))
    check = next(c for c in walk.checks if c.computed == "dL/dx_true_convolution")
    assert check.holds and check.max_abs_diff < 1e-12
    assert "dL/dx = dL/dy * w, a true (full) convolution" in " ".join(walk.steps[4].paragraphs)
    assert "a true convolution with w, dL/dy * w" in walk.steps[-1].paragraphs[1]
    monkeypatch.setattr(explain_arrays, "flip_kernel", lambda w, groups=1: w.copy())
    broken = walkthrough(stride=2, dilation=(1, 2), padding=(2, 1, 1, 3))
    by_name = {c.computed: c.holds for c in broken.checks}
    assert not by_name["dL/dx_flipped"] and by_name["dL/dx_true_convolution"]


def test_true_convolution_full_is_the_textbook_sum(rng):
    """z[i, j] = Σ_{k, l} w[k, l] · g[i − k, j − l], by loops over every output cell."""
    g, w = rng.standard_normal((1, 1, 4, 5)), rng.standard_normal((1, 1, 3, 2))
    from convcli.geometry import resolve
    geometry = resolve((6, 6), (3, 2), padding=0)
    z = explain_arrays.true_convolution_full(g, w, geometry, 1)
    want = np.zeros((6, 6))
    for i in range(6):
        for j in range(6):
            for k in range(3):
                for m in range(2):
                    if 0 <= i - k < 4 and 0 <= j - m < 5:
                        want[i, j] += w[0, 0, k, m] * g[0, 0, i - k, j - m]
    np.testing.assert_allclose(z[0, 0], want, rtol=1e-12)
    # and it is conv2d_backward's dL/dx of the valid convolution whose dL/dy is g
    x_like = np.zeros((1, 1, 6, 6))
    np.testing.assert_allclose(z, conv2d_backward(g, x_like, w)[0], rtol=1e-12)


def test_step_3_fits_80_columns_with_every_term():
    """X_col beside a dL/dy column: all 16 rows and the 4 taps are shown, nothing cropped,
    and the column sums are dL/dw."""
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    walk = walkthrough()
    render(walk, console)
    step3 = console.export_text().split("3. dL/dw")[1].split("4. dL/dx")[0]
    assert "cropped" not in step3 and "⋯" not in step3
    for r in range(4):
        for q in range(4):
            assert f"y({r},{q})" in step3
    x_col, grad = walk.arrays["X_col"], walk.arrays["dL/dy"][0, 0].ravel()
    np.testing.assert_array_equal(x_col.T @ grad, walk.arrays["dL/dw"].ravel())
    assert "dL/da = 0·1 + 0·1" in " ".join(walk.steps[2].paragraphs)


def test_titles_are_never_cut():
    x = (np.arange(32.0).reshape(2, 4, 4) % 5) + 1
    w = np.arange(16.0).reshape(2, 2, 2, 2) + 1
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    render(walkthrough(x, w), console)
    page = console.export_text()
    assert "w_flipped[1,0]" in page and "dL/dw[0,1]" in page and "[…" not in page


def test_the_animation_draws_the_whole_padded_input_and_hatches_what_no_window_reads():
    from convcli.teach import render_gif

    walk = walkthrough(stride=2, pixel=(3, 3))
    rows, cols = render_gif.output_window(walk)
    layout = render_gif._Layout(walk, rows, cols)
    assert layout.in_rows == range(5) and layout.in_cols == range(5)   # not 4×4
    assert 4 not in layout.visited_rows and 4 not in layout.visited_cols
    assert {0, 1, 2, 3} <= layout.visited_rows
    last = render_gif.frames(walk)[-1].convert("RGB")
    x0, y0, x1, y1 = layout.cell(layout.input_xy, 4, 4)                    # p = x(3,3)
    assert last.getpixel((x0 + 1, (y0 + y1) // 2)) == render_gif.TOUCH       # p is drawn
    hatched = last.crop((x0 + 6, y0 + 6, x1 - 6, y1 - 6))
    assert render_gif.GREY in {c for _, c in hatched.getcolors(10_000)}


def test_animation_captions_put_the_sum_first_and_wrap(monkeypatch):
    from convcli.teach import render_gif

    captured = []
    monkeypatch.setattr(render_gif, "_lines", lambda draw, layout, texts: captured.append(texts))
    x = np.linspace(0.1, 0.9, 64).reshape(8, 8) * 0.8311
    walk = walkthrough(x, np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]))
    render_gif.frames(walk)
    first = captured[0][0]
    assert first.startswith(f"y(0,0) = {render_gif.fmt(walk.arrays['y'][0, 0, 0, 0])} = ")
    rows, cols = render_gif.output_window(walk)
    footprint = captured[len(rows) * len(cols)][0]            # after the forward frames
    assert footprint.startswith("p = ") and "touches" in footprint
    image = render_gif.Image.new("RGB", (300, 50))
    draw = render_gif.ImageDraw.Draw(image)
    lines = render_gif.wrap(draw, "y(9,9) = 1.5 = " + " + ".join(["0.831·(−1)"] * 9),
                            render_gif._font(15), 280)
    assert len(lines) > 1 and lines[0].startswith("y(9,9) = 1.5")
    assert all(draw.textlength(line, font=render_gif._font(15)) <= 280 for line in lines)


def test_the_transposed_convolution_panel_matches_torch():
    """Step 8's PyTorch recipe, followed literally, gives conv2d_backward's dL/dx."""
    torch = pytest.importorskip("torch", reason="torch is not installed (an optional oracle)")
    for options in ({}, {"stride": 2}, {"padding": (1, 1, 1, 1), "stride": 2}):
        walk = walkthrough(**options)
        g, a = walk.geometry, walk.arrays
        top, bottom, left, right = g.pad
        op = tuple(int(v) for v in a["output_padding"])
        words = walk.steps[7].paragraphs[2]
        layer = torch.nn.ConvTranspose2d(1, 1, g.kernel_size, stride=g.stride,
                                         padding=(top, left) if (top, left) == (bottom, right)
                                         else 0, output_padding=op, bias=False).double()
        assert f"output_padding={op}" in words
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(a["w"]))
            dx = layer(torch.tensor(a["dL/dy"])).numpy()
        if (top, left) != (bottom, right):
            assert f"keep rows {top}..{top + g.input_size[0] - 1}" in words
            dx = dx[:, :, top: top + g.input_size[0], left: left + g.input_size[1]]
        np.testing.assert_allclose(dx, a["dL/dx"], rtol=1e-12, atol=1e-12)
    assert "(0, 1, 0, 1) (top, bottom, left, right): the forward padding's opposite side" in \
        walkthrough().steps[7].paragraphs[1]


def test_bias_and_matrix_panels():
    walk = walkthrough()
    bias, matrix = walk.steps[5], walk.steps[6]
    assert "exactly the neuron of a dense layer" in bias.paragraphs[0]
    assert f"= {walk.arrays['dL/db'][0]:g}." in bias.paragraphs[2]
    assert walk.arrays["M"].shape == (16, 16) and matrix.grids
    # each row of M holds the same four weights (weight sharing), each column the flipped kernel
    rows = {tuple(sorted(r[r != 0])) for r in walk.arrays["M"] if np.count_nonzero(r) == 4}
    assert rows == {(1.0, 2.0, 3.0, 4.0)}
    big = walkthrough(np.ones((30, 30)))
    assert not big.arrays["M"].size and not big.steps[6].grids
    assert [c.applicable for c in big.checks if c.computed in ("M·x", "Mᵀ·dL/dy")] == [False,
                                                                                      False]


def test_the_loss_gives_dL_dy(tmp_path):
    """--loss sum, --loss mse --target and --grad-output: dL/dy is what they say, the text
    says where it came from, every check still passes."""
    target = tmp_path / "t.npy"
    np.save(target, np.full((4, 4), 2.0))
    data = json.loads(run("--loss", "mse", "--target", target, "--json").stdout)
    y, dy = np.array(data["arrays"]["y"]), np.array(data["arrays"]["dL/dy"])
    np.testing.assert_array_equal(dy, y - 2.0)
    assert "y − T, for the loss L = ½‖y − T‖²" in " ".join(data["steps"][2]["text"])
    assert all(c["ok"] for c in data["checks"])
    data = json.loads(run("--loss", "sum", "--json").stdout)
    assert np.all(np.array(data["arrays"]["dL/dy"]) == 1.0)
    assert "1 everywhere, for the loss L = Σy" in " ".join(data["steps"][2]["text"])
    given = tmp_path / "g.npy"
    g = np.arange(16.0).reshape(4, 4) - 7
    np.save(given, g)
    data = json.loads(run("--grad-output", given, "--json").stdout)
    np.testing.assert_array_equal(np.array(data["arrays"]["dL/dy"])[0, 0], g)
    np.testing.assert_array_equal(np.array(data["arrays"]["dL/db"]), [g.sum()])


def test_loss_mistakes_are_one_line(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.ones((3, 3)))
    for args, message in ((["--loss", "mse"], "--loss mse needs --target"),
                          (["--target", bad], "--target goes with --loss mse"),
                          (["--grad-output", bad], ("--grad-output has shape (3, 3) but y has "
                                                   "shape (1, 1, 4, 4)")),
                          (["--grad-output", bad, "--loss", "sum"], "cannot go with --loss"),
                          (["--loss", "l1"], "--loss must be random, sum or mse")):
        result = run(*args, expect=2)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], result.output


def test_the_backward_animation_slides_the_flipped_kernel_over_dL_dy(monkeypatch):
    from convcli.teach import render_gif

    captured = []
    monkeypatch.setattr(render_gif, "_lines", lambda draw, layout, texts: captured.append(texts))
    walk = walkthrough(stride=2, pixel=(1, 1))
    images = render_gif.frames(walk)
    rows, cols = render_gif.backward_window(walk)
    backward = captured[-len(rows) * len(cols):]
    assert len(images) == 4 + 1 + len(rows) * len(cols)
    top, _, left, _ = walk.geometry.pad
    padded = walk.arrays["dL/dx_padded"][0, 0]
    for (r, q), texts in zip([(r, q) for r in rows for q in cols], backward, strict=True):
        name = (f"dL/dx({r - top},{q - left})" if r >= top and q >= left
                else f"dL/d(padding {r},{q})")
        assert texts[0].startswith(f"{name} = {render_gif.fmt(padded[r, q])} = ")
        terms = texts[0].split(" = ", 2)[2].split(" + ")
        total = sum(float(t.split("·")[0].strip("()").replace("−", "-"))
                    * float(t.split("·")[1].strip("()").replace("−", "-")) for t in terms)
        assert total == padded[r, q]                          # the terms add up to the value


def test_the_batch_panel_writes_its_sums_with_indices():
    x = (np.arange(50.0).reshape(2, 5, 5) % 7) + 1
    w = np.arange(24.0).reshape(3, 2, 2, 2) - 9
    walk = walkthrough(x, w)
    words = " ".join(walk.steps[8].paragraphs)
    assert "dL/dw[o, c] = Σ_n dL/dy[n, o] ⋆ x[n, c]" in words
    assert "dL/dx[n, 0] = dL/dy[n, 0] * w[0, 0] + dL/dy[n, 1] * w[1, 0] + dL/dy[n, 2] * w[2, 0]" \
        in words
    batch = {c.computed: c for c in walk.checks if c.computed.startswith("batch")}
    assert len(batch) == 3 and all(c.holds for c in batch.values())
    # the batch's dL/dw really is the sum of the two images' own
    a = walk.arrays
    second = conv2d_backward(a["dL/dy"][..., ::-1, ::-1] * -1.0 + 1.0, x[None, :, ::-1, ::-1],
                             w, padding=(1, 0, 1, 0))[1]
    np.testing.assert_allclose(a["batch dL/dw"], a["dL/dw"] + second, rtol=1e-12)


def test_a_large_image_is_explained_around_p():
    x = np.arange(900.0).reshape(30, 30) % 11
    walk = walkthrough(x, np.array([[1.0, 2, 0], [0, 1, 3], [2, 0, 1]]), pixel=(17, 23))
    first = walk.steps[0].paragraphs[1]
    assert "The window of the output at p" in first and "y(16,22) = " in first
    assert "One output first, as in the article: y(16,22)" in walk.steps[2].paragraphs[0]
    assert all(c.ok for c in walk.checks)
    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    render(walk, console)
    step1 = console.export_text().split("2. im2col")[0]
    assert f"[{x[15, 21]:g}]" in step1 or f"[{int(x[15, 21])}]" in step1   # p's window shown
    small = walkthrough()
    assert "The first window, in [brackets]: y(0,0)" in small.steps[0].paragraphs[1]


def test_every_animation_frame_has_the_same_size():
    """A GIF draws a smaller frame over the last one's leftovers: all frames share one size."""
    from convcli.teach import render_gif

    for walk in (walkthrough(), walkthrough(np.arange(400.0).reshape(20, 20) / 7, pixel=(9, 9))):
        sizes = {image.size for image in render_gif.frames(walk)}
        assert len(sizes) == 1
