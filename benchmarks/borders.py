"""What a border mode costs: conv2d and conv2d_backward with padding_mode="reflect" (and the
others) against "zeros", on the image shapes of bench.py (a, b, f), interleaved in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/borders.py

Target (issue 16): reflect at most 1.2× zeros. Each turn runs the zeros call then the mode's,
with a 0.3 s gap before each (OpenBLAS's threads spin ~0.1 s after a call); the ratio quoted is
the median over turns of mode / zeros, both measured in the same turn.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convcli import conv2d, conv2d_backward

SHAPES = {"a": ((1, 1, 512, 512), 3, 1), "b": ((1, 3, 1024, 1024), 5, 2),
          "f": ((1, 1, 2048, 2048), 7, 3)}


def timed(function, calls=3):
    time.sleep(0.3)
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=7)
    parser.add_argument("--modes", default="reflect,symmetric,replicate,circular")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for name, (shape, k, pad) in SHAPES.items():
        x = rng.random(shape)
        w = rng.standard_normal((shape[1], 1, k, k))          # depthwise, as for an image
        g = rng.standard_normal(shape)
        options = {"padding": pad, "groups": shape[1]}
        calls = {"forward": partial(conv2d, x, w, **options),
                 "backward": partial(conv2d_backward, g, x, w, **options)}
        for mode in args.modes.split(","):
            ratios: dict[str, list[float]] = {"forward": [], "backward": []}
            for _ in range(args.turns):
                for kind, call in calls.items():
                    zeros = timed(partial(call, padding_mode="zeros"))
                    other = timed(partial(call, padding_mode=mode))
                    ratios[kind].append(other / zeros)
            print(f"{name} {shape} {k}x{k} {mode:9s} "
                  f"forward {statistics.median(ratios['forward']):.2f}x  "
                  f"backward {statistics.median(ratios['backward']):.2f}x zeros "
                  f"(median of {args.turns} turns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
