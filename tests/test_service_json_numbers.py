"""Numeric arrays of JSON bodies read as NumPy arrays (service.json_numbers, eoc_ntk.core.json_arrays).

References: Python's ``json`` module for the values (the same numbers, correctly rounded), and
pydantic's own ``model_validate_json`` of the body as sent for every refusal (the same errors,
at the same line and column). Memory is a ratio of tracemalloc's peak plus the body to the body's
size (the body is read before tracing starts).
"""
from __future__ import annotations

import json
import random
import tracemalloc

import numpy as np
import pytest
from pydantic import ValidationError

from eoc_ntk.core.json_arrays import find_number_arrays
from service.errors import BodyInvalid
from service.jsonbody import validate_json
from service.schemas import DatasetWithLabelsJSONIn, SpectraIn

KEYS = ("x", "x2", "y")
MODEL = '"model": {"depth": 3, "activation": "relu"}'


def _number(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return str(rng.randint(-10**rng.randint(0, 25), 10**rng.randint(0, 25)))
    if kind == 1:
        return repr(rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 300))
    if kind == 2:
        return f"{rng.uniform(-9, 9):.{rng.randint(1, 20)}f}"
    exponent = f"{rng.choice(['', '+', '-'])}{rng.randint(0, 250):0{rng.randint(1, 3)}d}"
    return f"{rng.randint(-99, 99)}{rng.choice('eE')}{exponent}"


def test_arrays_equal_the_json_modules_numbers():
    rng = random.Random(11)
    for _ in range(300):
        rows, cols = rng.randint(1, 12), rng.randint(1, 6)
        x = [[_number(rng) for _ in range(cols)] for _ in range(rows)]
        y = [_number(rng) for _ in range(rows)]
        comma, space = rng.choice([(",", ""), (", ", ""), (" , ", "\n  ")])
        text = (f'{{{space}"x":{space}[' + comma.join("[" + comma.join(r) + "]" for r in x) + f"]{comma}"
                f'"y": [{space}' + comma.join(y) + f"{space}], {MODEL}}}").encode()
        ref = json.loads(text)
        found = {a.key: a for a in find_number_arrays(text, KEYS)}
        assert set(found) == {"x", "y"}, text
        np.testing.assert_array_equal(found["x"].values, np.array(ref["x"], dtype=float))
        np.testing.assert_array_equal(found["y"].values, np.array(ref["y"], dtype=float))
        assert json.loads(text[found["x"].start:found["x"].stop]) == ref["x"]


@pytest.mark.parametrize("value", [
    "[[1, 2], [3]]", "[[1, NaN]]", "[[1e400]]", "[1 2]", "[[01]]", "[[-01]]", "[[1.]]", "[[.5]]", "[[+1]]",
    "[[1e]]", "[[1,,2]]", "[[1e5.5]]", "[[1.5.5]]", "[]", "[[]]", "[[[1]]]", "[[1, 2], 3]", '[[1, "2"]]',
    "[[1, 2], [3, 4]", "[[1, true]]", "[[-]]", "[[1-2]]",
])
def test_what_is_not_plainly_an_array_of_numbers_stays_in_the_text(value):
    assert find_number_arrays(f'{{"x": {value}}}'.encode(), KEYS) == []


def test_keys_inside_strings_are_not_read():
    text = b'{"note": "\\"x\\": [[1, 2]]", "x": [[3, 4]]}'
    (found,) = find_number_arrays(text, KEYS)
    assert found.values.tolist() == [[3.0, 4.0]] and text[found.start:found.stop] == b"[[3, 4]]"


@pytest.mark.parametrize("body", [
    b'{"x": [[1, 0], [0, 1]], "y": [1, 2]',
    b'{"x": [[1, 0],\n [0, 1]], "y": [1, 2],\n "z": }',
    b'{"x": [[1, 0], [0, 1]]} trailing',
    b'{"x": [[1, 0], [0, 1]], "y": [1, 2], "x": [[1]] ,, }',
    b'{"x": [[1, 0], [0, 1]]',
    b'{"x": [[1, 0], [0, "a"]], "y": [1, 2]}',
    b'{"x": [1, 2], "y": [[1], [2]]}',
    b'{"x": [[1, 0], [0, 1]], "y": [1, 2], "extra": [[1]]}',
    b'{"y": [1, 2]}',
])
def test_refusals_are_pydantics_on_the_body_as_sent(body):
    with pytest.raises(BodyInvalid) as got:
        validate_json(DatasetWithLabelsJSONIn, body, 1 << 20)
    with pytest.raises(ValidationError) as want:
        DatasetWithLabelsJSONIn.model_validate_json(body)
    expected = want.value.errors(include_url=False)[:20]
    assert [(e["type"], e["loc"][1:], e["msg"]) for e in got.value.errors] == \
        [(e["type"], e["loc"], e["msg"]) for e in expected]


def test_parsed_fields_hold_the_arrays_in_their_narrowest_exact_dtype():
    parsed = validate_json(DatasetWithLabelsJSONIn, b'{"x": [[1, 0], [0.5, -2e-3]], "y": [[1, 2], [3, 400]]}', 1 << 20)
    assert isinstance(parsed.x, np.ndarray) and parsed.x.dtype == np.float64 and parsed.y.dtype == np.int16
    np.testing.assert_array_equal(parsed.x, [[1, 0], [0.5, -2e-3]])
    np.testing.assert_array_equal(parsed.y, [[1, 2], [3, 400]])


def _peak(body: bytes):
    tracemalloc.start()
    try:
        parsed = validate_json(SpectraIn, body, 1 << 30)
        return tracemalloc.get_traced_memory()[1], parsed
    finally:
        tracemalloc.stop()


def test_memory_of_float64_text_is_at_most_three_times_the_body():
    x = np.random.default_rng(4).standard_normal((6_000, 5))
    body = json.dumps({"x": x.tolist(), "model": {"depth": 3, "activation": "relu"}}).encode()  # 0.6 MB
    peak, parsed = _peak(body)
    np.testing.assert_array_equal(parsed.x, x)
    assert (peak + len(body)) / len(body) <= 3, peak / len(body)


@pytest.mark.parametrize("row, spaced", [(b"0", False), (b"[0,1,0,1,0]", False), (b"[0, 1, 0, 1, 0]", True),
                                         (b"[0,1,-1,1,0]", False)])
def test_memory_of_the_densest_text_is_at_most_three_times_the_body(row, spaced):
    """One-digit numbers are held as int8 (half a byte a byte of text, where float64 was four):
    the body, the array and what the parse adds stay within 3x the body (pydantic alone: 20-27x)."""
    many = (b", " if spaced else b",").join([row] * 100_000)
    x = b"[" + many + b"]" if row == b"0" else many
    body = b'{"model": {"depth": 3, "activation": "relu"}, "x": [' + x + b"]}"
    peak, parsed = _peak(body)
    assert parsed.x.size == (100_000 if row == b"0" else 500_000) and parsed.x.dtype == np.int8
    assert (peak + len(body)) / len(body) <= 3, (peak, parsed.x.nbytes, len(body))
