"""Time and peak memory of `convcli gradcheck IMAGE KERNEL` on a large picture, in a fresh
process, as a CI job runs it.

    python benchmarks/gradcheck_large.py                 # 8000×8000 8-bit grey PNG, sobel-x
    python benchmarks/gradcheck_large.py --size 4000 --kernel box3 --samples 500

The picture is random 8-bit grey (written once to --folder); the command is the installed CLI
with its default samples (200 coordinates of each tensor), float64. Peak RSS is the child's
getrusage ru_maxrss. Targets (issue 13): under 30 s and under 2 GiB on a 2-core machine. Exits
1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def picture(size: int, folder: Path) -> Path:
    path = folder / f"random-{size}.png"
    if not path.exists():
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--kernel", default="sobel-x")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--seconds", type=float, default=30.0, help="target wall time")
    parser.add_argument("--gib", type=float, default=2.0, help="target peak RSS")
    args = parser.parse_args()
    image = picture(args.size, args.folder)
    command = [sys.executable, "-m", "convcli", "gradcheck", str(image), args.kernel, "--json"]
    if args.samples is not None:
        command += ["--samples", str(args.samples)]
    start = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 2**30
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    print(f"gradcheck {args.size}x{args.size} {args.kernel}: exit {done.returncode}, "
          f"{seconds:.1f} s wall, peak RSS {peak:.2f} GiB, passed {report.get('passed')}, "
          f"checked {[(r['tensor'], r['checked']) for r in report.get('results', [])]}")
    if done.returncode not in (0,):
        print(done.stderr, file=sys.stderr)
    return 0 if seconds < args.seconds and peak < args.gib and done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
