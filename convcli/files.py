"""Reading the files a user names: checks that give one clear line, and .npy arrays of numbers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InputError


def load_array(path: str | os.PathLike[str], name: str) -> NDArray[Any]:
    """A .npy array, for --grad-output."""
    path = Path(path)
    check_readable(path, name)
    return load_npy(path, name)


def check_readable(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"no such {what} file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the {what} file inside it")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path} is not readable: check its permissions")


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text kernel file: write rows of numbers, "
                         "or save a NumPy array as .npy") from None


def load_npy(path: Path, what: str) -> NDArray[Any]:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise InputError(f"{path} is not a NumPy .npy array of numbers: save the {what} with "
                         "numpy.save") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise InputError(f"{path} holds {getattr(array, 'dtype', 'no')} values; a {what} "
                         "array must hold real numbers")
    return array
