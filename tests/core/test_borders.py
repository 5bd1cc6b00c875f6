"""Border modes and true convolution: the padded cells equal NumPy's np.pad, the backward
pass is the exact adjoint of the padding (checked against a dense matrix built from np.pad),
forward and all three gradients equal torch's F.pad + conv2d, the results equal
scipy.ndimage.correlate / convolve, and finite differences agree."""

import numpy as np
import pytest
from PIL import Image

from convcli import borders, conv2d, conv2d_backward, conv2d_input, conv2d_weight
from convcli.errors import InputError
from tests.reference import numerical_gradient

NUMPY = {"reflect": "reflect", "symmetric": "symmetric", "replicate": "edge",
         "circular": "wrap"}
SCIPY = {"reflect": "mirror", "symmetric": "reflect", "replicate": "nearest",
         "circular": "wrap"}
TORCH = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}
MODES = list(NUMPY)


def allowed(mode, length, before, after):
    widest = max(before, after)
    return not ((mode == "reflect" and (widest >= length and widest > 0))
                or (mode == "circular" and widest > length))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("length, before, after", [(5, 2, 3), (5, 4, 4), (3, 7, 9), (4, 0, 0),
                                                   (6, 5, 6), (2, 1, 2)])
def test_padded_cells_equal_numpy_pad(mode, length, before, after, rng):
    if not allowed(mode, length, before, after):
        with pytest.raises(InputError, match=f"border mode {mode} needs padding"):
            borders.check_mode(mode, (length, 3), (before, after, 0, 0))
        return
    x = rng.standard_normal((2, length, 3))
    np.testing.assert_array_equal(borders.pad(x[None], (before, after, 1, 2), mode)[0],
                                  np.pad(x, ((0, 0), (before, after), (1, 2)),
                                         mode=NUMPY[mode]))


@pytest.mark.parametrize("mode", MODES)
def test_fold_is_the_adjoint_of_np_pad(mode, rng):
    """P: the dense matrix of np.pad on (H, W), one unit image at a time; fold(g) = Pᵀ g."""
    height, width, pad = 4, 3, (3, 2, 1, 3)
    if mode == "reflect":
        pad = (3, 2, 1, 2)
    columns = []
    for k in range(height * width):
        unit = np.zeros(height * width)
        unit[k] = 1.0
        columns.append(np.pad(unit.reshape(height, width), ((pad[0], pad[1]), (pad[2], pad[3])),
                              mode=NUMPY[mode]).ravel())
    dense = np.array(columns).T                                 # (Hp·Wp, H·W)
    g = rng.standard_normal((2, dense.shape[0]))
    hp, wp = height + pad[0] + pad[1], width + pad[2] + pad[3]
    folded = borders.fold(g.reshape(2, hp, wp).copy(), pad, mode, (height, width))
    np.testing.assert_allclose(folded.reshape(2, -1), g @ dense, rtol=0, atol=1e-12)


CASES = [(k, s, d, g) for k in ((2, 3), (3, 3), (4, 1)) for s in (1, 2, 3) for d in (1, 2)
         for g in (1, 2)]


@pytest.mark.parametrize("mode", list(TORCH))
@pytest.mark.parametrize("kernel, stride, dilation, groups", CASES)
def test_forward_and_gradients_equal_torch(mode, kernel, stride, dilation, groups, rng):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((4, 4 // groups) + kernel)
    b = rng.standard_normal(4)
    pad = (2, 1, 1, 3)
    options = {"stride": stride, "dilation": dilation, "groups": groups}
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = functional.conv2d(functional.pad(xt, (1, 3, 2, 1), mode=TORCH[mode]), wt, bt,
                           **options)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    y = conv2d(x, w, b, padding=pad, padding_mode=mode, **options)
    dx, dw, db = conv2d_backward(g, x, w, padding=pad, padding_mode=mode, **options)
    for ours, theirs in ((y, yt), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv2d_input(x.shape, w, g, padding=pad, padding_mode=mode,
                                            **options), dx, atol=1e-12)
    np.testing.assert_allclose(conv2d_weight(x, w.shape, g, padding=pad, padding_mode=mode,
                                             **options), dw, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flip", [False, True])
def test_equal_scipy_ndimage_on_a_real_picture(mode, flip):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = np.asarray(Image.open("samples/camera.png").convert("L"), float)[100:164, 200:260] / 255
    k = np.array([[1.0, 2.0, 0.0], [-1.0, 0.0, 3.0], [0.0, 1.0, -2.0]])
    y = conv2d(x[None, None], k[None, None], padding="same", padding_mode=mode, flip=flip)
    scipy_op = ndimage.convolve if flip else ndimage.correlate
    np.testing.assert_allclose(y[0, 0], scipy_op(x, k, mode=SCIPY[mode]), atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flip", [False, True])
def test_finite_differences(mode, flip, rng):
    x, w = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2))
    g = rng.standard_normal((1, 3, 5, 4))
    options = {"padding": "same", "padding_mode": mode, "flip": flip}

    def loss():
        return float(np.vdot(conv2d(x, w, **options), g))

    dx, dw, _ = conv2d_backward(g, x, w, **options)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), atol=1e-7)
    np.testing.assert_allclose(dw, numerical_gradient(loss, w), atol=1e-7)


def test_flip_is_a_true_convolution_with_gradients_for_the_kernel_as_given(rng):
    x, w = rng.standard_normal((1, 1, 6, 6)), rng.standard_normal((1, 1, 3, 2))
    g = rng.standard_normal((1, 1, 4, 5))
    np.testing.assert_allclose(conv2d(x, w, flip=True), conv2d(x, w[..., ::-1, ::-1]),
                               rtol=0, atol=1e-14)
    _, dw, _ = conv2d_backward(g, x, w, flip=True)
    _, dw_of_rotated, _ = conv2d_backward(g, x, w[..., ::-1, ::-1].copy())
    np.testing.assert_allclose(dw, dw_of_rotated[..., ::-1, ::-1], rtol=0, atol=1e-14)


@pytest.mark.parametrize("mode, pad, message", [
    ("reflect", 4, "border mode reflect needs padding smaller than the input's height (4)"),
    ("circular", 5, "border mode circular needs padding no larger than the input's height"),
    ("mirror", 1, "padding_mode must be one of zeros, reflect, symmetric"),
])
def test_refusals_name_the_mode_and_the_fix(mode, pad, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        conv2d(np.ones((1, 1, 4, 9)), np.ones((1, 1, 3, 3)), padding=pad, padding_mode=mode)


@pytest.mark.parametrize("mode", ["replicate", "symmetric"])
def test_pads_wider_than_the_image_where_the_mode_allows(mode, rng):
    x, w = rng.standard_normal((1, 1, 3, 2)), rng.standard_normal((1, 1, 2, 2))
    y = conv2d(x, w, padding=5, padding_mode=mode)
    padded = np.pad(x[0, 0], 5, mode=NUMPY[mode])
    want = np.array([[np.sum(padded[i:i + 2, j:j + 2] * w[0, 0]) for j in range(11)]
                     for i in range(12)])
    np.testing.assert_allclose(y[0, 0], want, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("memory_budget", [2**20, 3 * 80 * 8 * 4])   # one chunk; many chunks
def test_the_one_channel_route_fills_each_chunk_by_the_mode(mode, memory_budget, rng):
    """Wide one-channel planes take depthwise.py's chunked route, which pads each chunk's rows
    itself: equal to np.pad then a valid convolution, forward and dL/dw."""
    from convcli import depthwise, resolve

    x = rng.standard_normal((2, 3, 21, 80))
    w = rng.standard_normal((3, 1, 3, 5))
    pad = (2, 3, 1, 2)
    assert depthwise.suits(w.shape, 3, resolve(x.shape[2:], w.shape[2:], padding=pad))
    padded = np.pad(x, ((0, 0), (0, 0), pad[:2], pad[2:]), mode=NUMPY[mode])
    options = {"groups": 3, "memory_budget": memory_budget}
    np.testing.assert_allclose(conv2d(x, w, padding=pad, padding_mode=mode, **options),
                               conv2d(padded, w, **options), atol=1e-12)
    g = rng.standard_normal((2, 3, 24, 79))
    _, dw, _ = conv2d_backward(g, x, w, padding=pad, padding_mode=mode, **options)
    _, dw_padded, _ = conv2d_backward(g, padded, w, **options)
    np.testing.assert_allclose(dw, dw_padded, atol=1e-10)
