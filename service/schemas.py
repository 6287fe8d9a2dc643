"""Request and response bodies, one model per direction of data flow.

Only static facts live here (types, ``depth >= 1``, id formats); limits that depend on the
configuration are checked in :mod:`service.specs` so that the OpenAPI document does not
change with the environment.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    WrapValidator,
    field_validator,
    model_validator,
)

from eoc_ntk import MAX_DEPTH
from eoc_ntk.core.activations import ACTIVATION_NAMES, SMOOTH_NAMES, canonical_activation_name
from eoc_ntk.core.kernels import KINDS
from eoc_ntk.learning.dynamics import MAX_STEPS
from eoc_ntk.learning.regression import MAX_RIDGE
from jobs.states import JobStatus
from jobs.webhook_guard import MAX_URL_LENGTH

from .errors import ERROR_CODES
from .examples import EXAMPLES
from .json_numbers import array_or_list
from .patterns import ACTIVATION_PATTERN
from .schema_rules import DEPTHS_SCHEMA, depths_before_validation, request_schema

__all__ = [
    "ActivationAB", "ActivationNamed", "Activation", "ModelIn", "KernelsIn", "SpectraIn", "SweepsIn",
    "DatasetJSONIn", "DatasetOut", "JobOut", "CallbackOut", "JobStatus", "SpectrumOut", "SweepOut",
    "ErrorOut", "Health", "DATASET_ID_PATTERN",
]

DATASET_ID_PATTERN = r"^[0-9a-f]{32}$"

Real = Annotated[float, Field(strict=True)]
Depth = Annotated[int, Field(strict=True, ge=1, le=MAX_DEPTH, description="Number of weight layers l >= 1.")]
#: Standard deviations whose squares are normal floats (the core's range; sigma_b may be 0).
SigmaW = Annotated[float, Field(strict=True, ge=1e-150, le=1e150)]
SigmaB = Annotated[float, Field(strict=True, ge=0.0, le=1e150)]
#: Numbers in rows, each row at least one (the schema says so; the service's own checks refuse an
#: empty matrix or row with a message that names the fix).
_ROWS = {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "items": {"type": "number"}}}
#: Read from a JSON body as an array of shape (n, m0) when it is one (service.json_numbers; int8 to int32,
#: else float64: the narrowest dtype that holds every value exactly).
Matrix = Annotated[list[list[Real]], WrapValidator(array_or_list((2,))), WithJsonSchema(_ROWS),
                   Field(description="Data points, one per row: shape (n, m0).")]
DatasetId = Annotated[str, Field(pattern=DATASET_ID_PATTERN, description="Id returned by POST /v1/datasets.")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=request_schema)


class ActivationAB(_In):
    """``phi(s) = a*s + b*|s|`` by its coefficients."""

    a: Real
    b: Real


class ActivationNamed(_In):
    """A named activation: of the family relu (a=b=1/2), abs (0, 1), linear (1, 0), leaky_relu; or a smooth
    one, erf, tanh, gelu, silu (alias swish), at its edge of chaos for the model's sigma_b."""

    # The core's lists (eoc_ntk.core.activations), one home; any case ("ReLU"), "-" for "_", swish -> silu.
    name: Annotated[Literal[ACTIVATION_NAMES + SMOOTH_NAMES],  # type: ignore[valid-type]
                    BeforeValidator(canonical_activation_name)]
    slope: Real | None = Field(None, description="Negative-side slope of leaky_relu (default 0.01).")


#: The string forms of eoc_ntk.core.activations: "relu", "ReLU", "leaky_relu:0.1", "0.3,0.7".
ActivationText = Annotated[str, Field(
    min_length=1, max_length=200, pattern=ACTIVATION_PATTERN, examples=["relu", "leaky_relu:0.1", "0.3,0.7", "tanh"],
    description="An activation as text: relu, abs, linear (any case), leaky_relu:SLOPE, or A,B "
                "for phi(s) = A*s + B*|s|; or a smooth one: erf, tanh, gelu, silu (swish).")]


def _activation_tag(value) -> str:
    if isinstance(value, str):
        return "ActivationText"
    if isinstance(value, dict):
        return "ActivationNamed" if "name" in value else "ActivationAB"
    return "ActivationNamed" if isinstance(value, ActivationNamed) else "ActivationAB"


Activation = Annotated[
    Annotated[ActivationAB, Tag("ActivationAB")] | Annotated[ActivationNamed, Tag("ActivationNamed")]
    | Annotated[ActivationText, Tag("ActivationText")],
    Discriminator(_activation_tag),
]


class ModelIn(_In):
    """An MLP: depth, activation and initialisation (defaults: the edge of chaos)."""

    depth: Depth
    activation: Activation
    sigma_w: SigmaW | None = Field(None, description="Weight std; default the EOC value: 1/sqrt(a^2+b^2) for the "
                                   "family, for a smooth activation the one solving the EOC conditions at sigma_b.")
    sigma_b: SigmaB = Field(0.0, description="Bias std; 0 at the family's EOC; a smooth activation's EOC needs "
                            "sigma_b > 0 (e.g. 0.1).")


class _Data(_In):
    """Data inline (``x``) or by ``dataset_id``: exactly one."""

    x: Matrix | None = None
    dataset_id: DatasetId | None = None
    callback_url: str | None = Field(
        None, min_length=1, max_length=MAX_URL_LENGTH,
        description="An http(s) URL to POST the job resource to once the job has ended (finished, failed or "
                    "canceled), signed in `X-EOC-NTK-Signature` (see docs/webhooks.md). The request then always "
                    "becomes a job (202), as with `Prefer: respond-async`. Only hosts the service allows "
                    "(EOC_NTK_WEBHOOK_ALLOW) are accepted; others are refused with 422.")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.x is None) == (self.dataset_id is None):
            raise ValueError("give exactly one of x (inline data) or dataset_id (from POST /v1/datasets)")
        return self


#: The kernel kinds, from the core's list (``eoc_ntk.KINDS``).
KernelKind = Enum("KernelKind", {kind: kind for kind in KINDS}, type=str)  # type: ignore[misc]


class KernelsIn(_Data):
    """Kernel matrices K(x, x2) (unnormalised: no 1/n)."""

    model: ModelIn
    kinds: list[KernelKind] = Field(default_factory=lambda: [KernelKind.ntk], min_length=1, max_length=4)  # type: ignore[attr-defined]
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

    depths: Annotated[list[Depth], BeforeValidator(depths_before_validation), WithJsonSchema(DEPTHS_SCHEMA)] = Field(
        description='Depths to evaluate (answered in increasing order): a list, or text such as "1:100", '
                    '"1:200:10" (step; the end included) or "1,2,5" (combinable with commas).')
    activations: list[Activation] = Field(min_length=1)
    sigma_w: SigmaW | None = Field(None, description="Weight std for every activation; default each one's EOC value.")
    sigma_b: SigmaB = 0.0
    # Labels (optional, at most one source): add alignment and top_k_fraction per depth.
    y: "LabelsJSON | None" = None
    labels_id: "LabelsId | None" = None

    @model_validator(mode="after")
    def _at_most_one_label_source(self):
        if self.y is not None and self.labels_id is not None:
            raise ValueError("give at most one of y (inline labels) and labels_id (from POST /v1/labels)")
        return self


class DatasetJSONIn(_In):
    x: Matrix


class DatasetOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["DatasetOut"]]})

    dataset_id: str
    n: int
    m0: int


#: Every error code the service sends (:data:`service.errors.ERROR_CODES`).
ErrorCode = Literal[ERROR_CODES]  # type: ignore[valid-type]


class JobError(BaseModel):
    """Why a job failed or was canceled."""

    model_config = ConfigDict(extra="allow")

    code: ErrorCode
    message: str


class JobLinks(BaseModel):
    """Where to go next: this job, its bare result and, for spectra, sweeps, dynamics and learning
    curves, its figure (the last two answer 409 until the job has finished)."""

    self: str
    result: str
    plot: str | None = None


class CallbackOut(BaseModel):
    """The caller's webhook of this job and the outcome of its delivery so far."""

    url: str = Field(description="Where the job resource is posted once the job has ended.")
    attempts: int = Field(ge=0, description="Attempts made so far (0 until the job has ended).")
    last_status: int | None = Field(description="HTTP status of the last attempt; null before any, or when it got "
                                                "no answer (see last_error).")
    delivered_at: str | None = Field(description="When an attempt was answered 2xx (ISO 8601, UTC); null until then.")
    last_error: str | None = Field(None, description="Why the last attempt failed without an HTTP status "
                                                     "(connection error, timeout, refused by the SSRF guard).")


class JobOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["JobOut"]]})

    job_id: str
    op: str | None = None
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    attempt: int = Field(1, ge=1, description="Which run of the job this is, from 1: a job handed back by a worker "
                         "asked to stop, or lost with its worker, runs again as its next attempt (at most "
                         "EOC_NTK_JOB_MAX_ATTEMPTS).")
    status_url: str = Field(description="This resource (the same as links.self).")
    links: JobLinks
    # Absent (never null) until the job has ended: the type is the one a present value has.
    result: "JobResult" = Field(  # type: ignore[assignment]
        None, description="Once finished: the answer the synchronous request gives (`kind` names the operation).")
    error: JobError = Field(None, description="Once failed or canceled: why.")  # type: ignore[assignment]
    started_at: str | None = Field(None, description="When the job started running (ISO 8601, UTC); absent while "
                                   "queued.")
    elapsed_seconds: float | None = Field(None, description="Seconds it has run (until it ended, once it has).")
    eta_seconds: float | None = Field(
        None, description="Estimated seconds left while it runs: the cost model's prediction of the rest, scaled "
                          "by the slowdown observed when the current progress was reached; 0 once ended.")
    callback: CallbackOut = Field(  # type: ignore[assignment]
        None, description="Present when the caller registered a webhook (`callback_url`) for this job: where it "
                          "goes and how its delivery went. A webhook's own body shows this attempt's number.")


class SpectrumOut(BaseModel):
    """Answer of the core's ``analyze`` plus where it came from; non-finite numbers are null."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLES["SpectrumOut"]]})

    kind: Literal["spectra"]
    dataset_id: str
    cache: Literal["hit", "miss"]
    n: int
    m0: int
    model: dict
    eigenvalues: list[float | None] | None = Field(
        description="Every eigenvalue of K/n; null for a spectrum computed on the Dask cluster (engine dask), "
                    "which certifies lambda_min and lambda_max only")
    lambda_min: float | None
    lambda_max: float | None
    condition_number: float | None
    singular: bool
    lambda_min_error: float | None = Field(
        None, description="Forward error estimate of lambda_min relative to it (2 n eps lambda_max / lambda_min); "
                          "null when singular")
    icd: dict | None = None
    engine: Literal["numpy", "dask", "torch-cpu", "torch-cuda"] = Field(
        "numpy", description="Where it was computed: numpy (one machine: every eigenvalue and the ICD analysis), "
                             "dask (the cluster of EOC_NTK_DASK_ADDRESS, for n >= EOC_NTK_DASK_MIN_N: extreme "
                             "eigenvalues only), or torch-cuda / torch-cpu (the torch backend on the device of "
                             "EOC_NTK_DEVICE: the numpy answer, every eigenvalue and the ICD analysis)")


class SweepActivationOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    activation: dict
    lambda_min: list[float | None]
    lambda_max: list[float | None]
    condition_number: list[float | None]
    singular: list[bool]
    limit_note: str | None = Field(
        None, description="Why limit_condition_number is null when it is: off the edge of chaos, sigma_b != 0 for "
                          "the family, or a variance fixed point q* that repels (GELU, SiLU at small sigma_b), "
                          "with a sigma_b at which it attracts; null when the limit is given")


class SweepOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["SweepOut"]]})

    kind: Literal["sweeps"]
    dataset_id: str
    cache: Literal["hit", "miss"]
    depths: list[int]
    results: list[SweepActivationOut]
    labels_id: str | None = Field(None, description="The labels' id when labels were given (then every result "
                                                    "has alignment and top_k_fraction per depth).")


class KernelsOut(BaseModel):
    """Kernel matrices K(x, x2) of the requested kinds, shape (n, n2), unnormalised (no 1/n)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["KernelsOut"]]})
    kind: Literal["kernels"]
    dataset_id: str
    cache: Literal["hit", "miss"]
    model: dict
    x2_dataset_id: str | None = Field(description="The second set of points, or null for K(x, x).")
    shape: list[int] = Field(description="[n, n2].")
    ntk: list[list[float | None]] | None = None
    nngp: list[list[float | None]] | None = None
    icd: list[list[float | None]] | None = None
    angle: list[list[float | None]] | None = None


class ValidationDetail(BaseModel):
    field: str | None
    message: str
    type: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: ErrorCode = Field(description="What went wrong, as a stable name.")
    message: str = Field(description="A sentence naming the field, the problem and the fix.")
    field: str | None = Field(None, description="The request field (dotted path), parameter or header concerned.")
    details: list[ValidationDetail] | None = Field(None, description="invalid_input: every refused field (at "
                                                                     "most 20).")
    status: JobStatus | None = Field(None, description="conflict on DELETE /v1/jobs/{job_id}: the job's state.")


class ErrorOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["ErrorOut"]]})

    error: ErrorDetail


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["Health"]]})

    status: Literal["ok", "unavailable"]
    mode: Literal["embedded", "redis"]
    algorithm_version: str
    detail: str | None = None


# Labels (docs/learning.md): uploaded with the data or on their own, used by
# /v1/dynamics, /v1/learning-curves and /v1/sweeps.

LABELS_ID_PATTERN = DATASET_ID_PATTERN


def _labels_tag(value) -> str:
    """Rows of numbers (shape (n, k)) when the first entry is a list, else numbers (shape (n,))."""
    return "LabelsMatrix" if isinstance(value, list) and value and isinstance(value[0], list) else "LabelsVector"


_Labels = Annotated[Annotated[list[Real], Tag("LabelsVector")] | Annotated[list[list[Real]], Tag("LabelsMatrix")],
                    Discriminator(_labels_tag)]
#: Read from a JSON body as an array of shape (n,) or (n, k) when it is one (service.json_numbers; int8 to
#: int32, else float64: the narrowest dtype that holds every value exactly).
LabelsJSON = Annotated[_Labels, WrapValidator(array_or_list((1, 2))),
                       WithJsonSchema({"oneOf": [{"type": "array", "minItems": 1, "items": {"type": "number"}},
                                                 _ROWS]}),
                       Field(description="Labels, one row per data point: shape (n,) or (n, k) (k outputs, e.g. "
                                         "one-hot classes).")]
LabelsId = Annotated[str, Field(pattern=LABELS_ID_PATTERN, description="Id returned by POST /v1/labels "
                                                                        "(or by POST /v1/datasets with y).")]


class LabelsJSONIn(_In):
    y: LabelsJSON


class LabelsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["LabelsOut"]]})

    labels_id: str
    n: int = Field(description="Number of label rows.")
    shape: list[int] = Field(description="Shape of the labels: [n] or [n, k].")


class DatasetWithLabelsJSONIn(_In):
    """A dataset upload as JSON: the points and, optionally, their labels."""

    x: Matrix
    y: LabelsJSON | None = None

    @field_validator("y", mode="before")
    @classmethod
    def _not_null(cls, value):
        if value is None:  # the upload's document declares y an array: leave it out for no labels
            raise ValueError("y must be an array of labels, not null; leave y out to upload points without labels")
        return value


class DatasetWithLabelsOut(DatasetOut):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["DatasetWithLabelsOut"]]})

    labels_id: str | None = Field(None, description="Id of the labels sent with the data (`y`), if any.")


class _LabelledData(_Data):
    """Data (``x`` or ``dataset_id``) and labels (``y`` or ``labels_id``): exactly one of each."""

    y: LabelsJSON | None = None
    labels_id: LabelsId | None = None

    @model_validator(mode="after")
    def _one_label_source(self):
        if (self.y is None) == (self.labels_id is None):
            raise ValueError("give exactly one of y (inline labels) or labels_id (from POST /v1/labels)")
        return self


class DynamicsIn(_LabelledData):
    """Exact training loss of the infinite-width network under full-batch gradient descent (docs/learning.md §3)."""

    model: ModelIn
    learning_rate: Annotated[float, Field(strict=True, gt=0.0, allow_inf_nan=False)] | None = Field(
        None, description="Learning rate eta > 0; default 1 / lambda_max(K/n): half of max_learning_rate = "
                          "2 / lambda_max(K/n), the largest rate at which the linearised, infinite-width model "
                          "converges (finite networks may still converge above it, through a catapult).")
    steps: list[Annotated[int, Field(strict=True, ge=0, le=MAX_STEPS)]] | None = Field(
        None, min_length=1, max_length=1000,
        description="Step counts at which to report the loss; default [0, 1, 10, 100, 1000, 10000].")
    init: Literal["zero", "nngp"] = Field(
        "zero", description="`nngp` adds the loss expected from random initial outputs.")


class LearningCurvesIn(_LabelledData):
    """Eigenlearning estimate vs measured kernel-regression test error per training-set size (docs/learning.md §5)."""

    model: ModelIn
    sizes: list[Annotated[int, Field(strict=True, ge=1)]] = Field(
        min_length=1, max_length=100, description="Training-set sizes m, each in [1, n - 1].")
    ridge: Annotated[float, Field(strict=True, ge=0.0, le=MAX_RIDGE, allow_inf_nan=False)] = Field(
        0.0, description="Ridge per training point.")
    splits: Annotated[int, Field(strict=True, ge=1, le=100)] = Field(5, description="Random subsets per size.")
    seed: Annotated[int, Field(strict=True, ge=0, le=2 ** 63 - 1)] = Field(0, description="Seed of the subsets.")


class DynamicsOut(BaseModel):
    """``eoc_ntk.Dynamics.to_dict()`` plus where it came from; non-finite numbers are null."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLES["DynamicsOut"]]})

    kind: Literal["dynamics"]
    dataset_id: str
    labels_id: str
    cache: Literal["hit", "miss"]
    n: int
    max_learning_rate: float | None = Field(
        description="2 / lambda_max(K/n): the largest rate at which the linearised, infinite-width model converges "
                    "(finite networks may still converge above it, through a catapult: docs/learning.md §7). null "
                    "where it leaves float64 (inputs near 1e-155 or 1e150): `scaled` then holds it times "
                    "2^scaled.exponent.")
    learning_rate: float | None
    steps: list[int]
    train_loss: list[float | None]


class LearningCurveOut(BaseModel):
    """``eoc_ntk.LearningCurve.to_dict()`` plus where it came from; non-finite numbers are null."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLES["LearningCurveOut"]]})

    kind: Literal["learning_curves"]
    dataset_id: str
    labels_id: str
    cache: Literal["hit", "miss"]
    n: int
    sizes: list[int]
    predicted_test_mse: list[float | None]
    measured_test_mse: list[float | None]
    measured_std: list[float | None]


#: A finished job's result: the answer of its operation, told apart by ``kind``.
JobResult = Annotated[SpectrumOut | SweepOut | KernelsOut | DynamicsOut | LearningCurveOut, Field(discriminator="kind")]

SweepsIn.model_rebuild()
JobOut.model_rebuild()
__all__ += ["LabelsJSONIn", "LabelsOut", "DatasetWithLabelsJSONIn", "DatasetWithLabelsOut", "DynamicsIn",
            "LearningCurvesIn", "DynamicsOut", "LearningCurveOut", "LABELS_ID_PATTERN", "KernelsOut", "JobLinks",
            "JobResult", "ErrorCode", "ErrorDetail"]
