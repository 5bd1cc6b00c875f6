"""Speed and memory of convcli's conv2d and conv2d_backward against the machine and PyTorch.

    python benchmarks/bench.py            # every shape, float32 and float64
    python benchmarks/bench.py --quick    # fewer repeats and shapes: under a minute
    python benchmarks/bench.py --markdown # the table as Markdown too (for benchmarks/README.md)
    python benchmarks/bench.py --chunking # also: against a plain whole X_col, and BLAS on 1 core

For each shape (issue 6's a-f) and dtype it times the forward pass and the backward pass
(dL/dx + dL/dw + dL/db), each the median of at least --repeat runs after a warm-up (three runs
per turn for calls under 50 ms, after one untimed; turns for at least 2 s). Ours, torch's and
SciPy's runs take turns within each repeat, so a ratio compares calls made under the same load
(this machine is shared), with --gap seconds (0.3) of sleep before each library's block:
OpenBLAS's and OpenMP's worker threads spin ~0.1 s after a call and would share a core with
whoever runs next. GFLOP/s counts 2·N·O·OH·OW·(C/g)·KH·KW for the forward pass and twice that
for the backward; "of GEMM" divides by a 2048² NumPy matmul's rate measured in the same
process just before the shape, and again just after: a shape whose rate moved by more than
--steady (20%) is dropped, the machine was busy. "1 core × torch" is the same ratio in CPU
time of the calling thread with BLAS, the one-channel pool and torch on one thread each
(immune to other processes' load; needs threadpoolctl). "limit" is the time of the layer's
own GEMMs at its M, N, K (forward X_col·W; backward dL/dY·Wᵀ and X_colᵀ·dL/dY), as a fraction
of ours: the share of our time that any im2col + GEMM design in NumPy must spend.
torch.nn.functional.conv2d runs with autograd and torch.set_num_threads(ours); its backward is
torch.autograd.grad on a kept graph. scipy.ndimage.correlate is timed on the one-channel shapes
(a, f) forward. Peak MiB is NumPy's largest extra allocation during our call (tracemalloc).
Each shape and dtype runs in a fresh process, so that none inherits another's threads and heap.
With --chunking, that process then times ours against a plain im2col (one chunk holding the
whole X_col, and X_col also for one channel) in turns, and ours against one core in turns.
torch, scipy and threadpoolctl are optional; a missing one is skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convcli import conv2d, conv2d_backward
from convcli.chunking import DEFAULT_MEMORY_BUDGET
from convcli.geometry import resolve


@dataclass(frozen=True)
class Shape:
    name: str
    what: str
    x: tuple  # (N, C, H, W)
    out_channels: int
    kernel: int
    stride: int
    padding: int

    def w(self):
        return (self.out_channels, self.x[1], self.kernel, self.kernel)

    def flops(self) -> float:
        """Multiply-adds ×2 of the forward pass: 2·N·O·OH·OW·C·KH·KW."""
        geometry = resolve(self.x[2:], self.kernel, stride=self.stride, padding=self.padding)
        oh, ow = geometry.output_size
        return 2.0 * self.x[0] * self.out_channels * oh * ow * self.x[1] * self.kernel**2


SHAPES = [
    Shape("a", "grey image", (1, 1, 512, 512), 1, 3, 1, 1),
    Shape("b", "RGB image", (1, 3, 1024, 1024), 3, 5, 1, 2),
    Shape("c", "ResNet-style", (8, 64, 56, 56), 64, 3, 1, 1),
    Shape("d", "CIFAR-style", (32, 32, 32, 32), 64, 3, 1, 1),
    Shape("e", "strided", (8, 128, 28, 28), 256, 3, 2, 1),
    Shape("f", "large image", (1, 1, 2048, 2048), 1, 7, 1, 3),
]


def optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


GAP = [0.3]
"""Seconds of sleep before each library's block of calls (--gap): after a multi-threaded call,
OpenBLAS's and OpenMP's worker threads keep spinning for their timeout (~0.1 s) and share a
core with whoever runs next, which a block of a few calls of 10-25 ms does not cover."""


def interleaved(functions, repeat, warmup=2, min_seconds=2.0, clock=time.perf_counter):
    """Median seconds of each function, the functions called in turn within every repeat.

    The turns go on for at least min_seconds (at most 5 × repeat turns), so that a burst of another
    process's work falls on a minority of them. A short function (under 50 ms) runs a block of
    one untimed and three timed calls in each turn: after another library's call, its first
    call pays for that library's threads still spinning and BLAS's gone to sleep (measured:
    11.5 ms, then 3.1, 3.0, 2.7 for a float64 backward after torch's): the switch, not the
    function.
    """
    blocks = []
    for function in functions:
        start = time.perf_counter()
        for _ in range(warmup):
            function()
        blocks.append(3 if (time.perf_counter() - start) / warmup < 0.05 else 1)
    seconds = [[] for _ in functions]
    began = time.perf_counter()
    rounds = 0
    # at least `repeat` turns, and, for short calls, at least min_seconds of them (up to 5× as
    # many): the other agents' bursts on this machine last up to about a second
    while rounds < repeat or (time.perf_counter() - began < min_seconds and rounds < 5 * repeat):
        rounds += 1
        for times, function, block in zip(seconds, functions, blocks):
            if GAP[0] > 0:
                time.sleep(GAP[0])
            if block > 1:
                function()
            for _ in range(block):
                start = clock()
                function()
                times.append(clock() - start)
    return [statistics.median(times) for times in seconds]


def gemm_rate(dtype, repeat) -> float:
    """GFLOP/s of a 2048×2048 NumPy matmul: the machine's GEMM rate for this dtype."""
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(dtype)
    (seconds,) = interleaved([lambda: a @ a], repeat, warmup=1)
    return 2 * 2048**3 / seconds / 1e9


def peak_extra_mib(function) -> float:
    """The largest amount of memory NumPy allocated during function(), beyond what was live,
    counting the scratch buffers that convcli keeps between calls (dropped first: this thread's,
    and the one-channel pool's, whose threads end)."""
    import convcli.chunking

    convcli.chunking.forget_scratch()
    with convcli.chunking._pools_lock:
        for pool in convcli.chunking._pools.values():
            pool.shutdown()
        convcli.chunking._pools.clear()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        function()
        return (tracemalloc.get_traced_memory()[1] - before) / 2**20
    finally:
        tracemalloc.stop()


def layer_gemms(shape, dtype):
    """The products an im2col layer of this shape cannot avoid, at its own M, N, K (random
    matrices, NumPy's BLAS): forward X_col (M×K) · W (K×O); backward dL/dY·Wᵀ (M×O)·(O×K) for
    dL/dX_col and X_colᵀ·dL/dY (K×M)·(M×O) for dL/dW. M = N·OH·OW, K = C·KH·KW."""
    geometry = resolve(shape.x[2:], shape.kernel, stride=shape.stride, padding=shape.padding)
    m = shape.x[0] * geometry.output_size[0] * geometry.output_size[1]
    k, o = shape.x[1] * shape.kernel**2, shape.out_channels
    rng = np.random.default_rng(1)
    cols = rng.standard_normal((m, k)).astype(dtype)
    weights = rng.standard_normal((k, o)).astype(dtype)
    grad = rng.standard_normal((m, o)).astype(dtype)
    return (lambda: cols @ weights), (lambda: (grad @ weights.T, cols.T @ grad))


def single_core(torch, threadpoolctl, function):
    """function on one core: BLAS and torch limited to one thread, the one-channel pool off."""

    def call():
        saved = os.environ.get("OPENBLAS_NUM_THREADS"), torch.get_num_threads()
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
        try:
            with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
                function()
        finally:
            if saved[0] is None:
                del os.environ["OPENBLAS_NUM_THREADS"]
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = saved[0]
            torch.set_num_threads(saved[1])

    return call


def torch_calls(torch, x, w, b, grad_output, shape):
    """Forward (no graph) and backward (autograd.grad on a kept graph) closures."""
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    gt = torch.tensor(grad_output)
    options = {"stride": shape.stride, "padding": shape.padding}
    y = torch.nn.functional.conv2d(xt, wt, bt, **options)
    np.testing.assert_allclose(y.detach().numpy(), conv2d(x, w, b, **options),
                               rtol=1e-3, atol=1e-3 * np.abs(y.detach().numpy()).max())

    def forward():
        with torch.no_grad():
            torch.nn.functional.conv2d(xt, wt, bt, **options)

    def backward():
        torch.autograd.grad(y, (xt, wt, bt), gt, retain_graph=True)

    return forward, backward


def scipy_forward(ndimage, x, w, b, shape):
    """scipy.ndimage.correlate on the one-channel image, zeros outside (same as padding K//2)."""
    image, kernel = x[0, 0], w[0, 0]
    expected = conv2d(x, w, b, stride=shape.stride, padding=shape.padding)[0, 0]
    np.testing.assert_allclose(ndimage.correlate(image, kernel, mode="constant") + b[0], expected,
                               rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    return lambda: ndimage.correlate(image, kernel, mode="constant")


def measure(shape, dtype, repeat, torch, ndimage, min_seconds=2.0):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape.x).astype(dtype)
    w = rng.standard_normal(shape.w()).astype(dtype)
    b = rng.standard_normal(shape.out_channels).astype(dtype)
    options = {"stride": shape.stride, "padding": shape.padding}
    grad_output = rng.standard_normal(conv2d(x, w, b, **options).shape).astype(dtype)

    def ours_forward():
        conv2d(x, w, b, **options)

    def ours_backward():
        conv2d_backward(grad_output, x, w, **options)

    gemm_forward, gemm_backward = layer_gemms(shape, dtype)
    calls = {"forward": {"ours": ours_forward, "gemm": gemm_forward},
             "backward": {"ours": ours_backward, "gemm": gemm_backward}}
    if torch is not None:
        calls["forward"]["torch"], calls["backward"]["torch"] = torch_calls(
            torch, x, w, b, grad_output, shape)
    if ndimage is not None and shape.x[1] == shape.out_channels == 1:
        calls["forward"]["scipy"] = scipy_forward(ndimage, x, w, b, shape)
    warmup = 1 if min_seconds < 1 else 2                 # --quick: one warm-up call each
    threadpoolctl = optional("threadpoolctl")
    rows = []
    for direction, factor in (("forward", 1), ("backward", 2)):
        named = calls[direction]
        seconds = dict(zip(named, interleaved(list(named.values()), repeat, warmup,
                                              min_seconds), strict=True))
        one_core = None
        if torch is not None and threadpoolctl is not None:   # CPU time of the calling thread
            ours_one, torch_one = interleaved(
                [single_core(torch, threadpoolctl, named["ours"]),
                 single_core(torch, threadpoolctl, named["torch"])], repeat, warmup,
                min_seconds, clock=time.thread_time)
            one_core = (ours_one, torch_one)
        ours = seconds["ours"]
        rows.append({
            "shape": shape.name, "what": shape.what, "dtype": np.dtype(dtype).name,
            "direction": direction, "ms": ours * 1e3,
            "gflops": factor * shape.flops() / ours / 1e9,
            "of_gemm": None,                     # filled in below, from this process's rate
            "torch_ms": seconds["torch"] * 1e3 if "torch" in seconds else None,
            "vs_torch": ours / seconds["torch"] if "torch" in seconds else None,
            "one_core_vs_torch": one_core[0] / one_core[1] if one_core else None,
            "limit": seconds["gemm"] / ours,
            "vs_scipy": ours / seconds["scipy"] if "scipy" in seconds else None,
            "peak_mib": peak_extra_mib(named["ours"]),
        })
    return rows


def whole_x_col(function, *args, **kwargs):
    """function(*args, **kwargs) as a plain im2col: one chunk holding the whole X_col (the flat
    one at stride 1), and X_col also for one channel per group (no depthwise.py route)."""
    from convcli import chunking, depthwise

    def call():
        saved = chunking.X_COL_CHUNK_BYTES, chunking.SHARED_CHUNK_BYTES, depthwise.suits
        chunking.X_COL_CHUNK_BYTES = chunking.SHARED_CHUNK_BYTES = 2**40
        depthwise.suits = lambda *_: False
        try:
            function(*args, **kwargs, memory_budget=2**40)
        finally:
            chunking.X_COL_CHUNK_BYTES, chunking.SHARED_CHUNK_BYTES, depthwise.suits = saved

    return call


def one_core(threadpoolctl, function, *args, **kwargs):
    """function(*args, **kwargs) on one thread: BLAS limited to one, and OPENBLAS_NUM_THREADS=1
    for the one-channel route's pool."""

    def call():
        saved = os.environ.get("OPENBLAS_NUM_THREADS")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
                function(*args, **kwargs)
        finally:
            if saved is None:
                del os.environ["OPENBLAS_NUM_THREADS"]
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = saved

    return call


def chunking_rows(repeat, plan):
    """Ours against a plain whole X_col, in turns; then ours against BLAS on one core, in turns."""
    threadpoolctl = optional("threadpoolctl")
    rows = []
    for shape, dtype in plan:
        rng = np.random.default_rng(0)
        x = rng.standard_normal(shape.x).astype(dtype)
        w = rng.standard_normal(shape.w()).astype(dtype)
        options = {"stride": shape.stride, "padding": shape.padding}
        grad_output = rng.standard_normal(conv2d(x, w, **options).shape).astype(dtype)
        for direction, function, args in (("forward", conv2d, (x, w)),
                                          ("backward", conv2d_backward, (grad_output, x, w))):
            ours = partial(function, *args, **options)
            ours_ms, whole_ms = (1e3 * t for t in interleaved(
                [ours, whole_x_col(function, *args, **options)], repeat, warmup=1))
            row = [f"{shape.name} {shape.what}", np.dtype(dtype).name, direction,
                   f"{ours_ms:.1f}", f"{whole_ms:.1f}", f"{ours_ms / whole_ms:.2f}", "–", "–"]
            if threadpoolctl is not None:
                one_thread = one_core(threadpoolctl, function, *args, **options)
                again, one = interleaved([ours, one_thread], repeat, warmup=1)
                row[6:] = [f"{one * 1e3:.1f}", f"{again / one:.2f}"]
            rows.append(tuple(row))
    return rows


def blas_report(console):
    """numpy.show_config()'s BLAS, and threadpoolctl's view of the loaded libraries."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        np.show_config()
    lines = buffer.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "blas:"), None)
    if start is not None:
        block = [lines[start]]
        for line in lines[start + 1:]:
            if line.startswith("    ") or not line.strip():
                block.append(line)
            else:
                break
        console.print("numpy.show_config() BLAS:\n" + "\n".join(block).rstrip())
    threadpoolctl = optional("threadpoolctl")
    if threadpoolctl is None:
        console.print("threadpoolctl: not installed (pip install threadpoolctl for its view)")
        return None
    info = threadpoolctl.threadpool_info()
    for library in info:
        console.print(
            f"threadpoolctl: {library.get('internal_api')} {library.get('version')} "
            f"({library.get('architecture')}), {library.get('num_threads')} threads, "
            f"{Path(library.get('filepath', '')).name}"
        )
    blas_threads = [lib["num_threads"] for lib in info if lib.get("user_api") == "blas"]
    return blas_threads[0] if blas_threads else None


def render(rows, title):
    table = Table(title=title)
    for column, justify in (("shape", "left"), ("dtype", "left"), ("pass", "left"),
                            ("ms", "right"), ("GFLOP/s", "right"), ("of GEMM", "right"),
                            ("torch ms", "right"), ("× torch", "right"),
                            ("1 core × torch", "right"), ("limit", "right"),
                            ("× SciPy", "right"), ("peak MiB", "right")):
        table.add_column(column, justify=justify)
    for row in rows:
        table.add_row(*cells(row))
    return table


def cells(row):
    def ratio(value):
        return "–" if value is None else f"{value:.2f}"

    return (
        f"{row['shape']} {row['what']}", row["dtype"], row["direction"], f"{row['ms']:.1f}",
        f"{row['gflops']:.1f}", f"{row['of_gemm']:.0%}",
        "–" if row["torch_ms"] is None else f"{row['torch_ms']:.1f}",
        ratio(row["vs_torch"]), ratio(row.get("one_core_vs_torch")),
        f"{row['limit']:.0%}" if row.get("limit") is not None else "–",
        ratio(row["vs_scipy"]), f"{row['peak_mib']:.0f}",
    )


def markdown(rows):
    head = ("shape", "dtype", "pass", "ms", "GFLOP/s", "of GEMM", "torch ms", "× torch",
            "1 core × torch", "limit", "× SciPy", "peak MiB")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def libraries():
    """torch (threads set to BLAS's) and scipy.ndimage, each None when not installed."""
    threadpoolctl = optional("threadpoolctl")
    threads = os.cpu_count()
    if threadpoolctl is not None:                # before torch loads its own libraries
        blas = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib.get("user_api") == "blas"]
        threads = blas[0] if blas else threads
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    ndimage = None
    if optional("scipy") is not None:
        from scipy import ndimage
    return torch, ndimage, threads


def run_case(case, repeat, min_seconds, chunking):
    """In a child process: one shape and dtype, its rows (and chunking rows) as JSON on the last
    line."""
    name, dtype = case.split(":")
    torch, ndimage, _ = libraries()
    shape = next(s for s in SHAPES if s.name == name)
    time.sleep(GAP[0])
    before = gemm_rate(dtype, 3)
    rows = measure(shape, dtype, repeat, torch, ndimage, min_seconds)
    time.sleep(GAP[0])
    after = gemm_rate(dtype, 3)
    for row in rows:
        row["gemm_before"], row["gemm_after"] = before, after
        row["of_gemm"] = row["gflops"] / before
    chunk_rows = chunking_rows(repeat, [(shape, dtype)]) if chunking else []
    print(json.dumps({"rows": rows, "chunking": chunk_rows}))


def measure_in_child(shape, dtype, repeat, min_seconds, chunking, console):
    """Each case in a fresh process, so that no case inherits another's threads and heap.
    -> (rows, chunking rows)."""
    command = [sys.executable, __file__, "--case", f"{shape.name}:{dtype}", "--repeat",
               str(repeat), "--min-seconds", str(min_seconds), "--gap", str(GAP[0])] + [
        "--chunking"] * chunking
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        console.print(f"{shape.name} {dtype}: failed\n{result.stderr}")
        return [], []
    answer = json.loads(result.stdout.splitlines()[-1])
    return answer["rows"], [tuple(row) for row in answer["chunking"]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="5 repeats, turns for 0.5 s; shapes a, c-f float32 and c-e float64")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs (default 9; 5 quick)")
    parser.add_argument("--shapes", default=None, help="which shapes, e.g. 'acf'")
    parser.add_argument("--dtypes", default=None, help="e.g. float32,float64")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--chunking", action="store_true",
                        help="also time ours against a plain whole X_col and BLAS on one core")
    parser.add_argument("--gap", type=float, default=0.3,
                        help="seconds of sleep before each library's block of calls (0.3: "
                             "BLAS's and OpenMP's threads spin ~0.1 s after a call)")
    parser.add_argument("--steady", type=float, default=0.2,
                        help="drop a shape whose GEMM rate, measured before and after it, "
                             "moved by more than this fraction (default 0.2)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--min-seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    GAP[0] = max(0.0, args.gap)
    repeat = max(5, args.repeat or (5 if args.quick else 9))
    min_seconds = args.min_seconds or (0.5 if args.quick else 2.0)
    if args.case:
        return run_case(args.case, repeat, min_seconds, args.chunking)
    console = Console(width=None if sys.stdout.isatty() else 140)

    console.print(f"convcli memory budget {DEFAULT_MEMORY_BUDGET >> 20} MiB; "
                  f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    blas_threads = blas_report(console)
    for package, note in (("torch", "the torch columns are skipped (pip install torch==2.13.0)"),
                          ("scipy", "the SciPy column is skipped")):
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            console.print(f"{package}: not installed: {note}")
            continue
        threads = f", torch.set_num_threads({blas_threads or os.cpu_count()})"
        console.print(f"{package} {version}{threads if package == 'torch' else ''}")
    console.print("each shape and dtype runs in a fresh process")

    dtypes = (args.dtypes or "float32,float64").split(",")
    plan = [(shape, dtype) for dtype in dtypes for shape in SHAPES
            if shape.name in (args.shapes or "abcdef")]
    if args.quick and args.shapes is None:
        plan = [(s, d) for s, d in plan if s.name in ("acdef" if d == "float32" else "cde")]
    gemm = {dtype: gemm_rate(dtype, 3 if args.quick else repeat) for dtype in dtypes}
    for dtype, rate in gemm.items():
        console.print(f"GEMM rate (2048² matmul, {dtype}): {rate:.1f} GFLOP/s")

    rows, chunk_rows = [], []
    for shape, dtype in plan:
        case_rows, case_chunk_rows = measure_in_child(shape, dtype, repeat, min_seconds,
                                                      args.chunking, console)
        for row in case_rows:
            moved = abs(row["gemm_after"] / row["gemm_before"] - 1)
            if moved > args.steady:
                console.print(f"{shape.name} {dtype} {row['direction']}: dropped, the GEMM "
                              f"rate moved {moved:.0%} ({row['gemm_before']:.0f} -> "
                              f"{row['gemm_after']:.0f} GFLOP/s): the machine was busy")
                continue
            rows.append(row)
        chunk_rows += case_chunk_rows
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()} {os.cpu_count()} CPUs, {platform.processor() or cpu_name()}"
    title = f"convcli conv2d, median of {repeat} ({stamp}; {machine})"
    console.print(render(rows, title))
    if args.markdown:
        print(f"\n{title}\n\n{markdown(rows)}")
    if args.chunking:
        head = ("shape", "dtype", "pass", "ours ms", "whole X_col ms", "ratio", "1 core ms",
                "ratio")
        table = Table(title="ours against a plain im2col (the whole X_col at once) and against "
                            f"BLAS on one core (threadpoolctl), median of {repeat}")
        for column in head:
            table.add_column(column, justify="left" if column in head[:3] else "right")
        for row in chunk_rows:
            table.add_row(*row)
        console.print(table)
        if args.markdown:
            print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
            print("\n".join("| " + " | ".join(row) + " |" for row in chunk_rows))
    return rows


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
