"""The stride-1 designs of issue 18: the flat-shift X_col, its adjoint, the workers that share
chunks on single-threaded BLAS, and the rule that picks a design. Nothing here times anything;
the reference tests (test_conv.py, test_chunking.py, test_torch_parity.py) check the answers."""

import itertools
import os
import threading

import numpy as np
import pytest

import convcli.chunking
from convcli import blas, conv2d, conv2d_backward, cores, flat, im2col
from convcli.chunking import chunks, route, run_shared
from convcli.geometry import resolve
from tests.configs import CONFIGS
from tests.reference import conv2d_backward_loop, conv2d_loop

STRIDE_1 = [c for c in CONFIGS if c[3].get("stride", 1) == 1]
IDS = [c[0] for c in STRIDE_1]


def flat_and_columns(config, rng):
    _, x_shape, w_shape, options = config
    options = {k: v for k, v in options.items() if k != "groups"}
    x = rng.standard_normal(x_shape)
    geometry = resolve(x_shape[2:], w_shape[2:], **options)
    return x, geometry, flat.padded_flat(x, geometry), im2col(x, w_shape[2:], **options)


@pytest.mark.parametrize("config", STRIDE_1, ids=IDS)
def test_flat_columns_are_im2col_plus_extra_columns(config, rng):
    """Columns j < OW of each chunk's flat X_colᵀ are im2col's rows; j >= OW are extra."""
    x, geometry, x_flat, cols = flat_and_columns(config, rng)
    n, (oh, ow), wp = x.shape[0], geometry.output_size, geometry.padded_size[1]
    cols = cols.reshape(n, oh, ow, -1)                       # (N, OH, OW, C·KH·KW)
    plan = chunks(n, oh, row_bytes=1, budget=2) + chunks(n, oh, row_bytes=1, budget=2 * oh)
    for chunk in plan:
        items, rows = chunk
        r = rows.stop - rows.start
        got = flat.columns_t(x_flat, geometry, chunk, np.empty(cols.shape[-1] * n * r * wp))
        got = got.reshape(-1, items.stop - items.start, r, wp)[..., :ow]
        want = cols[items, rows].transpose(3, 0, 1, 2)       # (C·KH·KW, n, R, OW)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("config", STRIDE_1, ids=IDS)
def test_flat_col2im_is_the_adjoint_of_flat_columns(config, rng):
    """<columns_t(x), G> = <x, col2im_t_add(G)> summed over chunks, G zero in the extra columns."""
    x, geometry, x_flat, cols = flat_and_columns(config, rng)
    n, (oh, ow), wp = x.shape[0], geometry.output_size, geometry.padded_size[1]
    grad_flat = np.zeros_like(x_flat)
    left_side = 0.0
    for chunk in chunks(n, oh, row_bytes=1, budget=2):       # two rows: windows split
        r = rows_of(chunk)
        g = rng.standard_normal((cols.shape[1], n_of(chunk), r, wp))
        g[..., ow:] = 0.0
        g = g.reshape(cols.shape[1], -1)
        got = flat.columns_t(x_flat, geometry, chunk, np.empty(g.size))
        left_side += np.vdot(got, g)
        flat.col2im_t_add(g, grad_flat, geometry, chunk)
    assert np.vdot(x_flat, grad_flat) == pytest.approx(left_side, rel=1e-12, abs=1e-12)
    tail = flat.tail_size(geometry)
    if tail:
        np.testing.assert_array_equal(grad_flat[..., -tail:], 0.0)


def rows_of(chunk):
    return chunk[1].stop - chunk[1].start


def n_of(chunk):
    return chunk[0].stop - chunk[0].start


# -- the rule ----------------------------------------------------------------------------------


def test_the_rule_picks_a_design_per_layer(monkeypatch):
    monkeypatch.setattr(convcli.chunking, "threads", lambda: 2)
    c = route(resolve((56, 56), 3, padding=1), 64, 64)
    assert c.flat and c.weight == "shifted" and c.grad_input == "flipped"
    assert c.workers == (2 if blas.available() else 1)
    d = route(resolve((32, 32), 3, padding=1), 32, 64)
    assert d.flat and d.weight == "columns"                    # small items: X_col over several
    assert d.grad_input == "col2im"                            # C < O: col2im's product is taller
    e = route(resolve((28, 28), 3, stride=2, padding=1), 128, 256)
    assert not e.flat and e.workers == 1 and e.weight == "columns" and e.grad_input == "col2im"
    assert not route(resolve((9, 9), 3, stride=(1, 2)), 4, 4).flat


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(3, 6, 9, 8), (1, 6, 9, 8)], ids=["3 items", "1 item"])
def test_many_chunks_on_two_workers_match_the_loop(shape, dtype, monkeypatch, rng):
    """Row chunks of one item (dL/dX's col2im adds in turn) and whole items, on two workers."""
    monkeypatch.setattr(convcli.chunking, "threads", lambda: 2)
    x = rng.standard_normal(shape).astype(dtype)
    for w_shape in ((4, 6, 3, 3), (9, 6, 3, 3)):          # C >= O: flipped, C < O: col2im
        w = rng.standard_normal(w_shape).astype(dtype)
        b = rng.standard_normal(w_shape[0]).astype(dtype)
        grad_output = rng.standard_normal((shape[0], w_shape[0], 9, 8)).astype(dtype)
        want = (conv2d_loop(x, w, b, padding=1),
                *conv2d_backward_loop(grad_output.astype(np.float64), x, w, padding=1))
        tol = 1e-11 if dtype == np.float64 else 1e-4
        for budget, shifted_from in itertools.product((600, 6000, 2**30), (0, 2**30)):
            # rows, items, everything at once; dL/dW shifted and by X_col
            monkeypatch.setattr(convcli.chunking, "SHIFTED_FROM", shifted_from)
            got = (conv2d(x, w, b, padding=1, memory_budget=budget),
                   *conv2d_backward(grad_output, x, w, padding=1, memory_budget=budget))
            for g, e in zip(got, want, strict=True):
                assert g.dtype == dtype
                np.testing.assert_allclose(g, e, rtol=tol, atol=tol)


# -- the workers ---------------------------------------------------------------------------------


def plan_of(count):
    return [(slice(k, k + 1), slice(0, 1)) for k in range(count)]


def test_workers_sum_what_the_tasks_return_and_each_chunk_runs_once():
    seen, lock = [], threading.Lock()

    def task(chunk, scratch):
        with lock:
            seen.append((chunk[0].start, threading.get_ident()))
        return np.array([chunk[0].start], dtype=np.float64)

    total = run_shared(task, plan_of(50), 4, np.float64, workers=2)
    assert total.tolist() == [sum(range(50))]
    assert sorted(k for k, _ in seen) == list(range(50))


def test_an_error_in_a_worker_reaches_the_caller():
    def task(chunk, scratch):
        if chunk[0].start == 7:
            raise ValueError("chunk 7")

    with pytest.raises(ValueError, match="chunk 7"):
        run_shared(task, plan_of(20), 4, np.float64, workers=2)
    assert convcli.chunking.run_shared(lambda c, s: None, plan_of(3), 4, np.float64, 2) is None


def test_a_conv_inside_a_worker_runs_in_turn_there(monkeypatch, rng):
    """A task that itself calls conv2d (a nested call in a worker thread) runs that call's
    chunks itself: it asks the pool for no helper (which would be itself, busy) and pins
    nothing."""
    monkeypatch.setattr(convcli.chunking, "threads", lambda: 2)
    x, w = rng.standard_normal((2, 3, 12, 12)), rng.standard_normal((4, 3, 3, 3))
    want = conv2d_loop(x, w, padding=1)
    asked, real_pool = [], convcli.chunking.pool

    def pool(workers):
        asked.append(threading.current_thread().name)
        return real_pool(workers)

    monkeypatch.setattr(convcli.chunking, "pool", pool)

    def task(chunk, scratch):
        return conv2d(x, w, padding=1, memory_budget=4000)     # many chunks of its own

    total = run_shared(task, plan_of(6), 4, np.float64, workers=2)
    np.testing.assert_allclose(total, 6 * want, rtol=1e-12, atol=1e-12)
    assert not [name for name in asked if name.startswith("convcli")]


def test_the_sum_repeats_to_the_bit(monkeypatch, rng):
    """Parts are added in the plan's order, not in the order the threads finished them."""
    monkeypatch.setattr(convcli.chunking, "threads", lambda: 2)
    x = rng.standard_normal((16, 8, 12, 12)).astype(np.float32)
    grad_output = rng.standard_normal((16, 8, 12, 12)).astype(np.float32)
    first = conv2d_backward(grad_output, x, np.ones((8, 8, 3, 3), np.float32), padding=1,
                            memory_budget=20000)[1]
    for _ in range(20):
        again = conv2d_backward(grad_output, x, np.ones((8, 8, 3, 3), np.float32), padding=1,
                                memory_budget=20000)[1]
        np.testing.assert_array_equal(again, first)


def test_after_an_error_the_other_worker_stops_soon():
    import time

    ran, lock = [], threading.Lock()

    def task(chunk, scratch):
        with lock:
            ran.append(chunk[0].start)
        if chunk[0].start == 1:
            raise ValueError("chunk 1")
        time.sleep(0.002)

    with pytest.raises(ValueError, match="chunk 1"):
        run_shared(task, plan_of(200), 4, np.float64, workers=2)
    assert len(ran) < 10                    # the chunk in hand, not the 198 left


@pytest.fixture
def blas_on_two_threads():
    """NumPy's BLAS set to two threads for the test, its count before put back after;
    -> get_threads."""
    if not blas.available():
        pytest.skip("NumPy's BLAS thread count cannot be set here")
    set_threads, get_threads = blas._controls()
    before = get_threads()
    set_threads(2)
    yield get_threads
    set_threads(before)


def test_blas_runs_on_one_thread_inside_and_comes_back_after(blas_on_two_threads):
    get_threads = blas_on_two_threads
    with blas.one_thread():
        assert get_threads() == 1
        with blas.one_thread():                        # nested: still one, not restored
            assert get_threads() == 1
        assert get_threads() == 1
    assert get_threads() == 2
    barrier, inside = threading.Barrier(3), []

    def hold():
        with blas.one_thread():
            barrier.wait()                             # both threads inside at once
            inside.append(get_threads())
            barrier.wait()

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    barrier.wait()
    barrier.wait()
    for t in threads:
        t.join()
    assert inside == [1, 1] and get_threads() == 2


def test_without_blas_control_the_chunks_run_in_turn(monkeypatch, rng):
    monkeypatch.setattr(blas, "available", lambda: False)
    monkeypatch.setattr(convcli.chunking, "threads", lambda: 2)
    assert route(resolve((9, 9), 3), 4, 4).workers == 1
    calls = []

    def task(chunk, scratch):
        calls.append(threading.get_ident())

    run_shared(task, plan_of(6), 4, np.float64, workers=2)
    assert set(calls) == {threading.get_ident()}


def test_it_is_numpys_blas_that_gets_one_thread():
    """SciPy's wheels load a second OpenBLAS; setting that one's count left NumPy's products on
    two threads inside each of two workers (c float32 forward 87 ms instead of 18 in bench.py).
    threadpoolctl, which reads every loaded BLAS, is the witness."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    pytest.importorskip("scipy.linalg")                    # loads SciPy's OpenBLAS, if it has one
    blas._controls.cache_clear()                           # look again, with SciPy's loaded
    if not blas.available():
        pytest.skip("NumPy's BLAS thread count cannot be set here")

    def numpys():
        infos = threadpoolctl.threadpool_info()
        (info,) = [i for i in infos if i["user_api"] == "blas" and "numpy" in i["filepath"]]
        return info["num_threads"]

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        with blas.one_thread():
            assert numpys() == 1
        assert numpys() == 2


@pytest.mark.parametrize("config", STRIDE_1, ids=IDS)
@pytest.mark.parametrize("shifted_from", [0, 2**30], ids=["shifted", "X_col"])
def test_both_weight_gradients_of_the_flat_route_match_the_loop(config, shifted_from,
                                                                 monkeypatch, rng):
    """dL/dW by one product per tap and by X_colᵀ·dL/dY, for every stride-1 configuration
    (groups, dilation, asymmetric padding), in row chunks and whole, on two workers."""
    _, x_shape, w_shape, options = config
    monkeypatch.setattr(convcli.chunking, "SHIFTED_FROM", shifted_from)
    monkeypatch.setattr(convcli.chunking, "threads", lambda: 2)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    grad_output = rng.standard_normal(conv2d(x, w, **options).shape)
    want = conv2d_backward_loop(grad_output, x, w, **options)[1]
    for budget in (1, 2**30):
        got = conv2d_backward(grad_output, x, w, memory_budget=budget, **options)[1]
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


# -- NaN and inf where only the extra columns reach ---------------------------------------------


@pytest.mark.filterwarnings("error")        # a warning from a worker thread fails it too
@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("shifted_from", [0, 2**30], ids=["shifted", "X_col"])
def test_a_nan_only_the_extra_columns_meet_stays_out_of_the_gradients(bad, shifted_from,
                                                                       monkeypatch, rng):
    """x's first column under the right-hand taps, and a kernel tap that never meets some
    pixels, are met by the flat layout's extra columns times dL/dY's zeros (0 × inf = NaN).
    The gradients must be the loop's: finite where no window brings the bad value."""
    monkeypatch.setattr(convcli.chunking, "SHIFTED_FROM", shifted_from)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    x[1, 2, 3, 0] = bad                     # column 0: taps kw = 2 never read it (padding 1)
    grad_output = rng.standard_normal((2, 4, 7, 6))
    want = conv2d_backward_loop(grad_output, x, w, padding=1)
    with np.errstate(all="raise"):          # no warning from the extra columns, in any worker
        got = conv2d_backward(grad_output, x, w, padding=1, grad_input_route="col2im")
    assert np.isfinite(want[1][:, :, :, 2]).all()          # the claim: kw = 2 stays finite
    for g, e in zip(got, want, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-11)   # NaN where the loop has NaN


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_nan_weight_only_reaches_the_pixels_it_touches(bad, rng):
    """dL/dX for a NaN or inf weight: the loop's, finite on the pixels that tap never meets."""
    x, w = rng.standard_normal((1, 2, 6, 7)), rng.standard_normal((5, 2, 3, 3))
    w[1, 0, 0, 2] = bad                     # tap (0, 2): never reaches x's column 0 nor last row
    grad_output = rng.standard_normal((1, 5, 6, 7))
    want = conv2d_backward_loop(grad_output, x, w, padding=1)[0]
    assert np.isfinite(want[0, 0, :, 0]).all()
    for route_name in ("col2im", "auto"):    # auto: flipped would multiply it by padding zeros
        got = conv2d_backward(grad_output, x, w, padding=1, grad_input_route=route_name)[0]
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


# -- where the workers run, and what comes back after ------------------------------------------


needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                                    reason="no CPU affinity on this platform")


@needs_affinity
def test_pinned_puts_the_thread_back():
    before = os.sched_getaffinity(0)
    cpu = min(before)
    with cores.pinned(cpu):
        assert os.sched_getaffinity(0) == {cpu}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(KeyError), cores.pinned(cpu):
        raise KeyError("inside")
    assert os.sched_getaffinity(0) == before


@needs_affinity
def test_only_a_run_alone_is_pinned():
    allowed = sorted(os.sched_getaffinity(0))
    with cores.alone(1) as cpus:
        assert cpus == allowed[:1]
        with cores.alone(1) as inner:      # a second run at once: the scheduler places it
            assert inner == [None]
    with cores.alone(len(allowed) + 1) as cpus:    # more workers than CPUs: not pinned
        assert cpus == [None] * (len(allowed) + 1)


@pytest.mark.skipif(not blas.available(), reason="NumPy's BLAS thread count cannot be set here")
def test_an_error_in_a_worker_puts_blas_and_cpus_back():
    _, get_threads = blas._controls()
    threads_before = get_threads()
    affinity_before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    def task(chunk, scratch):
        if chunk[0].start == 3:
            raise ValueError("chunk 3")

    with pytest.raises(ValueError):
        run_shared(task, plan_of(8), 4, np.float64, workers=2)
    assert get_threads() == threads_before and blas._users == 0 and cores._running == 0
    if affinity_before is not None:
        assert os.sched_getaffinity(0) == affinity_before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_during_a_shared_run_gets_its_blas_threads_back(blas_on_two_threads):
    get_threads = blas_on_two_threads
    with blas.one_thread(), cores.alone(1):      # as run_shared holds them
        pid = os.fork()
        if pid == 0:                             # the child: no run goes on here
            ok = blas._users == 0 and get_threads() == 2 and cores._running == 0
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
