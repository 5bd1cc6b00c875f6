"""The walkthrough as a picture: the kernel sliding over the padded input, then p's footprint.

frames(walk) -> Pillow images: one per output pixel shown (the window over the padded input,
its products and sum, y filling in), then one of pixel p's footprint (the outputs it touches,
each p times a flipped-kernel entry). Only p's input channel and the first output channel it
touches are drawn; a large input is cropped to MAX_OUTPUTS × MAX_OUTPUTS outputs around p.
The numbers are the Walkthrough's (explain.py): nothing is computed here.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .arrays import flipped_footprint
from .model import Walkthrough
from .text import fmt, tap_names

MAX_OUTPUTS = 6          # outputs drawn per axis, so at most 36 sliding frames
TEXT_LINES = 4           # caption lines under the grids (long sums wrap)
CELL = 44                # pixels per grid cell (60 when the numbers have decimals)
MARGIN = 24
FRAME_MS, LAST_MS = 700, 4000
INK, PAPER, GREY, PAD = (20, 20, 20), (255, 255, 255), (150, 150, 150), (232, 232, 232)
WINDOW, TOUCH, DONE = (214, 40, 40), (30, 90, 200), (222, 235, 255)


@functools.cache
def _font(size):
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def output_window(walk: Walkthrough) -> tuple[range, range]:
    """The rows and columns of y drawn: all of them, or MAX_OUTPUTS around p's footprint."""
    (oh, ow) = walk.geometry.output_size
    touched = list(flipped_footprint(walk.pixel, walk.arrays["w"].shape, walk.geometry,
                                     walk.groups))
    # the middle of p's footprint, so all of it is in view
    top, _, left, _ = walk.geometry.pad
    (sh, sw), (_, pi, pj) = walk.geometry.stride, walk.pixel
    centre = ((min(t[1] for t in touched) + max(t[1] for t in touched)) // 2,
              (min(t[2] for t in touched) + max(t[2] for t in touched)) // 2) if touched else (
        (pi + top) // sh, (pj + left) // sw)          # no window reaches p: the outputs near it
    spans = []
    for size, focus in zip((oh, ow), centre):
        limit = min(size, MAX_OUTPUTS)
        start = min(max(0, focus - limit // 2), size - limit)
        spans.append(range(start, start + limit))
    return spans[0], spans[1]


def frames(walk: Walkthrough) -> list[Image.Image]:
    """The forward pass: len(rows)·len(cols) sliding frames (output_window); p's footprint;
    then the backward pass: the flipped kernel sliding over the padded dL/dy, filling
    dL/d(padded x) around p (at most MAX_OUTPUTS × MAX_OUTPUTS positions)."""
    rows, cols = output_window(walk)
    forward = [_slide_frame(walk, rows, cols, i, j) for i in rows for j in cols]
    footprint = _footprint_frame(walk, rows, cols)
    back_rows, back_cols = backward_window(walk)
    backward = [_backward_frame(walk, back_rows, back_cols, r, q)
                for r in back_rows for q in back_cols]
    return _same_size([*forward, footprint, *backward])


def _same_size(images: list[Image.Image]) -> list[Image.Image]:
    """Every frame on a canvas of the largest frame's size: a GIF draws a smaller frame over
    what the last one left."""
    size = (max(i.size[0] for i in images), max(i.size[1] for i in images))
    framed = []
    for image in images:
        if image.size == size:
            framed.append(image)
            continue
        canvas = Image.new("RGB", size, PAPER)
        canvas.paste(image, (0, 0))
        framed.append(canvas)
    return framed


def backward_window(walk: Walkthrough) -> tuple[range, range]:
    """The positions of dL/d(padded x) drawn: MAX_OUTPUTS around p on each axis."""
    g = walk.geometry
    top, _, left, _ = g.pad
    spans = []
    for size, focus in zip(g.padded_size, (walk.pixel[1] + top, walk.pixel[2] + left),
                           strict=True):
        limit = min(size, MAX_OUTPUTS)
        start = min(max(0, focus - limit // 2), size - limit)
        spans.append(range(start, start + limit))
    return spans[0], spans[1]


def _backward_frame(walk, rows, cols, r0, q0):
    """dL/d(padded x) at (r0, q0) = the flipped kernel over the padded, dilated dL/dy there."""
    a, g = walk.arrays, walk.geometry
    channel = walk.pixel[0]
    out_channel = _first_out(walk)
    group_out = a["w"].shape[0] // walk.groups
    kh, kw = g.kernel_size
    dh, dw = g.dilation
    span_h, span_w = g.dilated_kernel_size
    names = tap_names(kh, kw)
    hp, wp = g.padded_size
    # the padded dL/dy reaches the rows windows use; beyond them (a stride's leftovers) zeros
    grad = np.zeros((hp + span_h - 1, wp + span_w - 1))
    given = a["dL/dy_padded"][0, out_channel]
    grad[: given.shape[0], : given.shape[1]] = given
    result = a["dL/dx_padded"][0, channel]
    in_rows = range(rows[0], rows[-1] + span_h)
    in_cols = range(cols[0], cols[-1] + span_w)
    step = CELL if np.all(grad == np.round(grad)) and np.all(result == np.round(result)) else 60
    font, small, big = _font(15), _font(11), _font(17)
    grid_h = max(len(in_rows), len(rows)) * step
    input_xy, output_xy = (MARGIN, MARGIN + 26), (MARGIN * 3 + len(in_cols) * step, MARGIN + 26)
    width = max(output_xy[0] + len(cols) * step + MARGIN, 640)
    text_y = MARGIN + 26 + grid_h + 16
    image = Image.new("RGB", (width, text_y + 24 * TEXT_LINES + 10), PAPER)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, 8), "backward: dL/dx = dL/dy ⋆ w_flipped (full, the kernel turned 180°)",
              font=big, fill=INK)
    many = a["y"].shape[1] > 1
    draw.text((input_xy[0], input_xy[1] - 18), "dL/dy, padded" + (f" [o={out_channel}]"
              if many else ""), font=small, fill=GREY)
    draw.text((output_xy[0], output_xy[1] - 18), "dL/d(padded x)" + (f" [c={channel}]"
              if a["x"].shape[1] > 1 else ""), font=small, fill=GREY)

    def cell(origin, r, c):
        x, y = origin[0] + c * step, origin[1] + r * step
        return (x, y, x + step, y + step)

    inserted = np.ones(grad.shape, bool)             # the padding and the stride's zeros
    (oh, ow), (sh, sw) = g.output_size, g.stride
    inserted[span_h - 1: span_h - 1 + (oh - 1) * sh + 1: sh,
             span_w - 1: span_w - 1 + (ow - 1) * sw + 1: sw] = False
    for r, pr in enumerate(in_rows):
        for c, pc in enumerate(in_cols):
            box = cell(input_xy, r, c)
            draw.rectangle(box, fill=PAD if inserted[pr, pc] else PAPER, outline=GREY)
            _centre(draw, box, "·" if inserted[pr, pc] else fmt(grad[pr, pc]), font,
                    GREY if inserted[pr, pc] else INK)
    terms = []
    for fi in range(kh):
        for fj in range(kw):
            pr, pc = r0 + fi * dh, q0 + fj * dw
            box = cell(input_xy, pr - in_rows[0], pc - in_cols[0])
            draw.rectangle(box, outline=TOUCH, width=3)
            weight = a["w_flipped"][channel, out_channel % group_out, fi, fj]
            draw.text((box[0] + 3, box[1] + 1), names[(kh - 1 - fi) * kw + (kw - 1 - fj)],
                      font=small, fill=TOUCH)
            terms.append(f"{fmt(grad[pr, pc], True)}·{fmt(weight, True)}")
    for r, pr in enumerate(rows):
        for c, pc in enumerate(cols):
            box = cell(output_xy, r, c)
            done = (pr, pc) <= (r0, q0)
            draw.rectangle(box, fill=DONE if done else PAPER, outline=GREY)
            if done:
                _centre(draw, box, fmt(result[pr, pc]), font, INK)
            if (pr, pc) == (r0, q0):
                draw.rectangle(box, outline=TOUCH, width=3)
    top, _, left, _ = g.pad
    height, wide = g.input_size
    where = (f"dL/dx({r0 - top},{q0 - left})" if top <= r0 < top + height
             and left <= q0 < left + wide else f"dL/d(padding {r0},{q0})")
    shown = terms if len(terms) <= 9 else terms[:8] + [f"… ({len(terms)} terms)"]
    summed = (f", summed over the output channels; o={out_channel}: " if many else " = ")
    line = f"{where} = {fmt(result[r0, q0])}{summed}{' + '.join(shown)}"
    _lines(draw, _Captions(text_y, image.size), [line, ("the same kernel, turned 180°, slides "
                                                 "over dL/dy: backward is a convolution too")])
    return image


class _Captions:
    """Where _lines writes: the frame's text row and size."""

    def __init__(self, text_y, size):
        self.text_y, self.size, self.font = text_y, size, _font(15)


def save_gif(images: list[Image.Image], file) -> None:
    """An endless GIF to file (a path or a binary file): FRAME_MS a frame, LAST_MS the last."""
    durations = [FRAME_MS] * (len(images) - 1) + [LAST_MS]
    images[0].save(file, format="GIF", save_all=True, append_images=images[1:],
                   duration=durations, loop=0, disposal=1, optimize=False)


class _Layout:
    """Where the padded-input crop and the output crop go on a frame."""

    def __init__(self, walk, rows, cols):
        g = walk.geometry
        sh, sw = g.stride
        span_h, span_w = g.dilated_kernel_size
        (oh, ow), (hp, wp) = g.output_size, g.padded_size
        # padded coordinates: up to the padded input's end when the last outputs are drawn, so
        # the rows and columns no window reaches (a stride's leftovers, a pad) are seen too
        self.in_rows = range(rows[0] * sh, hp if rows[-1] == oh - 1 else
                             rows[-1] * sh + span_h)
        self.in_cols = range(cols[0] * sw, wp if cols[-1] == ow - 1 else
                             cols[-1] * sw + span_w)
        kh, kw = g.kernel_size
        (dh, dw) = g.dilation
        self.visited_rows = {i * sh + k * dh for i in range(oh) for k in range(kh)}
        self.visited_cols = {j * sw + k * dw for j in range(ow) for k in range(kw)}
        self.rows, self.cols = rows, cols
        self.font, self.small, self.big = _font(15), _font(11), _font(17)
        values = np.concatenate([walk.arrays["x"].ravel(), walk.arrays["y"].ravel()])
        self.step = CELL if np.all(values == np.round(values)) else 60
        grid_h = max(len(self.in_rows), len(rows)) * self.step
        self.input_xy = (MARGIN, MARGIN + 26)
        self.output_xy = (MARGIN * 3 + len(self.in_cols) * self.step, MARGIN + 26)
        width = self.output_xy[0] + len(cols) * self.step + MARGIN
        self.text_y = MARGIN + 26 + grid_h + 16
        self.size = (max(width, 640), self.text_y + 24 * TEXT_LINES + 10)

    def cell(self, origin, r, c):
        x, y = origin[0] + c * self.step, origin[1] + r * self.step
        return (x, y, x + self.step, y + self.step)


def _base(walk, layout, channel, out_channel, title, out_title=None):
    """A frame with the padded input (p's channel) and the output grid, both cropped; the
    cells no window reaches are hatched."""
    image = Image.new("RGB", layout.size, PAPER)
    draw = ImageDraw.Draw(image)
    a, g = walk.arrays, walk.geometry
    top, _, left, _ = g.pad
    height, width = g.input_size
    many = a["x"].shape[1] > 1
    draw.text((MARGIN, 8), title, font=layout.big, fill=INK)
    name = f"padded x[c={channel}]" if many else "padded x"
    draw.text((layout.input_xy[0], layout.input_xy[1] - 18), name, font=layout.small, fill=GREY)
    out_name = out_title or (f"y[o={out_channel}]" if a["y"].shape[1] > 1 else "y")
    draw.text((layout.output_xy[0], layout.output_xy[1] - 18), out_name, font=layout.small,
              fill=GREY)
    for r, pr in enumerate(layout.in_rows):
        for c, pc in enumerate(layout.in_cols):
            box = layout.cell(layout.input_xy, r, c)
            padding = not (top <= pr < top + height and left <= pc < left + width)
            draw.rectangle(box, fill=PAD if padding else PAPER, outline=GREY)
            if pr not in layout.visited_rows or pc not in layout.visited_cols:
                _hatch(draw, box)                          # no window's tap lands here
            zero = padding and walk.padding_mode == "zeros"   # a border mode's copies: values
            text = "·" if zero else fmt(a["x_padded"][0, channel, pr, pc])
            _centre(draw, box, text, layout.font, GREY if padding else INK)
    return image, draw


def _slide_frame(walk, rows, cols, i, j):
    layout = _Layout(walk, rows, cols)
    a, g = walk.arrays, walk.geometry
    channel = walk.pixel[0]
    out_channel = _first_out(walk)
    (sh, sw), (dh, dw) = g.stride, g.dilation
    kh, kw = g.kernel_size
    names = tap_names(kh, kw)
    image, draw = _base(walk, layout, channel, out_channel,
                        f"forward: y({i},{j}) = window ⋆ w (no flip)")
    group_channels = a["w"].shape[1]
    w_channel = channel % group_channels
    terms = []
    for r in range(kh):
        for c in range(kw):
            pr, pc = i * sh + r * dh, j * sw + c * dw
            box = layout.cell(layout.input_xy, pr - layout.in_rows[0], pc - layout.in_cols[0])
            draw.rectangle(box, outline=WINDOW, width=3)
            weight = a["w"][out_channel, w_channel, r, c]
            draw.text((box[0] + 3, box[1] + 1), names[r * kw + c], font=layout.small, fill=WINDOW)
            terms.append(f"{fmt(a['x_padded'][0, channel, pr, pc], True)}·{fmt(weight, True)}")
    for r, oi in enumerate(rows):
        for c, oj in enumerate(cols):
            box = layout.cell(layout.output_xy, r, c)
            done = (oi, oj) <= (i, j)
            draw.rectangle(box, fill=DONE if done else PAPER, outline=GREY)
            if done:
                _centre(draw, box, fmt(a["y"][0, out_channel, oi, oj]), layout.font, INK)
            if (oi, oj) == (i, j):
                draw.rectangle(box, outline=WINDOW, width=3)
    shown = terms if len(terms) <= 9 else terms[:8] + [f"… ({len(terms)} terms)"]
    products = " + ".join(shown)
    total = fmt(a["y"][0, out_channel, i, j])
    if a["x"].shape[1] > 1 or group_channels > 1:      # the sum first: a long line wraps
        line = f"y({i},{j}) = {total}, summed over every channel; channel {channel}: {products}"
    else:
        line = f"y({i},{j}) = {total} = {products}"
    weights = "  ".join(f"{names[t]}={fmt(v)}" for t, v in
                        enumerate(a["w"][out_channel, w_channel].ravel()[:12]))
    _lines(draw, layout, [line, f"w: {weights}"])
    return image


def _footprint_frame(walk, rows, cols):
    layout = _Layout(walk, rows, cols)
    a, g = walk.arrays, walk.geometry
    channel, pi, pj = walk.pixel
    top, _, left, _ = g.pad
    out_channel = _first_out(walk)
    kh, kw = g.kernel_size
    names = tap_names(kh, kw)
    image, draw = _base(walk, layout, channel, out_channel,
                        "backward: p touches these outputs, p times the flipped kernel",
                        out_title="p's products, one per output it touches")
    r, c = pi + top - layout.in_rows[0], pj + left - layout.in_cols[0]
    if 0 <= r < len(layout.in_rows) and 0 <= c < len(layout.in_cols):
        draw.rectangle(layout.cell(layout.input_xy, r, c), outline=TOUCH, width=4)
    p = float(a["p"])
    for r in range(len(rows)):
        for c in range(len(cols)):
            draw.rectangle(layout.cell(layout.output_xy, r, c), outline=GREY)
    labels = []
    group_out = a["w"].shape[0] // walk.groups
    for o, oi, oj, fi, fj in flipped_footprint(walk.pixel, a["w"].shape, g, walk.groups):
        if o != out_channel or oi not in rows or oj not in cols:
            continue
        box = layout.cell(layout.output_xy, oi - rows[0], oj - cols[0])
        name = names[(kh - 1 - fi) * kw + (kw - 1 - fj)]
        draw.rectangle(box, fill=DONE, outline=TOUCH, width=3)
        draw.text((box[0] + 3, box[1] + 1), f"p·{name}", font=layout.small, fill=TOUCH)
        value = p * a["w_flipped"][channel, o % group_out, fi, fj]
        _centre(draw, box, fmt(value), layout.font, INK, dy=6)
        labels.append(f"p·{name}")
    shown = ", ".join(labels[:9]) + (", …" if len(labels) > 9 else "")
    reached = any(True for _ in flipped_footprint(walk.pixel, a["w"].shape, g, walk.groups))
    first = (f"p = {fmt(p)} touches {len(labels)} output(s) shown: {shown}" if reached else
             f"p = {fmt(p)} is in no window (the stride or dilation skips it): dL/dp = 0")
    _lines(draw, layout, [first, "dL/dx = dL/dy ⋆ w_flipped: backward is a convolution too"])
    return image


def _first_out(walk) -> int:
    touched = list(flipped_footprint(walk.pixel, walk.arrays["w"].shape, walk.geometry,
                                     walk.groups))
    return touched[0][0] if touched else 0


def _centre(draw, box, text, font, fill, dy=0):
    """text centred in box, in a smaller font if it would not fit."""
    size = font.size
    while draw.textlength(text, font=font) > box[2] - box[0] - 6 and size > 8:
        size -= 1
        font = _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = (box[0] + box[2] - (right - left)) / 2
    y = (box[1] + box[3] - (bottom - top)) / 2 - top + dy
    draw.text((x, y), text, font=font, fill=fill)


def _hatch(draw, box):
    """Diagonal lines across a cell: no window's tap lands on it."""
    x0, y0, x1, y1 = box
    for k in range(0, 2 * (x1 - x0), 8):
        draw.line([(x0 + max(0, k - (y1 - y0)), y0 + min(k, y1 - y0)),
                   (x0 + min(k, x1 - x0), y0 + max(0, k - (x1 - x0)))], fill=GREY, width=1)


def wrap(draw, text, font, width) -> list[str]:
    """text in lines no wider than width, broken between words (a word longer than a line is
    cut with …)."""
    lines, line = [], ""
    for word in text.split(" "):
        trial = f"{line} {word}" if line else word
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    lines.append(line)
    for k, piece in enumerate(lines):
        while draw.textlength(piece, font=font) > width and len(piece) > 1:
            piece = piece[:-2] + "…"
        lines[k] = piece
    return lines


def _lines(draw, layout, texts):
    """Each caption wrapped to the frame's width; at most TEXT_LINES lines in all, the last
    ending in … if the text goes on."""
    width = layout.size[0] - 2 * MARGIN
    lines = [piece for text in texts for piece in wrap(draw, text, layout.font, width)]
    if len(lines) > TEXT_LINES:
        lines = lines[:TEXT_LINES]
        lines[-1] = lines[-1].rstrip(" …") + " …"
    y = layout.text_y
    for line in lines:
        draw.text((MARGIN, y), line, font=layout.font, fill=INK)
        y += 24
