"""Figures of the training-loss prediction and the learning curve (issue #16 point 5): the drawing
functions of eoc_ntk.plots on hand-written results, and /v1/plots/dynamics,
/v1/plots/learning-curve and /v1/jobs/{id}/plot of the service (PNG and SVG, checked by decoding
them with Pillow and an XML parser)."""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from _service_support import wait_for_job
from _users_support import small_data
from eoc_ntk import plots

MODEL = {"depth": 3, "activation": {"name": "relu"}}


def test_dynamics_figure_draws_the_loss_on_log_axes_without_its_zeros():
    result = {"steps": [0, 1, 10, 100], "train_loss": [0.5, 0.2, 0.01, 0.0],
              "expected_train_loss": [0.7, 0.3, 0.02, 1e-3],
              "learning_rate": 0.5, "max_learning_rate": 1.0, "initial_loss": 0.5, "unreachable_fraction": 0.01,
              "model": {"depth": 3, "a": 0.5, "b": 0.5}}
    fig = plots.dynamics_figure(result, measured={"width 64": ([0, 1, 10], [0.5, 0.25, 0.02])})
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog" and ax.get_yscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    predicted = lines["predicted (infinite width)"]
    np.testing.assert_array_equal(predicted.get_xdata(), [0, 1, 10])       # the loss 0 is not drawn on a log axis
    np.testing.assert_array_equal(predicted.get_ydata(), [0.5, 0.2, 0.01])
    np.testing.assert_array_equal(lines["expected, random initial outputs"].get_ydata(), [0.7, 0.3, 0.02, 1e-3])
    np.testing.assert_array_equal(lines["width 64"].get_ydata(), [0.5, 0.25, 0.02])
    assert lines["unreachable (null space)"].get_ydata()[0] == pytest.approx(0.005)
    assert "ReLU" in ax.get_title() and "depth 3" in ax.get_title() and "0.5 × max 1" in ax.get_title()


def test_training_figure_draws_the_prediction_and_each_widths_mean_on_linear_steps():
    result = {"n": 4, "depth": 3, "a": 0.5, "b": 0.5, "steps": [0, 1, 2], "rate_factor": 0.9,
              "learning_rate": 0.9, "max_learning_rate": 1.0, "predicted_loss": [0.5, 0.2, 0.08],
              "widths": [64, 256], "measured_loss": [[[0.5, 0.3, 0.1], [0.5, 0.1, 0.06]], [[0.5, 0.21, 0.09]]]}
    ax = plots.training_figure(result).axes[0]
    assert ax.get_xscale() == "linear" and ax.get_yscale() == "log" and ax.get_xlim() == (-0.3, 2.3)
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["predicted (infinite width)"].get_ydata(), [0.5, 0.2, 0.08])
    np.testing.assert_allclose(lines["width 64 (mean of 2)"].get_ydata(), [0.5, 0.2, 0.08], rtol=1e-15)
    np.testing.assert_array_equal(lines["width 256 (mean of 1)"].get_ydata(), [0.5, 0.21, 0.09])
    assert "0.9 × max 1" in ax.get_title()


def test_learning_curve_figure_draws_estimate_and_measurement_with_error_bars():
    result = {"sizes": [10, 20, 40], "predicted_test_mse": [0.5, None, 0.1], "measured_test_mse": [0.6, 0.3, 0.15],
              "measured_std": [0.05, 0.02, None], "ridge": 0.0}
    ax = plots.learning_curve_figure(result).axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [10, 40])            # a diverging (None) estimate is skipped
    np.testing.assert_array_equal(line.get_ydata(), [0.5, 0.1])
    bars = ax.containers[0]
    np.testing.assert_array_equal(bars.lines[0].get_ydata(), [0.6, 0.3, 0.15])
    segments = bars.lines[2][0].get_segments()
    np.testing.assert_allclose([s[1][1] - s[0][1] for s in segments], [0.1, 0.04, 0.0])  # +- one std


def _labelled(seed=3):
    x = small_data(seed=seed)
    return {"x": x.tolist(), "y": np.sign(x[:, 0]).tolist(), "model": MODEL}


def _check_png(content: bytes, size=(2250, 1260)):
    from PIL import Image

    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(content))
    image.verify()
    assert image.size == size


def _check_svg(content: bytes, *texts: str):
    root = ET.fromstring(content)
    assert root.tag.endswith("svg")
    for text in texts:
        assert text.encode() in content, text


@pytest.mark.parametrize("path, body, text", [
    ("/v1/plots/dynamics", {"steps": [0, 1, 10, 100]}, "predicted (infinite width)"),
    ("/v1/plots/learning-curve", {"sizes": [3, 6, 9], "splits": 2}, plots.ERROR_BAR_LABEL),
])
def test_plots_computed_on_request_as_png_and_svg(client, path, body, text):
    body = {**_labelled(), **body}
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    _check_png(r.content)
    r = client.post(f"{path}?format=svg&width=5&height=3", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    _check_svg(r.content, text, 'width="360pt"')
    r = client.post(f"{path}?dpi=50", json=body)
    _check_png(r.content, (375, 210))
    assert client.post(f"{path}?format=gif", json=body).status_code == 422
    bad = client.post(path, json={**body, "y": [1.0, 2.0]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "y"


@pytest.mark.parametrize("path, json_path, body", [
    ("/v1/plots/dynamics", "/v1/dynamics", {"steps": [0, 5, 50]}),
    ("/v1/plots/learning-curve", "/v1/learning-curves", {"sizes": [4, 8], "splits": 2}),
])
def test_plot_of_a_result_not_cached_is_a_job_and_its_plot(client, path, json_path, body):
    """As /v1/plots/sweep: with Prefer: respond-async an uncached result is a job (202), whose plot
    is served by GET /v1/jobs/{id}/plot once it has finished (409 before: not tested, it is quick)."""
    body = {**_labelled(seed=11), **body}
    r = client.post(f"{path}?format=svg", json=body, headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert wait_for_job(client, job_id)["status"] == "finished"
    r = client.get(f"/v1/jobs/{job_id}/plot?format=svg")
    assert r.status_code == 200
    _check_svg(r.content, "depth 3")
    _check_png(client.get(f"/v1/jobs/{job_id}/plot").content)
    # Now cached: the JSON answer and the plot are answered at once.
    assert client.post(json_path, json=body).json()["cache"] == "hit"
    assert client.post(path, json=body).status_code == 200
    again = client.post(path, json=body, headers={"Prefer": "respond-async"})  # one shape: a finished job
    assert again.status_code == 202 and again.json()["status"] == "finished"
