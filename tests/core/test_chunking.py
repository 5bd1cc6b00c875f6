"""Chunking: every piece of X_col the core builds under a memory budget gives the unchunked
answer, and the pieces stay within the budget. Nothing here times anything."""

import tracemalloc

import numpy as np
import pytest

import convcli.chunking
import convcli.conv
import convcli.depthwise
from convcli import (
    conv2d,
    conv2d_backward,
    grad_input_col2im,
    grad_input_flipped,
    im2col,
)
from convcli.chunking import chunks
from convcli.columns import col2im_t_add, columns_t, pad_input
from convcli.errors import InputError
from convcli.geometry import resolve
from tests.configs import CONFIGS, make
from tests.reference import conv2d_backward_loop, conv2d_loop

IDS = [c[0] for c in CONFIGS]
HUGE = 2**40


@pytest.fixture
def plans(monkeypatch):
    """Every chunk plan the core makes, as [(items, rows), ...] lists."""
    made = []

    def spy(*args, **kwargs):
        made.append(chunks(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(convcli.chunking, "chunks", spy)
    return made


@pytest.fixture(autouse=True)
def two_workers(monkeypatch):
    """Two workers wherever the core runs chunks on workers, whatever this machine's CPUs."""
    monkeypatch.setattr(convcli.chunking, "threads", lambda: 2)


def forward_row_bytes(x_shape, w_shape, geometry, itemsize):
    """(scratch bytes per output row of the forward pass, workers sharing the budget): X_colᵀ's
    columns and the O outputs of a row, Wp wide on the flat route (stride 1), OW wide else."""
    design = convcli.chunking.route(geometry, x_shape[1], w_shape[0])
    width = geometry.padded_size[1] if design.flat else geometry.output_size[1]
    row = (x_shape[1] * w_shape[2] * w_shape[3] + w_shape[0]) * width * itemsize
    return row, design.workers


def all_results(x, w, b, grad_output, options, budget, route="auto"):
    y = conv2d(x, w, b, memory_budget=budget, **options)
    grads = conv2d_backward(grad_output, x, w, memory_budget=budget, grad_input_route=route,
                            **options)
    return (y, *grads)


# -- the plan ---------------------------------------------------------------------------------


@pytest.mark.parametrize("batch, rows, row_bytes, budget", [
    (1, 1, 10, 1), (1, 7, 10, 5), (3, 7, 10, 25), (3, 7, 10, 70), (3, 7, 10, 140),
    (5, 4, 8, 10**9), (8, 3, 1, 10), (2, 9, 100, 350),
])
def test_chunks_cover_the_output_once_within_budget(batch, rows, row_bytes, budget):
    plan = chunks(batch, rows, row_bytes, budget)
    covered = np.zeros((batch, rows), dtype=int)
    for items, part in plan:
        assert items.step is None and part.step is None
        covered[items, part] += 1
        size = (items.stop - items.start) * (part.stop - part.start)
        # within budget, or a single row of a single item when not even one row fits
        assert size * row_bytes <= budget or size == 1
        # several items only as whole items
        assert items.stop - items.start == 1 or part == slice(0, rows)
    assert (covered == 1).all()
    if budget >= batch * rows * row_bytes:
        assert len(plan) == 1


def test_budget_below_one_row_gives_one_row_chunks():
    plan = chunks(2, 5, row_bytes=1000, budget=10)
    assert [(i.start, r.start, r.stop) for i, r in plan] == [
        (n, k, k + 1) for n in range(2) for k in range(5)]


def test_chunks_are_even():
    sizes = [r.stop - r.start for _, r in chunks(1, 10, row_bytes=1, budget=4)]
    assert sizes == [3, 3, 4]


# -- the pieces: columns_t is X_colᵀ sliced, col2im_t_add its adjoint -------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_columns_t_is_a_slice_of_im2col_transposed(config, rng):
    _, x_shape, w_shape, options = config
    options = {k: v for k, v in options.items() if k != "groups"}
    x = rng.standard_normal(x_shape)
    geometry = resolve(x_shape[2:], w_shape[2:], **options)
    n, (oh, ow) = x_shape[0], geometry.output_size
    # (N·OH·OW, C·KH·KW) -> (N, OH, OW, C·KH·KW)
    cols = im2col(x, w_shape[2:], **options).reshape(n, oh, ow, -1)
    x_padded = pad_input(x, geometry)
    plan = chunks(n, oh, row_bytes=1, budget=2)                # two rows at a time, split windows
    plan += chunks(n, oh, row_bytes=1, budget=2 * oh)          # two whole items at a time
    for chunk in plan:
        items, rows = chunk
        got = columns_t(x_padded, geometry, chunk, np.empty(cols.size))
        want = cols[items, rows].reshape(-1, cols.shape[-1])   # rows (n, i, j) of the chunk
        np.testing.assert_array_equal(got, want.T)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("items", [0, 2], ids=["one row", "two whole items"])
def test_col2im_t_add_is_adjoint_of_columns_t(config, items, rng):
    """<columns_t(x), G> summed over chunks = <x, Σ col2im_t_add(G)>, chunk boundaries inside."""
    _, x_shape, w_shape, options = config
    options = {k: v for k, v in options.items() if k != "groups"}
    geometry = resolve(x_shape[2:], w_shape[2:], **options)
    x_padded = pad_input(rng.standard_normal(x_shape), geometry)
    grad_padded = np.zeros_like(x_padded)
    left_side = 0.0
    oh = geometry.output_size[0]
    for chunk in chunks(x_shape[0], oh, row_bytes=1, budget=max(1, items * oh)):
        cols_t = columns_t(x_padded, geometry, chunk, np.empty(x_padded.size * 64))
        other = rng.standard_normal(cols_t.shape)
        left_side += np.vdot(cols_t, other)
        col2im_t_add(other, grad_padded, geometry, chunk)
    assert left_side == pytest.approx(np.vdot(x_padded, grad_padded), rel=1e-12, abs=1e-12)


# -- every configuration, every budget, both dtypes --------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("budget", [1, 200, 3000], ids=["below one row", "a row or two",
                                                          "some rows"])
def test_tiny_budget_matches_unchunked_and_loop(config, dtype, budget, rng):
    x, w, b, options = make(config, rng, dtype)
    grad_output = rng.standard_normal(conv2d(x, w, **options).shape).astype(dtype)
    whole = all_results(x, w, b, grad_output, options, HUGE)
    chunked = all_results(x, w, b, grad_output, options, budget)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for got, want in zip(chunked, whole):
        assert got.dtype == want.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    expected = (conv2d_loop(x, w, b, **options),
                *conv2d_backward_loop(grad_output.astype(np.float64), x, w, **options))
    tol = 1e-11 if dtype == np.float64 else 1e-4
    for got, want in zip(chunked, expected):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("route", ["col2im", "flipped"])
def test_both_grad_input_routes_chunked(config, route, rng):
    x, w, _, options = make(config, rng)
    grad_output = rng.standard_normal(conv2d(x, w, **options).shape)
    want = conv2d_backward_loop(grad_output, x, w, **options)[0]
    public = grad_input_col2im if route == "col2im" else grad_input_flipped
    for budget in (1, 100, HUGE):
        np.testing.assert_allclose(public(grad_output, x.shape, w, memory_budget=budget,
                                          **options), want, rtol=1e-11, atol=1e-11)
        dx, _, _ = conv2d_backward(grad_output, x, w, grad_input_route=route,
                                   memory_budget=budget, **options)
        np.testing.assert_allclose(dx, want, rtol=1e-11, atol=1e-11)


# -- the paths a tiny budget takes, shown on the plans ----------------------------------------

# (x shape, w shape, options): a 3×3 kernel over row chunks of 1 and 2 rows (windows split
# across chunks), a stride-2 col2im scatter whose chunks share input rows, a batch of whole items
GEOMETRIES = [
    ((1, 3, 9, 8), (4, 3, 3, 3), {"padding": 1}),
    ((2, 2, 11, 9), (3, 2, 3, 3), {"stride": 2, "padding": (2, 1)}),
    ((1, 2, 10, 7), (2, 2, 4, 3), {"dilation": (2, 1), "padding": "same"}),
    ((6, 2, 5, 5), (3, 2, 3, 3), {"padding": 1}),
]


@pytest.mark.parametrize("x_shape, w_shape, options", GEOMETRIES)
@pytest.mark.parametrize("rows_per_chunk", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_chunks_split_windows(x_shape, w_shape, options, rows_per_chunk, dtype, plans, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    geometry = resolve(x_shape[2:], w_shape[2:], **options)
    # scratch per output row: its X_colᵀ columns and its O outputs, for each of the workers
    row_bytes, workers = forward_row_bytes(x_shape, w_shape, geometry, x.itemsize)
    budget = rows_per_chunk * row_bytes * workers
    grad_output = rng.standard_normal((x_shape[0], w_shape[0]) + geometry.output_size)
    grad_output = grad_output.astype(dtype)
    for route in ("col2im", "flipped"):
        chunked = all_results(x, w, b, grad_output, options, budget, route)
        whole = all_results(x, w, b, grad_output, options, HUGE, route)
        tol = 1e-12 if dtype == np.float64 else 2e-5
        for got, want in zip(chunked, whole):
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    first = plans[0]                                       # the forward pass's plan
    assert all(r.stop - r.start <= rows_per_chunk for _, r in first)
    assert any(r.stop - r.start == rows_per_chunk for _, r in first)
    if rows_per_chunk < geometry.output_size[0]:
        assert any(r.start > 0 for _, r in first)          # a boundary inside an item


@pytest.mark.parametrize("items_per_chunk", [1, 2, 4])
def test_chunks_of_whole_items(items_per_chunk, plans, rng):
    x, w = rng.standard_normal((7, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    grad_output = rng.standard_normal((7, 4, 6, 5))
    geometry = resolve((6, 5), 3, padding=1)
    row_bytes, workers = forward_row_bytes(x.shape, w.shape, geometry, x.itemsize)
    budget = items_per_chunk * 6 * row_bytes * workers      # items_per_chunk whole items
    chunked = all_results(x, w, None, grad_output, {"padding": 1}, budget)
    expected = (conv2d_loop(x, w, padding=1), *conv2d_backward_loop(grad_output, x, w, padding=1))
    for got, want in zip(chunked, expected):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    sizes = [i.stop - i.start for i, r in plans[0] if r == slice(0, 6)]
    assert len(sizes) == len(plans[0]) and max(sizes) == items_per_chunk and sum(sizes) == 7


# -- one channel per output (grey images, depthwise): the same chunks, Kg = KH·KW ------------

ONE_CHANNEL = [
    ((1, 1, 13, 11), (1, 1, 3, 3), {"padding": 1}),
    ((2, 1, 12, 9), (1, 1, 7, 7), {"padding": 3}),
    ((1, 1, 10, 12), (1, 1, 2, 3), {"stride": (2, 3), "dilation": (2, 1), "padding": "same"}),
    ((2, 3, 9, 8), (3, 1, 3, 3), {"groups": 3, "padding": "same"}),             # depthwise
    ((1, 4, 8, 9), (4, 1, 2, 2), {"groups": 4, "stride": 2}),
    ((1, 1, 5, 6), (1, 1, 1, 1), {}),                                            # 1×1 kernel
]


@pytest.mark.parametrize("x_shape, w_shape, options", ONE_CHANNEL)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("budget", [1, 64, HUGE])
def test_one_channel_per_output(x_shape, w_shape, options, dtype, budget, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    y = conv2d(x, w, b, memory_budget=budget, **options)
    grad_output = rng.standard_normal(y.shape).astype(dtype)
    got = (y, *conv2d_backward(grad_output, x, w, memory_budget=budget, **options))
    want = (conv2d_loop(x, w, b, **options),
            *conv2d_backward_loop(grad_output.astype(np.float64), x, w, **options))
    tol = 1e-11 if dtype == np.float64 else 1e-4
    for g, e in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)


# -- memory ------------------------------------------------------------------------------------


@pytest.mark.parametrize("w_shape", [(4, 4, 5, 5), (1, 1, 5, 5)], ids=["4 channels", "1 channel"])
def test_scratch_stays_within_budget(w_shape, monkeypatch, rng):
    """Peak NumPy allocations: x's padded copy, y, dL/dx and a budget's worth of scratch; the
    whole X_col would be 25× x."""
    x = rng.standard_normal((1, w_shape[1], 96, 96))
    w = rng.standard_normal(w_shape)
    budget = 256 * 2**10                                   # a few rows of X_col
    grad_output = rng.standard_normal((1, w_shape[0], 96, 96))
    monkeypatch.setattr(convcli.chunking, "threads", lambda: 1)
    convcli.chunking.forget_scratch()          # a buffer kept from before would not be counted
    tracemalloc.start()
    try:
        conv2d(x, w, padding=2, memory_budget=budget)
        forward_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        conv2d_backward(grad_output, x, w, padding=2, memory_budget=budget)
        backward_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    padded = x.nbytes * (100 * 100) / (96 * 96)
    slack = 32 * 2**10
    assert forward_peak <= padded + grad_output.nbytes + budget + slack
    # backward: the padded x (dW), then padded dL/dy, dL/dx and dL/dw (the flipped route)
    assert backward_peak <= 2 * padded + x.nbytes + budget + slack
    assert backward_peak < im2col(x, w_shape[2:], padding=2).nbytes / 4


@pytest.mark.parametrize("budget, error", [(0, InputError), (-5, InputError), (1.5, InputError),
                                           (True, InputError), ("1GB", InputError)])
def test_bad_budget_is_named(budget, error):
    x, w = np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2))
    with pytest.raises(error, match="memory_budget"):
        conv2d(x, w, memory_budget=budget)
    with pytest.raises(error, match="memory_budget"):
        conv2d_backward(np.zeros((1, 1, 3, 3)), x, w, memory_budget=budget)
    with pytest.raises(error, match="memory_budget"):
        grad_input_col2im(np.zeros((1, 1, 3, 3)), x.shape, w, memory_budget=budget)


# -- the scratch buffer kept between calls ------------------------------------------------------


def test_kept_scratch_serves_calls_of_any_size_and_dtype(rng):
    """One buffer per thread is reused by every call: results must not depend on what ran before."""
    x64, w64 = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3))
    first = conv2d(x64, w64, padding=1, memory_budget=64)
    for shape in [(1, 5, 30, 30), (3, 2, 4, 4)]:
        other = rng.standard_normal(shape).astype(np.float32)
        conv2d(other, rng.standard_normal((2, shape[1], 3, 3)).astype(np.float32), padding=1)
    again = conv2d(x64, w64, padding=1, memory_budget=64)
    np.testing.assert_array_equal(again, first)
    np.testing.assert_allclose(first, conv2d_loop(x64, w64, padding=1), rtol=1e-12, atol=1e-12)


def test_threads_each_have_their_own_scratch(rng):
    from concurrent.futures import ThreadPoolExecutor

    # large enough that the copies and products release the GIL, in chunks of a few rows
    cases = [(rng.standard_normal((2, 8, 40, 40)), rng.standard_normal((8, 8, 3, 3)))
             for _ in range(4)]
    want = [conv2d(x, w, padding=1) for x, w in cases]
    np.testing.assert_allclose(want[0], conv2d_loop(*cases[0], padding=1), rtol=1e-12, atol=1e-12)
    with ThreadPoolExecutor(4) as pool:
        for _ in range(10):
            got = list(pool.map(lambda case: conv2d(*case, padding=1, memory_budget=2**16), cases))
            for g, e in zip(got, want):
                np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_the_weight_gradient_plans_its_chunks_by_one_x_col_column_per_pixel(monkeypatch):
    """dL/dW's scratch per output row is (C·KH·KW + O)·OW elements: counting C twice made its
    chunks C times too small (128× on a 128-channel layer: 56 tiny products instead of one)."""
    import convcli.conv as core

    seen = []
    original = core.run

    def spy(task, batch, output_rows, row_size, budget, dtype, **options):
        seen.append(row_size)
        return original(task, batch, output_rows, row_size, budget, dtype, **options)

    monkeypatch.setattr(core, "run", spy)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 16, 10, 10)), rng.standard_normal((8, 16, 3, 3))
    grad = rng.standard_normal((2, 8, 5, 5))
    core.conv2d_weight(x, w.shape, grad, stride=2, padding=1)
    assert seen == [(16 * 3 * 3 + 8) * 5]
