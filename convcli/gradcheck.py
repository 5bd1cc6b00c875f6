"""Finite-difference proof of conv2d's three gradients, and the built-in suite that CI runs.

The method (torch.autograd.gradcheck's, with a loss that cannot hide bugs):

- L = Σ (y ⊙ g), y = conv2d(x, w, b) and g a random, non-uniform upstream gradient (seeded), so
  dL/dy = g. An all-ones g hides real bugs (a kernel flip, a one-pixel shift at the border).
- The analytic gradients are ``backward(g, x, w, ...)``; the numeric ones are central
  differences (L(v + eps) − L(v − eps)) / step for each checked coordinate v of x, w and b,
  step being the difference of the two values actually stored.
- An element passes when |analytic − numeric| ≤ atol + rtol·|numeric|. Per tensor the report
  also gives the max relative error |a − n| / max(1e-12, |a| + |n|).
- Each configuration also checks that the two dL/dx routes (col2im and the flipped-kernel
  convolution) agree, and the adjoint identity ⟨conv2d(x, w), g⟩ = ⟨x, dL/dx⟩ for the
  backward under test.

The loss change is computed locally, which is the same number with far less work: moving one
x[n, c, h, w] changes only sample n's output pixels whose windows contain it, a small block of
y, so conv2d runs on the crop of padded x that those pixels read; moving w[o, ...] or b[o]
changes only output channel o, so conv2d runs with that one filter. Perturbations with the same
crop shape (or the same group) are stacked into one batched conv2d call. The test
``test_local_differences_equal_full_forward_differences`` shows these numbers equal the naive
re-run of the whole forward pass.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from .conv import conv2d, conv2d_backward, grad_input_col2im, grad_input_flipped
from .geometry import resolve
from .im2col import im2col

TENSORS = ("grad_input", "grad_weight", "grad_bias")
ROUTES, ADJOINT = "routes_agree", "adjoint"

# (eps, atol, rtol) per dtype. float64: torch.autograd.gradcheck's atol and rtol; the numeric
# error on the suite is ~1e-9, so a correct backward passes ~10^4× inside the tolerance.
# float32: each y is rounded to ~6e-8·|y| and a difference over a step eps divides that by eps;
# summed over the outputs that move, the numeric error is ~1e-2 at eps 1e-2 on a 512×512 RGB
# image (measured). A central difference's truncation error is eps²/6 times the third
# derivative, and L is linear in each of x, w and b, so a large step costs nothing: eps = 0.1 (a
# tenth of an image's range) brings the error to ~2e-3 there and ~3e-5 on the suite. atol 1e-2
# then holds it ≥ 5× inside the tolerance even where a gradient is near 0; rtol 3e-3 is the
# 0.3% a float32 check can promise. On the suite every planted bug, "dw off by 1%" included,
# still fails on the same configurations as in float64 (tests/test_gradcheck.py).
DEFAULTS = {"float64": (1e-6, 1e-5, 1e-3), "float32": (1e-1, 1e-2, 3e-3)}
FLOAT32_WARNING = (
    "float32: finite differences in single precision are unreliable (each y is rounded to "
    "~6e-8 of its size, and that error is divided by the step), so this check uses looser "
    "tolerances (eps={eps:g}, atol={atol:g}, rtol={rtol:g}) and can miss errors smaller than "
    "atol + rtol·|gradient|. "
    "Prove a backward pass in float64."
)
WORST_SHOWN = 5
_CHUNK_ELEMENTS = 8_000_000  # y elements per batched conv2d call (64 MB in float64)


@dataclass(frozen=True)
class Case:
    """One named configuration of the built-in suite: shapes, geometry and whether b is used."""

    name: str
    x_shape: tuple[int, int, int, int]  # (N, C, H, W)
    w_shape: tuple[int, int, int, int]  # (O, C/groups, KH, KW)
    options: dict = field(default_factory=dict)  # stride, padding, dilation, groups
    bias: bool = True


SUITE = [
    Case("article 2x2, pad (1,0,1,0)", (1, 1, 4, 4), (1, 1, 2, 2), dict(padding=(1, 0, 1, 0))),
    Case("odd 3x3, pad 1, N=2, C≠O", (2, 3, 6, 7), (4, 3, 3, 3), dict(padding=1)),
    Case("even 4x4, same", (1, 2, 7, 6), (3, 2, 4, 4), dict(padding="same"), bias=False),
    Case("even 2x2, same, stride 2", (2, 2, 7, 8), (3, 2, 2, 2), dict(padding="same", stride=2)),
    Case("non-square 2x5, pad (1,2)", (1, 2, 6, 9), (3, 2, 2, 5), dict(padding=(1, 2))),
    Case("1x1 kernel", (2, 4, 5, 3), (6, 4, 1, 1), dict()),
    Case("kernel = padded input", (1, 2, 4, 5), (3, 2, 6, 7), dict(padding=1)),
    Case("stride 2, not dividing", (2, 2, 9, 8), (3, 2, 3, 3), dict(stride=2), bias=False),
    Case("stride (3,2), pad 2", (1, 3, 11, 10), (2, 3, 3, 2), dict(stride=(3, 2), padding=2)),
    Case("dilation (1,2)", (1, 2, 7, 9), (2, 2, 3, 3), dict(dilation=(1, 2), padding=(1, 2))),
    Case("dilation (2,1), stride 2", (2, 1, 9, 8), (2, 1, 2, 3), dict(dilation=(2, 1), stride=2)),
    Case("same, stride 3, dilation 2", (1, 2, 10, 9), (2, 2, 3, 2),
         dict(padding="same", stride=3, dilation=2)),
    Case("pad (2,0,1,3)", (1, 2, 5, 6), (2, 2, 3, 3), dict(padding=(2, 0, 1, 3))),
    Case("full, dilation 2, stride 2", (1, 1, 6, 5), (2, 1, 2, 3),
         dict(padding="full", dilation=2, stride=2)),
    Case("valid", (2, 3, 6, 6), (2, 3, 3, 3), dict(padding="valid"), bias=False),
    Case("groups 2", (2, 4, 6, 5), (6, 2, 3, 3), dict(groups=2, padding=1)),
    Case("depthwise, same", (1, 3, 6, 6), (3, 1, 3, 3), dict(groups=3, padding="same")),
    Case("depthwise x2, stride 2", (2, 2, 7, 7), (4, 1, 3, 2), dict(groups=2, stride=2)),
]


@dataclass
class Worst:
    """One checked coordinate: where, the two values, and error / tolerance (> 1 fails)."""

    index: tuple[int, ...]
    analytic: float
    numeric: float
    abs_err: float
    ratio: float


@dataclass
class Result:
    """The verdict on one tensor (or the routes/adjoint check) of one configuration."""

    configuration: str
    tensor: str  # grad_input, grad_weight, grad_bias, routes_agree or adjoint
    passed: bool
    checked: int  # coordinates compared
    size: int  # coordinates in the tensor
    max_abs_err: float
    max_rel_err: float
    max_ratio: float  # max over coordinates of |a − n| / (atol + rtol·|n|); passes when ≤ 1
    worst: list[Worst] = field(default_factory=list)
    note: str = ""


@dataclass
class Report:
    """Every result of one run, the settings it used, and any warnings (float32)."""

    results: list[Result]
    dtype: str
    seed: int
    eps: float
    atol: float
    rtol: float
    warnings: list[str] = field(default_factory=list)
    configurations: dict = field(default_factory=dict)  # name -> shapes and resolved geometry

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict:
        """Plain JSON-ready data (NaN and inf become strings)."""
        return _jsonable({"passed": self.passed, **asdict(self)})


def run_suite(backward=None, *, seed=0, eps=None, atol=None, rtol=None, dtype="float64",
              progress=None) -> Report:
    """Check ``backward`` on every configuration of SUITE, every coordinate of x, w and b.

    backward: a function like ``conv2d_backward``,
    ``(grad_output, x, w, *, stride, padding, dilation, groups) -> (dx, dw, db)``; default
    convcli's. eps, atol, rtol: None means the dtype's defaults (float64: 1e-6, 1e-5, 1e-3).
    progress: an optional ``progress(done, total)`` callback, called after each configuration.
    """
    eps, atol, rtol, warnings = _settings(dtype, eps, atol, rtol)
    report = Report([], dtype, seed, eps, atol, rtol, warnings)
    for k, case in enumerate(SUITE):
        rng = np.random.default_rng([seed, k])
        x = rng.standard_normal(case.x_shape)
        w = rng.standard_normal(case.w_shape)
        b = rng.standard_normal(case.w_shape[0]) if case.bias else None
        _check_into(report, case.name, x, w, b, case.options, backward, rng, None)
        if progress is not None:
            progress(k + 1, len(SUITE))
    return report


def check_case(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, samples=None,
               backward=None, seed=0, eps=None, atol=None, rtol=None, dtype="float64",
               name="your case", progress=None) -> Report:
    """Check ``backward`` on one user case: x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) or None.

    samples: None checks every coordinate; K checks K coordinates of each tensor chosen at random
    (seeded), always including the corners and border pixels, so a 512×512 image takes seconds.
    The data are cast to dtype; g is drawn from ``seed``. Other arguments as in run_suite;
    progress is called as ``progress(done, total)``; its units are the coordinates, the backward
    call and the routes check.

    >>> x = np.random.default_rng(0).standard_normal((1, 1, 64, 64))
    >>> report = check_case(x, np.ones((1, 1, 3, 3)), padding="same", samples=20)
    >>> report.passed, [r.checked for r in report.results]
    (True, [20, 9, 4096, 1])
    """
    eps, atol, rtol, warnings = _settings(dtype, eps, atol, rtol)
    report = Report([], dtype, seed, eps, atol, rtol, warnings)
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    rng = np.random.default_rng(seed)
    _check_into(report, name, x, w, b, options, backward, rng, samples, progress)
    return report


def sample_coordinates(shape, samples, rng) -> np.ndarray:
    """Indices (K, ndim) of the coordinates to check in a tensor of ``shape``.

    samples None (or ≥ the size): all of them. Otherwise the corners of the last two axes (for
    the first and the last index of the leading axes), the middle and one random point of each
    of the four edges, and random others until there are ``samples`` (more if the corners and
    edges alone outnumber it).
    """
    size = math.prod(shape)
    if samples is None or samples >= size:
        return np.indices(shape).reshape(len(shape), -1).T
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if len(shape) == 1:
        forced = [(0,), (shape[0] - 1,)]
    else:
        *lead, height, width = shape

        def point(row, col, heads=None):  # heads: the leading indices, random if None
            return (*([int(rng.integers(s)) for s in lead] if heads is None else heads), row, col)

        first, last = [0] * len(lead), [s - 1 for s in lead]
        forced = [point(row, col, heads) for heads in (first, last)
                  for row in (0, height - 1) for col in (0, width - 1)]
        for row, col in ((height // 2, width // 2),
                         (int(rng.integers(height)), int(rng.integers(width)))):
            forced += [point(0, col), point(height - 1, col), point(row, 0), point(row, width - 1)]
    flat = list(dict.fromkeys(np.ravel_multi_index(np.array(forced).T, shape).tolist()))
    wanted = max(samples, len(flat))
    chosen = set(flat)
    while len(flat) < wanted:
        for k in rng.choice(size, size=min(size, 2 * (wanted - len(flat))), replace=False):
            if len(flat) < wanted and int(k) not in chosen:
                chosen.add(int(k))
                flat.append(int(k))
    return np.array(np.unravel_index(np.array(flat), shape)).T


# --- the check of one configuration -------------------------------------------------------


def _check_into(report, name, x, w, b, options, backward, rng, samples, progress=None):
    """Append the five results of one configuration to report."""
    dtype = np.dtype(report.dtype)
    x = np.asarray(x, dtype=dtype)
    w = np.asarray(w, dtype=dtype)
    b = None if b is None else np.asarray(b, dtype=dtype)
    options = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **options}
    y = conv2d(x, w, **options)  # checks every shape and option; no bias, for the adjoint
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"b must have shape (O,) = ({w.shape[0]},), got {b.shape}")
    geometry = resolve(x.shape[2:], w.shape[2:], stride=options["stride"],
                       padding=options["padding"], dilation=options["dilation"])
    groups = options["groups"]
    g = rng.standard_normal(y.shape).astype(dtype)  # random, non-uniform dL/dy
    report.configurations[name] = dict(
        x_shape=x.shape, w_shape=w.shape, bias=b is not None, stride=geometry.stride,
        pad=geometry.pad, dilation=geometry.dilation, groups=groups, y_shape=y.shape)

    backward = conv2d_backward if backward is None else backward
    analytic = backward(g.copy(), x.copy(), w.copy(), **options)
    coords = {
        "grad_input": sample_coordinates(x.shape, samples, rng),
        "grad_weight": sample_coordinates(w.shape, samples, rng),
    }
    if b is not None:
        coords["grad_bias"] = sample_coordinates(b.shape, samples, rng)
    total = sum(len(c) for c in coords.values()) + 2  # the coordinates, the backward, the routes
    done = 0

    def advance(count):
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    advance(1)

    forward = _CentralDifferences(x, w, b, g, geometry, groups, report.eps)
    numeric_of = {"grad_input": forward.input_differences,
                  "grad_weight": forward.weight_differences,
                  "grad_bias": forward.bias_differences}
    for tensor, got, like in zip(TENSORS, analytic, (x, w, b)):
        if tensor not in coords:
            continue
        got = np.asarray(got)
        if got.shape != like.shape:
            report.results.append(_shape_failure(name, tensor, got.shape, like.shape))
            advance(len(coords[tensor]))
            continue
        index = coords[tensor]
        numeric = numeric_of[tensor](index, advance)
        report.results.append(_compare(name, tensor, got[tuple(index.T)], numeric, index,
                                       like.size, report.atol, report.rtol))

    # The two routes of convcli's own dL/dx must agree element by element.
    by_col2im = grad_input_col2im(g, x.shape, w, **options)
    by_flip = grad_input_flipped(g, x.shape, w, **options)
    report.results.append(_compare(name, ROUTES, by_col2im.reshape(-1), by_flip.reshape(-1),
                                   x.shape, x.size, report.atol, report.rtol))
    advance(1)

    # Adjoint: <conv2d(x, w), g> = <x, dL/dx>, dx from the backward under test.
    dx = np.asarray(analytic[0])
    if dx.shape != x.shape:
        report.results.append(_shape_failure(name, ADJOINT, dx.shape, x.shape))
        return
    lhs = np.vdot(y.astype(np.float64), g.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), dx.astype(np.float64))
    report.results.append(_compare(name, ADJOINT, np.array([rhs]), np.array([lhs]), (), 1,
                                   report.atol, report.rtol))


class _CentralDifferences:
    """Central differences of L = Σ conv2d(x, w, b) ⊙ g, computed on the part of y that moves."""

    def __init__(self, x, w, b, g, geometry, groups, eps):
        self.x, self.w, self.b, self.g = x, w, b, g
        self.geometry, self.groups, self.eps = geometry, groups, eps
        top, bottom, left, right = geometry.pad
        self.x_padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        self.g_rows = g.transpose(0, 2, 3, 1).reshape(-1, g.shape[1])  # (M, O), rows (n, i, j)

    def input_differences(self, index, advance):
        """dL/dx at index (K, 4) of x, one number per row."""
        geo, g = self.geometry, self.g
        (oh, ow), (sh, sw) = geo.output_size, geo.stride
        top, _, left, _ = geo.pad
        numeric = np.zeros(len(index))
        # Output row i reads padded rows i·sh + kh·dh, kh < KH: the padded row p is read only
        # by rows i in [ceil((p − span + 1) / sh), floor(p / sh)], clipped to [0, OH). Those
        # rows read padded rows [i0·sh, i1·sh + span): the crop that gives them exactly.
        blocks = defaultdict(list)  # crop shape -> [(k, n, c, row, col, i0, i1, j0, j1)]
        for k, (n, c, row, col) in enumerate(index.tolist()):
            spans = zip((row + top, col + left), (sh, sw), geo.dilated_kernel_size, (oh, ow))
            (i0, i1), (j0, j1) = [(max(0, -((span - 1 - p) // s)), min(size - 1, p // s))
                                  for p, s, span, size in spans]
            if i0 > i1 or j0 > j1:
                continue  # no window reads this pixel: L does not depend on it
            shape = ((i1 - i0) * sh + geo.dilated_kernel_size[0],
                     (j1 - j0) * sw + geo.dilated_kernel_size[1])
            blocks[shape].append((k, n, c, row + top - i0 * sh, col + left - j0 * sw,
                                  i0, i1, j0, j1))
        for (crop_h, crop_w), members in blocks.items():
            for part in _chunks(members, self._per_call(crop_h * crop_w * self.w.shape[0])):
                crops = np.stack([self.x_padded[n, :, i0 * sh: i0 * sh + crop_h,
                                                j0 * sw: j0 * sw + crop_w]
                                  for _, n, _, _, _, i0, _, j0, _ in part])  # (k, C, ch, cw)
                plus, minus, steps = self._perturb(
                    crops, [(j, c, row, col) for j, (_, _, c, row, col, *_) in enumerate(part)])
                y_local = conv2d(np.concatenate([plus, minus]), self.w, self.b,
                                 stride=geo.stride, dilation=geo.dilation, groups=self.groups)
                g_local = np.stack([g[n, :, i0: i1 + 1, j0: j1 + 1]
                                    for _, n, _, _, _, i0, i1, j0, j1 in part])
                numeric[[m[0] for m in part]] = self._quotient(y_local, g_local, steps, axis=0)
            advance(len(members))
        advance(len(index) - sum(len(m) for m in blocks.values()))
        return numeric

    def weight_differences(self, index, advance):
        """dL/dw at index (K, 4) of w.

        w[o, c, kh, kw] enters only y[:, o] = Σ_c' x_c' ⋆ w[o, c'] + b[o], and there only the
        term of input channel c, so L+ − L− needs y's part x_c ⋆ w[o, c] alone (the other terms
        are the same on both sides): the column matrix of x_c (M, KH·KW) times the two
        perturbed filters, the forward pass of conv2d written in rows.
        """
        geo, g_rows, w = self.geometry, self.g_rows, self.w
        in_per_group, out_per_group = w.shape[1], w.shape[0] // self.groups
        numeric = np.zeros(len(index))
        by_channel = defaultdict(list)  # (group, c) -> [(k, o, kh, kw)]
        for k, (o, c, kh, kw) in enumerate(index.tolist()):
            by_channel[(o // out_per_group, c)].append((k, o, kh, kw))
        for (group, c), members in by_channel.items():
            channel = group * in_per_group + c                          # x's channel
            col_matrix = im2col(self.x[:, channel: channel + 1], geo.kernel_size,
                                stride=geo.stride, padding=geo.pad, dilation=geo.dilation)
            for part in _chunks(members, self._per_call(len(g_rows))):
                outputs = [o for _, o, _, _ in part]
                plus, minus, steps = self._perturb(
                    w[outputs, c], [(j, kh, kw) for j, (_, _, kh, kw) in enumerate(part)])
                filters = np.concatenate([plus, minus]).reshape(2 * len(part), -1)
                y_part = col_matrix @ filters.T                                # (M, 2k)
                numeric[[k for k, *_ in part]] = self._quotient(y_part, g_rows[:, outputs], steps)
                advance(len(part))
        return numeric

    def bias_differences(self, index, advance):
        """dL/db at index (K, 1) of b: y[:, o] = X_col · w[o] + b[o], with b[o] ± eps."""
        geo, g_rows, w, groups = self.geometry, self.g_rows, self.w, self.groups
        in_per_group, out_per_group = w.shape[1], w.shape[0] // groups
        numeric = np.zeros(len(index))
        by_group = defaultdict(list)
        for k, (o,) in enumerate(index.tolist()):
            by_group[o // out_per_group].append((k, o))
        for group, members in by_group.items():
            # Output channel o of a grouped conv is a plain conv of its group's input channels.
            col_matrix = im2col(self.x[:, group * in_per_group: (group + 1) * in_per_group],
                                geo.kernel_size, stride=geo.stride, padding=geo.pad,
                                dilation=geo.dilation)                         # (M, Cg·KH·KW)
            for part in _chunks(members, self._per_call(len(g_rows))):
                outputs = [o for _, o in part]
                plus, minus, steps = self._perturb(self.b[outputs],
                                                   [(j,) for j in range(len(part))])
                y_no_bias = col_matrix @ w[outputs].reshape(len(part), -1).T   # (M, k)
                y_both = np.concatenate([y_no_bias + plus, y_no_bias + minus], axis=1)
                numeric[[k for k, _ in part]] = self._quotient(y_both, g_rows[:, outputs], steps)
                advance(len(part))
        return numeric

    def _perturb(self, base, positions):
        """Two copies of base (k, ...), moved by +eps and −eps at positions[j] (which starts
        with j), and the steps actually taken (in float32, v ± eps is rounded)."""
        plus, minus = base.copy(), base.copy()
        steps = np.empty(len(positions))
        for j, at in enumerate(positions):
            plus[at] += self.eps
            minus[at] -= self.eps
            steps[j] = float(plus[at]) - float(minus[at])
        return plus, minus, steps

    @staticmethod
    def _quotient(y_both, g_local, steps, axis=1):
        """(L+ − L−) / step for each perturbation; y_both holds the + half, then the − half."""
        plus, minus = np.split(y_both, 2, axis=axis)
        change = plus.astype(np.float64) - minus                    # in float64, like the sum
        change *= g_local
        other_axes = tuple(a for a in range(change.ndim) if a != axis)
        return change.sum(axis=other_axes) / steps

    @staticmethod
    def _per_call(elements_per_member):
        return max(1, _CHUNK_ELEMENTS // (2 * elements_per_member))


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start: start + size]


def _compare(name, tensor, analytic, numeric, index, size, atol, rtol) -> Result:
    """Torch's rule |a − n| ≤ atol + rtol·|n| on each coordinate, and the worst few.

    analytic, numeric (K,); index (K, ndim) of the coordinates, or a shape when they are all
    of that shape's elements in C order.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    abs_err = np.abs(analytic - numeric)
    ratio = abs_err / (atol + rtol * np.abs(numeric))
    ratio = np.where(np.isnan(ratio), np.inf, ratio)  # a NaN anywhere fails
    rel_err = abs_err / np.maximum(1e-12, np.abs(analytic) + np.abs(numeric))
    order = np.argsort(-ratio, kind="stable")[:WORST_SHOWN]
    if isinstance(index, tuple):  # a shape: the coordinates are all its elements
        where = [np.unravel_index(k, index) if index else () for k in order]
    else:
        where = [index[k] for k in order]
    worst = [Worst(tuple(int(i) for i in at), float(analytic[k]), float(numeric[k]),
                   float(abs_err[k]), float(ratio[k])) for at, k in zip(where, order)]
    return Result(name, tensor, bool(np.all(ratio <= 1.0)), len(analytic), size,
                  _max(abs_err), _max(rel_err), _max(ratio), worst)


def _max(values):
    return float(np.max(values)) if len(values) else 0.0


def _shape_failure(name, tensor, got, expected) -> Result:
    return Result(name, tensor, False, 0, math.prod(expected), math.inf, math.inf, math.inf,
                  note=f"backward returned shape {tuple(got)}, expected {tuple(expected)}")


def _settings(dtype, eps, atol, rtol):
    """Resolve the dtype's defaults; float32 comes with its warning."""
    if dtype not in DEFAULTS:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    default_eps, default_atol, default_rtol = DEFAULTS[dtype]
    eps = default_eps if eps is None else float(eps)
    atol = default_atol if atol is None else float(atol)
    rtol = default_rtol if rtol is None else float(rtol)
    for label, value in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        if not value >= 0 or not math.isfinite(value) or (label == "eps" and value == 0):
            raise ValueError(f"{label} must be a finite number {'>' if label == 'eps' else '>='}"
                             f" 0, got {value}")
    if atol == 0 and rtol == 0:
        raise ValueError("atol and rtol cannot both be 0")
    warnings = [FLOAT32_WARNING.format(eps=eps, atol=atol, rtol=rtol)] if dtype == "float32" else []
    return eps, atol, rtol, warnings


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else str(float(value))
    return value
