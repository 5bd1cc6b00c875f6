"""The walkthrough of "Convolution in forward and backward" as data, every number from the core.

    walkthrough(x, w, ...) -> Walkthrough: six Steps (title, paragraphs, Grids, Checks) and
    ``arrays``, every array shown, in the core's layout: x (1, C, H, W), w (O, C/groups, KH, KW),
    y and dL/dy (1, O, OH, OW), X_col (OH·OW, C·KH·KW), W (C·KH·KW, O).

Each claim the article makes is a pair of arrays computed by two different routes (CLAIMS);
verify() compares them, so a ✓ is a max abs difference within tolerance, never a constant.
Nothing here prints: explain_render.py draws a Walkthrough with rich, animate.py with Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import col2im, conv2d, conv2d_backward, dilate, flip_kernel, im2col, resolve

ARTICLE_KERNEL = np.array([[1.0, 2.0], [3.0, 4.0]])   # [[a, b], [c, d]]
ARTICLE_PADDING = (1, 0, 1, 0)                         # at top and left: y keeps x's size
MAX_CHANNEL_GRIDS = 4                                  # channels drawn per array; --json has all
MAX_LISTED = 9                                         # terms written out in a sum

# (step index, claim, computed, expected): each claim compares two arrays of ``arrays``.
CLAIMS = (
    (0, "sliding the window by hand gives conv2d's y", "y_sliding", "y"),
    (1, "X_col · W, reshaped, is step 1's y", "y_matmul", "y"),
    (2, "X_colᵀ · dL/dy is conv2d_backward's dL/dw", "dL/dw_matmul", "dL/dw"),
    (3, "∂y/∂p is the flipped kernel, placed at p", "dy/dp", "dy/dp_flipped"),
    (3, "Σ dL/dy · ∂y/∂p is conv2d_backward's dL/dx at p", "dL/dp", "dL/dx[p]"),
    (4, "dL/dy ⋆ w_flipped (full) is col2im(dL/dy · Wᵀ)", "dL/dx_flipped", "dL/dx_col2im"),
    (4, "dL/dy ⋆ w_flipped (full) is conv2d_backward's dL/dx", "dL/dx_flipped", "dL/dx"),
)


@dataclass
class Grid:
    """One table: values (R, K), a float array (NaN = blank cell) or an array of strings.

    dim (R, K) marks padding or inserted zeros (drawn dimmed, padding as "·"); mark (R, K) the
    highlighted cells (drawn bold and in [brackets]); focus is the cell kept in view when a
    large table is cropped.
    """

    title: str
    values: np.ndarray
    row_labels: list[str] | None = None
    col_labels: list[str] | None = None
    dim: np.ndarray | None = None
    mark: np.ndarray | None = None
    focus: tuple[int, int] | None = None
    symbol: str = "·"      # how a dim cell is drawn; "" draws its value dimmed, in (parens)
    pin_last: int = 0      # trailing columns always shown (results), however it is cropped
    max_rows: int = 10     # rows shown before cropping


@dataclass
class Check:
    """One claim: max |computed - expected| within tolerance gives ✓, anything else ✗."""

    claim: str
    computed: str
    expected: str
    max_abs_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_abs_diff) and self.max_abs_diff <= self.tolerance)

    @property
    def mark(self) -> str:
        return "✓" if self.ok else "✗"


@dataclass
class Step:
    title: str
    paragraphs: list[str]
    grids: list[Grid] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


@dataclass
class Walkthrough:
    steps: list[Step]
    arrays: dict[str, np.ndarray]
    pixel: tuple[int, int, int]          # (c, i, j) of p in x
    groups: int
    geometry: object                     # convcli.Geometry
    checks: list[Check]

    def to_json(self) -> dict:
        """Every array as nested lists, the geometry, the pixel and the checks: json.dumps-able."""
        g = self.geometry
        return {
            "geometry": {"input_size": g.input_size, "kernel_size": g.kernel_size,
                         "stride": g.stride, "dilation": g.dilation, "padding": g.pad,
                         "output_size": g.output_size, "groups": self.groups},
            "pixel": list(self.pixel),
            "arrays": {name: np.asarray(a).tolist() for name, a in self.arrays.items()},
            "checks": [{"claim": c.claim, "computed": c.computed, "expected": c.expected,
                        "max_abs_diff": c.max_abs_diff, "tolerance": c.tolerance, "ok": c.ok}
                       for c in self.checks],
            "steps": [{"title": s.title, "text": s.paragraphs} for s in self.steps],
        }


def verify(arrays: dict[str, np.ndarray]) -> list[Check]:
    """One Check per CLAIMS entry: tolerance 1e-9 · (1 + max |expected|), for float64."""
    checks = []
    for _, claim, computed, expected in CLAIMS:
        a, b = np.asarray(arrays[computed], float), np.asarray(arrays[expected], float)
        diff = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        checks.append(Check(claim, computed, expected, diff, 1e-9 * (1.0 + scale)))
    return checks


def walkthrough(x=None, w=None, *, stride=1, padding=None, dilation=1, groups=1, pixel=None,
                seed=0, grad_output=None) -> Walkthrough:
    """The article's argument on real numbers.

    x: (H, W), (C, H, W) or (1, C, H, W); default a 4×4 of seeded integers 1..5 (no zeros, so
    the padding stands out). w: (KH, KW) or (O, C/groups, KH, KW); default [[1, 2], [3, 4]].
    padding: as conv2d; default (1, 0, 1, 0) for a 2×2 kernel (the article), "same" otherwise.
    pixel: (i, j) or (c, i, j) of p in x; default (0, 0, 0). grad_output: dL/dy (1, O, OH, OW);
    default seeded random integers in ±1..3 (never all ones: that hides bugs).
    """
    rng = np.random.default_rng(seed)
    w = np.asarray(ARTICLE_KERNEL if w is None else w, dtype=float)
    w = w.reshape((1, 1) + w.shape) if w.ndim == 2 else w
    if w.ndim != 4:
        raise ValueError(f"the kernel must be (KH, KW) or (O, C, KH, KW), got shape {w.shape}")
    if x is None:
        side = max(4, max(d * (k - 1) + 1 for d, k in zip(_pair(dilation), w.shape[2:])))
        x = rng.integers(1, 6, size=(1, w.shape[1] * groups, side, side))
    x = np.asarray(x, dtype=float)
    x = x.reshape((1,) * (4 - x.ndim) + x.shape) if x.ndim in (2, 3) else x
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"the image must be (H, W), (C, H, W) or (1, C, H, W), got {x.shape}")
    if padding is None:
        article = tuple(d * (k - 1) + 1 for d, k in zip(_pair(dilation), w.shape[2:])) == (2, 2)
        padding = ARTICLE_PADDING if article else "same"
    options = dict(stride=stride, dilation=dilation, groups=groups)
    geometry = resolve(x.shape[2:], w.shape[2:], stride=stride, padding=padding,
                       dilation=dilation)
    options["padding"] = geometry.pad
    y = conv2d(x, w, **options)                                     # validates shapes too
    if grad_output is None:
        grad_output = rng.choice([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0], size=y.shape)
    grad_output = np.asarray(grad_output, dtype=float).reshape(y.shape)
    pixel = _pixel(pixel, x.shape)
    arrays = compute(x, w, grad_output, geometry, groups, pixel)
    checks = verify(arrays)
    steps = _steps(arrays, geometry, groups, pixel)
    for (index, *_), check in zip(CLAIMS, checks):
        steps[index].checks.append(check)
    steps[-1].checks = list(checks)
    return Walkthrough(steps, arrays, pixel, groups, geometry, checks)


def compute(x, w, grad_output, geometry, groups, pixel) -> dict[str, np.ndarray]:
    """Every array of the walkthrough, each claim computed by two routes. Shapes as the module
    docstring; the pixel's arrays ("dy/dp", "footprint") have y's shape (1, O, OH, OW)."""
    top, bottom, left, right = geometry.pad
    kernel_size, stride, dilation = geometry.kernel_size, geometry.stride, geometry.dilation
    options = dict(stride=stride, padding=geometry.pad, dilation=dilation)
    n, channels, height, width = x.shape
    out_channels = w.shape[0]
    oh, ow = geometry.output_size

    y = conv2d(x, w, groups=groups, **options)
    x_padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    x_col = im2col(x, kernel_size, **options)                      # (OH·OW, C·KH·KW)
    w_matrix = weight_matrix(w, groups)                             # (C·KH·KW, O)
    # (OH·OW, O) -> (1, OH, OW, O) -> (1, O, OH, OW)
    y_matmul = (x_col @ w_matrix).reshape(1, oh, ow, out_channels).transpose(0, 3, 1, 2)

    grad_x, grad_w, _ = conv2d_backward(grad_output, x, w, groups=groups, **options)
    grad_rows = grad_output.transpose(0, 2, 3, 1).reshape(oh * ow, out_channels)  # (OH·OW, O)
    grad_w_matmul = weights_from_matrix(x_col.T @ grad_rows, w.shape, groups)

    # p's footprint: y of an image that is zero except p = 1 is ∂y/∂p, by linearity
    c, i, j = pixel
    one_hot = np.zeros_like(x)
    one_hot[0, c, i, j] = 1.0
    dy_dp = conv2d(one_hot, w, groups=groups, **options)           # (1, O, OH, OW)
    w_flipped = flip_kernel(w, groups)                              # (C, O/groups, KH, KW)
    dy_dp_flipped = np.zeros_like(y)
    for o, out_i, out_j, fi, fj in flipped_footprint(pixel, w.shape, geometry, groups):
        dy_dp_flipped[0, o, out_i, out_j] = w_flipped[c, o % (out_channels // groups), fi, fj]

    # dL/dx all at once: dilate dL/dy by the stride, pad it fully, slide the flipped kernel
    grad_dilated = dilate(grad_output, stride)                      # (1, O, (OH-1)·s+1, ...)
    span_h, span_w = geometry.dilated_kernel_size
    full = (span_h - 1, span_h - 1, span_w - 1, span_w - 1)
    used_h, used_w = geometry.used_size
    grad_x_padded = np.zeros((n, channels) + geometry.padded_size)
    grad_x_padded[:, :, :used_h, :used_w] = conv2d(grad_dilated, w_flipped, padding=full,
                                                   dilation=dilation, groups=groups)
    grad_x_flipped = grad_x_padded[:, :, top : top + height, left : left + width]
    grad_x_col2im = col2im(grad_rows @ w_matrix.T, x.shape, kernel_size, **options)

    return {
        "x": x, "padding": np.array(geometry.pad), "x_padded": x_padded, "w": w,
        "w_flipped": w_flipped, "X_col": x_col, "W": w_matrix, "y": y,
        "y_sliding": slide(x_padded, w, geometry, groups), "y_matmul": y_matmul,
        "dL/dy": grad_output, "dL/dw": grad_w, "dL/dw_matmul": grad_w_matmul,
        "p": np.array(x[0, c, i, j]), "dy/dp": dy_dp, "dy/dp_flipped": dy_dp_flipped,
        "footprint": x[0, c, i, j] * dy_dp,
        "dL/dp": np.array(np.sum(grad_output * dy_dp)), "dL/dx[p]": np.array(grad_x[0, c, i, j]),
        "dL/dy_dilated": grad_dilated, "dL/dy_padded": np.pad(grad_dilated, ((0, 0), (0, 0),
                                                               full[:2], full[2:])),
        "dL/dx_padded": grad_x_padded, "dL/dx_flipped": grad_x_flipped,
        "dL/dx_col2im": grad_x_col2im, "dL/dx": grad_x,
    }


def slide(x_padded, w, geometry, groups) -> np.ndarray:
    """y by the definition, without im2col: for each kernel tap (kh, kw), add w[:, :, kh, kw]
    times the input it meets at every window. (1, C, Hp, Wp) -> (1, O, OH, OW)."""
    (oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    out_channels, group_channels, kh, kw = w.shape
    group_out = out_channels // groups
    y = np.zeros((1, out_channels, oh, ow))
    for row in range(kh):
        for col in range(kw):
            # (C, OH, OW): the pixel under tap (row, col) for every window
            seen = x_padded[0, :, row * dh : row * dh + (oh - 1) * sh + 1 : sh,
                            col * dw : col * dw + (ow - 1) * sw + 1 : sw]
            for g in range(groups):
                outs, ins = slice(g * group_out, (g + 1) * group_out), slice(
                    g * group_channels, (g + 1) * group_channels)
                y[0, outs] += np.einsum("oc,chw->ohw", w[outs, :, row, col], seen[ins])
    return y


def weight_matrix(w, groups) -> np.ndarray:
    """W of Y = X_col · W: (O, C/g, KH, KW) -> (C·KH·KW, O), block-diagonal over the groups
    (an input channel outside an output's group meets a zero)."""
    out_channels, group_channels = w.shape[:2]
    taps = w[0, 0].size
    group_out, group_rows = out_channels // groups, group_channels * taps
    matrix = np.zeros((groups * group_rows, out_channels))
    for g in range(groups):
        outs = slice(g * group_out, (g + 1) * group_out)
        matrix[g * group_rows : (g + 1) * group_rows, outs] = w[outs].reshape(group_out, -1).T
    return matrix


def weights_from_matrix(matrix, w_shape, groups) -> np.ndarray:
    """The inverse of weight_matrix: (C·KH·KW, O) -> (O, C/g, KH, KW), the diagonal blocks."""
    out_channels, group_channels, kh, kw = w_shape
    group_out, group_rows = out_channels // groups, group_channels * kh * kw
    blocks = [matrix[g * group_rows : (g + 1) * group_rows, g * group_out : (g + 1) * group_out]
              for g in range(groups)]
    return np.concatenate([b.T for b in blocks]).reshape(w_shape)


def flipped_footprint(pixel, w_shape, geometry, groups):
    """The outputs p touches, read off the flipped kernel: (o, i, j, fi, fj) with output (o, i, j)
    getting p · w_flipped[c, o, fi, fj]. Window (i, j) covers padded row i·s + kh·d, so p's padded
    row r is met by tap kh = KH-1-fi at i = (r - (KH-1)·d + fi·d) / s, where that is whole."""
    c, i, j = pixel
    top, _, left, _ = geometry.pad
    out_channels, group_channels, kh, kw = w_shape
    group_out = out_channels // groups
    (oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    first_row, first_col = i + top - (kh - 1) * dh, j + left - (kw - 1) * dw
    group = c // group_channels
    for o in range(group * group_out, (group + 1) * group_out):
        for fi in range(kh):
            for fj in range(kw):
                row, col = first_row + fi * dh, first_col + fj * dw
                if row % sh or col % sw or not (0 <= row // sh < oh and 0 <= col // sw < ow):
                    continue
                yield o, row // sh, col // sw, fi, fj


def tap_names(kh, kw) -> list[str]:
    """Names of the kernel taps in row-major order: a, b, c, … as in the article, or "k,l"."""
    if kh * kw <= 26:
        return [chr(ord("a") + t) for t in range(kh * kw)]
    return [f"{r},{c}" for r in range(kh) for c in range(kw)]


def fmt(value, factor=False) -> str:
    """A number as the text shows it: whole numbers without a decimal point; in brackets when
    it is a negative factor of a product (factor=True)."""
    value = float(value)
    whole = value == round(value) and abs(value) < 1e12
    text = str(int(round(value))) if whole else f"{value:.3g}"
    text = text.replace("-", "−")
    return f"({text})" if factor and value < 0 else text


def _pair(value):
    return (value, value) if isinstance(value, (int, np.integer)) else tuple(value)


def _pixel(pixel, x_shape):
    pixel = (0, 0, 0) if pixel is None else tuple(int(v) for v in pixel)
    pixel = (0,) + pixel if len(pixel) == 2 else pixel
    if len(pixel) != 3 or not all(0 <= p < n for p, n in zip(pixel, x_shape[1:])):
        raise ValueError(f"pixel must be I,J (or C,I,J) inside x of shape (C, H, W) = "
                         f"{x_shape[1:]}, got {pixel}")
    return pixel


# ---------------------------------------------------------------- the steps, as text and grids

def _steps(a, geometry, groups, pixel) -> list[Step]:
    _, channels, height, width = a["x"].shape
    out_channels, group_channels, kh, kw = a["w"].shape
    (oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    top, bottom, left, right = geometry.pad
    names = tap_names(kh, kw)
    c, pi, pj = pixel
    p = a["p"].item()
    pad_mask = np.ones(geometry.padded_size, bool)
    pad_mask[top : top + height, left : left + width] = False
    many = channels > 1 or out_channels > 1

    def kernel_text():
        if kh * kw <= 26 and not many:
            rows = _matrix_text([names[r * kw : (r + 1) * kw] for r in range(kh)])
            values = _matrix_text([[fmt(v) for v in row] for row in a["w"][0, 0]])
            return f"w is the {kh}×{kw} kernel {rows} = {values}"
        return (f"w is {out_channels}×{group_channels}×{kh}×{kw} (O, C/groups, KH, KW): "
                f"{out_channels} output channel(s), each a {kh}×{kw} kernel per input channel")

    # 1. setup -----------------------------------------------------------------------------
    first = np.zeros((1, out_channels, oh, ow), bool)
    first[0, :, 0, 0] = True
    window = np.zeros(geometry.padded_size, bool)
    window[0 : (kh - 1) * dh + 1 : dh, 0 : (kw - 1) * dw + 1 : dw] = True
    terms = [f"{fmt(a['x_padded'][0, ch, r * dh, q * dw], True)}·{names[r * kw + q]}"
             for ch in range(group_channels) for r in range(kh) for q in range(kw)]
    text = [
        f"x is {height}×{width}" + (f" with {channels} channels" if channels > 1 else "")
        + f"; padding (top, bottom, left, right) = ({top}, {bottom}, {left}, {right}) adds "
        "zeros, drawn ·" + (" at the top and left" if (bottom, right) == (0, 0) and top + left
                            else "") + f". {kernel_text()}.",
        "Deep learning's \"convolution\" is a cross-correlation: slide w over the padded x "
        "without flipping it; at each stop multiply the overlapping numbers and add them up. "
        f"The first window, in [brackets]: y(0,0) = {_sum_text(terms)} = "
        f"{fmt(a['y'][0, 0, 0, 0])}" + (" (summed over the input channels)"
                                     if group_channels > 1 else "")
        + ".",
        _geometry_text(geometry, (height, width)),
    ]
    grids = _channel_grids("x", a["x_padded"][0], dim=pad_mask, mark=window, focus=(0, 0))
    grids += _kernel_grids("w", a["w"], names)
    grids += _channel_grids("y = x ⋆ w", a["y"][0], mark=first[0], focus=(0, 0), prefix="o")
    steps = [Step("1. Setup: y = x ⋆ w, a cross-correlation", [t for t in text if t], grids)]

    # 2. im2col ------------------------------------------------------------------------------
    rows = [f"y({r},{q})" for r in range(oh) for q in range(ow)]
    columns = [f"{ch}:{n}" if channels > 1 else n for ch in range(channels) for n in names]
    result = a["y_matmul"][0].reshape(out_channels, -1).T                 # (OH·OW, O)
    out_names = ["= y"] if out_channels == 1 else [f"= y o{o}" for o in range(out_channels)]
    table = np.concatenate([a["X_col"], result], axis=1)
    text = [
        f"im2col copies each window into one row of X_col: {oh * ow} rows (one per output "
        f"pixel) × {channels * kh * kw} columns (one per kernel tap, named by the weight it "
        "meets). The whole convolution is then one matrix product, Y = X_col · W, where W is "
        "the kernel read row by row" + (" (one column per output channel"
                                        + (", zero outside its group" if groups > 1 else "")
                                        + ")" if out_channels > 1 else "") + ".",
        f"The last column{'s are' if out_channels > 1 else ' is'} X_col · W; reshaped to "
        f"{oh}×{ow} it is step 1's y.",
    ]
    w_rows = [f"{ch}:{n}" if channels > 1 else n for ch in range(channels) for n in names]
    grids = [Grid("X_col | X_col · W", table, rows, columns + out_names, focus=(0, 0),
                  pin_last=out_channels, max_rows=16),
             Grid("W", a["W"], w_rows, [f"o{o}" for o in range(out_channels)])]
    steps.append(Step("2. im2col: the convolution as one matrix product", text, grids))

    # 3. dL/dw ---------------------------------------------------------------------------------
    inside = _inside_row(a["x_padded"][0], pad_mask, geometry)
    row_i, row_j = divmod(inside, ow)
    xs = a["X_col"][inside, :group_channels * kh * kw]
    symbols = [f"x{t + 1}" for t in range(len(xs))]
    w_syms = [f"{ch}:{n}" if group_channels > 1 else n for ch in range(group_channels)
              for n in names]
    products = [f"{s}·{n}" for s, n in zip(symbols, w_syms)]
    text = [
        f"One output first, as in the article: y({row_i},{row_j}) = {_sum_text(products)}, "
        f"with ({_list_text(symbols)}) = ({_list_text([fmt(v) for v in xs])}), row "
        f"y({row_i},{row_j}) of X_col. So ∂y/∂w = ({_list_text(symbols)}) = xᵀ: each weight's "
        "derivative is the input it multiplied.",
        "Every output adds its own xᵀ, weighted by dL/dy at that output (here seeded random "
        "integers): dL/dw = Σ dL/dy(i,j) · xᵀ(i,j) = X_colᵀ · dL/dy, the transposed matrix "
        "times the vector" + (" (shown for output channel o0; the others are alike)"
                              if out_channels > 1 else "") + ".",
    ]
    taps = group_channels * kh * kw
    transposed = np.full((1 + taps, oh * ow + 1), np.nan)
    transposed[0, :-1] = a["dL/dy"][0, 0].ravel()
    transposed[1:, :-1] = a["X_col"][:, :taps].T
    transposed[1:, -1] = a["dL/dw_matmul"][0].ravel()
    mark = np.zeros(transposed.shape, bool)
    mark[1:, -1] = True
    grids = _channel_grids("dL/dy", a["dL/dy"][0], focus=(0, 0), prefix="o")
    grids.append(Grid("X_colᵀ · dL/dy", transposed, ["dL/dy"] + w_syms,
                      [f"{r},{q}" for r in range(oh) for q in range(ow)] + ["= dL/dw"],
                      mark=mark, focus=(0, 0), pin_last=1))
    grids += _kernel_grids("dL/dw", a["dL/dw"], names, named=False)
    steps.append(Step("3. dL/dw = X_colᵀ · dL/dy: the xᵀ product", text, grids))

    # 4. one pixel ------------------------------------------------------------------------------
    touched = list(flipped_footprint(pixel, a["w"].shape, geometry, groups))
    group_out = out_channels // groups
    labels = np.full((out_channels, oh, ow), "", dtype=object)
    mark = np.zeros((out_channels, oh, ow), bool)
    lines = []
    w_f = a["w_flipped"]
    for o, oi, oj, fi, fj in touched:
        name = names[(kh - 1 - fi) * kw + (kw - 1 - fj)]
        labels[o, oi, oj] = f"p·{name}"
        mark[o, oi, oj] = True
        channel = f"[o={o}]" if out_channels > 1 else ""
        weight = w_f[c, o % group_out, fi, fj]
        lines.append(f"y{channel}({oi},{oj}) gets p·{name} = {fmt(p, True)}·{fmt(weight, True)}"
                     f" = {fmt(p * weight)}")
    labels[labels == ""] = "0"                     # ∂y/∂p is 0 where p is in no window
    p_mark = np.zeros(geometry.padded_size, bool)
    p_mark[pi + top, pj + left] = True
    chain = [f"{fmt(a['dL/dy'][0, o, oi, oj], True)}·{fmt(w_f[c, o % group_out, fi, fj], True)}"
             for o, oi, oj, fi, fj in touched]
    where = f"x{'[c=' + str(c) + ']' if channels > 1 else ''}({pi},{pj})"
    flipped_names = _matrix_text([[names[(kh - 1 - r) * kw + (kw - 1 - q)] for q in range(kw)]
                                  for r in range(kh)])
    in_order = ", ".join(labels[o, oi, oj] for o, oi, oj, *_ in touched[:MAX_LISTED])
    text = [
        f"Pick one input pixel p = {where} = {fmt(p)}. Going forward it sits in "
        + (f"{len(touched)} windows and meets a different weight in each: " if len(touched) > 1
           else f"{len(touched)} window(s): ") + _list_text(lines, sep="; ") + ".",
        f"In output order these are {in_order}{', …' if len(touched) > MAX_LISTED else ''}: "
        f"p times {flipped_names}, the flipped kernel"
        + (" (only the taps that land on p: at stride > 1 the windows skip pixels)"
           if (sh, sw) != (1, 1) else "")
        + (", across every output channel of p's group: w_flipped[c, o] = w[o, c] rotated "
           "180°" if out_channels > 1 else "") + ".",
        f"So by the chain rule dL/dp = Σ dL/dy · (what p was multiplied by) = "
        f"{_sum_text(chain)} = {fmt(a['dL/dp'])}, which is dL/dx at p.",
    ]
    p_channels = [c] if channels > 1 else None
    grids = _channel_grids("x, with p", a["x_padded"][0], dim=pad_mask, mark=p_mark,
                           focus=(pi + top, pj + left), only=p_channels)
    touched_outs = sorted({o for o, *_ in touched}) or [0]
    focus = (touched[0][1], touched[0][2]) if touched else (0, 0)
    grids += _channel_grids("what p touches", labels, mark=mark, focus=focus, prefix="o",
                            only=touched_outs)
    grids += _channel_grids("dL/dy", a["dL/dy"][0], mark=mark, focus=focus, prefix="o",
                            only=touched_outs)
    steps.append(Step("4. dL/dx for one pixel: p times the flipped kernel", text, grids))

    # 5. all pixels -----------------------------------------------------------------------------
    span_h, span_w = geometry.dilated_kernel_size
    strided, dilated = (sh, sw) != (1, 1), (dh, dw) != (1, 1)
    first = ("first dilate dL/dy, putting stride − 1 zeros between its pixels (in [brackets]: "
             "no window started there), since the flipped-kernel rule alone holds only at "
             "stride 1. Then " if strided else "")
    text = [
        f"Doing step 4 for every pixel at once: {first}pad dL/dy on every side with "
        + ("dilation·" if dilated else "") + f"(K − 1) zeros ({span_h - 1} row(s), "
        f"{span_w - 1} column(s): the full convolution) and slide the flipped kernel over it"
        + (f" with dilation {dh},{dw}" if dilated else "")
        + ". That gives dL/d(padded x); dropping the rows and columns that were padding, "
        "in (parentheses), leaves dL/dx."
        + (" The last rows or columns, which no window reached, get 0."
           if geometry.used_size != geometry.padded_size else ""),
        "The im2col route agrees: dL/dX_col = dL/dy · Wᵀ, and col2im adds each row back where "
        "its window came from.",
    ]
    if channels > 1 or out_channels > 1:
        text.insert(1, (
            f"With channels the flip also swaps them: w is (O, C/groups, KH, KW) = "
            f"{a['w'].shape} and w_flipped is (C, O/groups, KH, KW) = {w_f.shape}, "
            "w_flipped[c, o] = w[o, c] rotated 180°: the backward convolution maps the "
            "gradient's output channels back to the input channels"
            + (" (within each group)" if groups > 1 else "") + "."))
    full_mask = np.ones(a["dL/dy_padded"].shape[2:], bool)
    full_mask[span_h - 1 : span_h - 1 + (oh - 1) * sh + 1,
              span_w - 1 : span_w - 1 + (ow - 1) * sw + 1] = False
    inserted = np.zeros_like(full_mask)
    inserted[span_h - 1 : span_h - 1 + (oh - 1) * sh + 1,
             span_w - 1 : span_w - 1 + (ow - 1) * sw + 1] = True
    inserted[span_h - 1 :: sh, span_w - 1 :: sw][: oh, : ow] = False
    grids = _kernel_grids("w", a["w"], names)
    grids += _kernel_grids("w_flipped", w_f, names, flipped=True)
    grids += _channel_grids("dL/dy, " + ("dilated and " if (sh, sw) != (1, 1) else "")
                            + "padded", a["dL/dy_padded"][0], dim=full_mask,
                            focus=(span_h - 1, span_w - 1), prefix="o")
    if inserted.any():
        for grid in grids[-min(out_channels, MAX_CHANNEL_GRIDS):]:
            grid.mark = inserted          # inserted zeros: drawn in brackets, see the legend
    grids += _channel_grids("dL/d(padded x)", a["dL/dx_padded"][0], dim=pad_mask,
                            focus=(pi + top, pj + left), symbol="")
    p_cell = np.zeros((height, width), bool)
    p_cell[pi, pj] = True
    grids += _channel_grids("dL/dx", a["dL/dx_flipped"][0], mark=p_cell, focus=(pi, pj))
    steps.append(Step("5. dL/dx for all pixels: a full convolution with the flipped kernel",
                      text, grids))

    # 6. conclusion -----------------------------------------------------------------------------
    steps.append(Step("6. Conclusion", [
        "Forward is a convolution: y = x ⋆ w, or with im2col one matrix product "
        "Y = X_col · W. The weight gradient is the xᵀ product: dL/dw = X_colᵀ · dL/dy.",
        "Backward is also a convolution, with the flipped kernel: dL/dx = dL/dy ⋆ w_flipped, "
        "a full convolution" + (", after dilating dL/dy by the stride" if (sh, sw) != (1, 1)
                                else "") + ". Every equality above, checked:",
    ]))
    return steps


def _geometry_text(geometry, input_size) -> str:
    (oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    parts = []
    if (sh, sw) != (1, 1):
        parts.append(f"stride {sh},{sw}: the window jumps {sh} row(s) and {sw} column(s)")
    if (dh, dw) != (1, 1):
        span_h, span_w = geometry.dilated_kernel_size
        parts.append(f"dilation {dh},{dw}: the taps are spread out to cover {span_h}×{span_w}")
    size = ("the same size as x" if (oh, ow) == tuple(input_size) else f"{oh}×{ow}")
    sentence = "; ".join(parts + [f"y is {size}"])
    return sentence[0].upper() + sentence[1:] + "."


def _inside_row(x_padded, pad_mask, geometry) -> int:
    """The first output whose window has no padding (the article's y = x1·w1 + ...), else 0."""
    (oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    kh, kw = geometry.kernel_size
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * sh, i * sh + (kh - 1) * dh + 1, dh)
            cols = slice(j * sw, j * sw + (kw - 1) * dw + 1, dw)
            if not pad_mask[rows, cols].any():
                return i * ow + j
    return 0


def _channel_grids(title, arrays, *, dim=None, mark=None, focus=None, prefix="c", only=None,
                   symbol="·"):
    """One Grid per channel of arrays (Ch, R, K), at most MAX_CHANNEL_GRIDS of them."""
    count = len(arrays)
    chosen = list(range(count)) if only is None else list(only)
    grids = []
    for ch in chosen[:MAX_CHANNEL_GRIDS]:
        name = title if count == 1 else f"{title} [{prefix}={ch}]"
        grids.append(Grid(name, arrays[ch], dim=dim, focus=focus, symbol=symbol,
                          mark=None if mark is None else (mark[ch] if mark.ndim == 3 else mark)))
    if len(chosen) > MAX_CHANNEL_GRIDS:
        grids[-1].title += f" (+{len(chosen) - MAX_CHANNEL_GRIDS} more)"
    return grids


def _kernel_grids(title, w, names, flipped=False, named=True):
    """One Grid per (out, in) channel pair of w (A, B, KH, KW), labelled with the tap names."""
    a_count, b_count, kh, kw = w.shape
    grids = []
    for index in range(min(a_count * b_count, MAX_CHANNEL_GRIDS)):
        o, c = divmod(index, b_count)
        order = [names[(kh - 1 - r) * kw + (kw - 1 - q)] if flipped else names[r * kw + q]
                 for r in range(kh) for q in range(kw)]
        name = title if a_count * b_count == 1 else f"{title}[{o},{c}]"
        if named and kh * kw <= 26:
            labels = np.array([f"{n}={fmt(v)}" for n, v in zip(order, w[o, c].ravel())],
                              dtype=object).reshape(kh, kw)
            grids.append(Grid(name, labels))
        else:
            grids.append(Grid(name, w[o, c]))
    if a_count * b_count > MAX_CHANNEL_GRIDS:
        grids[-1].title += f" (+{a_count * b_count - MAX_CHANNEL_GRIDS} more)"
    return grids


def _matrix_text(rows) -> str:
    """[["a", "b"], ["c", "d"]] -> "[[a, b], [c, d]]"."""
    return "[" + ", ".join("[" + ", ".join(row) + "]" for row in rows) + "]"


def _sum_text(terms) -> str:
    shown = list(terms[:MAX_LISTED])
    if len(terms) > MAX_LISTED:
        shown.append(f"… ({len(terms)} terms)")
    return " + ".join(shown) if shown else "0"


def _list_text(items, sep=", ") -> str:
    items = list(items)
    if len(items) > MAX_LISTED:
        return sep.join(items[: MAX_LISTED - 1] + [f"… ({len(items)} in all)"])
    return sep.join(items)
