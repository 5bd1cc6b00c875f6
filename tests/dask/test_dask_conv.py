"""convcli.dask: lazy conv2d and its gradients equal the in-memory core (float64 to 1e-12
relative) on odd chunkings, even kernels, strides 1-3, dilation, groups, every padding form and
border mode; on Dask's threads, a distributed LocalCluster and (slow) worker processes."""

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convcli
from convcli.errors import InputError

da = pytest.importorskip("dask.array", reason="Dask is not installed (pip install 'convcli[dask]')")
import dask

from convcli import dask as cd


def close(a, b, rtol=1e-12):
    scale = max(1.0, float(np.abs(b).max()))
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def odd_chunks(draw, length, least):
    """Chunk sizes of at least `least` (the halo) but the last, not multiples of anything."""
    sizes, left = [], length
    while left > 0:
        size = draw(st.integers(max(least, 1), max(least, 1) + 6))
        sizes.append(min(size, left))
        left -= size
    return sizes


@st.composite
def problems(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    height, width = draw(st.integers(span_h, 24)), draw(st.integers(span_w, 24))
    groups = draw(st.sampled_from([1, 2]))
    padding = draw(st.sampled_from([0, 1, (2, 1), (1, 0, 2, 3), "valid", "full"]
                                   + (["same"] if (sh, sw) == (1, 1) else [])))
    return {"x": (draw(st.integers(1, 2)), 2 * groups, height, width),
            "w": (2 * groups, 2, kh, kw), "bias": draw(st.booleans()),
            "options": {"stride": (sh, sw), "dilation": (dh, dw), "padding": padding,
                        "groups": groups},
            "rows": odd_chunks(draw, height, span_h - 1),
            "cols": odd_chunks(draw, width, span_w - 1)}


def lazy_x(x, p):
    return da.from_array(x, chunks=(1, -1, tuple(p["rows"]), tuple(p["cols"])))


@settings(max_examples=60, deadline=None)
@given(problems(), st.integers(0, 2**31 - 1))
def test_forward_and_gradients_equal_the_core(p, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(p["x"]), rng.standard_normal(p["w"])
    b = rng.standard_normal(p["w"][0]) if p["bias"] else None
    y = cd.conv2d(lazy_x(x, p), w, b, **p["options"])
    expected = convcli.conv2d(x, w, b, **p["options"])
    assert y.chunks == cd.output_chunks(lazy_x(x, p).chunks, w.shape, **p["options"])
    close(y.compute(scheduler="threads"), expected)
    dy = rng.standard_normal(expected.shape)
    grads = cd.conv2d_backward(dy, lazy_x(x, p), w, **p["options"])
    assert grads[0].chunks == lazy_x(x, p).chunks          # dL/dx chunked like x
    for got, want in zip(dask.compute(*grads, scheduler="threads"),
                         convcli.conv2d_backward(dy, x, w, **p["options"]), strict=True):
        close(got, want)


@pytest.mark.parametrize("mode", ["reflect", "symmetric", "replicate", "circular"])
def test_border_modes(rng, mode):
    x, w, b = rng.standard_normal((2, 3, 19, 22)), rng.standard_normal((4, 3, 3, 4)), None
    options = {"padding": (2, 1, 3, 1), "padding_mode": mode}
    y = cd.conv2d(x, w, b, chunks=(5, 6), **options)
    expected = convcli.conv2d(x, w, b, **options)
    close(y.compute(), expected)
    dy = rng.standard_normal(expected.shape)
    grads = cd.conv2d_backward(dy, x, w, chunks=(5, 6), **options)
    assert grads[0].chunks[2:] == ((5, 5, 5, 4), (6, 6, 6, 4))
    for got, want in zip(dask.compute(*grads), convcli.conv2d_backward(dy, x, w, **options),
                         strict=True):
        close(got, want)


def test_flip_is_a_true_convolution(rng):
    x, w = rng.standard_normal((1, 2, 15, 15)), rng.standard_normal((3, 2, 3, 2))
    y = cd.conv2d(x, w, chunks=4, padding="same", flip=True).compute()
    close(y, convcli.conv2d(x, w[..., ::-1, ::-1], padding="same"))
    dy = rng.standard_normal(y.shape)
    got = dask.compute(*cd.conv2d_backward(dy, x, w, chunks=4, padding="same", flip=True))
    for a, b in zip(got, convcli.conv2d_backward(dy, x, w, padding="same", flip=True),
                    strict=True):
        close(a, b)


def test_hand_worked_example():
    """The article's example on 2×2 chunks: a 2×2 kernel, padding at top and left."""
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = cd.conv2d(x, w, padding=(1, 0, 1, 0), chunks=2).compute()
    assert y[0, 0].tolist() == [[4, 11, 18], [18, 37, 47], [36, 67, 77]]
    dx, dw, db = dask.compute(*cd.conv2d_backward(np.ones_like(y), x, w, padding=(1, 0, 1, 0),
                                                  chunks=2))
    assert dx[0, 0].tolist() == [[10, 10, 6], [10, 10, 6], [7, 7, 4]]   # sums of w's suffixes
    assert dw[0, 0].tolist() == [[12, 21], [27, 45]] and db.tolist() == [9]


def test_float32_stays_float32(rng):
    x = rng.standard_normal((1, 1, 12, 12)).astype(np.float32)
    w = rng.standard_normal((1, 1, 3, 3)).astype(np.float32)
    y = cd.conv2d(x, w, padding=1, chunks=5)
    assert y.dtype == np.float32 and y.compute().dtype == np.float32
    dx, dw, db = cd.conv2d_backward(np.ones(y.shape, np.float32), x, w, padding=1, chunks=5)
    assert dx.dtype == dw.dtype == db.dtype == np.float32
    np.testing.assert_allclose(y.compute(), convcli.conv2d(x, w, padding=1), rtol=1e-5)


def test_windows_wholly_in_the_padding_give_the_bias():
    x, w, b = np.ones((1, 1, 6, 6)), np.ones((1, 1, 1, 1)), np.array([0.5])
    y = cd.conv2d(x, w, b, padding=3, chunks=2).compute()
    close(y, convcli.conv2d(x, w, b, padding=3))
    assert y[0, 0, 0, 0] == 0.5 and y[0, 0, 3, 3] == 1.5


def test_a_chunk_smaller_than_the_halo_is_refused(rng):
    x = rng.standard_normal((1, 1, 30, 30))
    with pytest.raises(InputError, match="smaller than the kernel's halo of 6 rows.*at least 6"):
        cd.conv2d(x, np.ones((1, 1, 7, 7)), chunks=4)
    assert cd.conv2d(x, np.ones((1, 1, 7, 7)), chunks=(6, 6)).shape == (1, 1, 24, 24)


def test_bad_input_is_an_input_error(rng):
    with pytest.raises(InputError, match="w has 2 input channels per group but x has 3"):
        cd.conv2d(np.ones((1, 3, 8, 8)), np.ones((1, 2, 3, 3)))
    with pytest.raises(InputError, match="chunks must be a positive int"):
        cd.conv2d(np.ones((1, 1, 8, 8)), np.ones((1, 1, 3, 3)), chunks=0)
    with pytest.raises(InputError, match=r"grad_output must have y's shape \(1, 1, 6, 6\)"):
        cd.conv2d_backward(np.ones((1, 1, 8, 8)), np.ones((1, 1, 8, 8)), np.ones((1, 1, 3, 3)))


def test_a_huge_lazy_image_is_not_refused_for_memory(monkeypatch):
    """The in-memory size guard does not apply: no task holds the whole image."""
    monkeypatch.setenv("CONVCLI_MAX_BYTES", str(2**26))   # 64 MiB: one tile
    x = da.zeros((1, 1, 40_000, 40_000), chunks=(1, 1, 2048, 2048))
    y = cd.conv2d(x, np.ones((1, 1, 3, 3)), padding="same")
    assert y.shape == (1, 1, 40_000, 40_000) and y.chunks[2][:2] == (2048, 2048)
    assert float(y[0, 0, 100:102, 100:102].sum().compute()) == 0.0


def test_import_convcli_does_not_load_dask():
    code = "import sys, convcli, convcli.api, convcli.cli; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def local_cluster():
    distributed = pytest.importorskip("distributed", reason="distributed is not installed")
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def geometry_cases():
    yield {"padding": "same"}, (1, 2, 21, 17), (3, 2, 4, 4), (5, 6)
    yield {"stride": 2, "padding": (1, 2, 0, 3), "dilation": (1, 2)}, (2, 2, 23, 19), \
        (2, 2, 3, 3), (7, 6)
    yield {"stride": 3, "groups": 2, "padding": "full"}, (1, 4, 20, 20), (4, 2, 2, 3), (4, 5)


@pytest.mark.parametrize(("options", "x_shape", "w_shape", "chunks"), list(geometry_cases()))
def test_on_a_local_cluster(local_cluster, rng, options, x_shape, w_shape, chunks):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    y = cd.conv2d(x, w, b, chunks=chunks, **options)
    expected = convcli.conv2d(x, w, b, **options)
    close(local_cluster.compute(y).result(), expected)
    dy = rng.standard_normal(expected.shape)
    got = local_cluster.gather(local_cluster.compute(list(cd.conv2d_backward(
        dy, x, w, chunks=chunks, **options))))
    for a, want in zip(got, convcli.conv2d_backward(dy, x, w, **options), strict=True):
        close(a, want)


@pytest.mark.slow
def test_on_worker_processes(rng):
    """Everything a task needs pickles: two worker processes give the same answers."""
    distributed = pytest.importorskip("distributed", reason="distributed is not installed")
    x, w = rng.standard_normal((1, 2, 40, 33)), rng.standard_normal((2, 2, 3, 4))
    dy = rng.standard_normal((1, 2, 20, 17))
    options = {"stride": 2, "padding": (1, 1, 2, 1), "padding_mode": "reflect"}
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        y = client.compute(cd.conv2d(x, w, chunks=(9, 8), **options)).result()
        grads = client.gather(client.compute(list(cd.conv2d_backward(dy, x, w, chunks=(9, 8),
                                                                     **options))))
    close(y, convcli.conv2d(x, w, **options))
    for a, want in zip(grads, convcli.conv2d_backward(dy, x, w, **options), strict=True):
        close(a, want)


def test_output_chunks_follow_ownership():
    chunks = ((1,), (1,), (5, 5, 5), (7, 7))
    assert cd.output_chunks(chunks, (1, 1, 3, 3), padding=1) == ((1,), (1,), (5, 5, 5), (7, 7))
    rows = cd.output_chunks(chunks, (1, 1, 3, 3), stride=2, padding=1)[2]
    assert sum(rows) == 8 and rows == (3, 2, 3)        # centres 0,2,4 | 6,8 | 10,12,14
    for a, b in itertools.pairwise(rows):
        assert a >= 1 and b >= 1
