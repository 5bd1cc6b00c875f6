"""Writing outputs: every check before the work starts, then each file written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .errors import InputError

Write = Callable[[IO[bytes]], Any]
"""Fills a binary file with one output."""
PathLike = str | os.PathLike[str]


def check_output(path: PathLike, inputs: Iterable[Any], outputs: Iterable[Any] = (), *,
                 option: str = "--out") -> Path:
    """Refuse, before any work, an output that is an input, is another output of the same run,
    or has no folder. option: the CLI option that names this output, for the message."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"output folder {folder} does not exist: create it or choose "
                         f"another {option}")
    if path.is_dir():
        raise InputError(f"output {path} is a folder: give a file name")
    for others, what in ((inputs, "an input; inputs are never overwritten"),
                         (outputs, "another output of this run")):
        for other in others:
            if other is not None and _same_file(path, Path(other)):
                raise InputError(f"output {path} is also {what}: choose another output name")
    return path


def _same_file(path: Path, other: Path) -> bool:
    if path.exists() and other.exists():
        return os.path.samefile(path, other)
    return path.resolve() == other.resolve()


def write_all(writers: Sequence[tuple[PathLike, Write]]) -> None:
    """writers: (path, write) pairs. Each write(file) fills a temporary file in its path's
    folder; only when all have succeeded are they renamed into place, so a failed or
    interrupted run leaves every old file whole."""
    temporaries: list[tuple[str, Path]] = []
    try:
        for name, write in writers:
            path = Path(name)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                                 suffix=".tmp")
            temporaries.append((temporary, path))
            with os.fdopen(handle, "wb") as file:
                write(file)
            os.chmod(temporary, 0o666 & ~_umask())   # mkstemp makes 0600; give the usual mode
        for temporary, path in temporaries:
            os.replace(temporary, path)
    finally:
        for temporary, _ in temporaries:
            Path(temporary).unlink(missing_ok=True)


def write_atomic(path: PathLike, write: Write) -> None:
    """write_all for one file."""
    write_all([(path, write)])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def npy_writer(array: NDArray[Any]) -> Write:
    """The array as a .npy file."""
    return lambda file: np.save(file, array, allow_pickle=False)


def npz_writer(**arrays: NDArray[Any]) -> Write:
    """The named arrays as one .npz file (np.load(path, allow_pickle=False) reads it)."""
    return lambda file: np.savez(file, **arrays)  # type: ignore[arg-type]  # numpy's stub


def png_writer(picture: Image.Image) -> Write:
    """A Pillow image as a PNG."""
    return lambda file: picture.save(file, format="PNG")


def text_writer(text: str) -> Write:
    """Text in UTF-8."""
    return lambda file: file.write(text.encode("utf-8"))
