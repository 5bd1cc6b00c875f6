"""Peak memory of a forward and backward pass on a large one-channel image, in a fresh process.

    python benchmarks/memory.py                      # 8192×8192 float32, 7×7 kernel, padding 3
    python benchmarks/memory.py --size 4096 --budget 64

The pass runs in a child process so that its peak resident set size (getrusage's ru_maxrss) is
its own. A plain im2col would hold X_col, H·W·KH·KW numbers (12.25 GiB here), and about twice
that in the backward pass; the chunked core holds at most --budget MiB of it at once. The arrays
themselves (x, y, dL/dy, dL/dx and one padded copy at a time) are listed beside the peak. Exits
with status 1 if the peak is over --limit GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def max_rss_bytes() -> int:
    """This process's peak resident set size so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def child(size, kernel, dtype, budget_mib):
    import numpy as np

    from convcli import conv2d, conv2d_backward

    report = {"after imports": max_rss_bytes()}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, size, size), dtype=dtype)
    w = rng.standard_normal((1, 1, kernel, kernel), dtype=dtype)
    grad_output = rng.standard_normal((1, 1, size, size), dtype=dtype)
    report["after x and dL/dy"] = max_rss_bytes()
    options = {"padding": kernel // 2, "memory_budget": budget_mib * 2**20}
    start = time.perf_counter()
    y = conv2d(x, w, **options)
    report["after forward"] = max_rss_bytes()
    grad_input, grad_weight, _ = conv2d_backward(grad_output, x, w, **options)
    report["after backward"] = max_rss_bytes()
    report["seconds"] = time.perf_counter() - start
    report["array bytes"] = x.nbytes
    assert y.shape == grad_input.shape == x.shape and grad_weight.shape == w.shape
    print(json.dumps(report))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8192, help="image height and width")
    parser.add_argument("--kernel", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--budget", type=int, default=256, help="memory_budget in MiB")
    parser.add_argument("--limit", type=float, default=2.0, help="peak RSS allowed, GiB")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.size, args.kernel, args.dtype, args.budget)

    command = [sys.executable, __file__, "--child", "--size", str(args.size), "--kernel",
               str(args.kernel), "--dtype", args.dtype, "--budget", str(args.budget)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"the child process failed:\n{result.stderr}")
    report = json.loads(result.stdout.splitlines()[-1])
    itemsize = 4 if args.dtype == "float32" else 8
    plain = args.size**2 * args.kernel**2 * itemsize
    gib = 2**30
    print(f"{args.size}×{args.size} {args.dtype} image, {args.kernel}×{args.kernel} kernel, "
          f"padding {args.kernel // 2}, memory_budget {args.budget} MiB: forward + backward "
          f"in {report['seconds']:.1f} s")
    for stage in ("after imports", "after x and dL/dy", "after forward", "after backward"):
        print(f"  peak RSS {stage:<18} {report[stage] / gib:6.2f} GiB")
    print(f"  one image-sized array {report['array bytes'] / gib:.2f} GiB; a plain im2col's "
          f"X_col alone {plain / gib:.2f} GiB")
    held = 4 * report["array bytes"]                     # x, dL/dy, y and dL/dx, all alive
    print(f"  x, dL/dy, y and dL/dx themselves {held / gib:.2f} GiB: the passes' own peak "
          f"above them {(report['after backward'] - held) / gib:.2f} GiB")
    peak = report["after backward"] / gib
    verdict = "under" if peak < args.limit else "OVER"
    print(f"peak RSS {peak:.2f} GiB: {verdict} the {args.limit:g} GiB limit")
    return 0 if peak < args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
