"""Outputs never destroy anything: a FIFO, a device and a symlink stay what they are and get
the bytes; `-o -` streams the array to stdout with the summary on stderr; an unwritable folder
or a suffix that promises another format is refused before any work."""

import io
import os
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import convcli.api
import convcli.outputs
from convcli import conv2d
from convcli.cli import app
from convcli.outputs import destination

BOX3 = np.full((1, 1, 3, 3), 1 / 9)


@pytest.fixture
def image(tmp_path, rng):
    path = tmp_path / "x.npy"
    np.save(path, rng.standard_normal((6, 7)))
    return path


def expected_y(image):
    return conv2d(np.load(image)[None, None], BOX3, padding=1)


def invoke(*args, expect=0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == expect, (result.output, result.exception)
    return result


def test_a_fifo_stays_a_fifo_and_gets_the_bytes(image, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    invoke("forward", image, "box3", "-o", fifo, "-q")
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    np.testing.assert_allclose(np.load(io.BytesIO(received[0])), expected_y(image))


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlink_keeps_pointing_and_its_target_is_replaced(image, tmp_path, dangling):
    target = tmp_path / "sub" / "target.npy"
    target.parent.mkdir()
    if not dangling:
        target.write_bytes(b"old contents")
    link = tmp_path / "link.npy"
    link.symlink_to(target)
    invoke("forward", image, "box3", "-o", link, "-q")
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_allclose(np.load(target), expected_y(image))
    assert sorted(p.name for p in target.parent.iterdir()) == ["target.npy"]  # no temp left


def test_devices_and_stdout_are_streams_never_renamed_over():
    assert destination("/dev/null") == ("stream", Path("/dev/null"))
    assert destination("-")[0] == "stdout"
    assert destination("/dev/stdout")[0] == "stream"     # a link to the process's own fd 1


def test_dash_streams_the_array_and_moves_the_summary_to_stderr(image):
    for command, load in (("forward", lambda f: f), ("backward", lambda f: f["y"])):
        done = subprocess.run([sys.executable, "-m", "convcli", command, str(image), "box3",
                               "-o", "-"], capture_output=True, check=True)
        np.testing.assert_allclose(load(np.load(io.BytesIO(done.stdout))), expected_y(image))
        assert re.search(rb"written +standard output", done.stderr), done.stderr
    assert not Path("-").exists()


def test_two_outputs_on_stdout_are_refused(image):
    result = invoke("forward", image, "box3", "-o", "-", "--png", "-", expect=2)
    assert "already goes to standard output" in result.output


def test_an_unwritable_folder_is_refused_before_any_work(image, tmp_path, monkeypatch):
    """Mocked: as root (most CI containers) a read-only folder accepts writes anyway."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def never(*args, **kwargs):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(convcli.outputs.tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr(convcli.api, "conv2d", never)
    for command in ("forward", "backward"):
        result = invoke(command, image, "box3", "-o", tmp_path / "y.bin", expect=2)
        assert "cannot write in the folder" in result.output
        assert "Permission denied" in result.output and "choose another --out" in result.output
    result = invoke("explain", "--image", image, "--export", tmp_path / "walk.txt", expect=2)
    assert "cannot write in the folder" in result.output and "--export" in result.output
    assert result.output.count("\n") == 1                 # no walkthrough printed first
    result = invoke("fit", image, image, "-k", "3", "--out", tmp_path / "k.txt", expect=2)
    assert "cannot write in the folder" in result.output


@pytest.mark.parametrize("command, name, fmt", [
    ("forward", "y.png", ".npy"), ("forward", "y.npz", ".npy"), ("backward", "g.npy", ".npz"),
])
def test_a_suffix_that_promises_another_format_is_refused(image, tmp_path, command, name, fmt):
    result = invoke(command, image, "box3", "-o", tmp_path / name, expect=2)
    assert f"would hold {fmt} data" in result.output and "--any-suffix" in result.output
    assert not (tmp_path / name).exists()
    invoke(command, image, "box3", "-o", tmp_path / name, "--any-suffix", "-q")
    assert (tmp_path / name).exists()


def test_an_unknown_suffix_is_fine(image, tmp_path):
    invoke("forward", image, "box3", "-o", tmp_path / "y.bin", "-q")
    np.testing.assert_allclose(np.load(tmp_path / "y.bin"), expected_y(image))


def test_the_backward_npz_holds_the_whole_case(image, tmp_path):
    out = tmp_path / "g.npz"
    invoke("backward", image, "box3", "--bias", "0.5", "--stride", "2", "-o", out, "-q")
    with np.load(out) as f:
        y = conv2d(f["input"], f["weight"], f["bias"], stride=tuple(f["stride"]),
                   padding=tuple(f["padding"]), dilation=tuple(f["dilation"]),
                   groups=int(f["groups"]))
        np.testing.assert_array_equal(y, f["y"])
        np.testing.assert_array_equal(f["input"][0, 0], np.load(image))
        assert f["bias"].tolist() == [0.5]


@pytest.mark.parametrize("mode, scipy_mode", [("reflect", "mirror"), ("symmetric", "reflect"),
                                               ("replicate", "nearest"), ("circular", "wrap")])
def test_border_and_flip_from_the_command_line(tmp_path, mode, scipy_mode):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = np.random.default_rng(7).random((9, 11))
    np.save(tmp_path / "x.npy", x)
    k = "1 2 0; -1 0 3; 0 1 -2"
    out = tmp_path / "y.npy"
    result = invoke("forward", tmp_path / "x.npy", k, "--border", mode, "--flip", "-o", out)
    assert f"--border {mode}" in result.stdout and "true convolution" in result.stdout
    kernel = np.array([[1.0, 2, 0], [-1, 0, 3], [0, 1, -2]])
    want = ndimage.convolve(x, kernel, mode=scipy_mode)
    np.testing.assert_allclose(np.load(out)[0, 0], want, atol=1e-12)
    invoke("backward", tmp_path / "x.npy", k, "--border", mode, "--flip", "-o",
           tmp_path / "g.npz", "-q")
    with np.load(tmp_path / "g.npz") as f:
        assert str(f["padding_mode"]) == mode and bool(f["flip"])
        y = conv2d(f["input"], f["weight"], padding=tuple(f["padding"]),
                   padding_mode=str(f["padding_mode"]), flip=bool(f["flip"]))
        np.testing.assert_allclose(y, f["y"], atol=1e-12)
