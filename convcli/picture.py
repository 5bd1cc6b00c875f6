"""Arrays -> pictures a person can look at: how values map to 0..255 is a choice, stated."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

CLIP = "clipped to [0, 1]"
SIGNED = "signed: 0 is mid grey, ±max|y| are white and black"
NORMALIZE = "normalized: min..max mapped to 0..255"


def choose_mapping(y: NDArray[Any], *, zero_sum_kernel: bool, signed_input: bool,
                   normalize: bool) -> str:
    """Which mapping a picture of y uses. --normalize wins. y with negative values is signed
    when they are meaningful: a zero-sum kernel's output (Sobel, Laplacian), or a signed input.
    Otherwise (a blur, or the small overshoots of sharpen) y is clipped to [0, 1]."""
    if normalize:
        return NORMALIZE
    if (zero_sum_kernel or signed_input) and np.nanmin(y) < 0:
        return SIGNED
    return CLIP


def zero_sum(w: NDArray[Any]) -> bool:
    """Does every output channel's kernel of w (O, C/g, KH, KW) sum to 0 (a derivative)?"""
    sums = np.abs(w.reshape(w.shape[0], -1).sum(axis=1))
    return bool(np.all(sums <= 1e-9 * max(1.0, float(np.abs(w).max()))))


def layout(y: NDArray[Any]) -> str:
    """How to_picture lays out y's images and channels."""
    items, channels = y.shape[:2]
    text = "RGB" if channels == 3 else "grey" if channels == 1 else (
        f"{channels} channels side by side, grey")
    return text if items == 1 else f"{items} images top to bottom, {text}"


def to_picture(y: NDArray[Any], mapping: str, bits: int = 8) -> Image.Image:
    """y (N, C, H, W) -> one Pillow image: the N batch items top to bottom, each grey for
    C = 1, RGB for C = 3, otherwise its channels side by side in grey; one mapping (scale) for
    all of them. bits 16 writes grey at 16 bits (0..65535; Pillow writes no 16-bit colour)."""
    image = np.asarray(y, dtype=np.float64)                   # (N, C, H, W)
    finite = image[np.isfinite(image)]
    if mapping == NORMALIZE:
        low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        unit = (image - low) / (high - low) if high > low else np.zeros_like(image)
    elif mapping == SIGNED:
        scale = np.abs(finite).max() if finite.size else 0.0
        unit = 0.5 + image / (2 * scale) if scale > 0 else np.full_like(image, 0.5)
    else:
        unit = image
    top = 65535 if bits == 16 else 255
    pixels = np.round(np.clip(np.nan_to_num(unit, nan=0.0), 0.0, 1.0) * top).astype(
        np.uint16 if bits == 16 else np.uint8)
    if bits == 16:
        rows = [np.concatenate(list(item), axis=1) for item in pixels]
        return Image.fromarray(np.ascontiguousarray(np.concatenate(rows, axis=0)))  # I;16
    if pixels.shape[1] == 3:
        return Image.fromarray(np.concatenate(list(pixels), axis=1).transpose(1, 2, 0),
                               mode="RGB")
    rows = [np.concatenate(list(item), axis=1) for item in pixels]   # channels side by side
    return Image.fromarray(np.concatenate(rows, axis=0), mode="L")
