"""Kernels as people write them: fractions (the way `convcli kernels` prints box3), the
typographic minus sign, a file saved with a BOM; a folder, an empty inline row and a file
named like a preset are said plainly."""

import numpy as np
import pytest
from typer.testing import CliRunner

from convcli.cli import app
from convcli.errors import InputError
from convcli.kernels import PRESETS, load_kernel, number_of


@pytest.mark.parametrize("token, value", [
    ("1/9", 1 / 9), ("-2/16", -0.125), ("\u22121", -1.0), ("\u22121/4", -0.25), ("3e-1", 0.3),
])
def test_numbers_fractions_and_the_minus_sign(token, value):
    assert number_of(token) == pytest.approx(value, abs=0, rel=1e-15)


def test_box3_as_convcli_kernels_prints_it_is_box3():
    kernel, source = load_kernel("1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9")
    np.testing.assert_array_equal(kernel, PRESETS["box3"][1])
    assert source == "inline"


def test_a_bom_and_minus_signs_in_a_file(tmp_path):
    path = tmp_path / "sobel.txt"
    path.write_bytes("\ufeff\u22121 0 1\n\u22122 0 2\n\u22121 0 1\n".encode())
    np.testing.assert_array_equal(load_kernel(str(path))[0], PRESETS["sobel-x"][1])


@pytest.mark.parametrize("spec, message", [
    ("1 2;; 3 4", "empty row (;;)"),
    ("1/0 1; 1 1", "'1/0' is not a number"),
])
def test_inline_mistakes(spec, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_kernel(spec)


def test_a_folder_is_called_a_folder(tmp_path):
    (tmp_path / "kernels").mkdir()
    with pytest.raises(InputError, match="is a folder: give a kernel file inside it"):
        load_kernel(str(tmp_path / "kernels"))


def test_a_file_named_like_a_preset_wins_with_a_note(tmp_path, monkeypatch, rng):
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", rng.random((6, 6)))
    (tmp_path / "box3").write_text("1 1\n1 1\n")
    result = CliRunner().invoke(app, ["forward", "x.npy", "box3", "-o", "y.npy"])
    assert result.exit_code == 0, result.output
    assert "note: using the file ./box3, not the preset box3" in result.stderr
    assert "box3 (a file; not the preset box3)" in result.stdout
    assert np.load("y.npy").shape == (1, 1, 6, 6)
    quiet = CliRunner().invoke(app, ["forward", "x.npy", "box3", "-o", "y.npy", "-q"])
    assert quiet.output == ""


def test_png_of_a_batch_draws_every_image(tmp_path, rng):
    """N = 2 used to draw only the first image."""
    from PIL import Image

    x = rng.random((2, 1, 5, 7))
    x[1] = 1.0 - x[1]
    np.save(tmp_path / "batch.npy", x)
    result = CliRunner().invoke(app, ["forward", str(tmp_path / "batch.npy"), "identity",
                                      "--png", str(tmp_path / "y.png"), "-o",
                                      str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output
    assert "2 images top to bottom" in result.stdout
    picture = np.asarray(Image.open(tmp_path / "y.png"))
    assert picture.shape == (10, 7)
    np.testing.assert_array_equal(picture, np.round(np.clip(x, 0, 1) * 255).reshape(10, 7))


@pytest.mark.parametrize("command", [[], ["forward"], ["backward"], ["gradcheck"], ["explain"],
                                     ["fit"], ["kernels"]])
def test_flags_show_no_value_type_in_help(command):
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=100)
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout and "--help" in result.stdout
    assert "<" in result.stdout or command in ([], ["kernels"])   # options with values keep it


@pytest.mark.parametrize("args, message", [
    (["explain", "--pixel", "9,9"], ("--pixel must be I,J (or C,I,J) inside x of shape "
                                     "(C, H, W) = (1, 4, 4), got 9,9")),
    (["forward", "{strings}", "box3"], "holds <U1 values; the image array must hold real"),
])
def test_messages_name_what_was_typed(tmp_path, args, message):
    np.save(tmp_path / "s.npy", np.array(["a"]))
    args = [a.format(strings=tmp_path / "s.npy") for a in args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in result.output, result.output
