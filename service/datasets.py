"""Datasets: parsing the three upload formats, limits, and the content-hash id."""
from __future__ import annotations

import hashlib
import io
import re

import numpy as np

import eoc_ntk

from .config import Settings
from .errors import BadRequest, InvalidInput, NotFound, UnsupportedMediaType, core_errors
from .store import Storage

__all__ = ["dataset_id_of", "check_points", "parse_upload", "load", "unknown_dataset", "MEDIA_TYPES"]

MEDIA_TYPES = ("application/json", "application/x-npy", "text/csv")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def dataset_id_of(x: np.ndarray) -> str:
    """Content hash of a checked float64 array and its shape (same data, same id)."""
    h = hashlib.sha256(b"float64<")
    h.update(repr(tuple(int(s) for s in x.shape)).encode())
    h.update(np.ascontiguousarray(x, dtype="<f8").tobytes())
    return h.hexdigest()[:32]


def check_points(x, settings: Settings, field: str = "x") -> np.ndarray:
    """The core's checks (2-D, finite, numeric, not ragged), then the configured limits."""
    with core_errors(field):
        arr = eoc_ntk.check_data(x, name=field)
    n, m0 = arr.shape
    if n > settings.max_n:
        raise InvalidInput(f"{field} has n = {n} points, over the limit {settings.max_n} (EOC_NTK_MAX_N)", field=field)
    if m0 > settings.max_m0:
        raise InvalidInput(f"{field} has m0 = {m0} features, over the limit {settings.max_m0} (EOC_NTK_MAX_M0)",
                           field=field)
    return arr + 0.0  # fold -0.0 into 0.0: one id per value


def _parse_npy(body: bytes) -> np.ndarray:
    if not body.startswith(b"\x93NUMPY"):
        raise BadRequest("the body is not a .npy file (no \\x93NUMPY magic); write it with numpy.save",
                         field="body")
    try:
        arr = np.load(io.BytesIO(body), allow_pickle=False)
    except ValueError as exc:
        msg = str(exc)
        if "allow_pickle" in msg or "Object arrays" in msg:
            raise InvalidInput("the .npy body holds Python objects (pickled content is refused); "
                               "send a numeric array", field="body") from exc
        raise BadRequest(f"the body is not a valid .npy file ({msg})", field="body") from exc
    except (OSError, EOFError) as exc:
        raise BadRequest(f"the body is not a valid .npy file ({exc})", field="body") from exc
    if not isinstance(arr, np.ndarray):
        raise BadRequest("the body is an .npz archive; send a single .npy array", field="body")
    if arr.dtype.kind not in "biuf":
        raise InvalidInput(f"the .npy array has dtype {arr.dtype}; send real numbers (float64)", field="body")
    return arr


def _parse_csv(body: bytes) -> list[list[float]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the CSV body is not UTF-8 ({exc})", field="body") from exc
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            raise InvalidInput(f"CSV row {i} is blank; send one data point per line, no blank lines", field="body")
        row = []
        for j, cell in enumerate(line.split(","), start=1):
            cell = cell.strip()
            if not _NUMBER.match(cell):
                hint = " (no header line allowed)" if i == 1 else ""
                raise InvalidInput(f"CSV row {i}, column {j}: {cell!r} is not a number{hint}", field="body")
            row.append(float(cell))
        rows.append(row)
    if not rows:
        raise InvalidInput("the CSV body holds no data points", field="body")
    return rows


def parse_upload(content_type: str | None, body: bytes, settings: Settings) -> np.ndarray:
    """A checked float64 array from a POST /v1/datasets body of any supported type."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/x-npy":
        raw = _parse_npy(body)
    elif media == "text/csv":
        raw = _parse_csv(body)
    elif media == "application/json" or media.endswith("+json"):
        from .schemas import DatasetJSONIn  # noqa: PLC0415 - keep parsing helpers light

        from pydantic import ValidationError

        try:
            raw = DatasetJSONIn.model_validate_json(body).x
        except ValidationError as exc:
            first = exc.errors()[0]
            if first.get("type") == "json_invalid":
                raise BadRequest(f"request body is not valid JSON ({first.get('msg')})", field="body") from exc
            loc = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise InvalidInput(f"{loc}: {first.get('msg')}", field=loc) from exc
    else:
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'!r} is not supported; use one of {', '.join(MEDIA_TYPES)}",
            field="Content-Type",
        )
    return check_points(raw, settings, "x")


def load(storage: Storage, dataset_id: str, field: str = "dataset_id") -> np.ndarray:
    """A stored dataset, or :class:`NotFound` naming the field."""
    x = storage.get_dataset(dataset_id)
    if x is None:
        raise unknown_dataset(dataset_id, field)
    return x


def unknown_dataset(dataset_id: str, field: str = "dataset_id") -> NotFound:
    """The one answer for a dataset that is unknown, expired or another API key's."""
    return NotFound(f"unknown dataset_id {dataset_id!r} (never uploaded, expired, or not yours); "
                    "upload it with POST /v1/datasets", field=field)
