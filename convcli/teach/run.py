"""run_explain: the walkthrough of a user's image and kernel (or the article's case), with its
outputs checked before the work."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import kernels, outputs
from ..errors import InputError
from ..files import load_array
from ..images import load_image
from ..validate import check_finite, check_suffix
from .model import Walkthrough
from .walkthrough import ARTICLE_KERNEL, walkthrough

EXPORTS = (".svg", ".html", ".txt")


@dataclass(frozen=True)
class ExplainResult:
    """The walkthrough, notes on the input (what was done to the image), and where its export
    and animation go (None: not asked for)."""

    walk: Walkthrough
    notes: list[str] = field(default_factory=list)
    export: Path | None = None
    animate: Path | None = None


def run_explain(image: Path | None = None, kernel: str | None = None, *, stride: Any = 1,
                padding: Any = None, dilation: Any = 1, pixel: Any = None, gray: bool = False,
                max_pixels: int | None = None, seed: int = 0, export: Path | None = None,
                animate: Path | None = None, padding_mode: str = "zeros",
                loss: str = "random", target: Path | None = None,
                grad_output: Path | None = None) -> ExplainResult:
    """The walkthrough of x ⋆ w: x an image (the first of a batch) or the article's seeded 4×4,
    w a kernel as forward takes it or the article's [[1, 2], [3, 4]]; padding None is the
    article's (1, 0, 1, 0) for a 2×2 kernel, "same" otherwise. dL/dy: seeded random integers
    (loss "random"), 1 everywhere ("sum": L = Σy), y − T ("mse", T the `target`), or the
    `grad_output` file, of y's shape."""
    if loss not in ("random", "sum", "mse"):
        raise InputError(f"--loss must be random, sum or mse, got {loss!r}")
    if (loss == "mse") != (target is not None):
        raise InputError("--loss mse needs --target T (an image or .npy of y's shape), and "
                         "--target goes with --loss mse")
    if grad_output is not None and loss != "random":
        raise InputError("--grad-output gives dL/dy itself: it cannot go with --loss")
    inputs = [image, kernel, target, grad_output]
    for path, suffixes, option in ((export, EXPORTS, "--export"), (animate, (".gif",),
                                                                   "--animate")):
        if path is not None:
            check_suffix(path, suffixes, option)
            outputs.check_output(path, inputs, option=option)
    notes: list[str] = []
    x = None
    if image is not None:
        loaded = load_image(image, gray=gray, max_pixels=max_pixels)
        x, notes = loaded.array, list(loaded.notes)
        if x.shape[0] > 1:
            notes.append(f"{image} holds {x.shape[0]} images; explaining the first")
            x = x[:1]
    matrix = ARTICLE_KERNEL if kernel is None else kernels.load_kernel(kernel)[0]
    for label, array in ((f"the image {image}", x), (f"the kernel {kernel}", matrix)):
        check_finite(label, array, "a walkthrough needs finite numbers; clean the data or "
                     "pick another input")
    channels = x.shape[1] if x is not None else (matrix.shape[1] if matrix.ndim == 4 else 1)
    w, groups = kernels.as_weight(matrix, channels)
    upstream: dict[str, Any] = {}
    if target is not None:
        upstream["target"] = load_image(target, gray=gray, max_pixels=max_pixels).array
    elif grad_output is not None:
        upstream["grad_output"] = load_array(grad_output, "--grad-output")
    walk = walkthrough(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                       pixel=pixel, seed=seed, padding_mode=padding_mode, **upstream,
                       loss="sum" if loss == "sum" else "random")
    return ExplainResult(walk, notes, export, animate)
