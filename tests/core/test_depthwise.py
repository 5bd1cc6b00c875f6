"""The one-channel route (depthwise.py), forward and dL/dW, against the loop-by-definition
reference over padding forms, dilation, vertical stride, groups, chunk boundaries, threads and
memory budgets. Nothing here times anything."""

import multiprocessing
import os
import tracemalloc

import numpy as np
import pytest

from convcli import chunking, conv2d, conv2d_backward, depthwise, im2col
from convcli.chunking import chunks
from convcli.validate import check_conv
from tests.reference import conv2d_backward_loop, conv2d_loop

# (x shape, w shape, options); all have one input channel per group and horizontal stride 1
CASES = [
    ((1, 1, 9, 70), (1, 1, 3, 3), {"padding": 1}),                            # a grey image
    ((2, 1, 7, 11), (1, 1, 3, 4), {"padding": (2, 0, 1, 3)}),                 # uneven padding
    ((1, 1, 8, 9), (1, 1, 4, 2), {"padding": "same"}),                        # even kernel
    ((1, 1, 5, 6), (1, 1, 3, 3), {"padding": "full"}),
    ((1, 1, 10, 9), (1, 1, 3, 2), {"dilation": (2, 3), "padding": (3, 2)}),
    ((1, 1, 11, 8), (1, 1, 3, 3), {"stride": (2, 1), "padding": 1}),          # vertical stride
    ((1, 1, 12, 8), (1, 1, 2, 3), {"stride": (3, 1), "dilation": (2, 1), "padding": "same"}),
    ((1, 1, 6, 9), (1, 1, 1, 5), {"padding": (0, 2)}),                        # KH = 1
    ((1, 1, 9, 6), (1, 1, 5, 1), {"padding": (2, 0)}),                        # KW = 1
    ((1, 1, 4, 5), (1, 1, 3, 3), {"padding": 4}),                             # rows all padding
    ((2, 3, 7, 8), (3, 1, 3, 3), {"groups": 3, "padding": 1}),                # depthwise
    ((2, 2, 6, 7), (6, 1, 3, 2), {"groups": 2, "padding": (1, 0)}),           # 3 outputs a group
]


def geometry_of(x, w, options):
    return check_conv(x, w, None, stride=options.get("stride", 1),
                        padding=options.get("padding", 0), dilation=options.get("dilation", 1),
                        groups=options.get("groups", 1))


def run(x, w, b, options, budget):
    groups = options.get("groups", 1)
    return depthwise.conv2d_one_channel(x, w, b, geometry_of(x, w, options), groups, budget)


def run_grad_weight(grad_output, x, w, options, budget):
    groups = options.get("groups", 1)
    return depthwise.grad_weight_one_channel(grad_output, x, geometry_of(x, w, options), groups,
                                             budget)


@pytest.mark.parametrize("x_shape, w_shape, options", CASES)
@pytest.mark.parametrize("budget", [1, 700, 2**40], ids=["one row", "a few rows", "whole"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_and_grad_weight_match_the_loop(x_shape, w_shape, options, budget, dtype, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    y = run(x, w, b, options, budget)
    assert y.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, conv2d_loop(x, w, b, **options), rtol=tol, atol=tol)

    grad_output = rng.standard_normal(y.shape).astype(dtype)
    grad_w = run_grad_weight(grad_output, x, w, options, budget)
    assert grad_w.dtype == dtype and grad_w.shape == w.shape
    _, want, _ = conv2d_backward_loop(grad_output.astype(np.float64), x, w, **options)
    tol = 1e-11 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(grad_w, want, rtol=tol, atol=tol)


def test_chunks_split_windows_and_items(monkeypatch, rng):
    """A budget of three rows (each 72 padded inputs and 70 outputs) and the kernel's two extra
    input rows cuts every item into row chunks whose windows overlap."""
    made = []
    monkeypatch.setattr(chunking, "threads", lambda: 1)
    monkeypatch.setattr(chunking, "chunks", lambda *a: made.append(chunks(*a)) or made[-1])
    x, w = rng.standard_normal((3, 1, 10, 70)), rng.standard_normal((1, 1, 3, 3))
    y = run(x, w, None, {"padding": 1}, budget=3 * (72 + 70) * 8 + 2 * 72 * 8)
    np.testing.assert_allclose(y, conv2d_loop(x, w, padding=1), rtol=1e-12, atol=1e-12)
    (plan,) = made
    # By hand: the budget less the halo holds 3 output rows, so each item's 10 rows go in
    # ceil(10 / 3) = 4 runs as even as can be, cut at 10·k // 4: 0, 2, 5, 7, 10.
    runs = [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert [(i.start, i.stop, r.start, r.stop) for i, r in plan] == [
        (item, item + 1, start, stop) for item in range(3) for start, stop in runs]


@pytest.mark.parametrize("x_shape, w_shape, options", [
    ((1, 1, 512, 512), (1, 1, 3, 3), {"padding": 1}),
    ((1, 1, 300, 200), (1, 1, 3, 3), {"padding": "same", "dilation": (60, 1)}),   # tall windows
    ((4, 2, 60, 70), (2, 1, 5, 5), {"padding": 2, "groups": 2}),                  # whole items
])
@pytest.mark.slow                          # tracemalloc over 27 cases
@pytest.mark.parametrize("budget", [2**14, 2**16, 2**18])
def test_scratch_stays_within_budget(x_shape, w_shape, options, budget, monkeypatch, rng):
    """Scratch (the padded rows and partial sums) within the budget, the kernel's extra rows
    counted: peak allocations of a forward and a dL/dW are the output and the budget."""
    monkeypatch.setattr(chunking, "threads", lambda: 1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    grad_output = rng.standard_normal(x_shape[:1] + w_shape[:1]
                                      + geometry_of(x, w, options).output_size)
    geometry = geometry_of(x, w, options)
    # at least one output row: its window's input rows and its outputs
    one_row = (((w_shape[2] - 1) * geometry.dilation[0] + 1) * geometry.padded_size[1]
               + geometry.output_size[1]) * x.itemsize
    slack = 32 * 2**10 + 512 * geometry.output_size[0]     # and the chunk plan's Python objects
    for call, output_bytes in ((lambda: run(x, w, None, options, budget), grad_output.nbytes),
                               (lambda: run_grad_weight(grad_output, x, w, options, budget), 0)):
        chunking.forget_scratch()                # a kept buffer would not be counted
        tracemalloc.start()
        try:
            call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak <= output_bytes + max(budget, one_row) + slack


# the last is large enough that the threads' products and copies overlap in time
@pytest.mark.parametrize("x_shape, w_shape, options, budget", [
    (*CASES[0], 1), (*CASES[5], 1), (*CASES[10], 1),
    ((2, 2, 120, 300), (2, 1, 5, 5), {"groups": 2, "padding": 2}, 2**15),
])
def test_threads_give_the_same_answer(x_shape, w_shape, options, budget, monkeypatch, rng):
    monkeypatch.setattr(chunking, "threads", lambda: 2)
    monkeypatch.setattr(depthwise, "THREADS_FROM", 0)
    used = []
    pool = chunking.pool(2)
    monkeypatch.setattr(chunking, "pool", lambda workers: used.append(workers) or pool)
    x = rng.standard_normal(x_shape)
    w, b = rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    if x.size < 1000:
        want = conv2d_loop(x, w, b, **options)
    else:                  # per channel, by im2col: y[:, g] = X_col · w[g] + b[g]
        n, _, height, width = x.shape
        want = np.stack([(im2col(x[:, g : g + 1], w.shape[2:], padding=options["padding"])
                          @ w[g].ravel()).reshape(n, height, width) + b[g]
                         for g in range(x.shape[1])], axis=1)
    for _ in range(3):
        used.clear()
        y = run(x, w, b, options, budget=budget)
        assert used == [2]
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    # dL/dW on two threads: each sums its chunks, then the two sums are added
    grad_output = rng.standard_normal(want.shape)
    used.clear()
    grad_w = run_grad_weight(grad_output, x, w, options, budget)
    assert used == [2]
    if x.size < 1000:
        _, want_w, _ = conv2d_backward_loop(grad_output, x, w, **options)
    else:                  # by im2col: dL/dW[g] = X_colᵀ · dL/dy[:, g]
        want_w = np.stack([(im2col(x[:, g : g + 1], w.shape[2:], padding=options["padding"]).T
                            @ grad_output[:, g].ravel()).reshape(w.shape[1:])
                           for g in range(x.shape[1])])
    np.testing.assert_allclose(grad_w, want_w, rtol=1e-11, atol=1e-11)


def _conv_in_child(queue, x, w):
    queue.put(float(np.abs(conv2d(x, w, padding=2, memory_budget=2**16)).sum()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_pool(monkeypatch, rng):
    """The parent's pool threads are not copied by fork: the child must not wait for them."""
    monkeypatch.setattr(chunking, "threads", lambda: 2)
    monkeypatch.setattr(depthwise, "THREADS_FROM", 0)
    x, w = rng.standard_normal((1, 1, 300, 300)), rng.standard_normal((1, 1, 5, 5))
    want = float(np.abs(conv2d(x, w, padding=2, memory_budget=2**16)).sum())  # makes the pool
    assert chunking._pools
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_conv_in_child, args=(queue, x, w))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung on the parent's pool")
    assert child.exitcode == 0 and queue.get(timeout=5) == pytest.approx(want, rel=1e-12)


def test_conv2d_uses_it_where_it_suits(monkeypatch, rng):
    calls = []
    real = depthwise.conv2d_one_channel
    monkeypatch.setattr(depthwise, "conv2d_one_channel", lambda *a: calls.append(a) or real(*a))
    x = rng.standard_normal((2, 2, 5, 64))
    cases = [((2, 1, 3, 3), {"groups": 2, "padding": 1}, True),     # depthwise, 64 wide
             ((2, 1, 3, 3), {"groups": 2}, False),                 # 62 wide: X_col
             ((4, 1, 3, 3), {"groups": 2, "padding": 1}, False),   # 2 outputs a group: X_col
             ((2, 1, 3, 3), {"groups": 2, "stride": (1, 2)}, False),
             ((2, 2, 3, 3), {"padding": 1}, False)]
    for w_shape, options, expected in cases:
        calls.clear()
        w = rng.standard_normal(w_shape)
        y = conv2d(x, w, **options)
        assert bool(calls) == expected, (w_shape, options)
        np.testing.assert_allclose(y, conv2d_loop(x, w, **options), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backward_of_a_grey_image(dtype, monkeypatch, rng):
    """At stride 1, dL/dx is a full correlation with the flipped kernel: this route again, as is
    dL/dW."""
    used = []
    for name in ("conv2d_one_channel", "grad_weight_one_channel"):
        real = getattr(depthwise, name)
        monkeypatch.setattr(depthwise, name,
                            lambda *a, real=real, name=name: used.append(name) or real(*a))
    x, w = rng.standard_normal((2, 1, 6, 66)).astype(dtype), rng.standard_normal((1, 1, 3, 5))
    w = w.astype(dtype)
    grad_output = rng.standard_normal((2, 1, 6, 66)).astype(dtype)
    got = conv2d_backward(grad_output, x, w, padding=(1, 2))
    assert sorted(used) == ["conv2d_one_channel", "grad_weight_one_channel"]
    want = conv2d_backward_loop(grad_output.astype(np.float64), x, w, padding=(1, 2))
    tol = 1e-11 if dtype == np.float64 else 1e-4
    for g, e in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)


def test_integer_and_strided_inputs(rng):
    """Integers compute in float64; a transposed (non-contiguous) x is read as it is."""
    x_int = rng.integers(-5, 6, size=(1, 1, 7, 70))
    w = rng.standard_normal((1, 1, 3, 3))
    y = conv2d(x_int, w, padding=1)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, conv2d_loop(x_int.astype(float), w, padding=1), rtol=1e-12,
                               atol=1e-12)
    x_t = rng.standard_normal((1, 1, 70, 9)).transpose(0, 1, 3, 2)      # (1, 1, 9, 70), a view
    assert not x_t.flags.c_contiguous
    np.testing.assert_allclose(conv2d(x_t, w, padding=1),
                               conv2d_loop(np.ascontiguousarray(x_t), w, padding=1),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("env, expected", [({"OPENBLAS_NUM_THREADS": "3"}, 3),
                                           ({"OMP_NUM_THREADS": "4,2"}, 4),
                                           ({"OPENBLAS_NUM_THREADS": "1",
                                             "OMP_NUM_THREADS": "8"}, 1)])
def test_threads_follow_the_blas_settings(env, expected, monkeypatch):
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert chunking.threads() == expected


def test_threads_default_to_the_cpus_we_may_use(monkeypatch):
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.setenv(name, "not a number")
    monkeypatch.setattr(chunking.os, "sched_getaffinity", lambda pid: {0, 1, 5}, raising=False)
    assert chunking.threads() == 3


def test_the_shared_configurations_reach_this_route():
    """tests/configs.py's wide cases are there to run depthwise.py through every shared test."""
    from convcli.geometry import resolve
    from tests.configs import CONFIGS

    reached = [name for name, x_shape, w_shape, options in CONFIGS
               if depthwise.suits(w_shape, options.get("groups", 1),
                                  resolve(x_shape[2:], w_shape[2:], **{k: v for k, v in options.items()
                                                                      if k != "groups"}))]
    assert reached == ["depthwise wide, depthwise.py route", "grey wide dilated"]
