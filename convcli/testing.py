"""For a user's own test suite: one line that checks their conv2d backward (and forward)
against finite differences on convcli's built-in suite.

    from convcli.testing import assert_conv2d_backward

    def test_my_backward():
        assert_conv2d_backward(my_conv.backward, forward=my_conv.forward)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .gradcheck import render, run_suite
from .gradcheck.verdicts import Report

__all__ = ["assert_conv2d_backward"]


def assert_conv2d_backward(backward: Callable[..., Any], *,
                           forward: Callable[..., Any] | None = None,
                           cases: list[str] | tuple[str, ...] | None = None,
                           allow_skipped: bool = True, seed: int = 0, eps: float | None = None,
                           atol: float | None = None, rtol: float | None = None,
                           dtype: str = "float64") -> Report:
    """Raise AssertionError, whose message is the plain-text report (the results table, the
    worst coordinates of each failure, the verdict), unless ``backward`` (and ``forward``)
    pass every case of the suite (or those named in ``cases``).

    backward(grad_output, x, w, *, stride, padding, dilation, groups) -> (dx, dw, db), with
    stride and dilation (h, w) pairs and padding (top, bottom, left, right); forward(x, w, b,
    *, ...) -> y. A case the implementation declines with NotImplementedError is skipped,
    which passes unless allow_skipped is False. -> the Report, when it passes.
    """
    report = run_suite(backward, forward=forward, cases=cases, seed=seed, eps=eps, atol=atol,
                       rtol=rtol, dtype=dtype)
    skipped = report.counts()["skipped"]
    if not report.passed or (skipped and not allow_skipped):
        reason = f"{skipped} case(s) skipped and allow_skipped=False\n" if report.passed else ""
        raise AssertionError("conv2d backward check failed\n" + reason +
                             render.plain_text(report))
    return report
