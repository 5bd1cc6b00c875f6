"""Pictures and .npy arrays in, as x (N, C, H, W) floats, with notes on what was done to them."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from . import deep_images
from .errors import InputError
from .files import check_readable, load_npy


@dataclass
class LoadedImage:
    """x (N, C, H, W) in the chosen dtype, and what was done to get it."""

    array: NDArray[Any]
    source: str
    notes: list[str] = field(default_factory=list)
    path: Path | None = None


# Luma weights of ITU-R 601-2, as Pillow's convert("L") uses, but without rounding or clipping.
LUMA = np.array([0.299, 0.587, 0.114])


def load_image(path: str | os.PathLike[str], *, gray: bool = False,
               dtype: DTypeLike = np.float64, max_pixels: int | None = None) -> LoadedImage:
    """A picture (8/16-bit -> [0, 1]) or a .npy of shape (H, W), (C, H, W) or (N, C, H, W)
    -> x (N, C, H, W)."""
    path = Path(path)
    check_readable(path, "image")
    if path.suffix.lower() == ".npy":
        array = load_npy(path, "image")
        if array.ndim not in (2, 3, 4):
            raise InputError(
                f"{path} has shape {array.shape}; an image array must be (H, W), (C, H, W) "
                "or (N, C, H, W)"
            )
        array = array.reshape((1,) * (4 - array.ndim) + array.shape)
        loaded = LoadedImage(array, f"{path} (.npy, values as they are)")
    else:
        loaded = _load_picture(path, max_pixels)
    if gray and loaded.array.shape[1] > 1:
        loaded.notes.append("converted to one channel (luma 0.299 R + 0.587 G + 0.114 B)"
                            if loaded.array.shape[1] == 3 else "converted to one channel (mean)")
        loaded.array = to_gray(loaded.array)
    loaded.array = np.ascontiguousarray(loaded.array, dtype=dtype)
    loaded.path = path
    return loaded


def to_gray(x: Any) -> Any:
    """x (N, C, H, W) -> (N, 1, H, W): luma for three channels, else the mean (NumPy or Dask)."""
    if x.shape[1] == 3:
        gray: NDArray[Any] = np.tensordot(LUMA, x, axes=([0], [1]))[:, None]   # (N, 1, H, W)
        return gray
    mean: NDArray[Any] = x.mean(axis=1, keepdims=True)
    return mean


def _load_picture(path: Path, max_pixels: int | None) -> LoadedImage:
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    saved_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1× and 2× its limit; convcli refuses there too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                raw = _raw_mode(image)
                if deep_images.is_deep(raw):
                    loaded = _deep_picture(image, path, raw)
                else:
                    loaded = _picture_array(ImageOps.exif_transpose(image), path)
                if frames > 1:
                    loaded.notes.append(f"first of {frames} frames")
                return loaded
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        size = re.search(r"\((\d+) pixels\)", str(error))
        pixels = size.group(1) if size else "too many"
        raise InputError(
            f"{path} has {pixels} pixels, over the limit of {limit} (Pillow's "
            f"decompression-bomb guard): pass --max-pixels {pixels} if you trust the file"
        ) from None
    except UnidentifiedImageError:
        raise InputError(
            f"{path} is not an image Pillow can read (PNG, JPEG, TIFF, BMP, WebP, GIF) "
            "nor a .npy array"
        ) from None
    except OSError as error:
        raise InputError(f"{path} could not be read as an image: {error}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit


def _deep_picture(image: Image.Image, path: Path, raw: str) -> LoadedImage:
    """A 16-bit colour or grey + alpha picture: at full precision through the `images` extra,
    else Pillow's 8 bits, said plainly. Grey + alpha stays one channel (Pillow opens it as
    RGBA with R = G = B)."""
    grey = raw.startswith("LA")
    samples = deep_images.read_deep(path)
    if samples is None:
        if grey:
            image = image.convert("RGBA").getchannel("R")
        loaded = _picture_array(ImageOps.exif_transpose(image), path)
        loaded.notes.append(f"16-bit {'grey' if grey else 'colour'} read at 8 bits (Pillow "
                            f"has no such mode); {deep_images.INSTALL} reads it at 16")
        if grey:
            loaded.notes.append("alpha channel dropped")
        return loaded
    samples = samples[..., None] if samples.ndim == 2 else samples
    keep = 1 if grey else 3
    notes = ["alpha channel dropped"] if samples.shape[-1] > keep else []
    array = samples[..., :keep].transpose(2, 0, 1).astype(np.float64) / 65535.0
    mode = f"{'LA' if grey else 'RGB'}{'A' if not grey and samples.shape[-1] > 3 else ''}"
    return LoadedImage(array[None], f"{path} ({mode}, 16-bit, scaled to [0, 1])", notes)


def _raw_mode(image: Image.Image) -> str:
    """The file's own pixel layout, e.g. "RGB;16B" for a 48-bit PNG Pillow shows as RGB."""
    tile = getattr(image, "tile", None)      # ImageFile's, not every Image's
    if not tile:
        return ""
    args = tile[0][3]
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def _picture_array(image: Image.Image, path: Path) -> LoadedImage:
    """A Pillow image in any mode -> (1, C, H, W) float64, 8/16-bit scaled to [0, 1]."""
    notes = []
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        notes.append("palette converted to colours")
    elif mode == "PA":
        image = image.convert("RGBA")
        notes.append("palette converted to colours")
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        image = image.convert("RGB")
        notes.append(f"{mode} converted to RGB")
    if image.mode in ("LA", "RGBA", "La", "RGBa"):
        notes.append("alpha channel dropped")
        image = image.convert("L" if image.mode in ("LA", "La") else "RGB")

    if image.mode.startswith("I;16"):
        array = np.asarray(image).astype(np.float64) / 65535.0     # full 16-bit precision
        depth = "16-bit, scaled to [0, 1]"
    elif image.mode in ("L", "RGB"):
        array = np.asarray(image).astype(np.float64) / 255.0
        depth = "8-bit, scaled to [0, 1]"
    elif image.mode in ("I", "F"):
        array = np.asarray(image).astype(np.float64)
        depth = f"mode {image.mode}, values as they are"
    else:
        raise InputError(f"{path} has Pillow mode {image.mode}, which convcli does not read; "
                         "convert it to RGB or L first")
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)   # (C, H, W)
    return LoadedImage(array[None], f"{path} ({mode}, {depth})", notes)
