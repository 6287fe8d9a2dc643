"""Examples of the request and response bodies in the OpenAPI document: real answers of the
service to the example requests (numbers rounded to 6 digits)."""
from __future__ import annotations

__all__ = ["EXAMPLES"]

_X = [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]
_DATASET = "3e0464044cbe5e1f1cb1b47e4a9c05a1"
_LABELS = "d325ba09001f726bc321465e96242f49"
_MODEL = {"depth": 3, "a": 0.5, "b": 0.5, "sigma_w": 1.41421, "sigma_b": 0.0, "delta": 0.5, "output_dim": 1}

EXAMPLES: dict[str, dict] = {
    "SpectraIn": {"x": _X, "model": {"depth": 3, "activation": "relu"}},
    "KernelsIn": {"x": _X[:2], "model": {"depth": 2, "activation": {"a": 0.5, "b": 0.5}}, "kinds": ["ntk", "nngp"]},
    "SweepsIn": {"dataset_id": _DATASET, "depths": "1:3", "activations": ["relu", "abs"]},
    "DynamicsIn": {"x": _X, "y": [1.0, -0.5, 0.25], "model": {"depth": 2, "activation": "relu"}, "steps": [0, 10, 100]},
    "LearningCurvesIn": {"x": [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.6, 0.8], [-1.0, 0.0], [0.8, -0.6]],
                         "y": [1.0, 0.5, 0.0, -0.5, -1.0, 0.7], "model": {"depth": 2, "activation": "relu"},
                         "sizes": [2, 4], "splits": 2},
    "SpectrumOut": {
        "kind": "spectra", "dataset_id": _DATASET, "cache": "miss", "engine": "numpy", "n": 3, "m0": 2,
        "model": _MODEL, "eigenvalues": [0.248555, 0.781147, 1.9703], "lambda_min": 0.248555, "lambda_max": 1.9703,
        "condition_number": 7.927, "singular": False, "lambda_min_error": 1.05609e-14,
        "icd": {"max_abs_error": 0.732186, "lambda_min_bounds": [0.0, 0.805991],
                "lambda_max_bounds": [1.8927, 4.42904], "condition_number_bounds": [2.34829, None]}},
    "KernelsOut": {
        "kind": "kernels", "dataset_id": "a8d15097122b36ab3ebe0685e9712283", "cache": "miss",
        "model": {"depth": 2, "a": 0.5, "b": 0.5, "sigma_w": 1.41421, "sigma_b": 0.0}, "x2_dataset_id": None,
        "shape": [2, 2], "ntk": [[2.0, 1.10045], [1.10045, 2.0]], "nngp": [[1.0, 0.677548], [0.677548, 1.0]]},
    "SweepOut": {
        "kind": "sweeps", "dataset_id": _DATASET, "cache": "miss", "depths": [1, 2, 3],
        "results": [{"activation": {"a": 0.5, "b": 0.5, "sigma_w": 1.41421, "sigma_b": 0.0,
                                    "display_label": "ReLU (Δ=0.5)"},
                     "lambda_min": [0.0, 0.104356, 0.248555], "lambda_max": [0.666667, 1.33066, 1.9703],
                     "condition_number": [None, 12.7512, 7.927], "singular": [True, False, False]}]},
    "DynamicsOut": {
        "kind": "dynamics", "dataset_id": _DATASET, "labels_id": _LABELS, "cache": "miss", "n": 3,
        "max_learning_rate": 1.50301, "learning_rate": 0.751505, "steps": [0, 10, 100],
        "train_loss": [0.21875, 0.0252852, 1.04343e-08]},
    "LearningCurveOut": {
        "kind": "learning_curves", "dataset_id": "9e087b5ba81c1fa3fb45078833872db5",
        "labels_id": "c7d345d972325017993d15e8a447563b", "cache": "miss", "n": 6, "sizes": [2, 4],
        "predicted_test_mse": [0.203706, 0.0366234], "measured_test_mse": [0.244763, 0.132156],
        "measured_std": [0.188081, 0.101543]},
    "DatasetOut": {"dataset_id": _DATASET, "n": 3, "m0": 2},
    "DatasetWithLabelsOut": {"dataset_id": _DATASET, "n": 3, "m0": 2, "labels_id": _LABELS},
    "LabelsOut": {"labels_id": _LABELS, "n": 3, "shape": [3]},
    "Health": {"status": "ok", "mode": "embedded", "algorithm_version": "2"},
    "ErrorOut": {"error": {"code": "invalid_input", "message": "model.depth: Input should be greater than or "
                                                              "equal to 1", "field": "model.depth"}},
}
EXAMPLES["JobOut"] = {
    "job_id": "spectra-3e0464044cbe5e1f1cb1b47e4a9c05a1", "op": "spectra", "status": "finished", "progress": 1.0,
    "attempt": 1,
    "status_url": "/v1/jobs/spectra-3e0464044cbe5e1f1cb1b47e4a9c05a1",
    "links": {"self": "/v1/jobs/spectra-3e0464044cbe5e1f1cb1b47e4a9c05a1",
              "result": "/v1/jobs/spectra-3e0464044cbe5e1f1cb1b47e4a9c05a1/result",
              "plot": "/v1/jobs/spectra-3e0464044cbe5e1f1cb1b47e4a9c05a1/plot"},
    "started_at": "2026-01-05T10:00:00.000Z", "elapsed_seconds": 0.042, "eta_seconds": 0.0,
    "result": EXAMPLES["SpectrumOut"]}
