"""Short decimals parsed by whole-array NumPy operations: the values ``float`` gives, or None.

The reference is Python's ``float`` of each cell's text (correctly rounded); the CSV reader built
on it must give ``numpy.loadtxt``'s numbers and the line reader's messages.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from eoc_ntk.core.decimal_text import MAX_DIGITS, parse_decimals
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.point_files import read_points


def _parse(text: str):
    buf = np.frombuffer(text.encode(), dtype=np.uint8)
    return parse_decimals(buf, (buf == ord(",")) | (buf == ord("\n")))


def _cell(rng: random.Random) -> str:
    sign = rng.choice(["", "", "-", "+"])
    if rng.random() < 0.3:
        return sign + str(rng.randint(0, 10 ** rng.randint(0, MAX_DIGITS + 1)))
    whole = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 9)))
    frac = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 9)))
    return sign + (whole or ("" if frac else "0")) + "." + frac


def test_short_decimals_equal_float_of_their_text():
    rng = random.Random(7)
    for _ in range(2000):
        cells = [_cell(rng) for _ in range(rng.randint(1, 20))]
        got = _parse(",".join(cells) + "\n")
        if max(sum(ch.isdigit() for ch in c) for c in cells) > MAX_DIGITS:
            assert got is None, cells
            continue
        want = np.array([float(c) for c in cells])
        assert got is not None, cells
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # "-0" is -0.0


@pytest.mark.parametrize("text", ["1,,2\n", "-,1\n", ".,1\n", "1-2\n", "1.2.3\n", "1e5\n", "1 2\n", "nan\n",
                                  "1,2", "+-1\n", "1,.\n", "--1\n", "1" * 16 + "\n", "0x1\n", "\n"])
def test_anything_else_is_left_to_the_general_parser(text):
    assert _parse(text) is None


def test_csv_of_short_then_long_numbers_equals_loadtxt():
    """Chunks of short decimals, then long ones (read by loadtxt from there on), then short again."""
    rng = np.random.default_rng(3)
    short = rng.integers(-999, 999, (40_000, 3)) / 100
    long = rng.standard_normal((2000, 3))
    rows = [",".join(map(repr, map(float, r))) for r in np.vstack([short, long, short[:500]])]
    text = ("\n".join(rows) + "\n").encode()
    got = read_points(text, "csv")
    np.testing.assert_array_equal(got, np.loadtxt(text.decode().splitlines(), delimiter=","))


def test_ragged_or_bad_late_rows_keep_the_line_readers_messages():
    good = b"1,2\n" * 70_000  # two chunks
    with pytest.raises(InvalidParameterError, match="x is ragged"):
        read_points(good + b"3,4,5\n" + good, "csv")
    with pytest.raises(InvalidParameterError, match="CSV row 70001, column 2: '' is not a number"):
        read_points(good + b"3,\n", "csv")
