"""Images, kernel files and arrays in; arrays and pictures out, written atomically.

A user's mistake here raises InputError with one line that names the problem and the fix;
the CLI turns it into exit code 2.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import kernels


class InputError(Exception):
    """A mistake the user can fix: a missing file, a bad kernel, a wrong shape, a bad option."""


@dataclass
class LoadedImage:
    """x (N, C, H, W) in the chosen dtype, and what was done to get it."""

    array: np.ndarray
    source: str
    notes: list[str] = field(default_factory=list)


# Luma weights of ITU-R 601-2, as Pillow's convert("L") uses, but without rounding or clipping.
LUMA = np.array([0.299, 0.587, 0.114])


def load_image(path, *, gray=False, dtype=np.float64, max_pixels=None) -> LoadedImage:
    """A picture (8/16-bit -> [0, 1]) or a .npy of shape (H, W), (C, H, W) or (N, C, H, W)
    -> x (N, C, H, W)."""
    path = Path(path)
    _check_readable(path, "image")
    if path.suffix.lower() == ".npy":
        array = _load_npy(path, "image")
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
        loaded.array = _to_gray(loaded.array)
    loaded.array = np.ascontiguousarray(loaded.array, dtype=dtype)
    return loaded


def _to_gray(x):
    if x.shape[1] == 3:
        return np.tensordot(LUMA, x, axes=([0], [1]))[:, None]   # (N, 1, H, W)
    return x.mean(axis=1, keepdims=True)


def _load_picture(path: Path, max_pixels) -> LoadedImage:
    from PIL import Image, ImageOps, UnidentifiedImageError

    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    saved_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1× and 2× its limit; convcli refuses there too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                frames = getattr(image, "n_frames", 1)
                deep_colour = image.mode in ("RGB", "RGBA") and ";16" in _raw_mode(image)
                loaded = _picture_array(ImageOps.exif_transpose(image), path)
                if frames > 1:
                    loaded.notes.append(f"first of {frames} frames")
                if deep_colour:
                    loaded.notes.append("16-bit colour read at 8-bit precision (Pillow has no "
                                        "16-bit RGB mode): save it as .npy, or as 16-bit grey, "
                                        "for full precision")
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


def _raw_mode(image) -> str:
    """The file's own pixel layout, e.g. "RGB;16B" for a 48-bit PNG Pillow shows as RGB."""
    if not image.tile:
        return ""
    args = image.tile[0][3]
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def _picture_array(image, path: Path) -> LoadedImage:
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


def load_kernel(spec: str) -> tuple[np.ndarray, str]:
    """A kernel file (.npy or text), an inline matrix "1 0 -1; 2 0 -2; 1 0 -1", or a preset
    name -> (kernel (KH, KW), (O, KH, KW) or (O, C, KH, KW) float64, a description)."""
    path = Path(spec)
    if path.is_file() or path.suffix.lower() == ".npy":
        _check_readable(path, "kernel")
        if path.suffix.lower() == ".npy":
            kernel = _load_npy(path, "kernel")
            if kernel.ndim not in (2, 3, 4) or kernel.size == 0:
                raise InputError(f"{path} has shape {kernel.shape}; a kernel array must be "
                                 "(KH, KW), (O, KH, KW) or (O, C, KH, KW)")
            return kernel.astype(np.float64), f"{path}"
        return parse_kernel_text(_read_text(path), str(path)), f"{path}"
    looks_like_file = os.sep in spec or re.search(r"\.[A-Za-z]\w*$", spec)
    if re.fullmatch(r"[\s\d.,;eE+\-]+", spec) or (
            not looks_like_file and re.search(r"[;,]|\S\s+\S", spec.strip())):
        # a matrix written inline: numbers, or words with row or number separators between
        return parse_kernel_text(spec.replace(";", "\n"), "the inline kernel"), "inline"
    if looks_like_file:
        raise InputError(f"no such kernel file: {spec} (or give a preset name; see "
                         "`convcli kernels`)")
    try:
        return kernels.preset(spec), f"preset {spec.lower()}"
    except KeyError as error:
        raise InputError(error.args[0]) from None


def parse_kernel_text(text: str, name: str) -> np.ndarray:
    """Rows of numbers (spaces or commas), `#` comments; a blank line starts another output
    channel -> (KH, KW) or (O, KH, KW)."""
    blocks, rows = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            if rows:
                blocks.append(rows)
                rows = []
            continue
        try:
            row = [float(token) for token in re.split(r"[\s,]+", content.strip(", ")) if token]
        except ValueError:
            bad = next(t for t in re.split(r"[\s,]+", content) if t and not _is_number(t))
            raise InputError(f"{name}, line {number}: {bad!r} is not a number; a kernel row is "
                             "numbers separated by spaces or commas") from None
        if rows and len(row) != len(rows[0][1]):
            raise InputError(f"{name}, line {number}: {len(row)} numbers but the rows above have "
                             f"{len(rows[0][1])}; every row of a kernel has the same length")
        rows.append((number, row))
    if rows:
        blocks.append(rows)
    if not blocks:
        raise InputError(f"{name} has no numbers: write the kernel as rows of numbers, "
                         "e.g. `1 0 -1` on each line")
    first = blocks[0]
    for block in blocks[1:]:
        if (len(block), len(block[0][1])) != (len(first), len(first[0][1])):
            raise InputError(
                f"{name}, line {block[0][0]}: this block is {len(block)}×{len(block[0][1])} but "
                f"the first is {len(first)}×{len(first[0][1])}; every output channel's kernel "
                "has the same size"
            )
    array = np.array([[row for _, row in block] for block in blocks])
    return array[0] if len(blocks) == 1 else array


def load_array(path, name: str) -> np.ndarray:
    """A .npy array, for --grad-output."""
    path = Path(path)
    _check_readable(path, name)
    return _load_npy(path, name)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _check_readable(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"no such {what} file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the {what} file inside it")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path} is not readable: check its permissions")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text kernel file: write rows of numbers, "
                         "or save a NumPy array as .npy") from None


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise InputError(f"{path} is not a NumPy .npy array of numbers: save the {what} with "
                         "numpy.save") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise InputError(f"{path} holds {getattr(array, 'dtype', 'no')} values; a {what} "
                         "array must hold real numbers")
    return array


# --- writing ------------------------------------------------------------------------------


def check_output(path, inputs, outputs=(), *, option="--out") -> Path:
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


def write_all(writers) -> None:
    """writers: (path, write) pairs. Each write(file) fills a temporary file in its path's
    folder; only when all have succeeded are they renamed into place, so a failed or
    interrupted run leaves every old file whole."""
    temporaries = []
    try:
        for path, write in writers:
            path = Path(path)
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


def write_atomic(path, write) -> None:
    """write_all for one file."""
    write_all([(path, write)])


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def npy_writer(array):
    return lambda file: np.save(file, array, allow_pickle=False)


def npz_writer(**arrays):
    return lambda file: np.savez(file, **arrays)


def png_writer(picture):
    """picture: a Pillow image."""
    return lambda file: picture.save(file, format="PNG")


def text_writer(text: str):
    return lambda file: file.write(text.encode("utf-8"))

