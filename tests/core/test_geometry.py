"""The pad split and output size for every padding form."""

import pytest

from convcli.errors import InputError
from convcli.geometry import pair, resolve


@pytest.mark.parametrize(
    "size, kernel, options, pad, out",
    [
        ((4, 4), (2, 2), {"padding": (1, 0, 1, 0)}, (1, 0, 1, 0), (4, 4)),
        ((5, 6), (3, 3), {"padding": 1}, (1, 1, 1, 1), (5, 6)),
        ((5, 6), (3, 3), {"padding": (2, 0)}, (2, 2, 0, 0), (7, 4)),
        ((5, 6), (3, 3), {"padding": "valid"}, (0, 0, 0, 0), (3, 4)),
        # same with an even kernel: total 1, the extra row/column at bottom/right
        ((5, 6), (2, 4), {"padding": "same"}, (0, 1, 1, 2), (5, 6)),
        # same with stride 2: out = ceil(7/2) = 4, total = 3·2 + 3 - 7 = 2
        ((7, 8), (3, 3), {"padding": "same", "stride": 2}, (1, 1, 0, 1), (4, 4)),
        # same never pads negatively: stride 3, kernel 1 -> total max(0, 3·1+1-6) = 0
        ((6, 6), (1, 1), {"padding": "same", "stride": 3}, (0, 0, 0, 0), (2, 2)),
        ((5, 6), (3, 2), {"padding": "full", "dilation": (2, 1)}, (4, 4, 1, 1), (9, 7)),
        ((9, 8), (3, 3), {"stride": 2}, (0, 0, 0, 0), (4, 3)),
    ],
)
def test_resolve(size, kernel, options, pad, out):
    geometry = resolve(size, kernel, **options)
    assert (geometry.pad, geometry.output_size) == (pad, out)


def test_same_matches_ceil_for_many_sizes():
    for size in range(1, 20):
        for kernel in range(1, 6):
            for stride in range(1, 4):
                g = resolve((size, size), (kernel, kernel), padding="same", stride=stride)
                assert g.output_size[0] == -(-size // stride)


def test_used_size():
    g = resolve((9, 8), (3, 3), stride=2)
    assert g.used_size == (9, 7)        # the last column is never touched


@pytest.mark.parametrize("value, error", [(0, InputError), ((1, 2, 3), InputError),
                                           ("2", InputError), (True, InputError), (2.0, InputError)])
def test_pair_rejects(value, error):
    with pytest.raises(error, match="stride"):
        pair(value, "stride")
