"""The OpenAPI document a deployment serves: the routes' schemas with this deployment's configured limits.

The request models state the rules that hold everywhere (types, id patterns, text grammars,
exclusive fields, the core's ranges). The limits of :class:`service.config.Settings` are written
into the document when the app builds it, so that each deployment serves its own:

- data of a computation (``x``): ``EOC_NTK_MIN_N`` to ``EOC_NTK_MAX_N`` rows of 1 to
  ``EOC_NTK_MAX_M0`` numbers (``x2`` and uploads: from 1 row; an upload's rows may hold one more
  number, the column ``label_column`` takes out);
- labels (``y``): at most ``EOC_NTK_MAX_N`` rows of at most ``EOC_NTK_MAX_M0`` numbers;
- depths (``model.depth``, ``depth``, ``depths``): at most ``EOC_NTK_MAX_DEPTH``, also in the
  depth text grammar (a range's step: at most ``eoc_ntk.MAX_DEPTH``, as every number of it); at
  most ``EOC_NTK_MAX_SWEEP_DEPTHS`` depths in a list and ``EOC_NTK_MAX_SWEEP_ACTIVATIONS``
  activations in a sweep;
- training-set sizes: at most ``EOC_NTK_MAX_N - 1``.

With the default settings the document is the committed ``openapi/openapi.json``. Rules between
a request and its data (labels with the data's n, x2 with x's width, a kernel's n * n2, sizes
below the data's n, the number of depths a text expands to) are the service's checks alone.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import FastAPI

from eoc_ntk import MAX_DEPTH

from .config import Settings
from .patterns import depths_pattern

__all__ = ["with_limits", "serve_with_limits", "integer_range_pattern"]


def integer_range_pattern(high: int) -> str:
    """A regular expression (no anchors) of the integers 1 to ``high`` without leading zeros.

    E.g. ``2000`` -> ``(?:[1-9][0-9]{0,2}|1[0-9]{3}|2000)``.
    """
    if high < 1:
        raise ValueError(f"high must be >= 1, got {high}")
    digits = str(high)
    shorter = {1: [], 2: ["[1-9]"]}.get(len(digits), [f"[1-9][0-9]{{0,{len(digits) - 2}}}"])
    parts = list(shorter)
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(digits) - i - 1
            top = int(digit) - 1
            choice = str(low) if top == low else f"[{low}-{top}]"
            parts.append(digits[:i] + choice + {0: "", 1: "[0-9]"}.get(rest, f"[0-9]{{{rest}}}"))
    parts.append(digits)
    return "(?:" + "|".join(parts) + ")"


def _arrays(node: dict) -> Iterator[dict]:
    """The array schemas of ``node``: itself, or its ``anyOf`` / ``oneOf`` branches (nested)."""
    if node.get("type") == "array":
        yield node
    for key in ("anyOf", "oneOf"):
        for branch in node.get(key, ()):
            yield from _arrays(branch)


def _rows(node: dict, min_n: int, max_n: int, max_m0: int) -> None:
    """Points: ``min_n`` to ``max_n`` rows of 1 to ``max_m0`` numbers."""
    for array in _arrays(node):
        array.update(minItems=min_n, maxItems=max_n)
        array["items"]["maxItems"] = max_m0


def _labels(node: dict, max_n: int, max_m0: int) -> None:
    """Labels: at most ``max_n`` numbers, or at most ``max_n`` rows of at most ``max_m0`` numbers."""
    for array in _arrays(node):
        array["maxItems"] = max_n
        if array["items"].get("type") == "array":
            array["items"]["maxItems"] = max_m0


def _depths_text(depth_max: int) -> str:
    """The depth grammar: depths (a range's ends too) at most ``depth_max``, a step at most MAX_DEPTH."""
    return depths_pattern(integer_range_pattern(depth_max), integer_range_pattern(MAX_DEPTH))


def _models(doc: dict, settings: Settings, depth_max: int) -> None:
    """The limits in the request models (``components.schemas``)."""
    for schema in doc.get("components", {}).get("schemas", {}).values():
        props = schema.get("properties", {})
        if "x" in props and "dataset_id" in props:  # the data of a computation
            _rows(props["x"], settings.min_n, settings.max_n, settings.max_m0)
            if "y" in props:
                _labels(props["y"], settings.max_n, settings.max_m0)
        if "x2" in props:
            _rows(props["x2"], 1, settings.max_n, settings.max_m0)
    schemas = doc["components"]["schemas"]
    schemas["ModelIn"]["properties"]["depth"]["maximum"] = depth_max
    sweep = schemas["SweepsIn"]["properties"]
    as_list, as_text = sweep["depths"]["anyOf"]
    as_list.update(maxItems=settings.max_sweep_depths)
    as_list["items"]["maximum"] = depth_max
    as_text["pattern"] = _depths_text(depth_max)
    sweep["activations"]["maxItems"] = settings.max_sweep_activations
    schemas["LearningCurvesIn"]["properties"]["sizes"]["items"]["maximum"] = max(1, settings.max_n - 1)


def _parameter(doc: dict, path: str, method: str, name: str) -> dict:
    """The schema of query parameter ``name`` of ``method path``."""
    for parameter in doc["paths"][path][method]["parameters"]:
        if parameter["name"] == name:
            return parameter["schema"]
    raise KeyError(f"{method.upper()} {path} has no parameter {name!r}")


def _paths(doc: dict, settings: Settings, depth_max: int) -> None:
    """The limits in the operations' own parameters and raw request bodies (``paths``)."""
    upload = doc["paths"]["/v1/datasets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    _rows(upload["properties"]["x"], 1, settings.max_n, settings.max_m0 + 1)
    _labels(upload["properties"]["y"], settings.max_n, settings.max_m0)
    labels = doc["paths"]["/v1/labels"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    _labels(labels["properties"]["y"], settings.max_n, settings.max_m0)
    for path in ("/v1/spectra", "/v1/plots/eigenvalues"):
        _parameter(doc, path, "get", "depth")["maximum"] = depth_max
    _parameter(doc, "/v1/sweeps", "get", "depths")["pattern"] = _depths_text(depth_max)


def with_limits(doc: dict, settings: Settings) -> dict:
    """A copy of ``doc`` with the configured limits of ``settings`` (see the module).

    The copy shares no node with ``doc``, nor one node between two places (the schemas the routes
    declare are module constants, used in several places with different limits)."""
    doc = json.loads(json.dumps(doc))
    depth_max = min(MAX_DEPTH, settings.max_depth)
    _models(doc, settings, depth_max)
    _paths(doc, settings, depth_max)
    return doc


def serve_with_limits(app: FastAPI, settings: Settings) -> None:
    """Make ``app`` build (once) and serve its document with the limits of ``settings``."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = with_limits(build(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
