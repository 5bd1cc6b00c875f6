"""Writing outputs: every check before the work starts, then each file written whole or not at all."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .errors import InputError

Write = Callable[[Any], Any]
"""Fills a binary file with one output."""
PathLike = str | os.PathLike[str]


STDOUT = "-"
"""An output named "-" is written to standard output."""

FORMATS = {".npy": "npy", ".npz": "npz", ".png": "png", ".gif": "gif", ".svg": "svg",
           ".html": "html", ".htm": "html", ".txt": "txt", ".json": "json", ".jpg": "jpeg",
           ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp", ".webp": "webp"}
"""Suffixes that promise a format: an output named so must hold it."""


def destination(path: PathLike) -> tuple[str, Path]:
    """Where the bytes of an output go: ("stdout", -), ("stream", path) for a character
    device, FIFO or socket (written straight through, never renamed over), or ("file", the
    path to replace atomically: a symlink's final target, never the link itself)."""
    path = Path(path)
    if str(path) == STDOUT:
        return "stdout", path
    try:
        mode = os.stat(path).st_mode                  # follows links (/dev/stdout -> a pipe)
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise InputError(f"cannot use output {path}: {error.strerror}") from error
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
                             or _through_proc(path)):
        return "stream", path
    if mode is not None and stat.S_ISBLK(mode):
        raise InputError(f"output {path} is a block device (a disk): convcli will not write "
                         "to it; give a file name")
    return "file", Path(os.path.realpath(path)) if path.is_symlink() else path


def _through_proc(path: Path) -> bool:
    """Whether a chain of symlinks passes through /proc (/dev/stdout -> /proc/self/fd/1): the
    file behind it is whatever the shell opened (a pipe, a terminal, a redirected file), to be
    written as it is, not replaced."""
    current = str(path)
    for _ in range(40):
        if not os.path.islink(current):
            return False
        current = os.path.join(os.path.dirname(current), os.readlink(current))
        if os.path.normpath(current).startswith("/proc/"):
            return True
    return False


def check_output(path: PathLike, inputs: Iterable[Any], outputs: Iterable[Any] = (), *,
                 option: str = "--out", fmt: str | None = None,
                 any_suffix: bool = False) -> Path:
    """Refuse, before any work, an output that is an input, is another output of the same run,
    has no folder or a folder convcli cannot write in, or (unless any_suffix) a suffix that
    promises another format than fmt. option: the CLI option that names this output, for the
    messages. Devices, FIFOs and "-" (standard output) are written straight through."""
    path = Path(path)
    kind, target = destination(path)
    if kind == "stdout" and any(str(other) == STDOUT for other in outputs):
        raise InputError(f"{option} - : another output of this run already goes to standard "
                         "output; give one of them a file name")
    if kind != "file":
        return path
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"output folder {folder} does not exist: create it or choose "
                         f"another {option}")
    if target.is_dir():
        raise InputError(f"output {path} is a folder: give a file name")
    _check_writable(folder, option)
    suffix = target.suffix.lower()
    if fmt is not None and not any_suffix and FORMATS.get(suffix, fmt) != fmt:
        raise InputError(f"{option} {path} would hold .{fmt} data under a {suffix} name: name "
                         f"it .{fmt} (or add --any-suffix to keep the name)")
    for others, what in ((inputs, "an input; inputs are never overwritten"),
                         (outputs, "another output of this run")):
        for other in others:
            if other is not None and str(other) != STDOUT and _same_file(target, Path(other)):
                raise InputError(f"output {path} is also {what}: choose another output name")
    return path


def _check_writable(folder: Path, option: str) -> None:
    """Create and remove a temporary file in folder (os.access says yes to root even on a
    read-only mount)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise InputError(f"cannot write in the folder {folder} ({error.strerror}): choose "
                         f"another {option}") from error


def _same_file(path: Path, other: Path) -> bool:
    if path.exists() and other.exists():
        return os.path.samefile(path, other)
    return path.resolve() == other.resolve()


def write_all(writers: Sequence[tuple[PathLike, Write]]) -> None:
    """writers: (path, write) pairs. Each write(file) fills a temporary file in the folder of
    its path (of a symlink's target); only when all have succeeded are they renamed into place,
    so a failed or interrupted run leaves every old file whole. Then devices, FIFOs and "-"
    (standard output) get their bytes straight through."""
    temporaries: list[tuple[str, Path]] = []
    streams: list[tuple[str, Path, Write]] = []
    try:
        for name, write in writers:
            kind, target = destination(name)
            if kind != "file":
                streams.append((kind, target, write))
                continue
            handle, temporary = tempfile.mkstemp(dir=target.parent or Path("."),
                                                 prefix=f".{target.name}.", suffix=".tmp")
            temporaries.append((temporary, target))
            with os.fdopen(handle, "wb") as file:
                write(file)
            os.chmod(temporary, 0o666 & ~umask())   # mkstemp makes 0600; give the usual mode
        for temporary, target in temporaries:
            os.replace(temporary, target)
    finally:
        for temporary, _ in temporaries:
            Path(temporary).unlink(missing_ok=True)
    for kind, target, write in streams:
        if kind == "stdout":
            write(_Stream(sys.stdout.buffer))
            sys.stdout.buffer.flush()
        else:
            with open(target, "wb") as file:
                write(_Stream(file))


class _Stream:
    """A pipe or device as a plain writable object: NumPy, zipfile and Pillow then write it in
    order, with no seek or tell (a pipe has no position)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def write(self, data: Any) -> int:
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()

    def read(self, size: int = -1) -> bytes:  # np.savez asks for it; zipfile never reads here
        raise OSError("an output stream cannot be read")


def write_atomic(path: PathLike, write: Write) -> None:
    """write_all for one file."""
    write_all([(path, write)])


def umask() -> int:
    """The process's umask (read by setting it, then set back)."""
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
