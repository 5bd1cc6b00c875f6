"""NaN and inf in a user's data: forward and backward count them in the summary and the JSON
(strict JSON: no NaN literals) and leak no NumPy warning; explain and fit refuse them. Summaries
piped to a file are plain lines: not wrapped, not padded."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli.cli import app


@pytest.fixture
def nan_image(tmp_path, rng):
    x = rng.random((8, 8))
    x[3, 3], x[0, 0] = np.nan, np.inf
    path = tmp_path / "nan.npy"
    np.save(path, x)
    return path


def invoke(*args, expect=0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == expect, (result.output, result.exception)
    return result


def strict_json(text):
    def refuse(constant):
        raise AssertionError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_forward_counts_them_in_json_and_table(nan_image, tmp_path):
    data = strict_json(invoke("forward", nan_image, "box3", "-o", tmp_path / "y.npy",
                              "--json").stdout)
    # box3, same padding: the NaN at (3, 3) reaches the 9 windows around it, the inf at the
    # corner (0, 0) the 4 windows that hold the corner; the two footprints do not meet
    assert data["nonfinite"] == {"x": {"nan": 1, "inf": 1}, "y": {"nan": 9, "inf": 4}}
    y = np.load(tmp_path / "y.npy")
    assert np.isnan(y).sum() == 9 and np.isinf(y).sum() == 4
    text = invoke("forward", nan_image, "box3", "-o", tmp_path / "y.npy").stdout
    assert "x 1 NaN and 1 inf, y 9 NaN and 4 inf" in text


def test_backward_counts_them_and_its_json_stays_strict(nan_image, tmp_path):
    data = strict_json(invoke("backward", nan_image, "box3", "-o", tmp_path / "g.npz",
                              "--json").stdout)
    assert data["nonfinite"]["x"] == {"nan": 1, "inf": 1}
    assert data["norms"]["grad_weight"] == "nan"


def test_finite_data_report_no_nonfinite(tmp_path, rng):
    np.save(tmp_path / "ok.npy", rng.random((5, 5)))
    data = strict_json(invoke("forward", tmp_path / "ok.npy", "box3", "-o", tmp_path / "y.npy",
                              "--json").stdout)
    assert data["nonfinite"] == {}
    assert "warning" not in invoke("forward", tmp_path / "ok.npy", "box3", "-o",
                                   tmp_path / "y.npy").stdout


def test_no_numpy_warning_leaks(tmp_path):
    x = np.full((6, 6), np.inf)
    x[0, 0] = -np.inf
    np.save(tmp_path / "inf.npy", x)
    for command in ("forward", "backward"):
        done = subprocess.run([sys.executable, "-m", "convcli", command, str(tmp_path / "inf.npy"),
                               "sobel-x", "-o", str(tmp_path / "out.bin"), "--any-suffix"],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr, done.stderr


@pytest.mark.parametrize("args", [
    ["explain", "--image", "{nan}"],
    ["fit", "{nan}", "{ok}", "-k", "3"],
    ["fit", "{ok}", "{nan}", "-k", "3"],
    ["gradcheck", "{nan}", "box3"],
])
def test_explain_fit_and_gradcheck_refuse_them(nan_image, tmp_path, rng, args):
    np.save(tmp_path / "ok.npy", rng.random((8, 8)))
    args = [a.format(nan=nan_image, ok=tmp_path / "ok.npy") for a in args]
    result = invoke(*args, expect=2)
    assert "2 non-finite values (1 NaN, 1 inf)" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_piped_summary_is_plain_lines(tmp_path, rng):
    long_name = tmp_path / ("a-rather-long-folder-name-" * 3) / "image.npy"
    long_name.parent.mkdir()
    np.save(long_name, rng.random((5, 5)))
    text = invoke("forward", long_name, "box3").stdout
    lines = text.splitlines()
    assert all(line == line.rstrip() for line in lines)
    assert any(len(line) > 80 for line in lines)                  # long lines are not wrapped
    assert [line.split()[0] for line in lines] == ["input", "kernel", "padding", "stride",
                                                   "output", "time", "written"]


def test_grad_output_and_a_loss_conflict(tmp_path, rng):
    np.save(tmp_path / "x.npy", rng.random((5, 5)))
    np.save(tmp_path / "g.npy", rng.random((5, 5)))
    result = invoke("backward", tmp_path / "x.npy", "box3", "--grad-output", tmp_path / "g.npy",
                    "--loss", "mse", "--target", tmp_path / "g.npy", expect=2)
    assert "cannot go with --loss mse or --target" in result.output


def test_gray_applies_to_the_target(tmp_path, rng):
    colour = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(colour, "RGB").save(tmp_path / "c.png")
    data = strict_json(invoke("backward", tmp_path / "c.png", "box3", "--gray", "--loss", "mse",
                              "--target", tmp_path / "c.png", "-o", tmp_path / "g.npz",
                              "--json").stdout)
    with np.load(tmp_path / "g.npz") as f:
        grey = f["input"]
        assert grey.shape == (1, 1, 12, 10)
        # T is the same picture in grey: y − T is the blur's change of the grey image
        np.testing.assert_allclose(f["grad_output"], f["y"] - grey, atol=1e-12)
    assert data["L"] > 0
