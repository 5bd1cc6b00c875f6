"""Named preset kernels, and how a kernel of any rank becomes a conv2d weight for an image.

Kernels are written as cross-correlation weights (the way conv2d applies them, no flip):
``sobel-x`` responds positively where the image gets brighter to the right.
"""

from __future__ import annotations

import difflib

import numpy as np

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


def preset(name: str) -> np.ndarray:
    """The preset's (KH, KW) float64 matrix; KeyError naming the closest presets if unknown."""
    key = name.lower()
    if key not in PRESETS:
        close = difflib.get_close_matches(key, PRESETS, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see `convcli kernels`"
        raise KeyError(f"unknown kernel preset {name!r}: {hint}")
    return PRESETS[key][1].astype(np.float64)


def as_weight(kernel: np.ndarray, channels: int, groups: int | None = None):
    """A kernel of any supported rank -> (w (O, C/groups, KH, KW), groups) for a C-channel image.

    (KH, KW): applied to each channel separately, as image tools do (depthwise, groups = C).
    (O, KH, KW): O kernels on each channel separately (depthwise with multiplier O: output
    channel c·O + o is kernel o on channel c).
    (O, C/groups, KH, KW): an ordinary convolution; groups defaults to C / (C/groups).
    """
    if kernel.ndim == 2:
        kernel = kernel[None]
    if kernel.ndim == 3:
        if groups not in (None, channels):
            raise ValueError(
                f"--groups {groups} needs a 4-D (O, C/groups, KH, KW) kernel; a "
                f"{kernel.ndim}-D kernel is applied to each of the {channels} channels (groups = C)"
            )
        w = np.tile(kernel[:, None], (channels, 1, 1, 1))     # (C·O, 1, KH, KW)
        return w, channels
    if kernel.ndim != 4:
        raise ValueError(f"a kernel must be 2-D, 3-D or 4-D, got shape {kernel.shape}")
    if groups is None:
        if kernel.shape[1] == 0 or channels % kernel.shape[1]:
            raise ValueError(
                f"kernel has {kernel.shape[1]} input channels but the image has {channels}: "
                "use a kernel of shape (O, C, KH, KW), or --gray for a one-channel image"
            )
        groups = channels // kernel.shape[1]
    return kernel, groups
