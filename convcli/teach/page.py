"""The walkthrough as one self-contained interactive page (--export page.html): step the kernel
through its windows and hover a pixel of x to see the outputs it touches, above the whole
walkthrough as the terminal shows it. No network: the font, the style, the script and the
numbers are all inside the file. Every number on the page comes from the Walkthrough's arrays;
the script only shows and hides them.

A page opened with #selftest at the end of its address steps to a window and hovers over p
by itself, then writes what it shows into <pre id="selftest"> (the browser test reads it).
"""

from __future__ import annotations

import html
import json
from typing import Any

from .arrays import copies_of, pad_mask
from .exports import FAMILY, font_faces, fragment
from .model import Walkthrough
from .text import fmt, tap_names

MAX_OUTPUTS = 8                  # outputs per axis in the explorer (a real image is cropped)


def page(walk: Walkthrough) -> str:
    """The page's HTML."""
    data = explorer_data(walk)
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return TEMPLATE.format(fonts=font_faces(), family=FAMILY, data=payload,
                           walkthrough=fragment(walk), title=html.escape(data["title"]))


def explorer_data(walk: Walkthrough) -> dict[str, Any]:
    """What the explorer shows, every number as the walkthrough's text writes it: p's channel of
    the padded x, the kernel of the first output channel of p's group, that channel of y, and
    for each window its products and sum, for each pixel the outputs it touches."""
    a, g = walk.arrays, walk.geometry
    c, pi, pj = walk.pixel
    out_channels, group_channels, kh, kw = a["w"].shape
    o = (c // group_channels) * (out_channels // walk.groups)
    names = tap_names(kh, kw)
    (oh, ow), (sh, sw), (dh, dw) = g.output_size, g.stride, g.dilation
    top, _, left, _ = g.pad
    rows = _span(oh, MAX_OUTPUTS, (pi + top) // sh)
    cols = _span(ow, MAX_OUTPUTS, (pj + left) // sw)
    span_h, span_w = g.dilated_kernel_size
    hp, wp = g.padded_size
    in_rows = range(rows[0] * sh, hp if rows[-1] == oh - 1 else rows[-1] * sh + span_h)
    in_cols = range(cols[0] * sw, wp if cols[-1] == ow - 1 else cols[-1] * sw + span_w)
    x = a["x_padded"][0, c]
    w = a["w"][o, c % group_channels]
    y = a["y"][0, o]
    inside = ~pad_mask(g)
    windows: list[dict[str, Any]] = []
    touches: dict[str, list[list[Any]]] = {}
    for i in rows:
        for j in cols:
            cells, terms = [], []
            for r in range(kh):
                for q in range(kw):
                    pr, pc = i * sh + r * dh, j * sw + q * dw
                    cells.append([pr - in_rows[0], pc - in_cols[0], names[r * kw + q]])
                    terms.append(f"{fmt(x[pr, pc], True)}·{fmt(w[r, q], True)}")
                    key = f"{pr - in_rows[0]},{pc - in_cols[0]}"
                    touches.setdefault(key, []).append(
                        [i - rows[0], j - cols[0], f"p·{names[r * kw + q]}",
                         fmt(x[pr, pc] * w[r, q])])
            windows.append({"output": [i - rows[0], j - cols[0]], "cells": cells,
                            "caption": f"y({i},{j}) = {fmt(y[i, j])} = " + " + ".join(terms)})
    p_cells = [[r - in_rows[0], q - in_cols[0]] for r, q in copies_of(walk.pixel, g,
                                                                         walk.padding_mode)
               if r in in_rows and q in in_cols]
    many = a["x"].shape[1] > 1 or out_channels > 1
    return {
        "title": "convcli explain: forward and backward, step by step",
        "x": [[fmt(v) for v in x[r, in_cols[0]: in_cols[-1] + 1]] for r in in_rows],
        "padding": [[not inside[r, q] for q in in_cols] for r in in_rows],
        "zeros": walk.padding_mode == "zeros",
        "x_name": f"padded x[c={c}]" if many else "padded x",
        "x_labels": [[f"x({r - top},{q - left})" if inside[r, q] else f"padding ({r},{q})"
                      for q in in_cols] for r in in_rows],
        "w": [[f"{names[r * kw + q]}={fmt(w[r, q])}" for q in range(kw)] for r in range(kh)],
        "w_name": f"w[o={o}, c={c % group_channels}]" if many else "w",
        "y": [[fmt(y[i, j]) for j in cols] for i in rows],
        "y_name": f"y[o={o}]" if many else "y",
        "y_labels": [[f"y({i},{j})" for j in cols] for i in rows],
        "windows": windows,
        "touches": touches,
        "p": p_cells,
        "p_window": next((k for k, win in enumerate(windows)
                          if any(list(cell[:2]) in p_cells for cell in win["cells"])), 0),
        "cropped": (len(rows), len(cols)) != (oh, ow),
    }


def _span(size: int, limit: int, focus: int) -> range:
    """limit indices of range(size) around focus."""
    limit = min(size, limit)
    start = min(max(0, focus - limit // 2), size - limit)
    return range(start, start + limit)


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{fonts}
body {{ font-family: "{family}", monospace; margin: 1.5em; color: #1a1a1a; background: #fff; }}
h1 {{ font-size: 1.3em; }}
.row {{ display: flex; gap: 2.5em; align-items: flex-start; flex-wrap: wrap; }}
table.grid {{ border-collapse: collapse; }}
table.grid td {{ border: 1px solid #999; min-width: 2.6em; height: 2.1em; text-align: center;
  padding: 0 .3em; position: relative; }}
table.grid td.pad {{ background: #e8e8e8; color: #888; }}
table.grid td.win {{ outline: 3px solid #d62828; outline-offset: -3px; }}
table.grid td.win::before {{ content: attr(data-tap); position: absolute; left: 2px; top: 0;
  font-size: .65em; color: #d62828; }}
table.grid td.now {{ outline: 3px solid #d62828; outline-offset: -3px; background: #fde8e8; }}
table.grid td.done {{ background: #deebff; }}
table.grid td.p {{ outline: 3px solid #1e5ac8; outline-offset: -3px; }}
table.grid td.touch {{ background: #deebff; outline: 3px solid #1e5ac8; outline-offset: -3px; }}
.name {{ color: #777; font-size: .85em; margin-bottom: .3em; }}
#caption, #hover {{ min-height: 2.6em; max-width: 70em; line-height: 1.4; }}
button {{ font: inherit; padding: .2em .8em; }}
details {{ margin-top: 2em; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>Step the kernel through its windows (forward: y = x &#8902; w, no flip), or hover over a pixel
of x to see every output it touches: p times the flipped kernel (backward).</p>
<div id="controls"><button id="prev" aria-label="previous window">&#9664;</button>
<input type="range" id="slider" min="0" value="0" aria-label="window">
<button id="next" aria-label="next window">&#9654;</button> <span id="where"></span></div>
<div class="row">
<div><div class="name" id="x-name"></div><table class="grid" id="x"></table></div>
<div><div class="name" id="w-name"></div><table class="grid" id="w"></table></div>
<div><div class="name" id="y-name"></div><table class="grid" id="y"></table></div>
</div>
<p id="caption"></p>
<p id="hover"></p>
<details open><summary>The whole walkthrough, every claim checked</summary>
{walkthrough}
</details>
<pre id="selftest" hidden></pre>
<script type="application/json" id="data">{data}</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);
function grid(id, values, cls, labels) {{
  const table = document.getElementById(id);
  values.forEach((row, r) => {{
    const tr = table.insertRow();
    row.forEach((value, c) => {{
      const td = tr.insertCell();
      td.textContent = cls && cls[r][c] && data.zeros ? "\\u00b7" : value;
      if (cls && cls[r][c]) td.classList.add("pad");
      if (labels) td.title = labels[r][c];
      td.dataset.r = r; td.dataset.c = c;
    }});
  }});
  return table;
}}
const xTable = grid("x", data.x, data.padding, data.x_labels);
const yTable = grid("y", data.y, null, data.y_labels);
grid("w", data.w, null, null);
document.getElementById("x-name").textContent = data.x_name;
document.getElementById("w-name").textContent = data.w_name;
document.getElementById("y-name").textContent = data.y_name + (data.cropped ? " (cropped)" : "");
const cell = (table, r, c) => table.rows[r].cells[c];
const slider = document.getElementById("slider");
slider.max = data.windows.length - 1;
function clear(cls) {{ document.querySelectorAll("." + cls).forEach(e => e.classList.remove(cls)); }}
function show(k) {{
  k = Math.max(0, Math.min(data.windows.length - 1, k));
  slider.value = k;
  ["win", "now", "done"].forEach(clear);
  const win = data.windows[k];
  win.cells.forEach(([r, c, tap]) => {{ const td = cell(xTable, r, c); td.classList.add("win"); td.dataset.tap = tap; }});
  data.windows.slice(0, k).forEach(w => cell(yTable, ...w.output).classList.add("done"));
  cell(yTable, ...win.output).classList.add("now");
  document.getElementById("caption").textContent = win.caption;
  document.getElementById("where").textContent = `window ${{k + 1}} of ${{data.windows.length}}`;
}}
function hover(r, c) {{
  clear("touch"); clear("p");
  const td = cell(xTable, r, c);
  td.classList.add("p");
  const hits = data.touches[`${{r}},${{c}}`] || [];
  hits.forEach(([i, j]) => cell(yTable, i, j).classList.add("touch"));
  document.getElementById("hover").textContent = hits.length
    ? `${{td.title}} = ${{td.textContent}} touches ${{hits.length}} output(s): ` +
      hits.map(([i, j, name, value]) => `${{data.y_labels[i][j]}} gets ${{name}} = ${{value}}`).join("; ")
    : `${{td.title}} = ${{td.textContent}}: no window's tap lands on it (the stride or dilation skips it)`;
}}
xTable.addEventListener("mouseover", e => {{
  const td = e.target.closest("td");
  if (td) hover(+td.dataset.r, +td.dataset.c);
}});
slider.addEventListener("input", () => show(+slider.value));
document.getElementById("prev").addEventListener("click", () => show(+slider.value - 1));
document.getElementById("next").addEventListener("click", () => show(+slider.value + 1));
show(0);
if (data.p.length) hover(...data.p[0]);
if (location.hash === "#selftest") document.fonts.ready.then(() => {{
  show(0);
  document.getElementById("next").click();                 // the buttons and the slider
  const afterNext = +slider.value;
  document.getElementById("prev").click();
  const afterPrev = +slider.value;
  slider.value = data.p_window;
  slider.dispatchEvent(new Event("input"));
  const [pr, pc] = data.p.length ? data.p[0] : [0, 0];
  cell(xTable, pr, pc).dispatchEvent(new MouseEvent("mouseover", {{bubbles: true}}));
  const marked = (table, cls) => [...table.querySelectorAll("." + cls)].map(
    td => [+td.dataset.r, +td.dataset.c]);
  const report = {{
    after_next: afterNext, after_prev: afterPrev, window: +slider.value, caption: document.getElementById("caption").textContent,
    window_cells: marked(xTable, "win"), now: marked(yTable, "now"),
    touched: marked(yTable, "touch"), hover: document.getElementById("hover").textContent,
    font: document.fonts.check('16px "{family}"'),
  }};
  const out = document.getElementById("selftest");
  out.textContent = JSON.stringify(report);
  out.hidden = false;
}});
</script>
</body>
</html>
"""
