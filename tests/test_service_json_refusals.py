"""Long arrays of ``x``, ``x2``, ``y`` that the fast reader cannot read are refused before pydantic.

References: the failures are built at a known place (the row, the line and column of the bad
value, counted from the text as written here); the statuses are those of the small-body path
(pydantic's ``json_invalid`` 400 for text that is not JSON, 422 naming the field otherwise);
memory is tracemalloc's peak plus the body over the body's size, as in
``tests/test_service_json_numbers.py`` (pydantic alone: about 40x the body).
"""
from __future__ import annotations

import tracemalloc

import pytest
from fastapi.testclient import TestClient

from eoc_ntk.core.json_arrays import read_number_arrays
from service.app import create_app
from service.config import Settings
from service.errors import BodyInvalid
from service.json_numbers import REFUSE_UNREAD_BYTES
from service.jsonbody import validate_json
from service.schemas import SpectraIn

ROWS = 100_000
ROW = b"[0,1,0,1,0]"
HEAD = b'{"model": {"depth": 3, "activation": "relu"}, "x": ['


def _body(last: bytes, rows: int = ROWS) -> bytes:
    """``rows - 1`` rows of five one-digit numbers, then ``last``: 1.2 MB at 100,000 rows."""
    return HEAD + b",".join([ROW] * (rows - 1)) + b"," + last + b"]}"


def _refusal(body: bytes) -> tuple[dict, float]:
    """The first error of the refusal of ``body`` and (peak + body) / body."""
    tracemalloc.start()
    try:
        with pytest.raises(BodyInvalid) as got:
            validate_json(SpectraIn, body, 1 << 30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return got.value.errors[0], (peak + len(body)) / len(body)


def _column_of(body: bytes, needle: bytes) -> int:
    return body.rindex(needle) + 1  # one line: the column is the index from 1


# (last row, error type, loc, words the message must hold)
KINDS = [
    (b"[0,1,0,1]", "value_error", ("body", "x"), f"ragged: row {ROWS} has 4 values, row 1 has 5"),
    (b"[0,1,0,1,NaN]", "value_error", ("body", "x"), "not a finite JSON number at line 1 column {col}"),
    (b"[0,1,0,1,Infinity]", "value_error", ("body", "x"), "not a finite JSON number at line 1 column {col}"),
    (b"[0,1,0,true,1]", "value_error", ("body", "x"), "not a finite JSON number at line 1 column {col}"),
    (b"[0,1,0,1,null]", "value_error", ("body", "x"), "not a finite JSON number at line 1 column {col}"),
    (b'[0,1,0,1,"1"]', "value_error", ("body", "x"), "not a finite JSON number at line 1 column {col}"),
    (b"[0,1,0,1,1e400]", "value_error", ("body", "x"), "out of the float64 range"),
    (b"[0,1,0,1,[1]]", "value_error", ("body", "x"), "nested deeper than rows of numbers"),
    (b"7", "value_error", ("body", "x"), "or rows mixed with numbers; give a list of rows"),
    (b"[0,1,0,1 0]", "json_invalid", ("body",), "x: two numbers are separated by white space only"),
    (b"[0,1,0,1,01]", "json_invalid", ("body",), "x: a number is malformed"),
]
#: The byte each message places (its first byte in the last row).
PLACED = {b"[0,1,0,1,NaN]": b"NaN", b"[0,1,0,1,Infinity]": b"Infinity", b"[0,1,0,true,1]": b"true",
          b"[0,1,0,1,null]": b"null", b'[0,1,0,1,"1"]': b'"1"'}


@pytest.mark.parametrize("last, kind, loc, words", KINDS, ids=[k[0].decode() for k in KINDS])
def test_a_long_unreadable_array_is_refused_naming_the_field_in_bounded_memory(last, kind, loc, words):
    body = _body(last)
    error, ratio = _refusal(body)
    col = _column_of(body, PLACED[last]) if last in PLACED else 0
    assert (error["type"], error["loc"]) == (kind, loc), error
    text = error["ctx"]["error"] if kind == "json_invalid" else error["msg"]
    assert words.format(col=col) in text, text
    assert ratio <= 3, ratio


def test_the_text_ending_inside_a_long_array_is_malformed_json():
    body = HEAD + b",".join([ROW] * ROWS)
    error, ratio = _refusal(body)
    assert error["type"] == "json_invalid" and "x: the text ends inside the array" in error["ctx"]["error"]
    assert ratio <= 3, ratio


def test_the_first_bad_row_is_found_wherever_it_is():
    for bad_row in (2, 777, 54_321):
        rows = [ROW] * 60_000
        rows[bad_row - 1] = b"[0,1,0,1,0,1]"
        (unread,) = read_number_arrays(b'{"x": [' + b",".join(rows) + b"]}", ("x",))[1]
        assert f"row {bad_row} has 6 values, row 1 has 5" in unread.reason


def test_short_unreadable_arrays_keep_pydantics_answers():
    """At most REFUSE_UNREAD_BYTES of array text: what pydantic answers (here a list of lists it
    accepts, and its own float_type refusal), as on the small-body path."""
    rows = REFUSE_UNREAD_BYTES // (len(ROW) + 1) - 2
    parsed = validate_json(SpectraIn, _body(b"[0,1,0,1]", rows), 1 << 30)
    assert parsed.x[-1] == [0, 1, 0, 1] and len(parsed.x) == rows
    with pytest.raises(BodyInvalid) as got:
        validate_json(SpectraIn, _body(b"[0,1,0,true,1]", rows), 1 << 30)
    assert [(e["type"], e["loc"]) for e in got.value.errors] == [("float_type", ("body", "x", rows - 1, 3))]


@pytest.mark.parametrize("last, status, field", [(b"[0,1,0,1]", 422, "x"), (b"[0,1,0,1,NaN]", 422, "x"),
                                                 (b"[0,1,0,1 0]", 400, "body")])
def test_the_http_answer_is_the_small_body_paths(last, status, field):
    client = TestClient(create_app(Settings(max_json_bytes=1 << 22)))
    r = client.post("/v1/spectra", content=_body(last), headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
