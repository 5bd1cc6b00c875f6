"""Hypothesis: random shapes and geometry against the loop reference and the adjoint identity."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli import conv2d, conv2d_backward, grad_input_col2im, grad_input_flipped
from tests.reference import conv2d_backward_loop, conv2d_loop, explicit_padding


@st.composite
def conv_case(draw):
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.one_of(
        st.sampled_from(["valid", "same", "full"]),
        st.integers(0, 3),
        st.tuples(st.integers(0, 3), st.integers(0, 3)),
        st.tuples(*[st.integers(0, 3)] * 4),
    ))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    pad = explicit_padding(padding, (h, w), (kh, kw), stride, dilation)
    # keep only cases where the dilated kernel fits the padded input
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    h = max(h, span_h - pad[0] - pad[1])
    w = max(w, span_w - pad[2] - pad[3])
    if isinstance(padding, str) and padding == "same":
        pad = explicit_padding(padding, (h, w), (kh, kw), stride, dilation)
        h = max(h, span_h - pad[0] - pad[1])
        w = max(w, span_w - pad[2] - pad[3])
    n = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cg * groups, h, w))
    weight = rng.standard_normal((og * groups, cg, kh, kw))
    bias = rng.standard_normal(og * groups)
    options = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    return x, weight, bias, options, rng


@settings(max_examples=150, deadline=None)
@given(conv_case())
def test_random_geometry_matches_reference(case):
    x, w, b, options, rng = case
    y = conv2d(x, w, b, **options)
    np.testing.assert_allclose(y, conv2d_loop(x, w, b, **options), rtol=1e-11, atol=1e-11)
    grad_output = rng.standard_normal(y.shape)
    got = conv2d_backward(grad_output, x, w, **options)
    want = conv2d_backward_loop(grad_output, x, w, **options)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(grad_input_col2im(grad_output, x.shape, w, **options),
                               grad_input_flipped(grad_output, x.shape, w, **options),
                               rtol=1e-11, atol=1e-11)
    assert np.isclose(np.vdot(conv2d(x, w, **options), grad_output), np.vdot(x, got[0]),
                      rtol=1e-10, atol=1e-10)
