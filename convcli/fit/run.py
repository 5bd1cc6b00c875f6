"""run_fit: learn the kernel that turns one image into another, compare it with the exact
least-squares answer (and a known kernel), and write it as a kernel file forward reads back."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import kernels, outputs
from ..errors import InputError
from ..geometry import Geometry, pair, resolve
from ..images import LoadedImage, load_image
from ..validate import check_finite
from .plot import loss_curve
from .solve import STEPS, TOL, Fit, check_settings, fit, lstsq_cost, weight_shape

LSTSQ_NOTICE = 1e11
"""Multiply-adds above which a least squares gets a notice first: ~10 s on this project's
2-core machines (a 41×41 kernel on a 512×512 image, 7.4e11, took 56 s)."""

Array = NDArray[Any]


@dataclass(frozen=True)
class FitResult:
    """The learned Fit, the exact least-squares Fit it is compared with (the same object for
    lstsq), the inputs, the kernel's shape, groups and geometry, the differences from the
    exact and the true kernel, how many columns [X_col, 1] has per group, the steps asked for,
    the time and the files written."""

    found: Fit
    exact: Fit
    image: LoadedImage
    target: LoadedImage
    shape: tuple[int, int, int, int]
    groups: int
    geometry: Geometry
    true_weight: Array | None
    true_source: str | None
    steps: int
    seconds: float
    written: list[Path]

    @property
    def columns(self) -> int:
        """Columns of [X_col, 1] per group: the taps of one output's kernel, plus the bias."""
        return int(np.prod(self.shape[1:])) + (self.found.bias is not None)

    @property
    def best_loss(self) -> float:
        return min(self.found.losses)

    def differences(self) -> dict[str, float | None]:
        """max |w − w_lstsq|, max |b − b_lstsq| and max |w − w_true| (None where not defined)."""
        found, exact = self.found, self.exact
        return {
            "weight_vs_lstsq": float(np.abs(found.weight - exact.weight).max()),
            "bias_vs_lstsq": (None if found.bias is None or exact.bias is None
                              else float(np.abs(found.bias - exact.bias).max())),
            "weight_vs_true": (None if self.true_weight is None
                               else float(np.abs(found.weight - self.true_weight).max())),
        }


def run_fit(image: Path, target: Path, kernel_size: Any, *, stride: Any = 1,
            padding: Any = "same", dilation: Any = 1, depthwise: bool = False,
            method: str = "gd", optimizer: str = "adam", lr: float | None = None,
            steps: int = STEPS, seed: int = 0, bias: bool = True, tol: float = TOL,
            true_kernel: str | None = None, gray: bool = False, max_pixels: int | None = None,
            out: Path | None = None, plot: Path | None = None,
            progress: Callable[[int, float], None] | None = None,
            lstsq_progress: Callable[[int, int], None] | None = None,
            notice: Callable[[str], None] | None = None) -> FitResult:
    """Learn w (and b) with conv2d(image, w) + b ≈ target; write w to `out` (a text kernel
    file, or .npy; default TARGET.kernel.txt, .npy when text cannot hold it) and, with `plot`,
    the loss curve. progress(step, loss) is called at every gd step, lstsq_progress(done,
    total) during the least squares (always run: for --method lstsq, and as the exact answer
    beside gd's), notice(text) once before a least squares that will take long."""
    size = pair(kernel_size, "--kernel-size")
    check_settings(method, optimizer, lr, steps, tol)
    _check_plot(plot, method)
    if max_pixels is not None and max_pixels < 1:
        raise InputError(f"--max-pixels must be at least 1, got {max_pixels}")
    inputs = [image, target, true_kernel]
    if out is not None:
        out = outputs.check_output(out, inputs)
    if plot is not None:
        plot = outputs.check_output(plot, inputs, [out], option="--plot")
    loaded = load_image(image, gray=gray, max_pixels=max_pixels)
    target_loaded = load_image(target, gray=gray, max_pixels=max_pixels)
    x, t = loaded.array, target_loaded.array                        # (N, C, H, W), (N, O, OH, OW)
    for label, array in ((f"the image {image}", x), (f"the target {target}", t)):
        check_finite(label, array, "a kernel cannot be fitted to them; clean the data or "
                     "pick another input")
    options = {"stride": stride, "padding": padding, "dilation": dilation}
    shape, groups = weight_shape(x, t, size, depthwise=depthwise, **options)
    true_weight, true_source = _true_kernel(true_kernel, x.shape[1], shape, groups)
    out = _kernel_output(out, target, shape, groups, inputs)

    rows, columns, work = lstsq_cost(x.shape, t.shape, size, depthwise=depthwise, bias=bias,
                                     **options)
    if notice is not None and work > LSTSQ_NOTICE:
        notice(f"least squares on a {rows:,}×{columns:,} column matrix (~{work / 1e9:,.0f} "
               "G multiply-adds) may take a while; a smaller --kernel-size is faster")
    start = time.perf_counter()
    settings = {"bias": bias, "depthwise": depthwise, **options}
    found = fit(x, t, size, method=method, optimizer=optimizer, lr=lr, steps=steps, seed=seed,
                tol=tol, callback=progress, lstsq_progress=lstsq_progress, **settings)
    seconds = time.perf_counter() - start
    exact = found if method == "lstsq" else fit(x, t, size, method="lstsq",
                                                lstsq_progress=lstsq_progress, **settings)
    geometry = resolve(x.shape[2:], shape[2:], **options)
    result = FitResult(found, exact, loaded, target_loaded, shape, groups, geometry,
                       true_weight, true_source, steps, seconds, [])
    writers = [(out, _kernel_writer(result, image, out, gray, options))]
    if plot is not None:
        title = (f"convcli fit: {optimizer}, lr {' -> '.join(f'{r:.3g}' for r in found.rates)}, "
                 f"{found.steps} steps")       # Pillow's default font has no →
        writers.append((plot, outputs.png_writer(loss_curve(found.losses, title=title))))
    outputs.write_all(writers)
    result.written.extend(path for path, _ in writers)
    return result


def _check_plot(plot: Path | None, method: str) -> None:
    if plot is not None and method == "lstsq":
        raise InputError("--plot draws the loss per gradient step; --method lstsq takes none "
                         "(use --method gd)")
    if plot is not None and plot.suffix.lower() != ".png":
        raise InputError(f"--plot writes a PNG: give a name ending in .png, got {plot}")


def _true_kernel(spec: str | None, channels: int, shape: tuple[int, ...],
                 groups: int) -> tuple[Array | None, str | None]:
    """--true-kernel as a weight of the learned kernel's shape and groups."""
    if spec is None:
        return None, None
    matrix, source = kernels.load_kernel(spec)
    weight, true_groups = kernels.as_weight(matrix, channels)
    if (weight.shape, true_groups) != (shape, groups):
        raise InputError(f"--true-kernel gives a {weight.shape} kernel with groups="
                         f"{true_groups}, but the learned one is {shape} with groups={groups}")
    return weight, source


def _kernel_output(out: Path | None, target: Path, shape: tuple[int, ...], groups: int,
                   inputs: list[Any]) -> Path:
    """--out, or TARGET.kernel.txt (.npy when a text kernel file cannot hold the shape)."""
    as_text = shape[1] == 1 and groups == 1        # (O, 1, KH, KW) on one channel: text holds it
    if out is None:
        name = target.with_name(f"{target.stem}.kernel.{'txt' if as_text else 'npy'}")
        return outputs.check_output(name, inputs)
    if out.suffix.lower() != ".npy" and not as_text:
        raise InputError(f"a {shape} kernel cannot be written as a text kernel file (it holds "
                         "(KH, KW) or (O, KH, KW) for one input channel): give --out ending "
                         "in .npy")
    return out


def _kernel_writer(result: FitResult, image: Path, out: Path, gray: bool,
                   options: dict[str, Any]) -> Callable[[Any], None]:
    """The learned kernel as .npy, or as a text kernel file whose comments say how it was
    learned and the forward command that applies it (with the bias)."""
    found = result.found
    if out.suffix.lower() == ".npy":
        return outputs.npy_writer(found.weight)
    text = {name: ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
            for name, v in options.items()}
    command = (f"convcli forward {shlex.quote(str(image))} {shlex.quote(str(out))} "
               f"--padding {text['padding']}")
    command += "".join(f" --{name} {text[name]}" for name in ("stride", "dilation")
                       if text[name] != "1")
    command += " --gray" if gray else ""
    if found.bias is not None:
        command += " --bias " + ",".join(repr(float(v)) for v in found.bias)
    o, _, kh, kw = found.weight.shape
    comments = [(f"learned by convcli fit ({found.method}): w {o}×1×{kh}×{kw}, cross-correlation "
                f"weights (not flipped), loss {result.best_loss:.4g}"), f"apply it: {command}"]
    return outputs.text_writer(kernels.format_kernel_text(found.weight, comments))
