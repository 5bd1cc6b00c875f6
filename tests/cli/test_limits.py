"""Sizes that cannot fit and numbers too large to mean anything are the user's mistakes: one
line, exit 2, before anything is allocated (never MemoryError or OverflowError, exit 1)."""

import io

import numpy as np
import pytest
from typer.testing import CliRunner

import convcli.files
from convcli import conv2d
from convcli.cli import app
from convcli.errors import InputError


@pytest.fixture
def image(tmp_path, rng):
    path = tmp_path / "x.npy"
    np.save(path, rng.standard_normal((16, 16)))
    return path


def invoke(*args, expect=2):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == expect, (result.output, result.exception)
    return result


@pytest.mark.parametrize("option, message", [
    (["--padding", "50000"], "the zero-padded input would be 1×1×100016×100016 = 74.5 GiB"),
    (["--stride", "99999999999999999999"], "--stride 99999999999999999999 is too large"),
    (["--dilation", "99999999999"], "--dilation 99999999999 is too large"),
    (["--dilation", "1e20"], "--dilation must be N or H,W (integers), got '1e20'"),
    (["--padding", "3,99999999999"], "--padding 3,99999999999 is too large"),
    (["--memory-budget", "inf"], "--memory-budget must be a positive number of MiB"),
    (["--padding", "-1"], "--padding must not be negative, got -1"),
])
@pytest.mark.parametrize("command", ["forward", "backward"])
def test_huge_numbers_are_usage_errors(image, tmp_path, monkeypatch, command, option, message):
    monkeypatch.setenv("CONVCLI_MAX_BYTES", str(2**30))
    result = invoke(command, image, "box3", "-o", tmp_path / "out.bin", "--any-suffix", *option)
    assert message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out.bin").exists()


def test_the_library_refuses_a_padded_input_that_cannot_fit(monkeypatch):
    monkeypatch.setenv("CONVCLI_MAX_BYTES", str(2**20))
    x, w = np.ones((1, 1, 8, 8)), np.ones((1, 1, 3, 3))
    with pytest.raises(InputError, match=r"zero-padded input would be 1×1×408×408 = 1.3 MiB"):
        conv2d(x, w, padding=200)
    assert conv2d(x, w, padding=100).shape == (1, 1, 206, 206)     # 0.3 MiB: fine
    monkeypatch.setenv("CONVCLI_MAX_BYTES", "lots")
    with pytest.raises(InputError, match="CONVCLI_MAX_BYTES must be a number"):
        conv2d(x, w)


def lying_npy(tmp_path, shape_text):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 4)))
    path = tmp_path / "liar.npy"
    path.write_bytes(buffer.getvalue().replace(b"(3, 4)", shape_text))
    return path


def test_a_lying_npy_header_is_refused_without_reading_the_data(tmp_path, monkeypatch):
    path = lying_npy(tmp_path, b"(100000, 100000)")
    monkeypatch.setattr(convcli.files.np, "load", lambda *a, **k: pytest.fail("np.load ran"))
    result = invoke("forward", path, "box3")
    assert "announces (100000, 100000) float64 (80,000,000,000 bytes of data) but holds 106" \
        in result.output


def test_an_honest_npy_too_large_for_memory_is_refused(tmp_path, monkeypatch):
    np.save(tmp_path / "big.npy", np.zeros((256, 256)))
    monkeypatch.setenv("CONVCLI_MAX_BYTES", "100000")
    result = invoke("forward", tmp_path / "big.npy", "box3")
    assert "the image array in" in result.output and "512.0 KiB" not in result.output
    assert "more than the 0.1 MiB of memory available" in result.output


def test_max_bytes_sets_the_limit_for_one_run(image, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVCLI_MAX_BYTES", "1e12")    # restored after: the option sets it
    result = CliRunner().invoke(app, ["--max-bytes", "1000", "forward", str(image), "box3",
                                      "-o", str(tmp_path / "y.npy")])
    assert result.exit_code == 2
    assert "more than the 0.0 MiB of memory available" in result.output
    assert "convcli --max-bytes N" in result.output
    bad = CliRunner().invoke(app, ["--max-bytes", "-1", "forward", str(image), "box3"])
    assert bad.exit_code == 2 and "--max-bytes must be a positive number" in bad.output
