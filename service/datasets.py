"""Datasets: the four upload formats (CSV and .npy by :mod:`eoc_ntk.core.point_files`, .npz by
:mod:`eoc_ntk.core.labelled_files`, JSON by its schema), labels sent with the points (JSON ``y``, the
``.npz`` member ``y``, or ``?label_column=``: a column of the points of any format), the configured limits, and the
content-hash id."""
from __future__ import annotations

import hashlib

import numpy as np

from eoc_ntk.core.compact import check_compact_data, update_float64_hash
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.labelled_files import read_npz, split_label_column
from eoc_ntk.core.point_files import UnreadablePoints, read_points
from jobs.store import Storage

from .config import Settings
from .errors import (
    BadRequest,
    BodyInvalid,
    InvalidInput,
    NotFound,
    UnsupportedMediaType,
    core_errors,
    validation_message,
)
from .jsonbody import is_json_media, media_type, validate_json
from .schemas import DatasetWithLabelsJSONIn

__all__ = ["dataset_id_of", "check_points", "parse_upload", "load", "unknown_dataset", "MEDIA_TYPES"]

#: Content-Type -> format of :func:`eoc_ntk.core.point_files.read_points`.
_FORMATS = {"application/x-npy": "npy", "text/csv": "csv"}
NPZ = "application/x-npz"
MEDIA_TYPES = ("application/json", *_FORMATS, NPZ)


def dataset_id_of(x: np.ndarray) -> str:
    """Content hash of a checked array's float64 values and its shape (same data, same id).

    The bytes hashed are those of the float64 array, whatever dtype ``x`` is held in (a compact
    integer array is converted chunk by chunk: :func:`eoc_ntk.core.compact.update_float64_hash`)."""
    h = hashlib.sha256(b"float64<")
    h.update(repr(tuple(int(s) for s in x.shape)).encode())
    update_float64_hash(h, x)
    return h.hexdigest()[:32]


def check_points(x, settings: Settings, field: str = "x") -> np.ndarray:
    """The core's checks (2-D, finite, numeric, not ragged), then the configured limits.

    A compact integer array (from a JSON body) is kept as it is; anything else becomes float64."""
    with core_errors(field):
        arr = check_compact_data(x, name=field)
    return _within_limits(arr, settings, field)


def _within_limits(arr: np.ndarray, settings: Settings, field: str) -> np.ndarray:
    n, m0 = arr.shape
    if n > settings.max_n:
        raise InvalidInput(f"{field} has n = {n} points, over the limit {settings.max_n} (EOC_NTK_MAX_N)", field=field)
    if m0 > settings.max_m0:
        raise InvalidInput(f"{field} has m0 = {m0} features, over the limit {settings.max_m0} (EOC_NTK_MAX_M0)",
                           field=field)
    if arr.dtype.kind == "f":  # an integer array holds no -0.0
        np.add(arr, 0.0, out=arr)  # fold -0.0 into 0.0 (one id per value), in place: arr is check_data's own copy
    return arr


def _core_refusal(exc: InvalidParameterError, body_param: str = "data"):
    """400 when the body is not a file of its format, 422 when its content is refused (field named)."""
    if isinstance(exc, UnreadablePoints):
        return BadRequest(str(exc), field="body")
    return InvalidInput(str(exc), field="body" if exc.param == body_param else exc.param)


def _read_file(fmt: str, body: bytes, settings: Settings, label_column: int | None) -> np.ndarray:
    """Points from an uploaded file: 400 when the body is not a file of the format, 422 when refused.

    The shape limits are checked from an ``.npy`` header before the array is converted (one more
    column when a label column is to be taken out)."""
    max_m0 = settings.max_m0 + (label_column is not None)
    try:
        return read_points(body, fmt, name="x", max_n=settings.max_n, max_m0=max_m0)
    except InvalidParameterError as exc:
        raise _core_refusal(exc) from exc


def _read_npz(body: bytes, settings: Settings, label_column: int | None):
    """``(x, y or None)`` of an ``.npz`` archive; every member checked before it is inflated."""
    try:
        return read_npz(body, max_n=settings.max_n, max_m0=settings.max_m0 + (label_column is not None),
                        max_member_bytes=settings.max_body_bytes)
    except InvalidParameterError as exc:
        raise _core_refusal(exc) from exc


def _read_json(body: bytes, settings: Settings):
    """``(x, y or None)`` of a JSON upload, through the one JSON path (:func:`service.jsonbody.validate_json`)."""
    try:
        parsed = validate_json(DatasetWithLabelsJSONIn, body, settings.max_json_bytes)
    except BodyInvalid as exc:
        first = exc.errors[0]
        if first.get("type") == "json_invalid":
            raise BadRequest(validation_message(first), field="body") from None
        loc = ".".join(str(p) for p in first.get("loc", ())[1:] if not str(p)[:1].isupper()) or "body"
        raise InvalidInput(validation_message(first), field=loc) from None
    with core_errors("x"):
        return check_compact_data(parsed.x, name="x"), parsed.y


def _label_column(x: np.ndarray, raw_y: object, label_column: int, media: str) -> tuple[np.ndarray, object]:
    """``(x without the column, the column)``; 422 naming ``label_column`` when the upload has ``y`` too."""
    if raw_y is not None:
        source = "the member y of the .npz" if media == NPZ else "y next to x"
        raise InvalidInput(f"label_column = {label_column} and {source} both give the labels; drop label_column "
                           "(or y)", field="label_column")
    try:
        return split_label_column(x, label_column)
    except InvalidParameterError as exc:
        raise InvalidInput(str(exc), field=exc.param) from exc


def parse_upload(content_type: str | None, body: bytes, settings: Settings,
                 label_column: int | None = None) -> tuple[np.ndarray, object]:
    """``(x, raw_y)`` from a POST /v1/datasets body of any supported type.

    ``x`` is a checked array within the limits (float64, or compact integers from JSON); ``raw_y``
    the labels sent with it, not yet checked (JSON ``y``, the ``.npz`` member ``y``, or column
    ``label_column`` of the points of any format: a CSV or ``.npy`` matrix, JSON ``x`` or the
    ``.npz`` member ``x`` when no ``y`` is sent), or None."""
    media = media_type(content_type)
    raw_y = None
    if media in _FORMATS:
        x = _read_file(_FORMATS[media], body, settings, label_column)
    elif media == NPZ:
        x, raw_y = _read_npz(body, settings, label_column)
    elif is_json_media(media):
        x, raw_y = _read_json(body, settings)
    else:
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'!r} is not supported; use one of {', '.join(MEDIA_TYPES)}",
            field="Content-Type",
        )
    if label_column is not None:
        x, raw_y = _label_column(x, raw_y, label_column, media)
    return _within_limits(x, settings, "x"), raw_y


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
