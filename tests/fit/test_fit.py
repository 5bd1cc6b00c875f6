"""convcli fit: known kernels recovered from a real photograph by least squares and by Adam,
the luma weights of an RGB-to-grey conversion (ours and Pillow's), the written kernel file read
back by `convcli forward`, a never-rising SGD loss, the plot, and every user mistake exiting 2
with nothing written."""

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli import conv2d
from convcli.cli import app
from convcli.errors import InputError
from convcli.fit import fit, loss, plot, safe_sgd_lr
from convcli.fit.solve import STEPS
from convcli.images import LUMA, load_image
from convcli.kernels import preset

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
# camera.png rows 448:512, columns 320:384: grass and a tripod foot. Texture pins every kernel
# tap (X_col's condition number is ~40); on a smooth patch such as the sky, high-frequency
# patterns in the kernel barely change y and gradient descent needs far more steps (lstsq
# does not care).
CROP = (slice(448, 512), slice(320, 384))
KERNELS = {
    "sobel-x": preset("sobel-x"),
    "gaussian3": preset("gaussian3"),
    "random5x5": np.random.default_rng(7).standard_normal((5, 5)),
}
BIAS = 0.25


def run(*args, expect=0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == expect, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def camera():
    """x (1, 1, 64, 64) float64 in [0, 1]: a crop of the real photograph."""
    return load_image(SAMPLES / "camera.png").array[:, :, CROP[0], CROP[1]]


@pytest.fixture(scope="module")
def astronaut():
    """x (1, 3, 64, 64): a colourful crop (face, flag and suit) of the RGB sample."""
    return load_image(SAMPLES / "astronaut.png").array[:, :, 100:164, 200:264]


@pytest.fixture
def crop_png(tmp_path, camera):
    """The camera crop as an 8-bit PNG: loading it gives `camera` exactly."""
    path = tmp_path / "crop.png"
    Image.fromarray(np.round(camera[0, 0] * 255).astype(np.uint8), "L").save(path)
    np.testing.assert_array_equal(load_image(path).array, camera)
    return path


@pytest.mark.parametrize("name", KERNELS)
def test_lstsq_recovers_the_kernel_and_bias(camera, name):
    w = KERNELS[name][None, None]                                     # (1, 1, K, K)
    t = conv2d(camera, w, np.array([BIAS]), padding="same")
    found = fit(camera, t, w.shape[2:], method="lstsq", padding="same")
    assert found.weight.shape == w.shape and found.groups == 1
    assert np.abs(found.weight - w).max() < 1e-8
    assert abs(found.bias[0] - BIAS) < 1e-8
    assert found.rank == w.size + 1 and found.condition < 1e3
    assert found.losses[0] < 1e-25


@pytest.mark.slow
@pytest.mark.parametrize("name", KERNELS)
def test_adam_recovers_the_kernel_within_the_default_steps(camera, name):
    w = KERNELS[name][None, None]
    t = conv2d(camera, w, np.array([BIAS]), padding="same")
    found = fit(camera, t, w.shape[2:], padding="same")              # Adam, lr 0.1, seed 0
    assert found.steps <= STEPS
    assert np.abs(found.weight - w).max() < 1e-3
    assert abs(found.bias[0] - BIAS) < 1e-3
    # The weights returned are those of the lowest loss seen (Adam's loss is not monotone).
    assert loss(camera, t, found.weight, found.bias, padding="same") == min(found.losses)


def test_rgb_to_grey_1x1_recovers_the_luma_weights(astronaut):
    grey = np.tensordot(LUMA, astronaut, axes=([0], [1]))[:, None]   # (1, 1, 64, 64)
    found = fit(astronaut, grey, 1, method="lstsq")
    assert found.weight.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(found.weight.ravel(), LUMA, rtol=0, atol=1e-12)
    assert abs(found.bias[0]) < 1e-12


def test_rgb_to_grey_recovers_pillows_conversion(tmp_path):
    """An independent system: Pillow's convert("L") (ITU-R 601-2 luma, rounded to 8 bits)."""
    rgb = Image.open(SAMPLES / "astronaut.png").crop((200, 100, 264, 164))
    rgb.save(tmp_path / "rgb.png")
    rgb.convert("L").save(tmp_path / "grey.png")
    report = json.loads(run("fit", tmp_path / "rgb.png", tmp_path / "grey.png", "-k", "1",
                            "--method", "lstsq", "--no-bias", "--json").output)
    weights = np.array(report["kernel"]["weight"]).ravel()
    np.testing.assert_allclose(weights, [0.299, 0.587, 0.114], rtol=0, atol=2e-3)  # 8-bit noise
    assert report["written"] == [str(tmp_path / "grey.kernel.npy")]   # text holds no (1, 3, ·, ·)
    np.testing.assert_array_equal(np.load(tmp_path / "grey.kernel.npy").ravel(), weights)


def test_depthwise_learns_one_kernel_per_channel(astronaut):
    w = np.stack([preset(name) for name in ("sobel-y", "gaussian3", "laplacian")])[:, None]
    t = conv2d(astronaut, w, padding="same", groups=3)               # (1, 3, 64, 64)
    found = fit(astronaut, t, 3, method="lstsq", depthwise=True, padding="same")
    assert found.weight.shape == (3, 1, 3, 3) and found.groups == 3
    assert np.abs(found.weight - w).max() < 1e-8
    ordinary = fit(astronaut, t, 3, method="lstsq", padding="same")  # every channel mixed
    assert ordinary.weight.shape == (3, 3, 3, 3)
    assert np.abs(ordinary.weight[[0, 1, 2], [0, 1, 2]] - w[:, 0]).max() < 1e-6


@pytest.mark.slow
def test_sgd_with_a_small_lr_never_raises_the_loss(camera):
    t = conv2d(camera, KERNELS["random5x5"][None, None], padding="same")
    lr = safe_sgd_lr(camera, t, 5, padding="same")
    found = fit(camera, t, 5, optimizer="sgd", steps=300, padding="same")   # lr defaults to it
    assert found.lr == lr
    assert found.steps == 300 and np.all(np.diff(found.losses) <= 0)
    assert found.losses[-1] < 0.05 * found.losses[0]
    # Teeth: past 2 / (largest curvature) the same descent rises and then diverges.
    with pytest.raises(InputError, match="diverged"):
        fit(camera, t, 5, optimizer="sgd", lr=100 * lr, steps=300, padding="same")


@pytest.mark.slow
def test_stops_on_an_exact_fit_and_on_a_plateau(camera):
    t = conv2d(camera, KERNELS["gaussian3"][None, None], padding="same")
    seen = []
    found = fit(camera, t, 3, padding="same", callback=lambda *a: seen.append(a))
    assert found.stopped == "exact" and found.steps < STEPS
    assert seen == list(enumerate(found.losses))
    # No 3×3 kernel makes a 5×5 blur: L levels off at the least-squares minimum, a plateau.
    t = conv2d(camera, preset("gaussian5")[None, None], padding="same")
    found = fit(camera, t, 3, padding="same", tol=1e-3)
    assert found.stopped == "plateau" and found.lr_cuts == 2 and found.steps < STEPS
    floor = fit(camera, t, 3, padding="same", method="lstsq").losses[0]
    assert floor > 1e-8 and floor <= min(found.losses) < 1.01 * floor
    assert fit(camera, t, 3, padding="same", steps=150).stopped == "steps"


def test_cli_kernel_file_round_trips_through_forward(tmp_path, crop_png, camera):
    run("forward", crop_png, "gaussian3", "--bias", "-0.125", "--out", tmp_path / "t.npy")
    report = json.loads(run("fit", crop_png, tmp_path / "t.npy", "--kernel-size", "3",
                            "--method", "lstsq", "--true-kernel", "gaussian3", "--json").output)
    kernel_file = tmp_path / "t.kernel.txt"                           # beside the target
    assert report["written"] == [str(kernel_file)]
    assert report["max_abs_difference"]["weight_vs_true"] < 1e-8
    w, b = np.array(report["kernel"]["weight"]), np.array(report["kernel"]["bias"])
    assert abs(b[0] + 0.125) < 1e-8
    # The file's header says how to apply it; run exactly that.
    header = next(line for line in kernel_file.read_text().splitlines() if "apply it:" in line)
    command = shlex.split(header.split("apply it: ", 1)[1])
    assert command[:2] == ["convcli", "forward"]
    run(*command[1:], "--out", tmp_path / "back.npy")
    back = np.load(tmp_path / "back.npy")
    np.testing.assert_array_equal(back, conv2d(camera, w, b, padding="same"))  # exact floats
    np.testing.assert_allclose(back, np.load(tmp_path / "t.npy"), rtol=0, atol=1e-8)


@pytest.mark.slow
def test_cli_adam_plot_and_summary(tmp_path, crop_png):
    run("forward", crop_png, "sobel-x", "--out", tmp_path / "t.npy")
    result = run("fit", crop_png, tmp_path / "t.npy", "-k", "3", "--steps", "200", "--plot",
                 tmp_path / "loss.png", "--true-kernel", "sobel-x", "--out", tmp_path / "k.npy")
    for text in ("gradient descent, adam, lr 0.1: 200 of 200 steps", "vs lstsq", "vs true",
                 "learned w", "true w"):
        assert text in result.output
    assert np.load(tmp_path / "k.npy").shape == (1, 1, 3, 3)
    with Image.open(tmp_path / "loss.png") as picture:
        assert picture.format == "PNG" and picture.size == (720, 440)
        pixels = np.asarray(picture.convert("RGB"))
    curve = np.all(pixels == plot.CURVE, axis=2)
    # A drawn line, not a frame or a dot: 200 steps spread across most of the 720-pixel width,
    # and a falling loss starts higher (smaller row) on the left than it ends on the right.
    columns = np.flatnonzero(curve.any(axis=0))
    assert columns[-1] - columns[0] > 0.6 * 720
    assert np.flatnonzero(curve[:, columns[0]])[0] < np.flatnonzero(curve[:, columns[-1]])[0]


def test_help_explains_lstsq():
    output = " ".join(run("fit", "--help").output.split())
    assert "linear regression on the im2col matrix" in output
    assert "Example: convcli forward samples/camera.png sobel-x" in output


@pytest.mark.parametrize("pair, args, message", [
    ("grey", ["--padding", "valid"], "(1, 1, 62, 62), but the target has shape (1, 1, 64, 64)"),
    ("grey", ["--method", "newton"], "Invalid value for '--method'"),
    ("grey", ["--optimizer", "rmsprop"], "Invalid value for '--optimizer'"),
    ("grey", ["--kernel-size", "0"], "--kernel-size must be >= 1"),
    ("grey", ["--kernel-size", "3x3"], "--kernel-size must be N or H,W"),
    ("grey", ["--lr", "-1"], "--lr must be positive"),
    ("grey", ["--steps", "-5"], "--steps must be at least 0"),
    ("grey", ["--method", "lstsq", "--plot", "{tmp}/loss.png"], "--method lstsq takes none"),
    ("grey", ["--plot", "{tmp}/loss.jpg"], "give a name ending in .png"),
    ("grey", ["--true-kernel", "gaussian5"], "--true-kernel gives a (1, 1, 5, 5) kernel"),
    ("grey", ["--optimizer", "sgd", "--lr", "1e6"], "the loss diverged"),
    ("grey", ["--out", "{tmp}/missing/k.txt"], "output folder"),
    ("rgb-to-grey", ["--depthwise"], "the target needs 3 channels"),
    ("rgb-to-grey", ["--out", "{tmp}/k.txt"], "cannot be written as a text kernel file"),
])
def test_cli_errors_exit_2_and_write_nothing(tmp_path, crop_png, pair, args, message):
    if pair == "grey":
        image, target = crop_png, tmp_path / "t.npy"
        np.save(target, conv2d(load_image(crop_png).array, np.ones((1, 1, 3, 3)), padding=1))
    else:
        image, target = tmp_path / "rgb.png", tmp_path / "grey.npy"
        Image.open(SAMPLES / "astronaut.png").crop((0, 0, 64, 64)).save(image)
        np.save(target, np.zeros((1, 1, 64, 64)))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    before = sorted(tmp_path.iterdir())
    result = run("fit", image, target, "--kernel-size", "3", "--steps", "50", *args, expect=2)
    assert message in " ".join(result.output.split())
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(tmp_path.iterdir()) == before


def test_cli_missing_target_exits_2(tmp_path, crop_png):
    result = run("fit", crop_png, tmp_path / "nope.npy", "-k", "3", expect=2)
    assert "no such image file" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crop.png"]


def test_lstsq_in_pieces_equals_one_solve_on_the_whole_im2col():
    """TSQR over pieces of a few rows (one row, rows split mid-item) gives np.linalg.lstsq's
    answer on the whole [X_col, 1], for groups and several batch items."""
    from convcli import im2col
    from convcli.fit import lstsq

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 9, 8))
    t = rng.standard_normal((2, 6, 5, 6))                          # conv2d's output shape
    options = {"stride": (2, 1), "padding": (1, 1, 2, 0), "dilation": (1, 2)}
    cols = im2col(x, 3, **options)                                  # (M, 4·9)
    targets = t.transpose(0, 2, 3, 1).reshape(len(cols), 6)
    for chunk_bytes in (1, 8 * 6 * 36 * 3, 10**9):                  # one row, 3 rows, all
        w, b, rank, _ = lstsq(x, t, 3, groups=2, chunk_bytes=chunk_bytes, **options)
        for g in range(2):
            features = np.hstack([cols[:, g * 18 : (g + 1) * 18], np.ones((len(cols), 1))])
            expected = np.linalg.lstsq(features, targets[:, g * 3 : (g + 1) * 3], rcond=None)[0]
            np.testing.assert_allclose(w[g * 3 : (g + 1) * 3].reshape(3, 18), expected[:18].T,
                                       atol=1e-10)
            np.testing.assert_allclose(b[g * 3 : (g + 1) * 3], expected[18], atol=1e-10)
        assert rank == 19


def test_a_kernel_larger_than_the_input_is_refused_at_once(tmp_path, rng):
    """It used to run a 166 s least squares before saying the answer is not unique."""
    from typer.testing import CliRunner

    from convcli.cli import app

    np.save(tmp_path / "a.npy", rng.random((40, 60)))
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "a.npy"), str(tmp_path / "a.npy"),
                                      "-k", "100", "--method", "lstsq"])
    assert result.exit_code == 2
    assert "a 100×100 kernel is larger than the 40×60 input" in result.output


def test_a_long_least_squares_is_announced_first_and_shows_progress(tmp_path, rng, monkeypatch):
    import convcli.fit.run
    from convcli.fit.run import run_fit

    np.save(tmp_path / "a.npy", rng.random((30, 30)))
    monkeypatch.setattr(convcli.fit.run, "LSTSQ_NOTICE", 1.0)
    events = []
    run_fit(tmp_path / "a.npy", tmp_path / "a.npy", 3, method="lstsq", out=tmp_path / "k.txt",
            notice=lambda text: events.append(("notice", text)),
            lstsq_progress=lambda done, total: events.append(("rows", done, total)))
    assert events[0][0] == "notice" and "30×30 input" not in events[0][1]
    assert "900×10 column matrix" in events[0][1]          # 30·30 rows, 3·3 taps + bias
    rows = [e for e in events if e[0] == "rows"]
    assert rows and rows[-1] == ("rows", 30, 30)
    assert [d for _, d, _ in rows] == sorted(d for _, d, _ in rows)
