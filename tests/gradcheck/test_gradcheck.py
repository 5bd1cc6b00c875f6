"""convcli.gradcheck: it passes a correct backward with a margin, fails each planted bug on the
right tensor (its teeth), samples corners and borders, and its local differences equal the
naive re-run of the whole forward pass."""

import json
import math

import numpy as np
import pytest

from convcli import conv2d, conv2d_backward, grad_input_flipped, resolve
from convcli.errors import InputError
from convcli.gradcheck import (
    ADJOINT,
    ROUTES,
    SUITE,
    TENSORS,
    check_case,
    run_suite,
    sample_coordinates,
)
from tests.reference import numerical_gradient


def tap_backward(grad_output, x, w, *, stride=1, padding=0, dilation=1, groups=1, bug=None):
    """A second, independent backward, one kernel tap (kh, kw) at a time; ``bug`` plants one
    mistake. Tap (a, b) of output pixel (i, j) reads padded pixel (i·sh + a·dh, j·sw + b·dw), so
    dL/dw[..., a, b] = Σ g · that pixel and dL/dx_padded there += Σ_o g · w[o, ..., a, b]."""
    geometry = resolve(x.shape[2:], w.shape[2:], stride=stride, padding=padding,
                       dilation=dilation)
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    if bug == "dilation axes swapped":
        dh, dw = dw, dh
    dx_sh, dx_sw = (1, 1) if bug == "stride ignored in dx" else (sh, sw)
    top, _, left, _ = geometry.pad
    n, c, height, width = x.shape
    o, cg, kh, kw = w.shape
    oh, ow = geometry.output_size
    room = top + left + height + width + (kh + kw) * (dh + dw) + (sh + sw) * (oh + ow)
    x_padded = np.zeros((n, c, room, room))  # zeros wherever a (buggy) tap may land
    x_padded[:, :, top: top + height, left: left + width] = x
    grad_padded = np.zeros_like(x_padded)
    gy = grad_output.reshape(n, groups, o // groups, oh, ow)
    w_groups = w.reshape(groups, o // groups, cg, kh, kw)
    w_dx = w_groups
    if bug == "groups use group 0":
        w_dx = np.broadcast_to(w_groups[:1], w_groups.shape)
    grad_w = np.zeros_like(w_groups)
    for a in range(kh):
        for b in range(kw):
            patch = x_padded[:, :, a * dh: a * dh + sh * (oh - 1) + 1: sh,
                             b * dw: b * dw + sw * (ow - 1) + 1: sw]
            patch = patch.reshape(n, groups, cg, oh, ow)
            grad_w[..., a, b] = np.einsum("ngpij,ngcij->gpc", gy, patch)
            grad_padded[:, :, a * dh: a * dh + dx_sh * (oh - 1) + 1: dx_sh,
                        b * dw: b * dw + dx_sw * (ow - 1) + 1: dx_sw] += np.einsum(
                "ngpij,gpc->ngcij", gy, w_dx[..., a, b]).reshape(n, c, oh, ow)
    grad_x = grad_padded[:, :, top: top + height, left: left + width]
    return grad_x, grad_w.reshape(w.shape), grad_output.sum(axis=(0, 2, 3))


def wrap(change):
    """A backward that returns conv2d_backward's (dx, dw, db) passed through change."""
    def backward(grad_output, x, w, **options):
        return change(*conv2d_backward(grad_output, x, w, **options), options=options)
    return backward


def dx_not_flipped(grad_output, x, w, **options):
    # route 2 flips the kernel it is given: flipping it first undoes the flip
    dx = grad_input_flipped(grad_output, x.shape, w[..., ::-1, ::-1], **options)
    _, dw, db = conv2d_backward(grad_output, x, w, **options)
    return dx, dw, db


def shift_one_pixel(dx, dw, db, options):
    shifted = np.zeros_like(dx)
    shifted[..., 1:, :] = dx[..., :-1, :]
    return shifted, dw, db


def planted(bug):
    return lambda *args, **options: tap_backward(*args, bug=bug, **options)


def strided(case):
    return resolve(case.x_shape[2:], case.w_shape[2:], **_geometry(case)).stride != (1, 1)


def _geometry(case):
    return {k: v for k, v in case.options.items() if k != "groups"}


def dilated_unequally(case):
    dilation = resolve(case.x_shape[2:], case.w_shape[2:], **_geometry(case)).dilation
    return dilation[0] != dilation[1]


def kernel_larger_than_1x1(case):
    return case.w_shape[2:] != (1, 1)


# bug -> (backward, the tensor it breaks, other results it may also fail, the configurations
# where it must fail: everywhere else it is invisible and must pass)
DX_ONLY = {"grad_input", ADJOINT}
BUGS = {
    "dx kernel not flipped": (dx_not_flipped, "grad_input", DX_ONLY, kernel_larger_than_1x1),
    "dw kernel axes flipped": (wrap(lambda dx, dw, db, options: (dx, dw[..., ::-1, ::-1], db)),
                               "grad_weight", {"grad_weight"}, kernel_larger_than_1x1),
    "dw off by 1%": (wrap(lambda dx, dw, db, options: (dx, dw * 1.01, db)),
                     "grad_weight", {"grad_weight"}, lambda case: True),
    "db zero": (wrap(lambda dx, dw, db, options: (dx, dw, np.zeros_like(db))),
                "grad_bias", {"grad_bias"}, lambda case: case.bias),
    "dx shifted one pixel": (wrap(shift_one_pixel), "grad_input", DX_ONLY, lambda case: True),
    "dilation axes swapped": (planted("dilation axes swapped"), "grad_input",
                              DX_ONLY | {"grad_weight"}, dilated_unequally),
    "groups use group 0's weights": (planted("groups use group 0"), "grad_input", DX_ONLY,
                                     lambda case: case.options.get("groups", 1) > 1),
    "stride ignored in dx": (planted("stride ignored in dx"), "grad_input", DX_ONLY, strided),
}


def failing(report):
    return {(r.configuration, r.tensor) for r in report.results if not r.passed}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bug", BUGS)
def test_each_planted_bug_fails_on_the_right_tensor(bug, dtype):
    backward, tensor, allowed, breaks = BUGS[bug]
    report = run_suite(backward, dtype=dtype)
    assert not report.passed
    failed = failing(report)
    assert {t for _, t in failed} <= allowed | {tensor}, failed
    expected = {case.name for case in SUITE if breaks(case)}
    assert expected, "the suite must contain a configuration this bug breaks"
    assert {name for name, t in failed if t == tensor} == expected


def test_tap_backward_without_a_bug_passes():
    """The teeth are the planted bugs alone: the same code without them passes."""
    report = run_suite(planted(None))
    assert report.passed, failing(report)


def test_correct_backward_passes_with_a_margin():
    report = run_suite()
    assert report.passed
    ratios = {t: max(r.max_ratio for r in report.results if r.tensor == t)
              for t in TENSORS + (ROUTES, ADJOINT)}
    # error / tolerance: 1 fails. Measured ~6e-5 (grad_input/grad_weight), far below 1e-2.
    assert max(ratios.values()) < 1e-2, ratios
    assert report.warnings == []


def test_suite_checks_every_coordinate_of_every_tensor():
    report = run_suite()
    for case in SUITE:
        results = {r.tensor: r for r in report.results if r.configuration == case.name}
        expected = set(TENSORS + (ROUTES, ADJOINT)) - (set() if case.bias else {"grad_bias"})
        assert set(results) == expected
        assert results["grad_input"].checked == math.prod(case.x_shape)
        assert results["grad_weight"].checked == math.prod(case.w_shape)
        assert all(r.checked == r.size for r in results.values())


def test_suite_covers_what_the_issue_lists():
    seen = set()
    for case in SUITE:
        (n, c, h, width), (o, _, kh, kw) = case.x_shape, case.w_shape
        geo = resolve((h, width), (kh, kw), **_geometry(case))
        padding, groups = case.options.get("padding", 0), case.options.get("groups", 1)
        seen |= {f"stride {s}" for s in geo.stride}
        seen |= {"odd kernel"} if kh % 2 and kw % 2 and kh > 1 else set()
        seen |= {"even kernel"} if kh % 2 == 0 and kw % 2 == 0 else set()
        seen |= {"non-square kernel"} if kh != kw else set()
        seen |= {"1x1"} if (kh, kw) == (1, 1) else set()
        seen |= {"kernel = padded input"} if geo.dilated_kernel_size == geo.padded_size else set()
        seen |= {"stride not dividing"} if any(
            (p - k) % s for p, k, s in zip(geo.padded_size, geo.dilated_kernel_size, geo.stride)
        ) else set()
        seen |= {"per-axis dilation"} if len(set(geo.dilation)) == 2 else set()
        seen.add(f"padding {padding}" if isinstance(padding, str) else
                 f"padding tuple {len(padding)}" if isinstance(padding, tuple) else "padding int")
        seen |= {"article padding"} if padding == (1, 0, 1, 0) else set()
        seen |= {"same even kernel"} if padding == "same" and kh % 2 == 0 else set()
        seen |= {"same stride 2"} if padding == "same" and 2 in geo.stride else set()
        seen |= {"groups"} if 1 < groups < c else set()
        seen |= {"depthwise"} if groups == c > 1 else set()
        seen |= {"batch > 1"} if n > 1 else set()
        seen |= {"C != O"} if c != o else set()
        seen |= {"non-square image"} if h != width else set()
        seen.add("bias" if case.bias else "no bias")
    wanted = {"stride 1", "stride 2", "stride 3", "odd kernel", "even kernel", "non-square kernel",
              "1x1", "kernel = padded input", "stride not dividing", "per-axis dilation",
              "padding int", "padding tuple 2", "padding tuple 4", "padding valid",
              "padding same", "padding full", "article padding", "same even kernel",
              "same stride 2", "groups", "depthwise", "batch > 1", "C != O", "non-square image",
              "bias", "no bias"}
    assert wanted <= seen, wanted - seen
    assert len({case.name for case in SUITE}) == len(SUITE)


def full_forward_numeric(grad_output, x, w, **options):
    """The naive numerical gradient: re-run the whole conv2d for each ± step (linear, so a
    large step is exact up to rounding)."""
    b = np.zeros(w.shape[0])

    def loss():
        return np.vdot(conv2d(x, w, b, **options), grad_output)

    return tuple(numerical_gradient(loss, array, eps=1e-3) for array in (x, w, b))


def test_local_differences_equal_full_forward_differences():
    """The crops and single filters gradcheck runs give the same numbers as re-running the
    whole forward pass: checked against them, they agree to 1e-9."""
    report = run_suite(full_forward_numeric, eps=1e-3, atol=1e-9, rtol=1e-9)
    numeric = [r for r in report.results if r.tensor in TENSORS]
    assert all(r.passed for r in numeric), [(r.configuration, r.tensor, r.max_abs_err)
                                            for r in numeric if not r.passed]


def test_sampling_includes_corners_and_borders():
    rng = np.random.default_rng(0)
    shape = (2, 3, 40, 50)
    index = sample_coordinates(shape, 30, rng)
    assert len(index) == 30 and len({tuple(i) for i in index}) == 30
    points = {tuple(i) for i in index.tolist()}
    for lead in ((0, 0), (1, 2)):
        for row in (0, 39):
            for col in (0, 49):
                assert (*lead, row, col) in points
    middles = {p[2:] for p in points}
    assert {(0, 25), (39, 25), (20, 0), (20, 49)} <= middles  # each edge's middle
    assert (index < shape).all() and (index >= 0).all()
    assert len(sample_coordinates(shape, 5, rng)) == 16  # corners and edges are never dropped
    assert len(sample_coordinates((4,), 3, rng)) == 3
    assert {0, 3} <= set(sample_coordinates((4,), 2, rng)[:, 0].tolist())
    everything = sample_coordinates((2, 3), None, rng)
    assert sorted(map(tuple, everything.tolist())) == [(i, j) for i in range(2) for j in range(3)]
    np.testing.assert_array_equal(sample_coordinates(shape, 30, np.random.default_rng(0)), index)


@pytest.mark.parametrize("damage", ["corner", "bottom row"])
def test_sampled_check_finds_a_border_bug_on_a_large_image(damage):
    """20 samples of 2·128·128 pixels: only the forced corners and edges can find these."""
    rng = np.random.default_rng(1)
    x, w, b = rng.random((1, 2, 128, 128)), rng.standard_normal((2, 1, 3, 3)), np.ones(2)

    def backward(grad_output, x, w, **options):
        dx, dw, db = conv2d_backward(grad_output, x, w, **options)
        dx = dx.copy()
        if damage == "corner":
            dx[0, 1, -1, -1] += 1.0
        else:
            dx[..., -1, :] = 0.0  # as if the bottom padding were lost
        return dx, dw, db

    options = {"padding": "same", "groups": 2, "samples": 20}
    report = check_case(x, w, b, backward=backward, **options)
    assert "grad_input" in {t for _, t in failing(report)} <= {"grad_input", ADJOINT}
    dx_result = report.results[0]
    assert dx_result.checked == 20 and dx_result.size == x.size
    assert dx_result.worst[0].index[2] == 127
    assert check_case(x, w, b, **options).passed


def test_user_case_reports_counts_and_is_reproducible():
    rng = np.random.default_rng(2)
    x, w = rng.random((1, 3, 64, 80)), rng.standard_normal((4, 3, 5, 5))
    calls = []
    report = check_case(x, w, stride=2, padding=2, samples=50, seed=7,
                        progress=lambda done, total: calls.append((done, total)))
    assert report.passed
    assert [(r.tensor, r.checked) for r in report.results] == [
        ("grad_input", 50), ("grad_weight", 50), (ROUTES, x.size), (ADJOINT, 1)]
    total = calls[0][1]          # units of work: the whole-image passes weigh the most
    assert {t for _, t in calls} == {total} and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    again = check_case(x, w, stride=2, padding=2, samples=50, seed=7)
    assert again.to_dict() == report.to_dict()


def test_float32_warns_and_passes_a_correct_backward_with_a_margin():
    """(The teeth in float32 are in test_each_planted_bug_fails_on_the_right_tensor.)"""
    report = run_suite(dtype="float32")
    assert report.passed
    assert max(r.max_ratio for r in report.results) < 0.1  # measured ~2e-3
    assert report.warnings and "float32" in report.warnings[0]
    assert (report.eps, report.atol, report.rtol) == (0.1, 1e-2, 3e-3)
    assert run_suite().warnings == []


def test_float32_margin_on_a_large_image():
    """Where float32's rounding adds up: a 256×256 RGB image, every weight of a 4×3×5×5 kernel."""
    rng = np.random.default_rng(3)
    x, w, b = rng.random((1, 3, 256, 256)), rng.standard_normal((4, 3, 5, 5)), np.zeros(4)
    report = check_case(x, w, b, padding="same", samples=50, dtype="float32", seed=4)
    assert report.passed
    assert max(r.max_ratio for r in report.results) < 0.1, [  # measured 0.01
        (r.tensor, r.max_abs_err, r.max_ratio) for r in report.results]


def test_nan_and_wrong_shapes_fail_without_crashing():
    def nan_dw(grad_output, x, w, **options):
        dx, dw, db = conv2d_backward(grad_output, x, w, **options)
        return dx, np.full_like(dw, np.nan), db[:-1]

    report = check_case(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), np.zeros(2),
                        backward=nan_dw)
    verdict = {r.tensor: r.passed for r in report.results}
    assert verdict == {"grad_input": True, "grad_weight": False, "grad_bias": False,
                       ADJOINT: True}      # a user's backward: no routes row (convcli's own)
    notes = {r.tensor: r.note for r in report.results}
    assert "shape (1,), expected (2,)" in notes["grad_bias"]
    assert "18 non-finite values" in notes["grad_weight"]
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(text)["passed"] is False


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": "float16"}, "dtype must be"),
    ({"eps": 0}, "eps must be"),
    ({"atol": -1}, "atol must be"),
    ({"atol": 0, "rtol": 0}, "cannot both be 0"),
    ({"samples": 0}, "samples must be >= 1"),
    ({"stride": 0}, "stride must be >= 1"),
])
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(InputError, match=message):
        check_case(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), **kwargs)
