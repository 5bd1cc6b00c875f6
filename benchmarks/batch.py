"""A folder of images in one call (issue 17): images per second of
`convcli forward 'photos/*.png' KERNEL --out-dir out/` on a pool of threads (and of processes)
against a plain loop over the same files calling the same library function.

    python benchmarks/batch.py                    # 500 RGB PNGs of 512², sobel-x, 3 turns
    python benchmarks/batch.py --count 200 --size 1024 --turns 5

The photos are made once in --work (smooth gradients plus noise, so PNG decoding costs what it
does on real pictures). Each turn runs the loop, the threads and the processes one after
another, with 0.3 s of sleep before each (BLAS's and OpenMP's threads spin ~0.1 s after a
call); the ratios are medians over the turns of times measured in the same turn. Every run
writes the same outputs into a fresh folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from convcli.api import run_forward
from convcli.batch import run_batch
from convcli.problem import ProblemSpec


def make_photos(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(17)
    ramp = np.linspace(0, 1, size)
    paths = []
    for k in range(count):
        path = folder / f"photo{k:05d}.png"
        if not path.exists():
            base = np.stack([np.outer(ramp, ramp), np.outer(ramp[::-1], ramp),
                             np.outer(ramp, ramp[::-1])], axis=-1)
            noisy = np.clip(base + 0.05 * rng.standard_normal(base.shape), 0, 1)
            Image.fromarray((noisy * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def loop(spec: ProblemSpec, paths: list[Path], out: Path) -> float:
    start = time.perf_counter()
    for path in paths:
        run_forward(replace(spec, image=path), out=out / f"{path.stem}.forward.npy")
    return time.perf_counter() - start


def pool(spec: ProblemSpec, paths: list[Path], out: Path, scheduler: str) -> float:
    start = time.perf_counter()
    result = run_batch(spec, paths, out_dir=out, scheduler=scheduler)
    assert not result.failed, result.failed[:3]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--kernel", default="sobel-x")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/convcli-batch"))
    args = parser.parse_args()
    paths = make_photos(args.work / f"photos-{args.size}", args.count, args.size)
    spec = ProblemSpec(paths[0], args.kernel)
    out = args.work / "out"
    times: dict[str, list[float]] = {"loop": [], "threads": [], "processes": []}
    for _ in range(args.turns):
        for name, taken in times.items():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            time.sleep(0.3)
            taken.append(loop(spec, paths, out) if name == "loop"
                         else pool(spec, paths, out, name))
    print(f"{args.count} RGB PNGs of {args.size}², kernel {args.kernel}, {os.cpu_count()} "
          f"CPUs, {args.turns} turns")
    print(f"{'':>10} {'images/s':>9} {'× loop':>7}")
    for name, seconds in times.items():
        ratios = [loop_s / s for loop_s, s in zip(times["loop"], seconds, strict=True)]
        rate = args.count / statistics.median(seconds)
        print(f"{name:>10} {rate:>9.1f} {statistics.median(ratios):>7.2f}")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
