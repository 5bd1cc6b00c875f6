"""16-bit colour pictures (48/64-bit RGB(A) and 32-bit grey + alpha PNG and TIFF) at full
precision. Pillow has no 16-bit colour mode and reads them at 8 bits, so they are decoded by
the optional `images` extra: imagecodecs (PNG) and tifffile (TIFF), both maintained by
Christoph Gohlke for scientific imaging. Imported only when such a picture is read."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

DEEP_RAW_MODES = ("RGB;16", "RGBA;16", "LA;16")
"""Pillow's raw modes of the pictures it would read at 8 bits."""

INSTALL = "pip install 'convcli[images]'"


def is_deep(raw_mode: str) -> bool:
    return raw_mode.startswith(DEEP_RAW_MODES)


def read_deep(path: Path) -> NDArray[Any] | None:
    """The picture's samples as (H, W, C) or (H, W) integers, or None when the extra is not
    installed (or cannot read this file)."""
    name = "tifffile" if path.suffix.lower() in (".tif", ".tiff") else "imagecodecs"
    try:
        reader = importlib.import_module(name)
    except ImportError:
        return None
    try:
        array = np.asarray(reader.imread(str(path)))
    except Exception:  # noqa: BLE001  # an odd file: Pillow's 8-bit reading stands
        return None
    return array if array.dtype == np.uint16 else None
