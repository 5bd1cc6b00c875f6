"""Throughput and peak memory of a forward pass on a Zarr image bigger than it needs to be
(issue 17): in-memory NumPy (read the whole store, conv2d, write the whole store) against
convcli's chunked run (`convcli forward big.zarr K --out y.zarr`) on Dask's threads and on a
2-worker distributed LocalCluster (processes).

    python benchmarks/dask_image.py                       # 20000², 3×3 and 7×7, all three
    python benchmarks/dask_image.py --sizes 10000 20000 40000 --modes threads --kernels 3
                                                          # peak RSS against the image size

Each run is a fresh process; its peak RSS is the most resident memory of it and its children
(the cluster's workers) together, sampled every 50 ms with psutil (and the kernel's own
ru_maxrss of the process, which never misses a peak but does not add children). Throughput is
the image's megapixels over the wall time from opening the store to the output store being in
place. Inputs are float32 Zarr stores of random values in 2048² chunks (zstd, as Zarr
writes them by default), made once in --work (default /tmp/convcli-bench) and reused.
Needs the dask and distributed extras: pip install 'convcli[distributed]'.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

KERNELS = {3: "box3", 7: "1/49 1/49 1/49 1/49 1/49 1/49 1/49; " * 6
           + "1/49 1/49 1/49 1/49 1/49 1/49 1/49"}


def make_image(path: Path, size: int, chunk: int) -> None:
    """A size² float32 Zarr store of random values in chunk² chunks, made chunk by chunk."""
    import dask.array as da

    if path.exists():
        return
    image = da.random.default_rng(17).random((size, size), chunks=chunk, dtype="float32")
    image.to_zarr(str(path))


def child(mode: str, image: str, out: str, kernel: str, chunk: int) -> None:
    """One measured run, in its own process; prints a JSON line."""
    import numpy as np
    import zarr

    from convcli.chunked import run_forward_chunked
    from convcli.problem import ProblemSpec
    from convcli.schedulers import Scheduler, connect

    spec = ProblemSpec(Path(image), kernel, dtype="float32")
    start = time.perf_counter()
    if mode == "numpy":
        from convcli import conv2d
        from convcli.kernels import load_kernel

        x = zarr.open_array(image, mode="r")[:]
        w = load_kernel(kernel)[0].astype(np.float32)[None, None]
        y = conv2d(x[None, None], w, padding="same")
        store = zarr.create_array(store=out, shape=y.shape, dtype="float32",
                                  chunks=(1, 1, chunk, chunk), overwrite=True)
        store[:] = y
    elif mode == "threads":
        run_forward_chunked(spec, out=Path(out), chunks=None, scheduler=Scheduler("threads"))
    elif mode == "cluster":
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            scheduler = connect(cluster.scheduler_address)
            start = time.perf_counter()                   # the cluster's start-up not counted
            run_forward_chunked(spec, out=Path(out), chunks=None, scheduler=scheduler)
            seconds = time.perf_counter() - start
            scheduler.close()
        print(json.dumps({"seconds": seconds, "own_maxrss": _maxrss()}))
        return
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "own_maxrss": _maxrss()}))


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(mode: str, image: Path, out: Path, kernel: str, chunk: int) -> dict[str, float]:
    """Run one child and sample its process tree's resident memory."""
    import psutil

    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    process = subprocess.Popen([sys.executable, __file__, "--child", mode, str(image), str(out),
                                kernel, str(chunk)], stdout=subprocess.PIPE, text=True, env=env)
    peak = [0]

    def sample() -> None:
        parent = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{mode} failed (exit {process.returncode})")
    result = json.loads(output.strip().splitlines()[-1])
    return {"seconds": result["seconds"], "peak": max(peak[0], result["own_maxrss"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20000])
    parser.add_argument("--kernels", type=int, nargs="+", default=[3, 7], choices=[3, 7])
    parser.add_argument("--modes", nargs="+", default=["numpy", "threads", "cluster"],
                        choices=["numpy", "threads", "cluster"])
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--work", type=Path, default=Path("/tmp/convcli-bench"))
    parser.add_argument("--keep", action="store_true", help="Keep the input stores.")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, image, out, kernel, chunk = args.child
        child(mode, image, out, kernel, int(chunk))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{'size':>6} {'kernel':>6} {'mode':>8} {'seconds':>8} {'Mpx/s':>7} {'peak GiB':>8}",
          flush=True)
    for size in args.sizes:
        image = args.work / f"image-{size}-{args.chunk}.zarr"
        make_image(image, size, args.chunk)
        for k in args.kernels:
            for mode in args.modes:
                time.sleep(0.3)                  # BLAS/OpenMP threads of the last run settle
                out = args.work / "y.zarr"
                result = measure(mode, image, out, KERNELS[k], args.chunk)
                shutil.rmtree(out, ignore_errors=True)
                rate = size * size / 1e6 / result["seconds"]
                print(f"{size:>6} {f'{k}×{k}':>6} {mode:>8} {result['seconds']:>8.1f} "
                      f"{rate:>7.1f} {result['peak'] / 2**30:>8.2f}", flush=True)
        if not args.keep:
            shutil.rmtree(image, ignore_errors=True)


if __name__ == "__main__":
    main()
