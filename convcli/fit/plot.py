"""A loss curve on a log scale, drawn with Pillow alone (no plotting library)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MARGIN = {"left": 84, "right": 28, "top": 44, "bottom": 64}
GRID, AXIS, CURVE, LOWEST = (225, 225, 225), (40, 40, 40), (31, 119, 180), (214, 39, 40)


@dataclass(frozen=True)
class Frame:
    """The plot area: steps 0 .. last_step across, log10(loss) low .. high up."""
    left: float
    top: float
    right: float
    bottom: float
    low: int
    high: int
    last_step: int

    def px(self, step: float, log_loss: float) -> tuple[float, float]:
        return (self.left + (self.right - self.left) * step / self.last_step,
                self.bottom - (self.bottom - self.top) * (log_loss - self.low)
                / (self.high - self.low))


def loss_curve(losses, *, size=(720, 440), title="loss per step"):
    """losses (steps + 1,) -> a Pillow RGB image of log10(loss) against the step, with labelled
    axes, a grid line at each power of ten and the step axis in round numbers.

    The lowest loss is circled. Losses of 0 are drawn at the bottom edge (log 0 is -∞).
    """
    losses = np.asarray(losses, dtype=np.float64)
    positive = losses[np.isfinite(losses) & (losses > 0)]
    if positive.size == 0:
        raise ValueError("a log-scale plot needs at least one positive, finite loss")
    low, high = math.floor(np.log10(positive.min())), math.ceil(np.log10(positive.max()))
    width, height = size
    frame = Frame(MARGIN["left"], MARGIN["top"], width - MARGIN["right"],
                  height - MARGIN["bottom"], low, max(high, low + 1), max(len(losses) - 1, 1))
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    _axes(draw, frame)
    logs = np.log10(np.clip(np.nan_to_num(losses, nan=positive.max(), posinf=positive.max()),
                            10.0**low, None))
    _curve(draw, frame, losses, logs)
    _labels(image, draw, frame, title)
    return image


def _axes(draw: ImageDraw.ImageDraw, frame: Frame) -> None:
    """Grid lines at each power of ten (at most ~10 labelled) and at round steps; the frame."""
    small = _font(13)
    decade_step = max(1, math.ceil((frame.high - frame.low) / 10))
    for decade in range(frame.low, frame.high + 1):
        y = frame.px(0, decade)[1]
        draw.line([(frame.left, y), (frame.right, y)], fill=GRID)
        if (decade - frame.low) % decade_step == 0:
            draw.text((frame.left - 8, y), f"1e{decade}", fill=AXIS, font=small, anchor="rm")
    for step in _round_ticks(frame.last_step):
        x = frame.px(step, frame.low)[0]
        draw.line([(x, frame.top), (x, frame.bottom)], fill=GRID)
        draw.text((x, frame.bottom + 8), f"{step:g}", fill=AXIS, font=small, anchor="mt")
    draw.rectangle([frame.left, frame.top, frame.right, frame.bottom], outline=AXIS)


def _curve(draw: ImageDraw.ImageDraw, frame: Frame, losses: np.ndarray, logs: np.ndarray) -> None:
    """The curve of logs (steps + 1,), with the lowest loss (the step fit returns) circled."""
    small = _font(13)
    points = [frame.px(step, value) for step, value in enumerate(logs)]
    if len(points) == 1:
        (x, y), radius = points[0], 3
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=CURVE)
    else:
        draw.line(points, fill=CURVE, width=2, joint="curve")
    lowest = int(np.argmin(logs))
    (x, y), radius = points[lowest], 5
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=LOWEST, width=2)
    note = f"lowest {losses[lowest]:.3g} (step {lowest})"
    anchor = "rb" if x > (frame.left + frame.right) / 2 else "lb"
    where = (x - 2 * radius if anchor == "rb" else x + 2 * radius, y - 2 * radius)
    draw.rectangle(draw.textbbox(where, note, font=small, anchor=anchor), fill="white")
    draw.text(where, note, fill=LOWEST, font=small, anchor=anchor)


def _labels(image: Image.Image, draw: ImageDraw.ImageDraw, frame: Frame, title: str) -> None:
    """The title above, "step" below and the loss label turned on its side at the left."""
    font = _font(16)
    middle = (frame.left + frame.right) / 2
    draw.text((middle, frame.top / 2), title, fill=AXIS, font=font, anchor="mm")
    draw.text((middle, image.height - 18), "step", fill=AXIS, font=font, anchor="mm")
    label = "loss L (log scale)"
    box = draw.textbbox((0, 0), label, font=font)
    sideways = Image.new("RGB", (math.ceil(box[2]) + 4, math.ceil(box[3]) + 4), "white")
    ImageDraw.Draw(sideways).text((2, 2), label, fill=AXIS, font=font)
    sideways = sideways.rotate(90, expand=True)
    image.paste(sideways, (8, int((frame.top + frame.bottom) / 2 - sideways.height / 2)))


def _round_ticks(last: int) -> list[int]:
    """0 and multiples of 1, 2 or 5 × 10^k up to `last`: 4 to 10 ticks."""
    for power in range(12):
        for factor in (1, 2, 5):
            spacing = factor * 10**power
            if last / spacing <= 8:
                return list(range(0, last + 1, spacing))
    return [0, last]


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)       # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()
