"""convcli forward / backward / kernels through Typer's CliRunner: the arrays written equal the
core's results on the loaded image, and every user mistake is one line, exit 2, nothing written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli import conv2d, conv2d_backward, outputs
from convcli.cli import app
from convcli.outputs import write_atomic

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SOBEL_X = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def run(*args, expect=0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == expect, (result.output, result.exception)
    return result


def depthwise(kernel, channels):
    return np.tile(kernel[None, None], (channels, 1, 1, 1))


@pytest.fixture
def pixels(rng):
    return rng.integers(0, 256, size=(9, 7, 3), dtype=np.uint8)


def forward_array(tmp_path, image_path, kernel="sobel-x", *extra):
    out = tmp_path / "y.npy"
    run("forward", image_path, kernel, "--out", out, *extra)
    return np.load(out, allow_pickle=False)


def test_forward_rgb_8bit(tmp_path, pixels):
    Image.fromarray(pixels, "RGB").save(tmp_path / "rgb.png")
    y = forward_array(tmp_path, tmp_path / "rgb.png")
    x = pixels.transpose(2, 0, 1)[None] / 255.0                       # (1, 3, 9, 7)
    np.testing.assert_allclose(y, conv2d(x, depthwise(SOBEL_X, 3), padding=1, groups=3),
                               rtol=1e-13, atol=1e-13)


def test_forward_grey_8bit_and_16bit_full_precision(tmp_path, rng):
    grey = rng.integers(0, 256, size=(6, 8), dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    y = forward_array(tmp_path, tmp_path / "grey.png", "box3")
    np.testing.assert_allclose(y, conv2d(grey[None, None] / 255.0, np.full((1, 1, 3, 3), 1 / 9),
                                         padding=1), rtol=1e-13, atol=1e-13)
    deep = rng.integers(0, 65536, size=(6, 8), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    y = forward_array(tmp_path, tmp_path / "deep.png", "identity")
    np.testing.assert_array_equal(y[0, 0], deep / 65535.0)        # not clipped to 8 bits


def test_forward_palette_uses_colours_not_indices(tmp_path, pixels):
    palette_image = Image.fromarray(pixels, "RGB").quantize(colors=16)
    palette_image.save(tmp_path / "p.png")
    colours = np.asarray(palette_image.convert("RGB")).transpose(2, 0, 1)[None] / 255.0
    y = forward_array(tmp_path, tmp_path / "p.png", "identity")
    np.testing.assert_array_equal(y, colours)


def test_forward_rgba_drops_alpha_and_says_so(tmp_path, pixels):
    alpha = np.full(pixels.shape[:2] + (1,), 7, dtype=np.uint8)
    Image.fromarray(np.concatenate([pixels, alpha], axis=2), "RGBA").save(tmp_path / "a.png")
    out = tmp_path / "y.npy"
    result = run("forward", tmp_path / "a.png", "identity", "--out", out)
    assert "alpha channel dropped" in result.stdout
    np.testing.assert_array_equal(np.load(out), pixels.transpose(2, 0, 1)[None] / 255.0)


def test_forward_applies_exif_orientation(tmp_path, pixels):
    image = Image.fromarray(pixels, "RGB")
    exif = image.getexif()
    exif[0x0112] = 6                                   # orientation: rotate 90° clockwise
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    y = forward_array(tmp_path, tmp_path / "rotated.jpg", "identity")
    assert y.shape == (1, 3, 7, 9)                     # width and height swapped
    stored = np.asarray(Image.open(tmp_path / "rotated.jpg")) / 255.0   # as saved, (9, 7, 3)
    np.testing.assert_allclose(y[0], np.rot90(stored, k=-1).transpose(2, 0, 1), atol=1e-12)


@pytest.mark.parametrize("mode", ["1", "LA", "I", "F", "CMYK"])
def test_forward_other_modes(tmp_path, pixels, mode):
    image = Image.fromarray(pixels, "RGB").convert(mode)
    image.save(tmp_path / f"m.{'tif' if mode in ('I', 'F', 'CMYK') else 'png'}")
    path = next(tmp_path.glob("m.*"))
    y = forward_array(tmp_path, path, "identity")
    expected = {
        "1": np.asarray(image.convert("L"))[None] / 255.0,
        "LA": np.asarray(image.convert("L"))[None] / 255.0,
        "I": np.asarray(image, dtype=np.float64)[None],
        "F": np.asarray(image, dtype=np.float64)[None],
        "CMYK": np.asarray(image.convert("RGB")).transpose(2, 0, 1) / 255.0,
    }[mode]
    np.testing.assert_allclose(y[0], expected, atol=1e-6)


def test_forward_npy_shapes_gray_and_dtype(tmp_path, rng):
    x = rng.standard_normal((3, 5, 6))
    np.save(tmp_path / "x.npy", x)
    y = forward_array(tmp_path, tmp_path / "x.npy", "1 2; 3 4", "--padding", "valid",
                      "--dtype", "float32")
    assert y.dtype == np.float32
    w = depthwise(np.array([[1.0, 2], [3, 4]]), 3).astype(np.float32)
    np.testing.assert_allclose(y, conv2d(x[None].astype(np.float32), w, groups=3), rtol=1e-6)
    result = run("forward", tmp_path / "x.npy", "identity", "--gray", "--out", tmp_path / "y.npy")
    assert "luma 0.299 R + 0.587 G + 0.114 B" in result.stdout
    y = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(y[0, 0], 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2], atol=1e-12)


def test_forward_full_kernel_geometry_and_bias(tmp_path, rng):
    x = rng.standard_normal((1, 2, 9, 8))
    w = rng.standard_normal((3, 2, 3, 2))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    out = tmp_path / "y.npy"
    result = run("forward", tmp_path / "x.npy", tmp_path / "w.npy", "--stride", "2,1",
                 "--padding", "2,0,1,1", "--dilation", "1,2", "--bias", "1,2,3", "--out", out,
                 "--json")
    report = json.loads(result.stdout)
    assert report["geometry"]["padding"] == {"top": 2, "bottom": 0, "left": 1, "right": 1}
    expected = conv2d(x, w, np.array([1.0, 2, 3]), stride=(2, 1), padding=(2, 0, 1, 1),
                      dilation=(1, 2))
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-13, atol=1e-13)
    assert report["output"]["shape"] == list(expected.shape)


def test_kernel_text_formats(tmp_path):
    (tmp_path / "x.npy").write_bytes(b"")
    np.save(tmp_path / "x.npy", np.arange(30.0).reshape(5, 6))
    y = forward_array(tmp_path, tmp_path / "x.npy", SAMPLES / "blur-row5.txt", "--padding",
                      "valid")
    assert y.shape == (1, 1, 5, 2)                                     # a 1×5 row stays 1×5
    y = forward_array(tmp_path, tmp_path / "x.npy", SAMPLES / "edges-xy.txt")
    assert y.shape == (1, 2, 5, 6)                                     # two output channels
    np.testing.assert_allclose(y[0, 1], conv2d(np.arange(30.0).reshape(1, 1, 5, 6),
                                               SOBEL_X.T[None, None], padding=1)[0, 0])
    y_file = forward_array(tmp_path, tmp_path / "x.npy", SAMPLES / "sobel-x.txt")
    y_inline = forward_array(tmp_path, tmp_path / "x.npy", "-1 0 1; -2,0,2; -1 0 1")
    y_preset = forward_array(tmp_path, tmp_path / "x.npy", "sobel-x")
    np.testing.assert_array_equal(y_file, y_preset)
    np.testing.assert_array_equal(y_inline, y_preset)


def test_png_mappings(tmp_path, pixels):
    Image.fromarray(pixels, "RGB").convert("L").save(tmp_path / "g.png")
    result = run("forward", tmp_path / "g.png", "sobel-x", "--out", tmp_path / "y.npy",
                 "--png", tmp_path / "s.png")
    assert "mid grey" in result.stdout
    y = np.load(tmp_path / "y.npy")[0, 0]
    picture = np.asarray(Image.open(tmp_path / "s.png"))
    scale = np.abs(y).max()
    np.testing.assert_array_equal(picture, np.round(np.clip(0.5 + y / (2 * scale), 0, 1) * 255))
    run("forward", tmp_path / "g.png", "sharpen", "--out", tmp_path / "y.npy",
        "--png", tmp_path / "c.png")
    y = np.load(tmp_path / "y.npy")[0, 0]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "c.png")),
                                  np.round(np.clip(y, 0, 1) * 255))
    run("forward", tmp_path / "g.png", "sharpen", "--out", tmp_path / "y.npy",
        "--png", tmp_path / "n.png", "--normalize")
    picture = np.asarray(Image.open(tmp_path / "n.png"))
    assert picture.min() == 0 and picture.max() == 255


def test_backward_npz_matches_core(tmp_path, pixels, rng):
    Image.fromarray(pixels, "RGB").save(tmp_path / "rgb.png")
    x = pixels.transpose(2, 0, 1)[None] / 255.0
    w = depthwise(SOBEL_X, 3)
    out = tmp_path / "b.npz"
    result = run("backward", tmp_path / "rgb.png", "sobel-x", "--out", out, "--png-dx",
                 tmp_path / "dx.png")
    assert "dL/dw[0,0]" in result.stdout and "dL/dw[2,0]" in result.stdout
    assert "L = Σy" in result.stdout
    saved = np.load(out, allow_pickle=False)
    y = conv2d(x, w, padding=1, groups=3)
    np.testing.assert_allclose(saved["y"], y, atol=1e-13)
    np.testing.assert_array_equal(saved["grad_output"], np.ones_like(y))
    for name, want in zip(("grad_input", "grad_weight", "grad_bias"),
                          conv2d_backward(np.ones_like(y), x, w, padding=1, groups=3)):
        np.testing.assert_allclose(saved[name], want, rtol=1e-12, atol=1e-12)
    assert saved["padding"].tolist() == [1, 1, 1, 1] and int(saved["groups"]) == 3
    assert Image.open(tmp_path / "dx.png").size == (7, 9)

    # a given, random dL/dy
    grad = rng.standard_normal(y.shape)
    np.save(tmp_path / "dy.npy", grad)
    run("backward", tmp_path / "rgb.png", "sobel-x", "--grad-output", tmp_path / "dy.npy",
        "--out", out)
    saved = np.load(out)
    np.testing.assert_allclose(saved["grad_input"],
                               conv2d_backward(grad, x, w, padding=1, groups=3)[0], atol=1e-12)


def test_backward_mse_target(tmp_path, rng):
    x, t = rng.standard_normal((1, 1, 6, 5)), rng.standard_normal((1, 1, 6, 5))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t[0, 0])
    result = run("backward", tmp_path / "x.npy", "gaussian3", "--loss", "mse", "--target",
                 tmp_path / "t.npy", "--out", tmp_path / "b.npz", "--json")
    report = json.loads(result.stdout)
    w = np.outer([1, 2, 1], [1, 2, 1])[None, None] / 16
    y = conv2d(x, w, padding=1)
    assert report["L"] == pytest.approx(0.5 * np.sum((y - t) ** 2), rel=1e-12)
    saved = np.load(tmp_path / "b.npz")
    np.testing.assert_allclose(saved["grad_output"], y - t, atol=1e-13)
    np.testing.assert_allclose(saved["grad_weight"],
                               conv2d_backward(y - t, x, w, padding=1)[1], rtol=1e-12)


def test_kernels_lists_presets():
    result = CliRunner().invoke(app, ["kernels"], env={"COLUMNS": "160"})
    assert "sobel-x" in result.stdout and "gaussian5" in result.stdout
    assert "x[j+1] - x[j]" in result.stdout                 # not eaten as rich markup
    presets = json.loads(run("kernels", "--json").stdout)
    assert presets["laplacian"]["matrix"] == [[0, 1, 0], [1, -4, 1], [0, 1, 0]]


def test_version_and_help_with_examples():
    assert run("--version").stdout.strip() == "convcli 0.1.0"
    assert "forward" in run("-h").stdout
    for command in ("forward", "backward", "kernels"):
        text = run(command, "--help").stdout
        assert "Example" in text, command


# --- a user's mistakes: one line on stderr, exit 2, nothing written ---------------------------


@pytest.fixture
def small(tmp_path, rng):
    np.save(tmp_path / "x.npy", rng.standard_normal((1, 3, 6, 6)))
    Image.fromarray(np.zeros((6, 6), dtype=np.uint8)).save(tmp_path / "g.png")
    (tmp_path / "empty.txt").write_text("# nothing here\n\n")
    (tmp_path / "ragged.txt").write_text("1 2 3\n4 5\n")
    (tmp_path / "word.txt").write_text("1 2\n3 x4\n")
    (tmp_path / "notimage.png").write_text("hello")
    (tmp_path / "notimage.npy").write_text("hello")
    (tmp_path / "dy.npy").write_bytes(b"")
    np.save(tmp_path / "dy.npy", np.zeros((1, 3, 5, 5)))
    return tmp_path


BAD = [
    (["forward", "missing.png", "box3"], "no such image file"),
    (["forward", "notimage.png", "box3"], "is not an image"),
    (["forward", "x.npy", "empty.txt"], "empty.txt has no numbers"),
    (["forward", "x.npy", "ragged.txt"], "ragged.txt, line 2: 2 numbers but the rows above have 3"),
    (["forward", "x.npy", "word.txt"], "word.txt, line 2: 'x4' is not a number"),
    (["forward", "x.npy", "missing.txt"], "no such kernel file"),
    (["forward", "x.npy", "box5", "--padding", "valid", "--dilation", "2"],
     "kernel 9×9 (dilated) is larger than the padded input 6×6"),
    (["backward", "x.npy", "box3", "--grad-output", "dy.npy"],
     "--grad-output has shape (1, 3, 5, 5) but y has shape (1, 3, 6, 6)"),
    (["backward", "x.npy", "box3", "--loss", "mse", "--target", "g.png"],
     "--target has shape (1, 1, 6, 6) but y has shape (1, 3, 6, 6)"),
    (["forward", "x.npy", "sobelx"], "unknown kernel preset 'sobelx': did you mean sobel-x"),
    (["forward", "x.npy", "box3", "--stride", "0"], "--stride must be at least 1"),
    (["forward", "x.npy", "box3", "--dilation", "1,-2"], "--dilation must be at least 1"),
    (["forward", "x.npy", "box3", "--stride", "a"], "--stride must be N or H,W"),
    (["forward", "x.npy", "box3", "--padding", "1,2,3"], "--padding must be N or H,W or T,B,L,R"),
    (["forward", "x.npy", "4d.npy", "--groups", "2"], "groups=2 does not divide 3 input channels"),
    (["forward", "x.npy", "box3", "--out", "x.npy"], "is also an input"),
    (["forward", "x.npy", "box3", "--out", "nowhere/y.npy"], "output folder nowhere does not exist"),
    (["forward", "g.png", "box3", "--max-pixels", "10"],
     "has 36 pixels, over the limit of 10 (Pillow's decompression-bomb guard): pass --max-pixels 36"),
    (["forward", "x.npy", "box3", "--dtype", "float16"], "Invalid value for '--dtype'"),
    (["backward", "x.npy", "box3", "--loss", "mse"], "--loss mse needs --target"),
    (["forward", "x.npy", "box3", "--bias", "1,2"], "--bias has 2 values for 3 output channel(s)"),
    (["forward", "x.npy", "box3", "--pngg", "y.png"], "No such option: --pngg"),
    (["forward", "x.npy", "box3", "--png", "nowhere/y.png"],
     "output folder nowhere does not exist: create it or choose another --png"),
    (["forward", "x.npy", "box3", "--png", "y.jpg"], "--png writes a PNG: give a name ending in .png"),
    (["backward", "x.npy", "box3", "--target", "g.png"], "--target is the T of --loss mse"),
    (["forward", "x.npy", "1 x; 3 4"], "the inline kernel, line 1: 'x' is not a number"),
    (["forward", "x.npy", "my kernel.txt"], "no such kernel file: my kernel.txt"),
    (["forward", "notimage.npy", "box3"], "notimage.npy is not a NumPy .npy array of numbers"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[m[:40] for _, m in BAD])
def test_user_mistakes(small, monkeypatch, args, message):
    monkeypatch.chdir(small)
    np.save(small / "4d.npy", np.ones((2, 1, 3, 3)))
    before = {p.name: p.read_bytes() for p in small.iterdir() if p.is_file()}
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    after = {p.name: p.read_bytes() for p in small.iterdir() if p.is_file()}
    assert after == before                              # nothing created, nothing changed


def test_internal_error_exits_1_and_debug_shows_traceback(small, monkeypatch):
    monkeypatch.chdir(small)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("convcli.api.conv2d", broken)
    result = CliRunner().invoke(app, ["forward", "x.npy", "box3"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        ("error: internal error: RuntimeError: boom (run with --debug for the traceback, and "
        "please report it)")]
    result = CliRunner().invoke(app, ["--debug", "forward", "x.npy", "box3"])
    assert isinstance(result.exception, RuntimeError)
    assert not (small / "x.forward.npy").exists()


def test_interrupted_write_leaves_old_file_whole(tmp_path):
    target = tmp_path / "y.npy"
    target.write_bytes(b"old")

    def half_then_fail(file):
        file.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["y.npy"]      # no temporary file left


@pytest.mark.slow
def test_installed_script_and_python_m(tmp_path):
    env = dict(os.environ, COLUMNS="100")
    out = tmp_path / "cam.npy"
    done = subprocess.run(["convcli", "forward", str(SAMPLES / "camera.png"), "box3", "--out",
                           str(out), "--json"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"]["shape"] == [1, 1, 512, 512]
    done = subprocess.run([sys.executable, "-m", "convcli", "--version"], capture_output=True,
                          text=True, check=False)
    assert done.stdout.strip() == "convcli 0.1.0"
    done = subprocess.run(["convcli", "forward", str(tmp_path / "nope.png"), "box3"],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("extension", ["bmp", "tif", "webp", "gif"])
def test_forward_reads_other_formats(tmp_path, pixels, extension):
    image = Image.fromarray(pixels, "RGB")
    if extension == "gif":                              # two frames: the first one is used
        frames = [image.quantize(colors=32), image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)]
        frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
        expected = np.asarray(frames[0].convert("RGB"))
    else:
        image.save(tmp_path / f"a.{extension}", **({"lossless": True} if extension == "webp" else {}))
        expected = pixels
    out = tmp_path / "y.npy"
    result = run("forward", tmp_path / f"a.{extension}", "identity", "--out", out)
    np.testing.assert_array_equal(np.load(out)[0], expected.transpose(2, 0, 1) / 255.0)
    if extension == "gif":
        assert "first of 2 frames" in result.stdout


def test_written_files_get_the_usual_permissions(tmp_path):
    target = tmp_path / "y.bin"
    mask = os.umask(0o022)
    try:
        write_atomic(target, lambda file: file.write(b"data"))
    finally:
        os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o644


def test_two_outputs_with_one_name_are_refused(tmp_path, rng, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", rng.standard_normal((5, 5)))
    for args in (["forward", "x.npy", "box3", "--out", "a.png", "--png", "a.png", "--any-suffix"],
                 ["backward", "x.npy", "box3", "--out", "a.png", "--png-dx", "./a.png",
                  "--any-suffix"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "is also another output of this run" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_a_failed_second_output_leaves_the_first_untouched(tmp_path, monkeypatch):
    (tmp_path / "y.npy").write_bytes(b"old")

    def failing(file):
        raise OSError("disk full")

    with pytest.raises(OSError):
        outputs.write_all([(tmp_path / "y.npy", outputs.npy_writer(np.zeros(3))),
                      (tmp_path / "y.png", failing)])
    assert (tmp_path / "y.npy").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.npy"]


def _png_16bit_rgb(path, rgb):
    """A 48-bit PNG written by hand (Pillow cannot write one)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].astype(">u2").tobytes() for i in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
                     chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16bit_colour_json_notes_say_how_it_was_read(tmp_path, rng):
    """With the images extra: full precision; tests/cli/test_deep_images.py covers both."""
    pytest.importorskip("imagecodecs", reason="the images extra is not installed")
    rgb = rng.integers(0, 65536, size=(4, 5, 3))
    _png_16bit_rgb(tmp_path / "deep.png", rgb)
    out = tmp_path / "y.npy"
    result = run("forward", tmp_path / "deep.png", "identity", "--out", out, "--json")
    assert "16-bit, scaled to [0, 1]" in json.loads(result.stdout)["input"]["source"]
    np.testing.assert_array_equal(np.load(out)[0] * 65535, rgb.transpose(2, 0, 1))


def test_signed_input_is_pictured_around_grey(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[-2.0, 0.0], [1.0, 2.0]]))
    result = run("forward", tmp_path / "x.npy", "identity", "--out", tmp_path / "y.npy",
                 "--png", tmp_path / "y.png", "--json")
    assert json.loads(result.stdout)["picture"].startswith("signed")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "y.png")),
                                  [[0, 128], [191, 255]])


def test_backward_with_bias(tmp_path, rng):
    x, t = rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((1, 1, 5, 5))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    run("backward", tmp_path / "x.npy", "box3", "--bias", "0.5", "--loss", "mse", "--target",
        tmp_path / "t.npy", "--out", tmp_path / "b.npz")
    saved = np.load(tmp_path / "b.npz")
    y = conv2d(x, np.full((1, 1, 3, 3), 1 / 9), np.array([0.5]), padding=1)
    np.testing.assert_allclose(saved["y"], y, atol=1e-13)
    np.testing.assert_allclose(saved["grad_bias"], [np.sum(y - t)], rtol=1e-12)


def test_memory_budget_option(tmp_path, rng):
    """A budget far below one output row still gives the same arrays, row by row."""
    np.save(tmp_path / "x.npy", rng.standard_normal((2, 3, 20, 30)))
    run("forward", tmp_path / "x.npy", "gaussian5", "--out", tmp_path / "a.npy")
    run("forward", tmp_path / "x.npy", "gaussian5", "--out", tmp_path / "b.npy",
        "--memory-budget", "0.0001")
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"),
                               rtol=1e-13, atol=1e-15)     # BLAS may sum in another order
    run("backward", tmp_path / "x.npy", "sobel-x", "--out", tmp_path / "a.npz", "--stride", "2")
    run("backward", tmp_path / "x.npy", "sobel-x", "--out", tmp_path / "b.npz", "--stride", "2",
        "--memory-budget", "0.0001")
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    for name in ("y", "grad_input", "grad_weight", "grad_bias"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-12)
    result = CliRunner().invoke(app, ["forward", str(tmp_path / "x.npy"), "box3",
                                      "--memory-budget", "0"])
    assert result.exit_code == 2 and "--memory-budget must be a positive" in result.stderr


def test_all_nan_input_reports_no_finite_values(tmp_path):
    np.save(tmp_path / "x.npy", np.full((4, 4), np.nan))
    result = run("forward", tmp_path / "x.npy", "box3", "--out", tmp_path / "y.npy")
    assert "range no finite values" in result.stdout
    assert result.stderr == ""                              # no NumPy "All-NaN slice" warning
    assert np.isnan(np.load(tmp_path / "y.npy")).all()


@pytest.mark.parametrize("error", [ValueError, TypeError])
@pytest.mark.parametrize("args", [("forward", "x.npy", "box3"), ("backward", "x.npy", "box3"),
                                  ("gradcheck", "x.npy", "box3"), ("explain",)])
def test_a_bug_deep_in_the_core_is_ours_not_the_users(small, monkeypatch, args, error):
    """A ValueError or TypeError from NumPy-level code is no user mistake: exit 1, "please report"."""
    monkeypatch.chdir(small)

    def broken(*a, **k):
        raise error("operands could not be broadcast together")

    monkeypatch.setattr("convcli.columns.windows_t", broken)
    monkeypatch.setattr("convcli.columns.windows", broken)
    monkeypatch.setattr("convcli.flat.columns_t", broken)           # stride 1's X_col
    before = sorted(p.name for p in small.iterdir())
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: internal error: {error.__name__}: operands could not")
    assert "please report it" in line
    assert sorted(p.name for p in small.iterdir()) == before            # nothing written


def test_submodules_are_modules():
    """No lazy-import trick: the module convcli.columns and the function convcli.im2col differ."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", "import convcli.columns as m; print(m.__name__)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout == "convcli.columns\n"
