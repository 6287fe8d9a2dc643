"""Request and response bodies, one model per direction of data flow.

Only static facts live here (types, ``depth >= 1``, id formats); limits that depend on the
configuration are checked in :mod:`service.specs` so that the OpenAPI document does not
change with the environment.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator

from eoc_ntk.activations import ACTIVATION_NAMES, DEFAULT_LEAKY_SLOPE, parse_activation
from eoc_ntk.errors import InvalidParameterError
from eoc_ntk.kernels import KINDS
from jobs.states import JobStatus

__all__ = [
    "ActivationAB", "ActivationNamed", "Activation", "ModelIn", "KernelsIn", "SpectraIn", "SweepsIn",
    "DatasetJSONIn", "DatasetOut", "JobAccepted", "JobOut", "JobStatus", "SpectrumOut", "SweepOut",
    "ErrorOut", "Health", "DATASET_ID_PATTERN",
]

DATASET_ID_PATTERN = r"^[0-9a-f]{32}$"

Real = Annotated[float, Field(strict=True)]
Depth = Annotated[int, Field(strict=True, ge=1, description="Number of weight layers l >= 1.")]
Matrix = Annotated[list[list[Real]], Field(description="Data points, one per row: shape (n, m0).")]
DatasetId = Annotated[str, Field(pattern=DATASET_ID_PATTERN, description="Id returned by POST /v1/datasets.")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActivationAB(_In):
    """``phi(s) = a*s + b*|s|`` by its coefficients."""

    a: Real
    b: Real


class ActivationNamed(_In):
    """A named member of the family: relu (a=b=1/2), abs (0, 1), linear (1, 0), leaky_relu."""

    name: Literal[ACTIVATION_NAMES]  # the core's list (eoc_ntk.activations), one home
    slope: Real | None = Field(None, description="Negative-side slope of leaky_relu (default 0.01).")


def _activation_tag(value) -> str:
    if isinstance(value, dict):
        return "ActivationNamed" if "name" in value else "ActivationAB"
    return "ActivationNamed" if isinstance(value, ActivationNamed) else "ActivationAB"


def _activation_shorthand(value):
    """A string (``"relu"``, ``"leaky_relu:0.1"``, ``"0.3,0.7"``: the core's grammar,
    :func:`eoc_ntk.activations.parse_activation`) as the object it stands for."""
    if not isinstance(value, str):
        return value
    try:
        act = parse_activation(value)
    except InvalidParameterError as exc:
        raise ValueError(str(exc)) from exc
    name, _, slope = act.label.partition(":")
    if name == "leaky_relu":
        return {"name": name, "slope": float(slope) if slope else DEFAULT_LEAKY_SLOPE}
    if name in ACTIVATION_NAMES:
        return {"name": name}
    return act.api()


class _StringShorthandSchema:
    """Documents the string shorthand of :func:`_activation_shorthand` in the OpenAPI schema."""

    def __get_pydantic_json_schema__(self, core_schema, handler):
        shorthand = {"type": "string", "examples": ["relu", "leaky_relu:0.1", "0.3,0.7"],
                     "description": 'Shorthand: a name ("relu", "abs", "linear", "leaky_relu"), '
                                    '"leaky_relu:SLOPE" or "A,B".'}
        return {"anyOf": [handler(core_schema), shorthand]}


Activation = Annotated[
    Annotated[
        Annotated[ActivationAB, Tag("ActivationAB")] | Annotated[ActivationNamed, Tag("ActivationNamed")],
        Discriminator(_activation_tag),
    ],
    BeforeValidator(_activation_shorthand),
    _StringShorthandSchema(),
]


class ModelIn(_In):
    """An MLP: depth, activation and initialisation (defaults: the edge of chaos)."""

    depth: Depth
    activation: Activation
    sigma_w: Real | None = Field(None, description="Weight std; default the EOC value 1/sqrt(a^2+b^2).")
    sigma_b: Real = Field(0.0, description="Bias std; 0 at the EOC.")


class _Data(_In):
    """Data inline (``x``) or by ``dataset_id``: exactly one."""

    x: Matrix | None = None
    dataset_id: DatasetId | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.x is None) == (self.dataset_id is None):
            raise ValueError("give exactly one of x (inline data) or dataset_id (from POST /v1/datasets)")
        return self


#: The kernel kinds, from the core's list (``eoc_ntk.KINDS``).
KernelKind = Enum("KernelKind", {kind: kind for kind in KINDS}, type=str)


class KernelsIn(_Data):
    """Kernel matrices K(x, x2) (unnormalised: no 1/n)."""

    model: ModelIn
    kinds: list[KernelKind] = Field(default_factory=lambda: [KernelKind.ntk], min_length=1, max_length=4)
    x2: Matrix | None = Field(None, description="Second set of points for a cross-kernel; default x.")
    x2_dataset_id: DatasetId | None = None

    @model_validator(mode="after")
    def _one_x2(self):
        if self.x2 is not None and self.x2_dataset_id is not None:
            raise ValueError("give at most one of x2 and x2_dataset_id")
        return self


class SpectraIn(_Data):
    """Spectrum of the NTK matrix K/n, its condition number and the ICD analysis."""

    model: ModelIn


class SweepsIn(_Data):
    """Extreme eigenvalues and condition number for every (activation, depth) pair."""

    depths: list[Depth] = Field(min_length=1, description="Depths to evaluate (answered in increasing order).")
    activations: list[Activation] = Field(min_length=1)
    sigma_w: Real | None = Field(None, description="Weight std for every activation; default each one's EOC value.")
    sigma_b: Real = 0.0


class DatasetJSONIn(_In):
    x: Matrix


class DatasetOut(BaseModel):
    dataset_id: str
    n: int
    m0: int


class JobAccepted(BaseModel):
    job_id: str
    status_url: str
    status: JobStatus


class JobError(BaseModel):
    code: str
    message: str


class JobOut(BaseModel):
    job_id: str
    op: str | None = None
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    result: dict | None = None
    error: JobError | None = None


class SpectrumOut(BaseModel):
    """Answer of the core's ``analyze`` plus where it came from; non-finite numbers are null."""

    model_config = ConfigDict(extra="allow")

    dataset_id: str
    cache: Literal["hit", "miss"]
    n: int
    m0: int
    model: dict
    eigenvalues: list[float | None]
    lambda_min: float | None
    lambda_max: float | None
    condition_number: float | None
    singular: bool
    lambda_min_error: float | None = Field(
        None, description="Forward error estimate of lambda_min relative to it (2 n eps lambda_max / lambda_min); "
                          "null when singular")
    icd: dict | None = None


class SweepActivationOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    activation: dict
    lambda_min: list[float | None]
    lambda_max: list[float | None]
    condition_number: list[float | None]
    singular: list[bool]


class SweepOut(BaseModel):
    dataset_id: str
    cache: Literal["hit", "miss"]
    depths: list[int]
    results: list[SweepActivationOut]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    mode: Literal["embedded", "redis"]
    algorithm_version: str
    detail: str | None = None
