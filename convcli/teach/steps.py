"""The ten steps of the walkthrough, one function each: their text and their grids, from the
arrays of arrays.compute. Nothing is computed here but what the text and grids show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..geometry import Geometry
from .arrays import copies_of, flipped_footprint, pad_mask
from .grids import article_row, channel_grids, kernel_grids
from .model import MAX_CHANNEL_GRIDS, Grid, Step
from .text import (
    MAX_LISTED,
    fmt,
    geometry_text,
    list_text,
    matrix_text,
    sum_text,
    tap_names,
)


@dataclass(frozen=True)
class Scene:
    """What every step reads: the arrays, the geometry, the groups, p, and a few derived facts."""

    a: dict[str, Any]
    geometry: Geometry
    groups: int
    pixel: tuple[int, int, int]
    padding_mode: str = "zeros"
    upstream: str = "seeded random integers"       # where dL/dy comes from, in words
    anchor: tuple[int, int] = (0, 0)        # the output step 1 explains: where p is, if large

    @property
    def bordered(self) -> bool:
        """A border mode: the padded cells hold copies of x's pixels, not zeros."""
        return self.padding_mode != "zeros"

    @property
    def pad_symbol(self) -> str:
        """Zeros are drawn ·; a border mode's copies show their values, in (parentheses)."""
        return "" if self.bordered else "·"

    @property
    def copy_note(self) -> str | None:
        """The legend for a border mode's padded cells."""
        return f"on the padding: a copy of a pixel of x (--border {self.padding_mode})" if (
            self.bordered) else None

    @property
    def names(self) -> list[str]:
        return tap_names(*self.geometry.kernel_size)

    @property
    def pad_mask(self) -> np.ndarray:
        """(Hp, Wp): True on the padding."""
        return pad_mask(self.geometry)

    @property
    def many(self) -> bool:
        """More than one input or output channel."""
        return self.a["x"].shape[1] > 1 or self.a["w"].shape[0] > 1


def steps(arrays: dict[str, Any], geometry: Geometry, groups: int,
          pixel: tuple[int, int, int], padding_mode: str = "zeros",
          upstream: str = "seeded random integers", anchor: tuple[int, int] = (0, 0)
          ) -> list[Step]:
    """The walkthrough's ten steps, in order."""
    scene = Scene(arrays, geometry, groups, pixel, padding_mode, upstream, anchor)
    return [setup_step(scene), im2col_step(scene), weight_step(scene), pixel_step(scene),
            input_step(scene), bias_step(scene), matrix_step(scene), col2im_step(scene),
            batch_step(scene), conclusion_step(scene)]


def setup_step(s: Scene) -> Step:
    """1. x with its padding, w, and y = x ⋆ w by sliding the window."""
    a, g, names = s.a, s.geometry, s.names
    _, channels, height, width = a["x"].shape
    out_channels, group_channels, kh, kw = a["w"].shape
    (dh, dw), (top, bottom, left, right) = g.dilation, g.pad
    (ai, aj), (sh, sw) = s.anchor, g.stride
    first = np.zeros((out_channels,) + g.output_size, bool)
    first[:, ai, aj] = True
    window = np.zeros(g.padded_size, bool)
    window[ai * sh : ai * sh + (kh - 1) * dh + 1 : dh,
           aj * sw : aj * sw + (kw - 1) * dw + 1 : dw] = True
    # with several input channels each weight is named by its channel too: 0:a is not 1:a
    terms = [f"{fmt(a['x_padded'][0, ch, ai * sh + r * dh, aj * sw + q * dw], True)}·"
             + (f"{ch}:" if group_channels > 1 else "") + names[r * kw + q]
             for ch in range(group_channels) for r in range(kh) for q in range(kw)]
    first_y = f"y[o=0]({ai},{aj})" if out_channels > 1 else f"y({ai},{aj})"
    which = ("The first window" if s.anchor == (0, 0) else
             "The window of the output at p (the image is large: every table is cropped "
             "around p)")
    symmetric = np.array_equal(a["w"], a["w"][..., ::-1, ::-1])
    where = " at the top and left" if (bottom, right) == (0, 0) and top + left else ""
    text = [
        f"x is {height}×{width}" + (f" with {channels} channels" if channels > 1 else "")
        + f"; padding (top, bottom, left, right) = ({top}, {bottom}, {left}, {right}) adds "
        + (f"copies of x's border pixels (--border {s.padding_mode}), drawn in "
           f"(parentheses){where}" if s.bordered else f"zeros, drawn ·{where}")
        + f". {_kernel_text(s)}.",
        "Deep learning's \"convolution\" is a cross-correlation: slide w over the padded x "
        "without flipping it; at each stop multiply the overlapping numbers and add them up. "
        f"{which}, in [brackets]: {first_y} = {sum_text(terms)} = "
        f"{fmt(a['y'][0, 0, ai, aj])}"
        + (" (summed over the input channels; k:a is weight a of input channel k)"
           if group_channels > 1 else "") + ".",
        ("The textbook convolution x * w turns w 180° first; "
         + ("this w is the same turned 180°, so here the two agree." if symmetric else
            "with this w it gives another y (checked below), which is why the order of the "
            "weights matters when you copy a kernel from one convention to the other.")),
        geometry_text(g, (height, width)),
    ]
    grids = channel_grids("x", a["x_padded"][0], dim=s.pad_mask, mark=window,
                          focus=(ai * sh, aj * sw), symbol=s.pad_symbol, note=s.copy_note)
    grids += kernel_grids("w", a["w"], names)
    grids += channel_grids("y = x ⋆ w", a["y"][0], mark=first, focus=s.anchor, prefix="o")
    return Step("1. Setup: y = x ⋆ w, a cross-correlation", [t for t in text if t], grids)


def _kernel_text(s: Scene) -> str:
    out_channels, group_channels, kh, kw = s.a["w"].shape
    if kh * kw <= 26 and not s.many:
        rows = matrix_text([s.names[r * kw : (r + 1) * kw] for r in range(kh)])
        values = matrix_text([[fmt(v) for v in row] for row in s.a["w"][0, 0]])
        return f"w is the {kh}×{kw} kernel {rows} = {values}"
    shape = f"w is {out_channels}×{group_channels}×{kh}×{kw} (O, C/groups, KH, KW)"
    channels = s.a["x"].shape[1]
    if s.groups == 1:
        return (f"{shape}: {out_channels} output channel(s), each with a {kh}×{kw} kernel for "
                f"every one of the {channels} input channel(s)")
    if group_channels == 1:
        per = out_channels // channels
        own = (f"its own {kh}×{kw} kernel and output channel" if per == 1 else
               f"its own {per} {kh}×{kw} kernels and output channels")
        return (f"{shape}, depthwise (groups = C = {channels}): each input channel has {own}, "
                "and no output mixes channels")
    return (f"{shape}, groups = {s.groups}: each output channel has a {kh}×{kw} kernel for "
            f"each of the {group_channels} input channels of its group only")


def im2col_step(s: Scene) -> Step:
    """2. X_col, one row per output pixel, and Y = X_col · W."""
    a, names = s.a, s.names
    channels = a["x"].shape[1]
    out_channels, _, kh, kw = a["w"].shape
    oh, ow = s.geometry.output_size
    rows = [f"y({r},{q})" for r in range(oh) for q in range(ow)]
    columns = [f"{ch}:{n}" if channels > 1 else n for ch in range(channels) for n in names]
    result = a["y_matmul"][0].reshape(out_channels, -1).T                 # (OH·OW, O)
    out_names = ["= y"] if out_channels == 1 else [f"= y o{o}" for o in range(out_channels)]
    table = np.concatenate([a["X_col"], result], axis=1)
    per_output = (" (one column per output channel"
                  + (", zero outside its group" if s.groups > 1 else "") + ")"
                  if out_channels > 1 else "")
    text = [
        (f"im2col copies each window into one row of X_col: {oh * ow} rows (one per output "
        f"pixel) × {channels * kh * kw} columns (one per kernel tap, named by the weight it "
        "meets). The whole convolution is then one matrix product, Y = X_col · W, where W is "
        f"the kernel read row by row{per_output}."),
        (f"The last column{'s are' if out_channels > 1 else ' is'} X_col · W; reshaped to "
        f"{oh}×{ow} it is step 1's y."),
    ]
    grids = [Grid("X_col | X_col · W", table, rows, columns + out_names,
                  focus=(s.anchor[0] * ow + s.anchor[1], 0),
                  pin_last=out_channels, max_rows=16),
             Grid("W", a["W"], columns, [f"o{o}" for o in range(out_channels)])]
    return Step("2. im2col: the convolution as one matrix product", text, grids)


def weight_step(s: Scene) -> Step:
    """3. ∂y/∂w = xᵀ for one output, then dL/dw = X_colᵀ · dL/dy."""
    a, names = s.a, s.names
    out_channels, group_channels, kh, kw = a["w"].shape
    oh, ow = s.geometry.output_size
    inside = article_row(a["x_padded"][0], s.pad_mask, s.geometry, s.anchor)
    row_i, row_j = divmod(inside, ow)
    xs = a["X_col"][inside, : group_channels * kh * kw]
    symbols = [f"x{t + 1}" for t in range(len(xs))]
    w_syms = [f"{ch}:{n}" if group_channels > 1 else n for ch in range(group_channels)
              for n in names]
    products = [f"{x}·{n}" for x, n in zip(symbols, w_syms)]
    text = [
        (f"One output first, as in the article: y({row_i},{row_j}) = {sum_text(products)}, "
        f"with ({list_text(symbols)}) = ({list_text([fmt(v) for v in xs])}), row "
        f"y({row_i},{row_j}) of X_col. So ∂y/∂w = ({list_text(symbols)}) = xᵀ: each weight's "
        "derivative is the input it multiplied."),
        f"Every output adds its own xᵀ, weighted by dL/dy at that output (here {s.upstream}): "
        "dL/dw = Σ dL/dy(i,j) · xᵀ(i,j) = X_colᵀ · dL/dy, the transposed matrix "
        "times the vector" + (" (shown for output channel o0; the others are alike)"
                              if out_channels > 1 else "") + ".",
    ]
    taps = group_channels * kh * kw
    grad = a["dL/dy"][0, 0].ravel()                                   # (OH·OW,) of o0
    table = np.concatenate([a["X_col"][:, :taps], grad[:, None]], axis=1)
    first = [f"{fmt(v, True)}·{fmt(d, True)}" for v, d in zip(a["X_col"][:, 0], grad)]
    text.append(
        f"In the table each weight reads down its own column of X_col against the dL/dy "
        f"column, which is the product X_colᵀ · dL/dy: dL/d{w_syms[0]} = {sum_text(first)} = "
        f"{fmt(a['dL/dw_matmul'][0].ravel()[0])}.")
    mark = np.zeros(table.shape, bool)
    mark[:, -1] = True
    grids = channel_grids("dL/dy", a["dL/dy"][0], focus=(row_i, row_j), prefix="o")
    grids.append(Grid("X_col | dL/dy", table, [f"y({r},{q})" for r in range(oh)
                                               for q in range(ow)],
                      w_syms + ["dL/dy"], mark=mark, focus=(inside, 0), pin_last=1,
                      max_rows=16))
    grids.append(Grid("X_colᵀ·dL/dy", a["dL/dw_matmul"][0].reshape(-1, 1)[:taps], w_syms,
                      ["dL/dw"], max_rows=16))
    grids += kernel_grids("dL/dw", a["dL/dw"], names, named=False)
    return Step("3. dL/dw = X_colᵀ · dL/dy: the xᵀ product", text, grids)


def pixel_step(s: Scene) -> Step:
    """4. One pixel p: the outputs it touches and the products, p times the flipped kernel."""
    a, g, names = s.a, s.geometry, s.names
    channels = a["x"].shape[1]
    out_channels, _, kh, kw = a["w"].shape
    c, pi, pj = s.pixel
    top, _, left, _ = g.pad
    p = a["p"].item()
    home = (pi + top, pj + left)
    copies = copies_of(s.pixel, g, s.padding_mode)            # p, and its copies in the border
    touched = [(*hit, at) for at in copies
               for hit in flipped_footprint(s.pixel, a["w"].shape, g, s.groups, at)]
    group_out, w_f = out_channels // s.groups, a["w_flipped"]
    labels = np.full((out_channels,) + g.output_size, "", dtype=object)
    mark = np.zeros((out_channels,) + g.output_size, bool)
    lines, chain = [], []
    for o, oi, oj, fi, fj, at in touched:
        name, weight = names[(kh - 1 - fi) * kw + (kw - 1 - fj)], w_f[c, o % group_out, fi, fj]
        term = f"p·{name}"
        labels[o, oi, oj] = f"{labels[o, oi, oj]}+{term}" if labels[o, oi, oj] else term
        mark[o, oi, oj] = True
        channel = f"[o={o}]" if out_channels > 1 else ""
        copy = "" if at == home else f" (p's copy at padded ({at[0]},{at[1]}))"
        lines.append(f"y{channel}({oi},{oj}) gets p·{name}{copy} = {fmt(p, True)}·"
                     f"{fmt(weight, True)} = {fmt(p * weight)}")
        chain.append(f"{fmt(a['dL/dy'][0, o, oi, oj], True)}·{fmt(weight, True)}")
    labels[labels == ""] = "0"                     # ∂y/∂p is 0 where p is in no window
    p_mark = np.zeros(g.padded_size, bool)
    for at in copies:
        p_mark[at] = True
    where = f"x{'[c=' + str(c) + ']' if channels > 1 else ''}({pi},{pj})"
    flipped_names = matrix_text([[names[(kh - 1 - r) * kw + (kw - 1 - q)] for q in range(kw)]
                                 for r in range(kh)])
    in_order = ", ".join(dict.fromkeys(labels[o, oi, oj]
                                       for o, oi, oj, *_ in touched[:MAX_LISTED]))
    if not touched:
        return _skipped_pixel_step(s, where, p, c)
    swap = ("w_flipped[c, o] = w[o, c] rotated 180°" if s.groups == 1 else
            "w_flipped[c, j] = w[o, c mod C/groups] rotated 180°, o the j-th output channel of "
            "p's group")
    text = [
        f"Pick one input pixel p = {where} = {fmt(p)}. Going forward it sits in "
        + (f"{len(touched)} windows and meets a different weight in each: " if len(touched) > 1
           else "1 window: ") + list_text(lines, sep="; ") + ".",
        f"In output order these are {in_order}{', …' if len(touched) > MAX_LISTED else ''}: "
        f"p times {flipped_names}, the flipped kernel"
        + (" (only the taps that land on p: at stride > 1 the windows skip pixels)"
           if g.stride != (1, 1) else "")
        + (f"; with --border {s.padding_mode} p's copies in the border are multiplied too"
           if len(copies) > 1 else "")
        + (f", across every output channel of p's group: {swap}" if out_channels > 1 else "")
        + ".",
        (f"So by the chain rule dL/dp = Σ dL/dy · (what p was multiplied by) = "
        f"{sum_text(chain)} = {fmt(a['dL/dp'])}, which is dL/dx at p."),
    ]
    grids = channel_grids("x, with p", a["x_padded"][0], dim=s.pad_mask, mark=p_mark,
                          focus=(pi + top, pj + left), only=[c] if channels > 1 else None,
                          symbol=s.pad_symbol, note=s.copy_note)
    touched_outs = sorted({o for o, *_ in touched}) or [0]
    focus = (touched[0][1], touched[0][2]) if touched else (0, 0)
    grids += channel_grids("what p touches", labels, mark=mark, focus=focus, prefix="o",
                           only=touched_outs)
    grids += channel_grids("dL/dy", a["dL/dy"][0], mark=mark, focus=focus, prefix="o",
                           only=touched_outs)
    return Step("4. dL/dx for one pixel: p times the flipped kernel", text, grids)


def _skipped_pixel_step(s: Scene, where: str, p: float, c: int) -> Step:
    """Step 4 for a pixel no window's tap lands on: nothing depends on it, dL/dp = 0."""
    g = s.geometry
    top, _, left, _ = g.pad
    causes = [name for name, value in (("the stride", g.stride), ("the dilation", g.dilation))
              if value != (1, 1)]
    skip = "skip" if len(causes) > 1 else "skips"
    text = [
        (f"Pick one input pixel p = {where} = {fmt(p)}. No window's tap lands on it: "
         f"{' and '.join(causes) or 'the geometry'} {skip} it, so no output depends on p."),
        ("By the chain rule dL/dp = Σ dL/dy · (what p was multiplied by), a sum with no terms: "
         f"dL/dp = 0, which is dL/dx at p ({fmt(s.a['dL/dx'][0, c, *s.pixel[1:]])}). Step 4's "
         "two checks do not apply: there is no product to check. Pick another pixel with "
         "--pixel to see the flipped kernel appear."),
    ]
    p_mark = np.zeros(g.padded_size, bool)
    p_mark[s.pixel[1] + top, s.pixel[2] + left] = True
    grids = channel_grids("x, with p", s.a["x_padded"][0], dim=s.pad_mask, mark=p_mark,
                          focus=(s.pixel[1] + top, s.pixel[2] + left),
                          only=[c] if s.a["x"].shape[1] > 1 else None,
                          symbol=s.pad_symbol, note=s.copy_note)
    return Step("4. dL/dx for one pixel: p times the flipped kernel", text, grids)


def input_step(s: Scene) -> Step:
    """5. dL/dx for all pixels: dL/dy, padded fully (and dilated), ⋆ the flipped kernel."""
    a, g = s.a, s.geometry
    (sh, sw), (dh, dw) = g.stride, g.dilation
    span_h, span_w = g.dilated_kernel_size
    strided, dilated = (sh, sw) != (1, 1), (dh, dw) != (1, 1)
    first = ("first dilate dL/dy, putting stride − 1 zeros between its pixels (in [brackets]: "
             "no window started there), since the flipped-kernel rule alone holds only at "
             "stride 1. Then " if strided else "")
    text = [
        f"Doing step 4 for every pixel at once: {first}pad dL/dy on every side with "
        + ("dilation·" if dilated else "") + f"(K − 1) zeros ({span_h - 1} row(s), "
        f"{span_w - 1} column(s): the full convolution) and slide the flipped kernel over it"
        + (f" with dilation {dh},{dw}" if dilated else "")
        + ". That gives dL/d(padded x); "
        + ("each padded cell, in (parentheses), is a copy of a pixel of x "
           f"(--border {s.padding_mode}), so its gradient folds back: it is added onto the "
           "pixel it copied (the adjoint of the padding), which gives dL/dx."
           if s.bordered else
           "dropping the rows and columns that were padding, in (parentheses), leaves dL/dx.")
        + (" The last rows or columns, which no window reached, get 0."
           if g.used_size != g.padded_size else ""),
        ("The im2col route agrees: dL/dX_col = dL/dy · Wᵀ, and col2im adds each row back where "
        "its window came from."),
    ]
    if s.many:
        text.insert(1, (
            f"With channels the flip also swaps them: w is (O, C/groups, KH, KW) = "
            f"{a['w'].shape} and w_flipped is (C, O/groups, KH, KW) = {a['w_flipped'].shape}, "
            + ("w_flipped[c, o] = w[o, c] rotated 180°" if s.groups == 1 else
               "within each group, w_flipped[c, j] = w[o, c mod C/groups] rotated 180° for "
               "the j-th output channel o of c's group")
            + ": the backward convolution maps the gradient's output channels back to the "
            "input channels."))
    text.append("Sliding the flipped kernel is exactly what the textbook calls a convolution "
                "with w itself, which turns the kernel as part of its definition: dL/dx = "
                "dL/dy * w, a true (full) convolution. So backward is a convolution in the "
                "strict sense, forward is not: the last check writes dL/dy * w out tap by tap, "
                "with no flip, and gets dL/dx.")
    return Step("5. dL/dx for all pixels: a full convolution with the flipped kernel",
                text, _input_grids(s))


def _input_grids(s: Scene) -> list[Grid]:
    """Step 5's grids: w, w_flipped, dL/dy padded (inserted zeros marked), dL/d(padded x),
    dL/dx."""
    a, g = s.a, s.geometry
    (oh, ow), (sh, sw) = g.output_size, g.stride
    span_h, span_w = g.dilated_kernel_size
    _, pi, pj = s.pixel
    top, _, left, _ = g.pad
    gradient = (slice(span_h - 1, span_h - 1 + (oh - 1) * sh + 1),
                slice(span_w - 1, span_w - 1 + (ow - 1) * sw + 1))
    full_mask = np.ones(a["dL/dy_padded"].shape[2:], bool)
    full_mask[gradient] = False
    inserted = np.zeros_like(full_mask)
    inserted[gradient] = True
    inserted[span_h - 1 :: sh, span_w - 1 :: sw][:oh, :ow] = False
    grids = kernel_grids("w", a["w"], s.names)
    grids += kernel_grids("w_flipped", a["w_flipped"], s.names, flipped=True)
    grids += channel_grids("dL/dy, " + ("dilated and " if (sh, sw) != (1, 1) else "")
                           + "padded", a["dL/dy_padded"][0], dim=full_mask,
                           focus=(span_h - 1, span_w - 1), prefix="o")
    if inserted.any():
        for grid in grids[-min(a["w"].shape[0], MAX_CHANNEL_GRIDS):]:
            grid.mark = inserted          # inserted zeros: drawn in brackets, see the legend
    grids += channel_grids("dL/d(padded x)", a["dL/dx_padded"][0], dim=s.pad_mask,
                           focus=(pi + top, pj + left), symbol="",
                           note=("on the padding: added onto the pixel it copied"
                                 if s.bordered else None))
    p_cell = np.zeros(g.input_size, bool)
    p_cell[pi, pj] = True
    grids += channel_grids("dL/dx", a["dL/dx_flipped"][0], mark=p_cell, focus=(pi, pj))
    return grids


def bias_step(s: Scene) -> Step:
    """6. The bias, and one window as a dense layer's neuron."""
    a, g = s.a, s.geometry
    ow = g.output_size[1]
    out_channels = a["w"].shape[0]
    inside = article_row(a["x_padded"][0], s.pad_mask, g, s.anchor)
    i, j = divmod(inside, ow)
    xs = a["X_col"][inside, : a["w"][0].size]
    products = [f"{fmt(v, True)}·{fmt(k, True)}" for v, k in zip(xs, a["w"][0].ravel())]
    grads = [fmt(v, True) for v in a["dL/dy"][0, 0].ravel()]
    text = [
        ("A convolution layer adds one bias b per output channel: on one window, y = w·x + b, "
         "exactly the neuron of a dense layer (an MLP's y = w·x + b), except that every window "
         "shares the same w and b. That sharing is the whole difference."),
        (f"At y({i},{j}) (step 3's window, b = 0 here): w·x + b = {sum_text(products)} + 0 = "
         f"{fmt(a['y_neuron'][0])}."),
        ("b moves every output of its channel by the same amount, so ∂y/∂b = 1 everywhere and "
         f"dL/db = Σ dL/dy over the channel's outputs (and over the batch): "
         f"{sum_text(grads)} = {fmt(a['dL/db'][0])}"
         + (" for o0" if out_channels > 1 else "") + "."),
    ]
    grids = channel_grids("dL/dy", a["dL/dy"][0], focus=s.anchor, prefix="o")
    grids.append(Grid("dL/db = Σ dL/dy", a["dL/db"].reshape(-1, 1),
                      [f"o{o}" for o in range(out_channels)], ["dL/db"]))
    return Step("6. The bias: y = w·x + b, a dense layer's neuron on every window", text, grids)


def matrix_step(s: Scene) -> Step:
    """7. y = M·x with the big sparse matrix M; dL/dx = Mᵀ·dL/dy."""
    a, g = s.a, s.geometry
    _, channels, height, width = a["x"].shape
    out_channels = a["w"].shape[0]
    oh, ow = g.output_size
    rows, columns = out_channels * oh * ow, channels * height * width
    text = [
        ("A convolution is linear in x, so it is one matrix product with a big, sparse matrix: "
         f"y = M·x, M of {rows}×{columns} (one row per output, one column per input pixel). "
         "Nudging pixel k by 1 moves y by column k of M: that is how M is built here."),
        ("Every row of M holds the same weights, shifted to its window (weight sharing), and "
         "every column holds one pixel's footprint: the flipped kernel of step 4. So "
         "dL/dx = Mᵀ·dL/dy, and reading Mᵀ's rows is sliding the flipped kernel: the backward "
         "convolution."),
    ]
    grids: list[Grid] = []
    if a["M"].size:
        row_names = [f"{'o' + str(o) + ' ' if out_channels > 1 else ''}y({r},{q})"
                     for o in range(out_channels) for r in range(oh) for q in range(ow)]
        column_names = [f"{str(c) + ':' if channels > 1 else ''}{r},{q}"
                        for c in range(channels) for r in range(height) for q in range(width)]
        grids.append(Grid("M (rows: outputs, columns: pixels of x)", a["M"], row_names,
                          column_names, focus=(0, 0), max_rows=16))
    else:
        text.append(f"M is not drawn for this size ({rows}×{columns}, nearly all zeros); its "
                    "checks apply to small cases (convcli explain's default).")
    return Step("7. The big matrix: y = M·x, dL/dx = Mᵀ·dL/dy", text, grids)


def col2im_step(s: Scene) -> Step:
    """8. col2im: dL/dX_col = dL/dy · Wᵀ scattered back; dL/dx as a transposed convolution."""
    a, g = s.a, s.geometry
    oh, ow = g.output_size
    top, bottom, left, right = g.pad
    span_h, span_w = g.dilated_kernel_size
    (sh, sw), (op_h, op_w) = g.stride, a["output_padding"]
    channels = a["x"].shape[1]
    kh, kw = a["w"].shape[2:]
    back = (span_h - 1 - top, span_h - 1 - bottom, span_w - 1 - left, span_w - 1 - right)
    taps = [f"{c}:{n}" if channels > 1 else n for c in range(channels) for n in s.names]
    text = [
        ("The im2col route backward: dL/dX_col = dL/dy · Wᵀ gives, for every window (a row), "
         "what each of its taps sends back to the pixel under it. col2im adds each row back "
         "where its window came from, so a pixel in several windows collects several terms; "
         "a pixel in none gets 0."),
        ("Seen as a layer, that is a transposed convolution: dL/dx = conv_transpose2d(dL/dy, w, "
         f"stride={sh if sh == sw else (sh, sw)}, padding=({top}, {bottom}, {left}, {right}), "
         f"output_padding=({op_h}, {op_w})). The padding that the forward pass added, the "
         "transposed one crops: as a full convolution of dL/dy it pads (K − 1 − pad) on each "
         f"side, ({back[0]}, {back[1]}, {back[2]}, {back[3]}) (top, bottom, left, right): the "
         "forward padding's opposite side"
         + (f"; the stride becomes {sh - 1} zero(s) between dL/dy's pixels"
            if (sh, sw) != (1, 1) else "")
         + (f"; output_padding adds back the {op_h} row(s) and {op_w} column(s) no window read"
            if (op_h, op_w) != (0, 0) else "") + "."),
        ("In PyTorch: torch.nn.ConvTranspose2d(in_channels=O, out_channels=C, "
         f"kernel_size=({kh}, {kw}), stride={g.stride}, "
         + (f"padding=({top}, {left}), output_padding=({op_h}, {op_w}), "
            f"groups={s.groups}, bias=False), its weight set to w"
            if (top, left) == (bottom, right) else
            f"padding=0, output_padding=({op_h}, {op_w}), groups={s.groups}, bias=False), its "
            f"weight set to w, then keep rows {top}..{top + g.input_size[0] - 1} and columns "
            f"{left}..{left + g.input_size[1] - 1} (PyTorch's padding is the same on both "
            "sides, this one is not)")
         + (" (border modes: the padding's gradient then folds back onto the pixels it "
            "copied)" if s.bordered else "") + "."),
    ]
    grids = [Grid("dL/dX_col = dL/dy · Wᵀ", a["dL/dX_col"],
                  [f"y({r},{q})" for r in range(oh) for q in range(ow)], taps,
                  focus=(s.anchor[0] * ow + s.anchor[1], 0),
                  max_rows=16),
             *channel_grids("dL/dx", a["dL/dx_scattered"][0], focus=s.pixel[1:])]
    return Step("8. col2im, and dL/dx as a transposed convolution", text, grids)


def batch_step(s: Scene) -> Step:
    """9. Channels and the batch: every formula sums over the indices it does not keep."""
    a = s.a
    out_channels, group_channels, _, _ = a["w"].shape
    channels = a["x"].shape[1]
    group_out = out_channels // s.groups
    terms = [f"dL/dy[n, {o}] * w[{o}, {c}]" for o in range(out_channels)
             for c in range(group_channels) if (o // group_out) * group_channels + c == 0]
    text = [
        ("With channels and a batch every formula is a sum over the indices it does not keep "
         "(n the image of the batch, o the output channel, c the input channel"
         + (f" within its group of {group_channels}" if s.groups > 1 else "") + "):"),
        "y[n, o] = Σ_c x[n, c] ⋆ w[o, c] + b[o]: each output channel adds up its input channels.",
        ("dL/dw[o, c] = Σ_n dL/dy[n, o] ⋆ x[n, c] (the xᵀ product of every image, summed over "
         "the batch) and dL/db[o] = Σ_n Σ_(i,j) dL/dy[n, o, i, j]: one w is shared by every "
         "image, so every image adds to its gradient."),
        ("dL/dx[n, c] = Σ_o dL/dy[n, o] * w[o, c], a true convolution per output channel, "
         f"summed over the output channels: here dL/dx[n, 0] = {' + '.join(terms)}. Each "
         "image's dL/dx is its own: nothing is summed over n."),
        (f"Checked on a batch of two (x of {channels} channel(s), and x turned 180° with its "
         "own dL/dy), against conv2d_backward called on the whole batch."),
    ]
    return Step("9. Channels and the batch: sums over (n, o, c)", text)


def conclusion_step(s: Scene) -> Step:
    """6. Forward is a convolution; backward is a convolution with the flipped kernel."""
    return Step("10. Conclusion", [
        ("Forward is deep learning's convolution, a cross-correlation: y = x ⋆ w, or with "
        "im2col one matrix product Y = X_col · W. The weight gradient is the xᵀ product: dL/dw = X_colᵀ · dL/dy."),
        "Backward is also a convolution, with the flipped kernel: dL/dx = dL/dy ⋆ w_flipped, "
        "a full convolution" + (", after dilating dL/dy by the stride"
                                if s.geometry.stride != (1, 1) else "")
        + ". Correlating with the flipped kernel is a true convolution with w, dL/dy * w: "
        "the backward pass is a convolution even in the textbook's sense. Every claim above, "
        "checked:",
    ])
