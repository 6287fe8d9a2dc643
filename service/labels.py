"""Labels ``y`` (docs/learning.md §1): uploads (JSON or .npy; with a dataset, :mod:`service.datasets`),
the content-hash id, the configured limits, and the labels of a compute request checked against its data.

Labels are stored through :meth:`jobs.store.Storage.put_labels`; their owners are kept as a
dataset's, so with API keys a labels id is visible only to the keys that sent the labels.
"""
from __future__ import annotations

import hashlib

import numpy as np

import eoc_ntk
from eoc_ntk.core.compact import is_compact, update_float64_hash
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.labels import check_label_shape
from eoc_ntk.core.point_files import UnreadablePoints, npy_array_header, npy_from_bytes
from jobs.store import labels_store_id

from .config import Settings
from .engine import Data, Engine
from .errors import BadRequest, BodyInvalid, InvalidInput, NotFound, UnsupportedMediaType, core_errors
from .jsonbody import is_json_media, media_type, validate_json
from .schemas import LabelsJSONIn

__all__ = ["labels_id_of", "check_labels", "parse_labels_upload", "resolve_labels",
           "MEDIA_TYPES"]

MEDIA_TYPES = ("application/json", "application/x-npy")


def labels_id_of(y: np.ndarray) -> str:
    """Content hash of checked labels' float64 values and their shape (same labels, same id; never a
    dataset's id); a compact integer array is hashed as its float64 conversion, chunk by chunk."""
    h = hashlib.sha256(b"labels-float64<")
    h.update(repr(tuple(int(s) for s in y.shape)).encode())
    update_float64_hash(h, y)
    return h.hexdigest()[:32]


def check_labels(y, settings: Settings, field: str = "y", n: int | None = None, x_field: str = "x") -> np.ndarray:
    """The core's checks (numeric, finite, shape (n,) or (n, k)), then the configured limits.

    ``n`` is the number of data points the labels go with; None checks them on their own.
    Returns the labels in the shape they were given: as they are when a compact integer array
    (from a JSON body: every value check holds for it), else float64."""
    if n is None:
        n = _rows(y, field)
    if is_compact(y) and y.ndim in (1, 2):
        with core_errors(field):
            check_label_shape(y.shape, n, name=field, x_name=x_field)
        arr = np.ascontiguousarray(y)
    else:
        with core_errors(field):
            labels = eoc_ntk.check_labels(y, n, name=field, x_name=x_field)
        arr = labels.values[:, 0] if labels.one_dimensional else labels.values
    if arr.shape[0] > settings.max_n:
        raise InvalidInput(f"{field} has {arr.shape[0]} rows, over the limit {settings.max_n} (EOC_NTK_MAX_N)",
                           field=field)
    if arr.ndim == 2 and arr.shape[1] > settings.max_m0:
        raise InvalidInput(f"{field} has {arr.shape[1]} columns, over the limit {settings.max_m0} (EOC_NTK_MAX_M0)",
                           field=field)
    return arr if is_compact(arr) else arr + 0.0  # fold -0.0 into 0.0: one id per value (integers have none)


def _rows(y, field: str) -> int:
    """The row count of labels sent on their own (0-d or empty labels are refused here)."""
    shape = np.shape(y) if isinstance(y, np.ndarray) else (len(y),) if isinstance(y, list) else ()
    if len(shape) == 0 or shape[0] == 0:
        raise InvalidInput(f"{field} must be a non-empty array of shape (n,) or (n, k), got shape {tuple(shape)}",
                           field=field)
    return int(shape[0])


def parse_labels_upload(content_type: str | None, body: bytes, settings: Settings) -> np.ndarray:
    """Checked labels from a POST /v1/labels body: JSON ``{"y": [...]}`` or a ``.npy`` array."""
    media = media_type(content_type)
    if media == "application/x-npy":
        # The header is checked (dtype, shape against the limits, declared bytes against the body)
        # before anything is allocated, as for the points: np.load would allocate from the header.
        try:
            raw = npy_from_bytes(body, *npy_array_header(body, settings.max_n, settings.max_m0, "y"))
        except UnreadablePoints as exc:
            raise BadRequest(str(exc), field="body") from exc
        except InvalidParameterError as exc:
            raise InvalidInput(str(exc), field="y") from exc
        return check_labels(raw, settings)
    if is_json_media(media):
        return check_labels(_validated(LabelsJSONIn, body, settings.max_json_bytes).y, settings)
    raise UnsupportedMediaType(
        f"Content-Type {content_type or '(none)'!r} is not supported for labels; use one of {', '.join(MEDIA_TYPES)}",
        field="Content-Type")


def _validated(schema, body: bytes, limit: int):
    try:
        return validate_json(schema, body, limit)
    except BodyInvalid as exc:
        first = exc.errors[0]
        if first.get("type") == "json_invalid":
            raise BadRequest(f"request body is not valid JSON ({first.get('msg')})", field="body") from None
        loc = ".".join(str(p) for p in first.get("loc", ())[1:] if not str(p)[:1].isupper()) or "body"
        raise InvalidInput(f"{loc}: {first.get('msg')}", field=loc) from None


def resolve_labels(engine: Engine, y, labels_id: str | None, data: Data, principal: str | None) -> Data:
    """The labels of a compute request (inline ``y`` or a stored ``labels_id``) checked against ``data``.

    Returned as a :class:`Data` under the labels' store id: pinned with the data, inline labels
    are stored once the request is answered (:meth:`Engine.answer`), as inline points are."""
    n = data.x.shape[0]
    x_field = "x" if not data.stored else "dataset_id"
    if labels_id is not None:
        store_id = labels_store_id(labels_id)
        stored = engine.storage.get_labels(labels_id) if engine.storage.owns("dataset", store_id, principal) else None
        if stored is None:
            raise NotFound(f"unknown labels_id {labels_id!r} (never uploaded, expired, or not yours); "
                           "upload them with POST /v1/labels", field="labels_id")
        return Data(store_id, check_labels(stored, engine.settings, "labels_id", n, x_field))
    arr = check_labels(y, engine.settings, "y", n, x_field)
    return Data(labels_store_id(labels_id_of(arr)), arr, stored=False)


def labels_id_from(labels: Data) -> str:
    """The labels id of resolved labels."""
    return labels.dataset_id.split(":", 1)[1]
