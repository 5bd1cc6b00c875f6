"""The walkthrough of "Convolution in forward and backward" as data, every number from the core.

    walkthrough(x, w, ...) -> Walkthrough: six Steps (title, paragraphs, Grids, Checks) and
    ``arrays``, every array shown, in the core's layout: x (1, C, H, W), w (O, C/groups, KH, KW),
    y and dL/dy (1, O, OH, OW), X_col (OH·OW, C·KH·KW), W (C·KH·KW, O).

Each claim the article makes is a pair of arrays computed by two different routes (CLAIMS);
verify() compares them, so a ✓ is a max abs difference within tolerance, never a constant.

The modules: model.py (Grid, Check, Step, Walkthrough, the claims), arrays.py (every array,
from the core), steps.py (one function per step: its text and grids), text.py and grids.py
(how numbers and tables are shown), walkthrough.py (the entry point), render_rich.py (panels on
a terminal, SVG/HTML/text exports) and render_gif.py (the animation). Nothing but the renderers
draws or prints.
"""

from .arrays import (
           compute,
           flipped_footprint,
           slide,
           weight_matrix,
           weights_from_matrix,
)
from .model import CLAIMS, Check, Grid, Step, Walkthrough, verify
from .text import fmt, tap_names
from .walkthrough import ARTICLE_KERNEL, ARTICLE_PADDING, walkthrough

__all__ = [
           "ARTICLE_KERNEL",
           "ARTICLE_PADDING",
           "CLAIMS",
           "Check",
           "Grid",
           "Step",
           "Walkthrough",
           "compute",
           "flipped_footprint",
           "fmt",
           "slide",
           "tap_names",
           "verify",
           "walkthrough",
           "weight_matrix",
           "weights_from_matrix",
]
