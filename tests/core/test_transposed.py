"""conv_transpose2d: a hand-worked case, torch's F.conv_transpose2d (forward and the three
gradients) over strides, padding, output_padding, dilation and groups, the adjoint identity
with conv2d, and finite differences."""

import itertools

import numpy as np
import pytest

from convcli import conv2d, conv_transpose2d, conv_transpose2d_backward
from convcli.errors import InputError
from tests.reference import numerical_gradient


def test_stride_2_places_a_scaled_kernel_per_input_pixel():
    """Each input pixel p stamps p·w at stride 2: the backward picture of the article."""
    x = np.array([[[[1.0, 2.0]]]])
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = conv_transpose2d(x, w, np.array([0.5]), stride=2)
    np.testing.assert_array_equal(y[0, 0], [[1.5, 2.5, 2.5, 4.5], [3.5, 4.5, 6.5, 8.5]])


CASES = [c for c in itertools.product((1, 2, 3), (0, 1, (2, 1)), (0, 1), (1, 2), (1, 2),
                                      ((2, 3), (3, 3))) if c[2] < max(c[0], c[3])]


@pytest.mark.parametrize("stride, padding, output_padding, dilation, groups, kernel", CASES)
def test_equals_torch_forward_and_gradients(stride, padding, output_padding, dilation, groups,
                                            kernel, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 6 // groups) + kernel)
    b = rng.standard_normal(6)
    options = {"stride": stride, "padding": padding, "output_padding": output_padding,
               "dilation": dilation, "groups": groups}
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, **options)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    y = conv_transpose2d(x, w, b, **options)
    dx, dw, db = conv_transpose2d_backward(g, x, w, **options)
    for ours, theirs in ((y, yt), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("stride, padding, output_padding", [(1, 0, 0), (2, 1, 1), (3, 2, 2)])
def test_adjoint_of_conv2d_and_finite_differences(stride, padding, output_padding, rng):
    x, w = rng.standard_normal((1, 2, 4, 3)), rng.standard_normal((2, 3, 3, 2))
    options = {"stride": stride, "padding": padding, "output_padding": output_padding}
    y = conv_transpose2d(x, w, **options)
    g = rng.standard_normal(y.shape)
    dx, dw, db = conv_transpose2d_backward(g, x, w, **options)

    def loss():
        return float(np.vdot(conv_transpose2d(x, w, **options), g))

    np.testing.assert_allclose(dx, numerical_gradient(loss, x), atol=1e-7)
    np.testing.assert_allclose(dw, numerical_gradient(loss, w), atol=1e-7)
    np.testing.assert_allclose(db, g.sum(axis=(0, 2, 3)))
    if output_padding == 0:       # y = conv2d's dL/dx: <conv_transpose2d(x), g> = <x, conv2d(g)>
        np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, conv2d(g, w, stride=stride,
                                                                     padding=padding)))


@pytest.mark.parametrize("kwargs, message", [
    ({"output_padding": 2, "stride": 2}, "output_padding must be smaller than the stride"),
    ({"padding": 9}, "the output would have"),
    ({"groups": 3}, "groups must be a positive int dividing C_in = 4"),
    ({"padding": "same"}, "padding of conv_transpose2d must be an int"),
])
def test_refusals(kwargs, message):
    with pytest.raises(InputError, match=message):
        conv_transpose2d(np.ones((1, 4, 3, 3)), np.ones((4, 2, 3, 3)), **kwargs)


def test_forward_transpose_from_the_command_line(tmp_path, rng):
    from typer.testing import CliRunner

    from convcli.cli import app

    x = rng.random((3, 6, 7))                                   # (C, H, W): a colour image
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    result = CliRunner().invoke(app, ["forward", str(tmp_path / "x.npy"), "1 2; 3 4",
                                      "--transpose", "--stride", "2", "--padding", "1",
                                      "--output-padding", "1", "--bias", "0.5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "conv_transpose2d, output padding 1" in result.stdout
    w = np.tile(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), (3, 1, 1, 1))   # each channel alone
    want = conv_transpose2d(x[None], w, np.full(3, 0.5), stride=2, padding=1, output_padding=1,
                            groups=3)
    np.testing.assert_allclose(np.load(out), want, atol=1e-12)
    assert np.load(out).shape == (1, 3, 11, 13)     # (H − 1)·2 − 2·1 + (2 − 1) + 1 + 1

    np.save(tmp_path / "w.npy", np.ones((2, 1, 3, 3)))
    bad = CliRunner().invoke(app, ["forward", str(tmp_path / "x.npy"), str(tmp_path / "w.npy"),
                                   "--transpose"])
    assert bad.exit_code == 2
    assert "(C_in, C_out/groups, KH, KW) with C_in = 3" in bad.output
