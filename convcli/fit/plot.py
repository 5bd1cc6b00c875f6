"""A loss curve on a log scale, drawn with Pillow alone (no plotting library)."""

from __future__ import annotations

import math

import numpy as np

MARGIN = {"left": 84, "right": 28, "top": 44, "bottom": 64}
GRID, AXIS, CURVE, LOWEST = (225, 225, 225), (40, 40, 40), (31, 119, 180), (214, 39, 40)


def loss_curve(losses, *, size=(720, 440), title="loss per step"):
    """losses (steps + 1,) -> a Pillow RGB image of log10(loss) against the step, with labelled
    axes, a grid line at each power of ten and the step axis in round numbers.

    The lowest loss is circled. Losses of 0 are drawn at the bottom edge (log 0 is -∞).
    """
    from PIL import Image, ImageDraw

    losses = np.asarray(losses, dtype=np.float64)
    positive = losses[np.isfinite(losses) & (losses > 0)]
    if positive.size == 0:
        raise ValueError("a log-scale plot needs at least one positive, finite loss")
    low, high = math.floor(np.log10(positive.min())), math.ceil(np.log10(positive.max()))
    high = max(high, low + 1)
    last_step = max(len(losses) - 1, 1)

    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(16), _font(13)
    left, top = MARGIN["left"], MARGIN["top"]
    right, bottom = width - MARGIN["right"], height - MARGIN["bottom"]

    def px(step, log_loss):
        return (left + (right - left) * step / last_step,
                bottom - (bottom - top) * (log_loss - low) / (high - low))

    decade_step = max(1, math.ceil((high - low) / 10))        # at most ~10 labelled decades
    for decade in range(low, high + 1):
        y = px(0, decade)[1]
        draw.line([(left, y), (right, y)], fill=GRID)
        if (decade - low) % decade_step == 0:
            draw.text((left - 8, y), f"1e{decade}", fill=AXIS, font=small, anchor="rm")
    for step in _round_ticks(last_step):
        x = px(step, low)[0]
        draw.line([(x, top), (x, bottom)], fill=GRID)
        draw.text((x, bottom + 8), f"{step:g}", fill=AXIS, font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=AXIS)

    logs = np.log10(np.clip(np.nan_to_num(losses, nan=positive.max(), posinf=positive.max()),
                            10.0**low, None))
    points = [px(step, value) for step, value in enumerate(logs)]
    if len(points) == 1:
        (x, y), radius = points[0], 3
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=CURVE)
    else:
        draw.line(points, fill=CURVE, width=2, joint="curve")
    lowest = int(np.argmin(logs))               # the step whose kernel fit returns
    (x, y), radius = points[lowest], 5
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=LOWEST, width=2)
    note = f"lowest {losses[lowest]:.3g} (step {lowest})"
    anchor = "rb" if x > (left + right) / 2 else "lb"
    where = (x - 2 * radius if anchor == "rb" else x + 2 * radius, y - 2 * radius)
    draw.rectangle(draw.textbbox(where, note, font=small, anchor=anchor), fill="white")
    draw.text(where, note, fill=LOWEST, font=small, anchor=anchor)

    draw.text(((left + right) / 2, top / 2), title, fill=AXIS, font=font, anchor="mm")
    draw.text(((left + right) / 2, height - 18), "step", fill=AXIS, font=font, anchor="mm")
    label = "loss L (log scale)"
    box = draw.textbbox((0, 0), label, font=font)
    sideways = Image.new("RGB", (box[2] + 4, box[3] + 4), "white")
    ImageDraw.Draw(sideways).text((2, 2), label, fill=AXIS, font=font)
    sideways = sideways.rotate(90, expand=True)
    image.paste(sideways, (8, int((top + bottom) / 2 - sideways.height / 2)))
    return image


def _round_ticks(last: int) -> list[int]:
    """0 and multiples of 1, 2 or 5 × 10^k up to `last`: 4 to 10 ticks."""
    for power in range(12):
        for factor in (1, 2, 5):
            spacing = factor * 10**power
            if last / spacing <= 8:
                return list(range(0, last + 1, spacing))
    return [0, last]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)       # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()
