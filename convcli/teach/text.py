"""How the walkthrough writes numbers, sums, lists and the geometry in its text."""

from __future__ import annotations

MAX_LISTED = 9                                         # terms written out in a sum


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
    text = str(round(value)) if whole else f"{value:.3g}"
    text = text.replace("-", "−")
    return f"({text})" if factor and value < 0 else text



def geometry_text(geometry, input_size) -> str:
    (oh, ow), (sh, sw), (dh, dw) = geometry.output_size, geometry.stride, geometry.dilation
    parts = []
    if (sh, sw) != (1, 1):
        parts.append(f"stride {sh},{sw}: the window jumps {sh} row(s) and {sw} column(s)")
    if (dh, dw) != (1, 1):
        span_h, span_w = geometry.dilated_kernel_size
        parts.append(f"dilation {dh},{dw}: the taps are spread out to cover {span_h}×{span_w}")
    size = ("the same size as x" if (oh, ow) == tuple(input_size) else f"{oh}×{ow}")
    sentence = "; ".join(parts + [f"y is {size}"])
    # capitalise "Stride"/"Dilation", never y (Y is another thing: the im2col matrix)
    return (sentence[0].upper() + sentence[1:] if parts else sentence) + "."



def matrix_text(rows) -> str:
    """[["a", "b"], ["c", "d"]] -> "[[a, b], [c, d]]"."""
    return "[" + ", ".join("[" + ", ".join(row) + "]" for row in rows) + "]"


def sum_text(terms) -> str:
    shown = list(terms[:MAX_LISTED])
    if len(terms) > MAX_LISTED:
        shown.append(f"… ({len(terms)} terms)")
    return " + ".join(shown) if shown else "0"


def list_text(items, sep=", ") -> str:
    items = list(items)
    if len(items) > MAX_LISTED:
        return sep.join(items[: MAX_LISTED - 1] + [f"… ({len(items)} in all)"])
    return sep.join(items)
