"""The walkthrough as a document: plain text, an SVG and an HTML fragment that carry their font
inside (DejaVu Sans Mono, subset to the characters convcli draws: nothing is fetched, so an
offline render looks the same), and the notebook's view of one step.

    svg_of(console)          the SVG of what a recording console printed, its font inside
    fragment(walk)           an HTML <div> of the walkthrough (a notebook cell, the page)
    StepView(walk, i)        one step, for Jupyter (walk.step(i))

The interactive page (--export page.html) is page.py's; it embeds html(walk) too.
"""

from __future__ import annotations

import base64
import functools
import io
import re
from pathlib import Path

from rich.console import Console

from .model import Walkthrough
from .render_rich import render, step_panel

FONTS = Path(__file__).parent / "fonts"
FAMILY = "convcli mono"
WIDTH = 100                                    # characters: an export is not a terminal


@functools.cache
def font_faces() -> str:
    """@font-face rules with the regular and bold fonts as data: URLs."""
    rules = []
    for weight, name in (("normal", "DejaVuSansMono-subset.ttf"),
                         ("bold", "DejaVuSansMono-Bold-subset.ttf")):
        data = base64.b64encode((FONTS / name).read_bytes()).decode("ascii")
        rules.append(f'@font-face {{ font-family: "{FAMILY}"; font-style: normal; '
                     f'font-weight: {weight}; src: url("data:font/ttf;base64,{data}") '
                     'format("truetype"); }')
    return "\n".join(rules)


def recorded(walk: Walkthrough, width: int = WIDTH, steps: list[int] | None = None) -> Console:
    """A recording console that has printed the walkthrough (or the chosen steps)."""
    console = Console(record=True, width=width, file=io.StringIO(), highlight=False,
                      color_system="truecolor", force_terminal=True)
    if steps is None:
        render(walk, console)
    else:
        for index in steps:
            console.print(step_panel(walk.steps[index], width))
    return console


def svg_of(console: Console) -> str:
    """The console's SVG with the embedded font instead of Rich's Fira Code from a CDN."""
    document = console.export_svg(title="convcli explain")
    document = re.sub(r"@font-face\s*\{[^}]*\}\s*", "", document)
    document = document.replace("Fira Code", f'"{FAMILY}"')
    return document.replace("<style>", "<style>\n" + font_faces() + "\n", 1)


def fragment(walk: Walkthrough, steps: list[int] | None = None, width: int = WIDTH) -> str:
    """An HTML <div> of the walkthrough (or some steps): inline styles, the font embedded; for
    a notebook cell or a page."""
    console = recorded(walk, width, steps)
    body = console.export_html(inline_styles=True, code_format="{code}")
    return (f"<div class=\"convcli-walk\"><style>{font_faces()}\n.convcli-walk pre {{ "
            f"font-family: \"{FAMILY}\", monospace; line-height: normal; }}</style>"
            f"<pre>{body}</pre></div>")


class StepView:
    """One step of a walkthrough, as a notebook shows it (walk.step(i))."""

    def __init__(self, walk: Walkthrough, index: int) -> None:
        if not 0 <= index < len(walk.steps):
            raise IndexError(f"a walkthrough has steps 0..{len(walk.steps) - 1}, got {index}")
        self.walk, self.index = walk, index
        self.title = walk.steps[index].title

    def _repr_html_(self) -> str:
        return fragment(self.walk, [self.index])

    def __str__(self) -> str:
        return recorded(self.walk, 80, [self.index]).export_text()

    def __repr__(self) -> str:
        return f"<step {self.index}: {self.title}>"
