"""16-bit pictures: grey + alpha stays one channel; 16-bit colour is read at full precision
when the `images` extra (imagecodecs, tifffile) is installed, and otherwise at 8 bits with a
note that says so; --png-bits 16 writes grey at 16 bits."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import convcli.deep_images
from convcli.images import load_image


def png16(path, samples):
    """A minimal 16-bit PNG (colour type 0, 4, 2 or 6 by channel count), written here so that
    the test needs no PNG library that writes 16-bit colour (Pillow does not)."""
    samples = samples[..., None] if samples.ndim == 2 else samples
    height, width, channels = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = b"".join(b"\x00" + samples[i].astype(">u2").tobytes() for i in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def samples(rng):
    return rng.integers(0, 65536, size=(6, 5, 4), dtype=np.uint16)


@pytest.fixture
def without_extra(monkeypatch):
    real = convcli.deep_images.importlib.import_module

    def refuse(name, *args):
        if name in ("imagecodecs", "tifffile"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(convcli.deep_images.importlib, "import_module", refuse)


def test_grey_alpha_16_stays_one_channel_without_the_extra(tmp_path, samples, without_extra):
    loaded = load_image(png16(tmp_path / "la.png", samples[..., :2]))
    assert loaded.array.shape == (1, 1, 6, 5)          # it used to be 3 identical channels
    np.testing.assert_allclose(loaded.array[0, 0], (samples[..., 0] >> 8) / 255, atol=1e-12)
    assert any("read at 8 bits" in note and "convcli[images]" in note for note in loaded.notes)
    assert "alpha channel dropped" in loaded.notes


def test_colour_16_without_the_extra_says_8_bits(tmp_path, samples, without_extra):
    loaded = load_image(png16(tmp_path / "rgb.png", samples[..., :3]))
    assert loaded.array.shape == (1, 3, 6, 5)
    np.testing.assert_allclose(loaded.array[0], (samples[..., :3] >> 8).transpose(2, 0, 1) / 255,
                               atol=1e-12)
    assert any("16-bit colour read at 8 bits" in note for note in loaded.notes)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16_bit_at_full_precision_with_the_extra(tmp_path, samples, channels):
    pytest.importorskip("imagecodecs", reason="the images extra is not installed")
    loaded = load_image(png16(tmp_path / "deep.png", samples[..., :channels]))
    keep = 1 if channels == 2 else 3
    np.testing.assert_array_equal(loaded.array[0] * 65535,
                                  samples[..., :keep].transpose(2, 0, 1).astype(float))
    assert "16-bit, scaled to [0, 1]" in loaded.source
    assert ("alpha channel dropped" in loaded.notes) == (channels in (2, 4))


def test_16_bit_colour_tiff_with_the_extra(tmp_path, samples):
    tifffile = pytest.importorskip("tifffile", reason="the images extra is not installed")
    tifffile.imwrite(tmp_path / "deep.tif", samples[..., :3], photometric="rgb")
    loaded = load_image(tmp_path / "deep.tif")
    np.testing.assert_array_equal(loaded.array[0] * 65535,
                                  samples[..., :3].transpose(2, 0, 1).astype(float))


def test_png_bits_16_writes_grey_at_16_bits(tmp_path, rng):
    from typer.testing import CliRunner

    from convcli.cli import app

    x = rng.random((7, 9))
    np.save(tmp_path / "x.npy", x)
    result = CliRunner().invoke(app, ["forward", str(tmp_path / "x.npy"), "identity", "--png",
                                      str(tmp_path / "y.png"), "--png-bits", "16", "-o",
                                      str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output
    picture = np.asarray(Image.open(tmp_path / "y.png"))
    assert picture.dtype == np.uint16
    np.testing.assert_array_equal(picture, np.round(x * 65535))
    bad = CliRunner().invoke(app, ["forward", str(tmp_path / "x.npy"), "identity", "--png",
                                   str(tmp_path / "y.png"), "--png-bits", "12"])
    assert bad.exit_code == 2 and "--png-bits must be 8 or 16" in bad.output
