"""conv2d and conv2d_backward against hand-worked values, a loop-by-definition reference,
finite differences, adjoint identities and (when installed) PyTorch."""

import numpy as np
import pytest

import convcli
from convcli import conv2d, conv2d_backward, grad_input_col2im, grad_input_flipped
from convcli.errors import InputError
from tests.configs import CONFIGS, make
from tests.reference import conv2d_backward_loop, conv2d_loop, numerical_gradient

IDS = [c[0] for c in CONFIGS]


# The article's example: one channel, the 2×2 kernel [[a, b], [c, d]], stride 1, padding at the
# top and left so that y keeps x's size.
A, B, C, D = 2.0, -1.0, 3.0, 5.0
KERNEL = np.array([[A, B], [C, D]])
X = np.array([[1.0, 2.0, 0.0, 1.0], [3.0, 1.0, 2.0, 2.0], [0.0, 1.0, 4.0, 1.0], [2.0, 0.0, 1.0, 3.0]])
ARTICLE = {"padding": (1, 0, 1, 0)}


def test_article_forward_by_hand():
    y = conv2d(X[None, None], KERNEL[None, None], **ARTICLE)[0, 0]
    assert y.shape == X.shape
    # y[0, 0]: window [[0, 0], [0, x00]] -> d·x00; y[1, 1]: a·x00 + b·x01 + c·x10 + d·x11
    assert y[0, 0] == D * 1.0
    assert y[0, 1] == C * 1.0 + D * 2.0
    assert y[1, 1] == A * 1.0 + B * 2.0 + C * 3.0 + D * 1.0
    assert y[3, 3] == A * 4.0 + B * 1.0 + C * 1.0 + D * 3.0


def test_article_upper_left_pixel_gets_d_c_b_a():
    """p = x[0, 0] touches y[0,0], y[0,1], y[1,0], y[1,1] as p·d, p·c, p·b, p·a."""
    grad_output = np.zeros((1, 1, 4, 4))
    for (i, j), weight in zip([(0, 0), (0, 1), (1, 0), (1, 1)], [D, C, B, A]):
        grad_output[0, 0, i, j] = 1.0
        dx, _, _ = conv2d_backward(grad_output, X[None, None], KERNEL[None, None], **ARTICLE)
        assert dx[0, 0, 0, 0] == weight, (i, j)
        grad_output[0, 0, i, j] = 0.0


def test_article_dx_is_full_correlation_with_flipped_kernel(rng):
    grad_output = rng.integers(-3, 4, size=(4, 4)).astype(float)
    dx, _, _ = conv2d_backward(grad_output[None, None], X[None, None], KERNEL[None, None], **ARTICLE)
    flipped = KERNEL[::-1, ::-1]                       # [[d, c], [b, a]]
    assert flipped.tolist() == [[D, C], [B, A]]
    padded = np.pad(grad_output, 1)                    # full: K - 1 = 1 on every side
    full = np.array([[np.sum(padded[i : i + 2, j : j + 2] * flipped) for j in range(5)]
                     for i in range(5)])
    # full has padded-input coordinates; x sits at rows/cols 1..4 (pad at top and left)
    np.testing.assert_array_equal(dx[0, 0], full[1:, 1:])


def test_article_dw_is_xcol_transpose_times_dy(rng):
    grad_output = rng.integers(-3, 4, size=(1, 1, 4, 4)).astype(float)
    _, dw, db = conv2d_backward(grad_output, X[None, None], KERNEL[None, None], **ARTICLE)
    cols = convcli.im2col(X[None, None], 2, **ARTICLE)  # (16, 4)
    np.testing.assert_array_equal(dw.reshape(-1), cols.T @ grad_output.reshape(-1))
    assert db[0] == grad_output.sum()


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_matches_loop_reference(config, dtype, rng):
    x, w, b, options = make(config, rng, dtype)
    y = conv2d(x, w, b, **options)
    assert y.dtype == dtype
    expected = conv2d_loop(x, w, b, **options)
    assert y.shape == expected.shape
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backward_matches_loop_reference(config, dtype, rng):
    x, w, _, options = make(config, rng, dtype)
    y_shape = conv2d(x, w, **options).shape
    grad_output = rng.standard_normal(y_shape).astype(dtype)   # random, non-uniform dL/dy
    dx, dw, db = conv2d_backward(grad_output, x, w, **options)
    assert (dx.dtype, dw.dtype, db.dtype) == (dtype,) * 3
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, (w.shape[0],))
    expected = conv2d_backward_loop(grad_output.astype(np.float64), x, w, **options)
    tol = 1e-11 if dtype == np.float64 else 1e-4
    for got, want in zip((dx, dw, db), expected):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_both_grad_input_routes_agree(config, rng):
    x, w, _, options = make(config, rng)
    grad_output = rng.standard_normal(conv2d(x, w, **options).shape)
    by_col2im = grad_input_col2im(grad_output, x.shape, w, **options)
    by_flip = grad_input_flipped(grad_output, x.shape, w, **options)
    np.testing.assert_allclose(by_col2im, by_flip, rtol=1e-12, atol=1e-12)
    for route, expected in (("col2im", by_col2im), ("flipped", by_flip)):
        dx, _, _ = conv2d_backward(grad_output, x, w, grad_input_route=route, **options)
        np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_adjoint_identity(config, rng):
    """<conv2d(x, w), g> = <x, dL/dx for g>: the backward pass is the forward's transpose."""
    x, w, _, options = make(config, rng)
    y = conv2d(x, w, **options)
    grad_output = rng.standard_normal(y.shape)
    dx, _, _ = conv2d_backward(grad_output, x, w, **options)
    assert np.vdot(y, grad_output) == pytest.approx(np.vdot(x, dx), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_finite_differences(config, rng):
    """Central differences of L = Σ conv2d(x, w, b) ⊙ g with a random g, in float64."""
    x, w, b, options = make(config, rng)
    grad_output = rng.standard_normal(conv2d(x, w, b, **options).shape)

    def loss():
        return np.vdot(conv2d(x, w, b, **options), grad_output)

    dx, dw, db = conv2d_backward(grad_output, x, w, **options)
    for analytic, array in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(analytic, numerical_gradient(loss, array), rtol=1e-6, atol=1e-7)


def test_flip_kernel_swaps_channels_and_flips_axes():
    w = np.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2)       # O=2, C=3
    flipped = convcli.flip_kernel(w)
    assert flipped.shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(flipped[1, 0], w[0, 1, ::-1, ::-1])
    grouped = np.arange(4 * 1 * 2 * 2.0).reshape(4, 1, 2, 2)  # groups=2: O=4, C=2, Og=2
    flipped = convcli.flip_kernel(grouped, groups=2)
    assert flipped.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(flipped[1, 1], grouped[3, 0, ::-1, ::-1])


def test_dilate_inserts_zeros():
    g = np.arange(1, 5.0).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(
        convcli.dilate(g, (2, 3))[0, 0], [[1, 0, 0, 2], [0, 0, 0, 0], [3, 0, 0, 4]]
    )


def test_dtypes(rng):
    x = rng.integers(0, 5, size=(1, 1, 4, 4))
    w = np.ones((1, 1, 2, 2), dtype=bool)
    assert conv2d(x, w).dtype == np.float64
    assert conv2d(x.astype(np.float32), w.astype(np.float32)).dtype == np.float32
    assert conv2d(x.astype(np.float32), w.astype(np.float64)).dtype == np.float64
    np.testing.assert_array_equal(conv2d(x, w), conv2d_loop(x, w.astype(float)))
    with pytest.raises(InputError, match="real numbers"):
        conv2d(x.astype(complex), w)


def test_nan_and_inf_propagate():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 3, 3] = np.inf
    y = conv2d(x, np.ones((1, 1, 2, 2)))
    assert np.isnan(y[0, 0, :2, :2]).all() and np.isinf(y[0, 0, 2, 2])
    assert y[0, 0, 0, 2] == 0.0
    dx, dw, _ = conv2d_backward(np.ones_like(y), x, np.ones((1, 1, 2, 2)))
    assert np.isnan(dw).all() and np.isfinite(dx).all()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 4, 3, 3))),
         r"w has 4 input channels per group but x has 3 channels \(groups=1\)"),
        (lambda: conv2d(np.zeros((1, 1, 6, 6)), np.zeros((1, 1, 5, 5)), dilation=2),
         "kernel 9×9 \\(dilated\\) is larger than the padded input 6×6"),
        (lambda: conv2d(np.zeros((1, 6, 5, 5)), np.zeros((64, 2, 3, 3)), groups=3),
         "groups=3 does not divide 64 output channels"),
        (lambda: conv2d(np.zeros((1, 4, 5, 5)), np.zeros((3, 4, 3, 3)), groups=3),
         "groups=3 does not divide 4 input channels"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), stride=0),
         "stride must be >= 1"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), dilation=(1, -1)),
         "dilation must be >= 1"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding="half"),
         "padding must be .* got 'half'"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=(1, 2, 3)),
         "padding must be .* 4-tuple"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=-1),
         "padding must be >= 0"),
        (lambda: conv2d(np.zeros((5, 5)), np.zeros((1, 1, 3, 3))),
         r"x must be 4-D \(N, C, H, W\), got shape \(5, 5\)"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((3, 3))), "w must be 4-D"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((2, 1, 3, 3)), np.zeros(3)),
         r"b must have shape \(O,\) = \(2,\), got \(3,\)"),
        (lambda: conv2d_backward(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 5, 5)),
                                 np.zeros((1, 1, 3, 3))),
         r"grad_output must have y's shape .* \(1, 1, 3, 3\), got \(1, 1, 4, 4\)"),
        (lambda: conv2d_backward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 5, 5)),
                                 np.zeros((1, 1, 3, 3)), grad_input_route="magic"),
         "grad_input_route must be"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), groups=0),
         "groups must be a positive int"),
    ],
)
def test_bad_arguments_name_the_problem(call, message):
    with pytest.raises(InputError, match=message):
        call()


def test_stride_type_error_names_argument():
    with pytest.raises(InputError, match=r"stride must be an int or an \(h, w\) pair"):
        conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), stride=1.5)
