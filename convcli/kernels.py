"""Kernels: named presets, kernel files and inline matrices read (and written back), and how a
kernel of any rank becomes a conv2d weight for an image.

Kernels are written as cross-correlation weights (the way conv2d applies them, no flip):
``sobel-x`` responds positively where the image gets brighter to the right.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InputError
from .files import check_readable, load_npy, read_text

_GAUSS3 = np.outer([1, 2, 1], [1, 2, 1]) / 16
_GAUSS5 = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256

PRESETS: dict[str, tuple[str, np.ndarray]] = {
    "identity": ("leaves the image as it is", np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]])),
    "box3": ("3×3 mean (box blur)", np.full((3, 3), 1 / 9)),
    "box5": ("5×5 mean (box blur)", np.full((5, 5), 1 / 25)),
    "gaussian3": ("3×3 Gaussian blur (binomial 1 2 1)", _GAUSS3),
    "gaussian5": ("5×5 Gaussian blur (binomial 1 4 6 4 1)", _GAUSS5),
    "sobel-x": ("horizontal gradient: bright to the right is positive",
                np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])),
    "sobel-y": ("vertical gradient: bright below is positive",
                np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])),
    "scharr-x": ("horizontal gradient, better rotation symmetry than Sobel",
                 np.array([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])),
    "scharr-y": ("vertical gradient, better rotation symmetry than Sobel",
                 np.array([[-3, -10, -3], [0, 0, 0], [3, 10, 3]])),
    "prewitt-x": ("horizontal gradient, unweighted", np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])),
    "prewitt-y": ("vertical gradient, unweighted", np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]])),
    "diff-x": ("1×2 forward difference x[j+1] - x[j]", np.array([[-1, 1]])),
    "diff-y": ("2×1 forward difference x[i+1] - x[i]", np.array([[-1], [1]])),
    "laplacian": ("4-neighbour Laplacian (edges, signed)",
                  np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]])),
    "laplacian8": ("8-neighbour Laplacian (edges, signed)",
                   np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]])),
    "sharpen": ("identity plus a negative Laplacian", np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])),
    "emboss": ("relief lit from the top left", np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])),
    "outline": ("edges as bright lines", np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])),
    "motion-blur5": ("5×5 diagonal motion blur", np.eye(5) / 5),
}


def preset(name: str) -> NDArray[np.float64]:
    """The preset's (KH, KW) float64 matrix; InputError naming the closest presets if unknown."""
    key = name.lower()
    if key not in PRESETS:
        close = difflib.get_close_matches(key, PRESETS, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see `convcli kernels`"
        raise InputError(f"unknown kernel preset {name!r}: {hint}")
    return PRESETS[key][1].astype(np.float64)


def as_weight(kernel: NDArray[Any], channels: int,
              groups: int | None = None) -> tuple[NDArray[Any], int]:
    """A kernel of any supported rank -> (w (O, C/groups, KH, KW), groups) for a C-channel image.

    (KH, KW): applied to each channel separately, as image tools do (depthwise, groups = C).
    (O, KH, KW): O kernels on each channel separately (depthwise with multiplier O: output
    channel c·O + o is kernel o on channel c).
    (O, C/groups, KH, KW): an ordinary convolution; groups defaults to C / (C/groups).
    """
    given = kernel.ndim
    if kernel.ndim == 2:
        kernel = kernel[None]
    if kernel.ndim == 3:
        if groups not in (None, channels):
            raise InputError(
                f"--groups {groups} needs a 4-D (O, C/groups, KH, KW) kernel; a "
                f"{given}-D kernel is applied to each of the {channels} channels (groups = C)"
            )
        w = np.tile(kernel[:, None], (channels, 1, 1, 1))     # (C·O, 1, KH, KW)
        return w, channels
    if kernel.ndim != 4:
        raise InputError(f"a kernel must be 2-D, 3-D or 4-D, got shape {kernel.shape}")
    if groups is None:
        if kernel.shape[1] == 0 or channels % kernel.shape[1]:
            raise InputError(
                f"kernel has {kernel.shape[1]} input channels but the image has {channels}: "
                "use a kernel of shape (O, C, KH, KW), or --gray for a one-channel image"
            )
        groups = channels // kernel.shape[1]
    return kernel, groups


INLINE = re.compile(r"[\s\d.,;eE+\-\u2212/]*\d[\s\d.,;eE+\-\u2212/]*")
"""An inline matrix: numbers (with fractions a/b and the minus sign −), spaces, commas and
semicolons."""


def as_transposed_weight(kernel: NDArray[Any], channels: int,
                         groups: int | None = None) -> tuple[NDArray[Any], int]:
    """A kernel of any supported rank -> (w (C_in, C_out/groups, KH, KW), groups) for
    conv_transpose2d on a C_in-channel image: (KH, KW) on each channel separately, (O, KH, KW)
    O kernels per channel (groups = C_in), a 4-D kernel as it is (groups default 1)."""
    if kernel.ndim == 2:
        kernel = kernel[None]
    if kernel.ndim == 3:
        if groups not in (None, channels):
            raise InputError(f"--groups {groups} needs a 4-D (C_in, C_out/groups, KH, KW) "
                             f"kernel; a {kernel.ndim}-D kernel is applied to each of the "
                             f"{channels} channels (groups = C)")
        return np.tile(kernel[None], (channels, 1, 1, 1)), channels      # (C, O, KH, KW)
    if kernel.ndim != 4:
        raise InputError(f"a kernel must be 2-D, 3-D or 4-D, got shape {kernel.shape}")
    if kernel.shape[0] != channels:
        raise InputError(f"a --transpose kernel is (C_in, C_out/groups, KH, KW) with C_in = "
                         f"{channels} (the image's channels), got shape {kernel.shape}")
    return kernel, 1 if groups is None else groups


def load_kernel(spec: str) -> tuple[NDArray[np.float64], str]:
    """A kernel file (.npy or text), an inline matrix "1 0 -1; 2 0 -2; 1 0 -1", or a preset
    name -> (kernel (KH, KW), (O, KH, KW) or (O, C, KH, KW) float64, a description).

    A file wins over a preset of the same name (the description says so)."""
    path = Path(spec)
    if path.is_dir():
        raise InputError(f"{spec} is a folder: give a kernel file inside it, an inline matrix "
                         "or a preset name (see `convcli kernels`)")
    if path.is_file() or path.suffix.lower() == ".npy":
        check_readable(path, "kernel")
        shadows = f" (a file; not the preset {spec.lower()})" if spec.lower() in PRESETS else ""
        if path.suffix.lower() == ".npy":
            kernel = load_npy(path, "kernel")
            if kernel.ndim not in (2, 3, 4) or kernel.size == 0:
                raise InputError(f"{path} has shape {kernel.shape}; a kernel array must be "
                                 "(KH, KW), (O, KH, KW) or (O, C, KH, KW)")
            return kernel.astype(np.float64), f"{path}"
        return parse_kernel_text(read_text(path), str(path)), f"{path}{shadows}"
    if INLINE.fullmatch(spec) or (
            not _looks_like_file(spec) and re.search(r"[;,]|\S\s+\S", spec.strip())):
        # a matrix written inline: numbers, or words with row or number separators between
        if re.search(r";\s*;", spec):
            raise InputError("the inline kernel has an empty row (;;): separate rows with one "
                             "`;`; for several output channels write a kernel file with a "
                             "blank line between them")
        return parse_kernel_text(spec.replace(";", "\n"), "the inline kernel"), "inline"
    if _looks_like_file(spec):
        raise InputError(f"no such kernel file: {spec} (or give a preset name; see "
                         "`convcli kernels`)")
    return preset(spec), f"preset {spec.lower()}"


def _looks_like_file(spec: str) -> bool:
    return os.sep in spec or bool(re.search(r"\.[A-Za-z]\w*$", spec))


def parse_kernel_text(text: str, name: str) -> NDArray[np.float64]:
    """Rows of numbers (spaces or commas), `#` comments; a blank line starts another output
    channel -> (KH, KW) or (O, KH, KW)."""
    blocks: list[list[tuple[int, list[float]]]] = []
    rows: list[tuple[int, list[float]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            if rows:
                blocks.append(rows)
                rows = []
            continue
        try:
            row = [number_of(token) for token in re.split(r"[\s,]+", content.strip(", "))
                   if token]
        except ValueError:
            bad = next(t for t in re.split(r"[\s,]+", content) if t and not _is_number(t))
            raise InputError(f"{name}, line {number}: {bad!r} is not a number; a kernel row is "
                             "numbers (or fractions a/b) separated by spaces or "
                             "commas") from None
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


def format_kernel_text(weight: NDArray[Any], comments: list[str]) -> str:
    """A kernel (O, 1, KH, KW) as the text format parse_kernel_text reads: `#` comment lines,
    then rows of numbers, a blank line between output channels; repr writes each number
    exactly, so it reads back bit for bit.

    >>> print(format_kernel_text(np.array([[[[0.5, -1.0]]]]), ["a half"]), end="")
    # a half
     0.5  -1.0
    """
    numbers = [[[repr(float(v)) for v in row] for row in channel] for channel in weight[:, 0]]
    width = max(len(n) for channel in numbers for row in channel for n in row)
    lines = [f"# {comment}" for comment in comments]
    for index, channel in enumerate(numbers):
        lines += [""] if index else []
        lines += ["  ".join(n.rjust(width) for n in row) for row in channel]
    return "\n".join(lines) + "\n"


def number_of(token: str) -> float:
    """One kernel entry: a number ("-0.5", "1e-3"), a fraction ("1/9", "-2/16"), with the
    typographic minus sign − (U+2212) read as "-". ValueError otherwise."""
    token = token.replace("\u2212", "-")
    if "/" in token:
        numerator, _, denominator = token.partition("/")
        if float(denominator) == 0:
            raise ValueError(f"{token}: division by zero")
        return float(numerator) / float(denominator)
    return float(token)


def _is_number(token: str) -> bool:
    try:
        number_of(token)
    except ValueError:
        return False
    return True
