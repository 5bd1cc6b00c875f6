"""Backward (and forward) functions written the way a user of `convcli gradcheck --backward`
writes them: each follows (or breaks) the calling convention in one way. The tests load them
through the CLI as tests/gradcheck/user_backwards.py:NAME and through the library."""

import numpy as np

from convcli import conv2d, conv2d_backward


def correct(grad_output, x, w, *, stride, padding, dilation, groups):
    return conv2d_backward(grad_output, x, w, stride=stride, padding=padding,
                           dilation=dilation, groups=groups)


def strict(grad_output, x, w, *, stride, padding, dilation, groups):
    """Passes only if the convention holds: pairs, the explicit 4-tuple, float64 C-contiguous
    copies (it scribbles on them afterwards: the check must not care)."""
    assert isinstance(stride, tuple) and len(stride) == 2 and all(type(s) is int for s in stride)
    assert isinstance(dilation, tuple) and len(dilation) == 2
    assert isinstance(padding, tuple) and len(padding) == 4, padding
    assert all(type(p) is int for p in padding) and type(groups) is int
    for array in (grad_output, x, w):
        assert array.dtype == np.float64 and array.flags.c_contiguous and array.flags.writeable
    result = tuple(a.copy() for a in correct(grad_output, x, w, stride=stride, padding=padding,
                                             dilation=dilation, groups=groups))
    for array in (grad_output, x, w):
        array[...] = 7.0
    return result


def raising(grad_output, x, w, **options):
    raise RuntimeError("my kernel crashed")


def no_keywords(grad_output, x, w):
    return conv2d_backward(grad_output, x, w)


def missing_db(grad_output, x, w, **options):
    dx, dw, _ = conv2d_backward(grad_output, x, w, **options)
    return dx, dw


def dx_cropped(grad_output, x, w, **options):
    dx, dw, db = conv2d_backward(grad_output, x, w, **options)
    return dx[..., :-1], dw, db


def nan_dw(grad_output, x, w, **options):
    dx, dw, db = conv2d_backward(grad_output, x, w, **options)
    return dx, np.full_like(dw, np.nan), db


def integer_db(grad_output, x, w, **options):
    dx, dw, db = conv2d_backward(grad_output, x, w, **options)
    return dx, dw, np.round(db).astype(np.int64)


def one_array(grad_output, x, w, **options):
    return conv2d_backward(grad_output, x, w, **options)[0]


def no_groups(grad_output, x, w, *, groups, **options):
    if groups > 1:
        raise NotImplementedError("groups > 1")
    return conv2d_backward(grad_output, x, w, groups=groups, **options)


def dx_not_flipped(grad_output, x, w, **options):
    """The classic mistake: dL/dx correlates dL/dy with w itself, not the flipped kernel."""
    dx = correct(grad_output, x, w[..., ::-1, ::-1].copy(), **options)[0]
    _, dw, db = conv2d_backward(grad_output, x, w, **options)
    return dx, dw, db


def dw_off_by_one_percent(grad_output, x, w, **options):
    dx, dw, db = conv2d_backward(grad_output, x, w, **options)
    return dx, dw * 1.01, db


def forward(x, w, b, *, stride, padding, dilation, groups):
    return conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def forward_flipped(x, w, b, **options):
    """A true convolution where a cross-correlation is due: wrong unless w is symmetric."""
    return conv2d(x, w[..., ::-1, ::-1], b, **options)


def torch_backward(grad_output, x, w, *, stride, padding, dilation, groups):
    """A user's torch.autograd backward: the 4-tuple padding goes to F.pad, which takes
    (left, right, top, bottom)."""
    import torch
    import torch.nn.functional as F

    top, bottom, left, right = padding
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.zeros(w.shape[0], dtype=wt.dtype, requires_grad=True)
    y = F.conv2d(F.pad(xt, (left, right, top, bottom)), wt, bt, stride=stride,
                 dilation=dilation, groups=groups)
    y.backward(torch.from_numpy(grad_output))
    return xt.grad, wt.grad, bt.grad


def chatty_exit(grad_output, x, w, **options):
    """Prints (a debug line) and then calls sys.exit, as scripts do."""
    import sys

    print("computing dx...")
    sys.exit(3)


def _planted(bug):
    """The teeth tests' planted bugs (tests/gradcheck/test_gradcheck.py), as named functions a
    user could hand to --backward."""
    def backward(grad_output, x, w, **options):
        from tests.gradcheck.test_gradcheck import BUGS

        return BUGS[bug][0](grad_output, x, w, **options)
    return backward


dx_kernel_not_flipped = _planted("dx kernel not flipped")
dw_kernel_axes_flipped = _planted("dw kernel axes flipped")
dw_off_by_1_percent = _planted("dw off by 1%")
db_zero = _planted("db zero")
dx_shifted_one_pixel = _planted("dx shifted one pixel")
dilation_axes_swapped = _planted("dilation axes swapped")
groups_use_group_0 = _planted("groups use group 0's weights")
stride_ignored_in_dx = _planted("stride ignored in dx")
