"""Time `convcli gradcheck`: the built-in suite (the issue's target: under 10 s on 2 cores) and
a sampled check of one 512×512 RGB image. Run by hand: python benchmarks/gradcheck_suite.py

Each timing is the best and the median of --repeat runs, in a fresh interpreter's process (the
first run includes NumPy's warm-up); the whole `convcli gradcheck` command is timed as well,
start-up included, since that is what CI pays.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from convcli.gradcheck import SUITE, check_case, run_suite


def timed(function, repeat):
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return result, min(seconds), statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")

    report, best, median = timed(run_suite, args.repeat)
    coordinates = sum(r.checked for r in report.results if r.tensor.startswith("grad_"))
    print(f"run_suite(): {len(SUITE)} configurations, {len(report.results)} checks, "
          f"{coordinates} coordinates, passed={report.passed}: best {best:.3f} s, "
          f"median {median:.3f} s")
    report, best, median = timed(lambda: run_suite(dtype="float32"), args.repeat)
    print(f"run_suite(dtype='float32'): passed={report.passed}: best {best:.3f} s, "
          f"median {median:.3f} s")

    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convcli", "gradcheck", "--quiet"], check=False)
    print(f"python -m convcli gradcheck (start-up included): exit {done.returncode}, "
          f"{time.perf_counter() - start:.3f} s")

    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 512, 512))
    for w_shape, groups in (((3, 1, 3, 3), 3), ((8, 3, 5, 5), 1)):
        w = rng.standard_normal(w_shape)
        b = rng.standard_normal(w_shape[0])
        report, best, median = timed(
            lambda w=w, b=b, groups=groups: check_case(x, w, b, padding="same", groups=groups,
                                                       samples=args.samples),
            max(1, args.repeat // 2))
        print(f"check_case 1×3×512×512, w {'×'.join(map(str, w_shape))}, groups {groups}, "
              f"samples {args.samples}: passed={report.passed}: best {best:.2f} s, "
              f"median {median:.2f} s")


if __name__ == "__main__":
    main()
