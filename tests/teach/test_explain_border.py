"""explain with a border mode: the padded cells show the values they copy, p's copies in the
border join its footprint, dL/dx folds the border's gradient back, and every check holds
(against np.pad and finite differences, not the code under test)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from convcli import conv2d
from convcli.cli import app
from convcli.teach.walkthrough import walkthrough
from tests.reference import numerical_gradient

NUMPY = {"reflect": "reflect", "symmetric": "symmetric", "replicate": "edge",
         "circular": "wrap"}


@pytest.mark.parametrize("mode", list(NUMPY))
@pytest.mark.parametrize("options", [{}, {"stride": 2, "padding": (1, 1, 1, 1)},
                                     {"padding": "same", "pixel": (3, 0)}])
def test_every_check_holds_and_dx_matches_np_pad(mode, options, rng):
    kwargs = {"pixel": (1, 1), **options}
    x = rng.integers(1, 6, (1, 1, 4, 5)).astype(float)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]]) if "padding" not in options or \
        options["padding"] != "same" else rng.integers(-2, 3, (1, 1, 3, 3)).astype(float)
    walk = walkthrough(x, w, padding_mode=mode, **kwargs)
    assert all(c.ok for c in walk.checks), [c.claim for c in walk.checks if not c.ok]
    a, pad = walk.arrays, walk.geometry.pad
    np.testing.assert_array_equal(a["x_padded"][0, 0], np.pad(x[0, 0], (pad[:2], pad[2:]),
                                                              mode=NUMPY[mode]))
    g = a["dL/dy"]
    stride = walk.geometry.stride

    def loss():
        padded = np.pad(x, ((0, 0), (0, 0), pad[:2], pad[2:]), mode=NUMPY[mode])
        return float(np.vdot(conv2d(padded, w, stride=stride), g))

    np.testing.assert_allclose(a["dL/dx"], numerical_gradient(loss, x), atol=1e-6)


def test_the_text_and_the_grids_say_copies_not_zeros():
    walk = walkthrough(padding_mode="reflect", pixel=(1, 1))
    setup = " ".join(walk.steps[0].paragraphs)
    assert "copies of x's border pixels (--border reflect)" in setup and "adds zeros" not in setup
    x_grid = walk.steps[0].grids[0]
    assert x_grid.symbol == "" and "copy of a pixel of x" in x_grid.dim_note
    pixel = " ".join(walk.steps[3].paragraphs)
    assert "p's copy at padded (0,0)" in pixel           # x(1,1) mirrored into the corner
    assert f"= {walk.arrays['dL/dp'].item():g}, which is dL/dx at p" in pixel
    backward = " ".join(walk.steps[4].paragraphs)
    assert "added onto the pixel it copied" in backward
    zeros = walkthrough(pixel=(1, 1))
    assert "adds zeros, drawn ·" in " ".join(zeros.steps[0].paragraphs)


def test_explain_border_from_the_command_line():
    result = CliRunner().invoke(app, ["explain", "--border", "symmetric", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["geometry"]["padding_mode"] == "symmetric"
    assert all(check["ok"] for check in data["checks"])
    bad = CliRunner().invoke(app, ["explain", "--border", "reflect", "--padding", "4"])
    assert bad.exit_code == 2 and "border mode reflect needs padding smaller" in bad.output
