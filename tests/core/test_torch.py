"""The same configurations against torch.nn.functional.conv2d and autograd, when torch is
installed (the runtime never imports it)."""

import numpy as np
import pytest

from convcli import conv2d, conv2d_backward
from tests.configs import CONFIGS
from tests.reference import explicit_padding

torch = pytest.importorskip("torch")


def torch_conv(x, w, b, grad_output, stride=1, padding=0, dilation=1, groups=1):
    # the padding split comes from the tests' own reading of the spec, not from convcli
    stride_hw, dilation_hw = ((v, v) if isinstance(v, int) else tuple(v) for v in (stride, dilation))
    top, bottom, left, right = explicit_padding(padding, x.shape[2:], w.shape[2:], stride_hw,
                                                dilation_hw)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    padded = torch.nn.functional.pad(xt, (left, right, top, bottom))   # torch: last axis first
    y = torch.nn.functional.conv2d(padded, wt, bt, stride=stride, dilation=dilation, groups=groups)
    y.backward(torch.tensor(grad_output))
    return [t.detach().numpy() for t in (y, xt.grad, wt.grad, bt.grad)]


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_against_torch(config, dtype):
    _, x_shape, w_shape, options = config
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    y = conv2d(x, w, b, **options)
    grad_output = rng.standard_normal(y.shape).astype(dtype)
    expected = torch_conv(x, w, b, grad_output, **options)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for got, want in zip((y, *conv2d_backward(grad_output, x, w, **options)), expected):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("padding", ["same", "valid", 2, (1, 3)])
def test_torch_native_padding_strings(padding):
    """torch's own padding='same'/'valid' (stride 1) agree with ours, even kernel included."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 7, 8)), rng.standard_normal((4, 3, 4, 3))
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=padding,
                                      dilation=(1, 2)).numpy()
    np.testing.assert_allclose(conv2d(x, w, padding=padding, dilation=(1, 2)), want,
                               rtol=1e-12, atol=1e-12)


# issue 18's benchmark layers (c, d, e of benchmarks/bench.py), float32: the faster designs
# (flat X_col on two workers, shifted dL/dW, col2im at C < O, strided X_col at stride 2) stay
# within 1e-5 of torch relative to each array's largest value
BENCHMARK_LAYERS = [((8, 64, 56, 56), 64, 1), ((32, 32, 32, 32), 64, 1), ((8, 128, 28, 28), 256, 2)]


@pytest.mark.parametrize("x_shape, out_channels, stride", BENCHMARK_LAYERS, ids=["c", "d", "e"])
def test_benchmark_layers_in_float32_within_1e_5_of_torch(x_shape, out_channels, stride):
    rng = np.random.default_rng(18)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((out_channels, x_shape[1], 3, 3)).astype(np.float32)
    b = rng.standard_normal(out_channels).astype(np.float32)
    y = conv2d(x, w, b, stride=stride, padding=1)
    grad_output = rng.standard_normal(y.shape).astype(np.float32)
    expected = torch_conv(x, w, b, grad_output, stride=stride, padding=1)
    for got, want in zip((y, *conv2d_backward(grad_output, x, w, stride=stride, padding=1)),
                         expected, strict=True):
        assert got.dtype == np.float32
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
