"""tiling.py: conv2d computed tile by tile equals conv2d, on random geometries and chunkings
(hypothesis), including even kernels, strides that do not divide the chunks, dilation, groups
and every padding form; each output pixel is owned by exactly one tile."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli import conv2d, resolve
from convcli.errors import InputError
from convcli.tiling import axis_spans, conv2d_tiled, plan


def random_chunks(draw, length):
    cuts = sorted(draw(st.sets(st.integers(1, length - 1), max_size=4))) if length > 1 else []
    edges = [0, *cuts, length]
    return [b - a for a, b in itertools.pairwise(edges)]


@st.composite
def problems(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height = draw(st.integers(dh * (kh - 1) + 1, 20))
    width = draw(st.integers(dw * (kw - 1) + 1, 20))
    padding = draw(st.sampled_from([0, 1, (2, 1), (1, 0, 2, 3), "same", "valid", "full"]))
    groups = draw(st.sampled_from([1, 2]))
    return {"shape": (2, 2 * groups, height, width), "w": (2 * groups, 2, kh, kw),
            "stride": (sh, sw), "dilation": (dh, dw), "padding": padding, "groups": groups,
            "rows": random_chunks(draw, height), "cols": random_chunks(draw, width)}


@settings(max_examples=150, deadline=None)
@given(problems(), st.integers(0, 2**31 - 1))
def test_tiles_give_conv2d(p, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal(p["shape"]), rng.standard_normal(p["w"]), rng.standard_normal(
        p["w"][0])
    options = {k: p[k] for k in ("stride", "dilation", "padding", "groups")}
    want = conv2d(x, w, b, **options)
    got = conv2d_tiled(x, w, b, chunks=(p["rows"], p["cols"]), **options)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    geometry = resolve(p["shape"][2:], p["w"][2:], stride=p["stride"], padding=p["padding"],
                       dilation=p["dilation"])
    owned = np.zeros(geometry.output_size, int)
    for rows, cols in plan(geometry, (p["rows"], p["cols"])):
        owned[rows.out_start: rows.out_stop, cols.out_start: cols.out_stop] += 1
    assert (owned == 1).all()


def test_an_even_kernel_needs_its_whole_halo():
    """The prototype's pitfall: a 4-tap kernel with a halo of (K − 1)//2 went wrong."""
    spans = axis_spans(12, [5, 7], before=1, stride=1, span=4, outputs=11)
    assert [(s.out_start, s.out_stop, s.in_start, s.in_stop) for s in spans] == [
        (0, 5, 0, 7), (5, 11, 4, 12)]      # output 4: rows 3..6, centred at 4 ∈ [0, 5)
    x, w = np.arange(12.0).reshape(1, 1, 1, 12), np.ones((1, 1, 1, 4))
    np.testing.assert_array_equal(conv2d_tiled(x, w, chunks=([1], [5, 7]), padding=(0, 0, 1, 2)),
                                  conv2d(x, w, padding=(0, 0, 1, 2)))


def test_chunks_must_cover_the_axis():
    with pytest.raises(InputError, match="must be positive and add up to the axis length 10"):
        axis_spans(10, [4, 4], before=0, stride=1, span=3, outputs=8)
