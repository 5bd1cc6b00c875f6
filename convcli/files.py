"""Reading the files a user names: checks that give one clear line, and .npy arrays of numbers."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InputError
from .validate import check_size


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
        return path.read_text(encoding="utf-8-sig")     # a leading BOM (Notepad) is dropped
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text kernel file: write rows of numbers, "
                         "or save a NumPy array as .npy") from None


def load_npy(path: Path, what: str) -> NDArray[Any]:
    check_npy_header(path, what)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise InputError(f"{path} is not a NumPy .npy array of numbers: save the {what} with "
                         "numpy.save") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise InputError(f"{path} holds {getattr(array, 'dtype', 'no')} values; the {what} "
                         "array must hold real numbers")
    return array


def check_npy_header(path: Path, what: str) -> None:
    """Read only the .npy header and check the data it announces against the file's length
    and the memory available, so a 200-byte file claiming (100000, 100000) is refused at once
    rather than allocated."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as file:
            version = fmt.read_magic(file)
            read_header = {(1, 0): fmt.read_array_header_1_0,
                           (2, 0): fmt.read_array_header_2_0}.get(version)
            if read_header is None:
                return                      # a newer format: np.load decides
            shape, _, dtype = read_header(file)
            data_starts = file.tell()
    except (ValueError, OSError, EOFError):
        raise InputError(f"{path} is not a NumPy .npy array of numbers: save the {what} with "
                         "numpy.save") from None
    if dtype.hasobject:
        return                              # refused with its own message by load_npy
    announced = math.prod(shape) * dtype.itemsize
    held = path.stat().st_size - data_starts
    if held < announced:
        raise InputError(f"{path} is cut short or its header lies: it announces {shape} "
                         f"{dtype} ({announced:,} bytes of data) but holds {held:,}; save it "
                         "again with numpy.save")
    check_size(f"the {what} array in {path}", tuple(shape), dtype.itemsize,
               "use a smaller array")
