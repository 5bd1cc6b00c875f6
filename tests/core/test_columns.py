"""im2col's layout and col2im as its exact adjoint."""

import numpy as np
import pytest

from convcli import col2im, conv2d, im2col
from convcli.errors import InputError
from tests.configs import CONFIGS


def test_im2col_rows_are_windows_in_c_kh_kw_order():
    x = np.arange(2 * 3 * 4.0).reshape(1, 2, 3, 4)
    cols = im2col(x, (2, 3))
    assert cols.shape == (1 * 2 * 2, 2 * 2 * 3)
    # row 1 is output pixel (0, 1): channel 0's 2×3 window, then channel 1's
    np.testing.assert_array_equal(cols[1], np.concatenate([x[0, 0, :2, 1:4].ravel(),
                                                           x[0, 1, :2, 1:4].ravel()]))


def test_im2col_padding_stride_dilation_by_hand():
    x = np.arange(1, 10.0).reshape(1, 1, 3, 3)
    cols = im2col(x, 2, stride=2, padding=(1, 0, 1, 0), dilation=(1, 2))
    # padded (4×4, zeros on top/left); windows at rows 0,2 and cols 0; taps (0,0),(0,2),(1,0),(1,2)
    np.testing.assert_array_equal(cols, [[0, 0, 0, 2], [0, 5, 0, 8]])


UNGROUPED = [c for c in CONFIGS if c[3].get("groups", 1) == 1]


@pytest.mark.parametrize("config", UNGROUPED, ids=[c[0] for c in UNGROUPED])
def test_forward_is_one_matrix_product(config):
    """For groups = 1, y is cols @ w.reshape(O, -1).T, reshaped."""
    _, x_shape, w_shape, options = config
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    cols = im2col(x, w_shape[2:], **options)
    y = conv2d(x, w, **options)
    n, o, oh, ow = y.shape
    np.testing.assert_allclose((cols @ w.reshape(o, -1).T).reshape(n, oh, ow, o).transpose(0, 3, 1, 2),
                               y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_col2im_is_adjoint_of_im2col(config):
    _, x_shape, w_shape, options = config
    options = {k: v for k, v in options.items() if k != "groups"}
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    cols = im2col(x, w_shape[2:], **options)
    other = rng.standard_normal(cols.shape)
    back = col2im(other, x_shape, w_shape[2:], **options)
    assert back.shape == x_shape
    assert np.vdot(cols, other) == pytest.approx(np.vdot(x, back), rel=1e-12)


def test_col2im_sums_overlaps():
    ones = np.ones((4, 4))                        # 3×3 input, 2×2 kernel: 4 windows
    counts = col2im(ones, (1, 1, 3, 3), 2)[0, 0]
    np.testing.assert_array_equal(counts, [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_col2im_checks_shape():
    with pytest.raises(InputError, match=r"cols must have shape .* \(4, 4\), got \(4, 5\)"):
        col2im(np.ones((4, 5)), (1, 1, 3, 3), 2)
