"""Regenerate the README's figures from the code: ``python docs/make_figures.py`` (``--page-only``:
only the web page's screenshots).

Writes, next to this script:

- ``sweep.png``: condition number of K/n vs depth on 200 of scikit-learn's digits (the data of
  ``eoc-ntk reproduce``) for linear, leaky ReLU 0.1, ReLU and abs, with the depth limit;
- ``icd_error.png``: the ICD approximation's relative error vs depth for Delta = 0.25, 0.5, 1;
- ``eigenvalues.png``: the sorted eigenvalues of K/n at depth 10 for the same activations;
- ``web_page.png``: a screenshot of the web page (a 1400 x 900 viewport) after a sweep, and
  ``web_page_eigenvalues.png``: the same after a click on the table's row of depth 10, whose
  eigenvalue figure opens under it (both need selenium, ``chromium`` and ``chromedriver``;
  skipped, saying so, without them).

Needs the ``[plots]``, ``[sklearn]`` and, for the screenshot, ``[service]`` extras.
"""
from __future__ import annotations

import os
import shutil
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def figures() -> None:
    from eoc_ntk import Model, analyze, plots
    from eoc_ntk.core.sweep import activation_sweep
    from eoc_ntk.reproduce import DELTAS, activation_for_delta, digits

    x = digits(200, seed=0)
    acts = ["linear", "leaky_relu:0.1", "relu", "abs"]
    depths = [1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500]
    sweep = activation_sweep(x, depths, acts)
    plots.save(plots.sweep_figure(sweep, "200 digits: condition number vs depth"),
               os.path.join(HERE, "sweep.png"))

    icd_depths = [2, 3, 5, 10, 20, 50, 100, 200]
    from eoc_ntk.reproduce import _offdiag_rel_errors

    results = []
    for delta in DELTAS:
        a, b = activation_for_delta(delta)
        errors = [_offdiag_rel_errors(x, d, a, b) for d in icd_depths]
        results.append({"activation": f"Δ={delta:g}", "median": [float(np.median(e)) for e in errors],
                        "max": [float(e.max()) for e in errors]})
    plots.save(plots.icd_error_figure({"depths": icd_depths, "results": results}),
               os.path.join(HERE, "icd_error.png"))

    spectra = []
    for name in acts[1:]:
        from eoc_ntk.core.activations import parse_activation

        act = parse_activation(name)
        spectra.append(analyze(x, Model(10, act.a, act.b)))
    plots.save(plots.eigenvalue_figure(spectra), os.path.join(HERE, "eigenvalues.png"))


def screenshot() -> None:
    chromium = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                                 shutil.which("google-chrome")) if p), None)
    driver_path = shutil.which("chromedriver")
    try:
        import uvicorn
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError as exc:
        print(f"web_page.png skipped: {exc.name} is not installed", file=sys.stderr)
        return
    if chromium is None or driver_path is None:
        print("web_page.png skipped: needs chromium and chromedriver", file=sys.stderr)
        return
    import socket

    from service.app import create_app
    from service.config import Settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(redis_url=None)), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900"):  # scroll bars shown: the table scrolls
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        pts = np.random.default_rng(0).normal(size=(40, 12))
        driver.find_element("id", "paste").send_keys("\n".join(" ".join(f"{v:.4f}" for v in row) for row in pts))
        depths = driver.find_element("id", "depths")
        depths.clear()
        depths.send_keys("1:10,20,50,100")
        driver.find_element("id", "act-leaky").click()
        driver.find_element("id", "run").click()
        WebDriverWait(driver, 120, poll_frequency=0.2).until(lambda d: "done" in d.find_element("id", "status").text)
        driver.save_screenshot(os.path.join(HERE, "web_page.png"))
        # The eigenvalue figure of a depth picked in the table (the row of depth 10).
        cell = driver.find_element("css selector", "#results tbody tr[data-depth='10'] td")  # where a user clicks
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
        cell.click()
        WebDriverWait(driver, 120, poll_frequency=0.2).until(
            lambda d: "eigenvalues at depth 10 shown" in d.find_element("id", "status").text)
        time.sleep(0.5)  # the figure's scroll into view
        driver.save_screenshot(os.path.join(HERE, "web_page_eigenvalues.png"))
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(10)


if __name__ == "__main__":
    if "--page-only" not in sys.argv[1:]:  # --page-only: the page's screenshots alone (the figures take minutes)
        figures()
    screenshot()
    print("figures written to", HERE)
