"""End-to-end test of the web page at ``/`` in headless Chromium (selenium + Debian's chromedriver).

Skipped when selenium, ``chromium`` or ``chromedriver`` is missing (CI: ``apt-get install
chromium chromium-driver``). Selenium is pointed at the system driver, so it never tries to
download one.
"""
from __future__ import annotations

import json
import os
import shutil
from urllib.parse import parse_qs, urlsplit
from urllib.request import urlopen

import numpy as np
import pytest

from _users_support import cond_of, eoc_angle_ntk, small_data

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.support.ui import Select  # noqa: E402

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="headless test needs chromium and chromedriver (apt-get install chromium "
                                "chromium-driver)")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,1600"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait_for(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def _choose(driver, depths: str, *toggle: str) -> None:
    """Type ``depths`` in the depths field and click the check box of each activation in ``toggle``
    (ReLU and abs start checked: ``"abs"`` leaves ReLU only)."""
    field = driver.find_element("id", "depths")
    field.clear()
    field.send_keys(depths)
    for name in toggle:
        driver.find_element("id", f"act-{name}").click()


def _plot_shown(driver):
    return driver.execute_script(
        "const i = document.getElementById('plot'); return i.style.display === 'block' && i.naturalWidth > 0;")


def test_upload_a_file_watch_the_job_and_see_plot_and_table(browser, live_server, tmp_path):
    x = small_data(10, 12, seed=21)
    path = tmp_path / "points.npy"
    np.save(path, x)
    browser.get(live_server.url + "/")
    browser.find_element("id", "file").send_keys(os.fspath(path))
    _choose(browser, "2:4,30")
    browser.execute_script(  # record every status line the page shows
        "window.seen = []; const s = document.getElementById('status');"
        "new MutationObserver(() => window.seen.push(s.textContent)).observe(s, {childList: true, subtree: true});")
    browser.find_element("id", "run").click()
    _wait_for(browser, _plot_shown)
    assert browser.find_element("id", "progress").get_attribute("value") == "1"
    seen = browser.execute_script("return window.seen;")
    assert any(line.startswith("job ") and "%" in line for line in seen), seen  # the job was watched
    assert "done" in browser.find_element("id", "status").text
    rows = browser.find_elements("css selector", "#results tbody tr")
    assert [r.find_element("css selector", "td, th").text for r in rows] == ["2", "3", "4", "30", "limit"]
    cells = rows[1].find_elements("tag name", "td")  # depth 3: cond, lambda_min, lambda_max of ReLU, then abs
    assert float(cells[0].text) == 3
    for i, (a, b) in enumerate(((0.5, 0.5), (0.0, 1.0))):
        eig = np.linalg.eigvalsh(eoc_angle_ntk(x, 3, a, b)[0] / len(x))
        cond, lmin, lmax = (float(c.text) for c in cells[1 + 3 * i: 4 + 3 * i])
        assert cond == pytest.approx(eig[-1] / eig[0], rel=1e-4)
        assert lmin == pytest.approx(eig[0], rel=1e-4) and lmax == pytest.approx(eig[-1], rel=1e-4)
    header = [[th.text for th in tr.find_elements("tag name", "th")]
              for tr in browser.find_elements("css selector", "#results thead tr")]
    assert header[0] == ["depth", "ReLU (Δ=0.5)", "abs (Δ=1)"]  # the one display label, over its 3 columns
    assert header[1] == ["cond", "λ_min", "λ_max"] * 2
    # Downloads: the CSV and JSON of the table, the figure as SVG and PNG.
    got = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const read = async (id) => { const b = await (await fetch(document.getElementById(id).href)).blob();
                                     return [b.type, (await b.text()).slice(0, 200000)]; };
        Promise.all(["dl-csv", "dl-json", "dl-svg", "dl-png"].map(read)).then(done);""")
    (csv_type, csv_text), (_, json_text), (_, svg_text), (png_type, _) = got
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith('"depth","ReLU (Δ=0.5) condition_number"') and len(lines) == 6
    depth3 = lines[2].split(",")
    assert float(depth3[1]) == pytest.approx(cond_of(eoc_angle_ntk(x, 3)[0]), rel=1e-9)
    assert '"depths"' in json_text and "<svg" in svg_text and png_type == "image/png"
    # The eigenvalue figure of a depth picked in the table: click its row, or pick it in the select.
    dataset_id = json.loads(json_text)["dataset_id"]
    browser.execute_script("performance.clearResourceTimings();")
    rows[3].click()  # depth 30
    _wait_for(browser, _eigenvalues_shown)
    assert browser.find_element("id", "eig-depth").get_attribute("value") == "30"
    asked = _eigenvalue_requests(browser)
    assert len(asked) == 1 and asked[0]["depth"] == ["30"] and asked[0]["dataset_id"] == [dataset_id]
    assert asked[0]["activations"][0].lower().split(";") == ["relu", "abs"]  # every activation asked
    eig_svg = browser.execute_async_script(_READ_LINK, "dl-eig-svg")
    assert "eigenvalues of K/n at depth 30" in eig_svg and "ReLU (Δ=0.5)" in eig_svg and "abs (Δ=1)" in eig_svg
    for activation, (a, b) in (("relu", (0.5, 0.5)), ("abs", (0.0, 1.0))):  # the spectra it drew: depth 30's
        got = json.loads(urlopen(f"{live_server.url}/v1/spectra?dataset_id={dataset_id}&depth=30"
                                 f"&activation={activation}").read())
        ref = np.linalg.eigvalsh(eoc_angle_ntk(x, 30, a, b)[0] / len(x))
        assert np.sort(got["eigenvalues"]) == pytest.approx(ref, rel=1e-6, abs=1e-12)
    browser.execute_script("performance.clearResourceTimings();")
    Select(browser.find_element("id", "eig-depth")).select_by_visible_text("3")
    _wait_for(browser, lambda d: _eigenvalues_shown(d) and _eigenvalue_requests(d))
    assert [q["depth"] for q in _eigenvalue_requests(browser)] == [["3"]]
    assert "at depth 3" in browser.execute_async_script(_READ_LINK, "dl-eig-svg")
    picked = browser.find_elements("css selector", "#results tbody tr.picked")
    assert [r.find_element("tag name", "td").text for r in picked] == ["3"]


_READ_LINK = """const done = arguments[arguments.length - 1];
    fetch(document.getElementById(arguments[0]).href).then((r) => r.text()).then(done);"""


def _eigenvalues_shown(driver):
    return driver.execute_script(
        "const i = document.getElementById('eig-plot'); return i.style.display === 'block' && i.naturalWidth > 0;")


def _eigenvalue_requests(driver):
    """The query of every request the page made for the eigenvalue figure since the last clear."""
    urls = driver.execute_script("return performance.getEntriesByType('resource').map((e) => e.name);")
    return [parse_qs(urlsplit(u).query) for u in urls if urlsplit(u).path == "/v1/plots/eigenvalues"]


def test_pasted_numbers_and_an_error_message(browser, live_server):
    browser.get(live_server.url + "/")
    # The last point points the same way as the second (0-based point 1): singular at every depth.
    browser.find_element("id", "paste").send_keys("1 0 0\n0 1 0\n0.6 0.8 0.1\n0.2 -0.3 0.9\n0 2 0")
    _choose(browser, "1:3", "abs")  # ReLU only
    browser.find_element("id", "run").click()
    _wait_for(browser, _plot_shown)
    header = browser.find_elements("css selector", "#results thead th")
    assert [th.text for th in header] == ["depth", "ReLU (Δ=0.5)", "cond", "λ_min", "λ_max"]
    singular = browser.find_element("id", "singular").text  # the reason, with the offending points
    assert "singular (cond = ∞) at depth(s) 1, 2, 3" in singular and "[[1, 4]]" in singular, singular
    assert "numbered from 0" in singular
    browser.find_element("id", "act-relu").click()  # nothing chosen: the page says so
    browser.find_element("id", "run").click()
    _wait_for(browser, lambda d: "activation" in d.find_element("id", "status").text)
    assert browser.find_element("id", "status").get_attribute("class") == "error"


def test_bad_data_is_told_in_the_pages_terms(browser, live_server):
    browser.get(live_server.url + "/")
    browser.find_element("id", "paste").send_keys("1 2 3")  # one point
    browser.find_element("id", "run").click()
    _wait_for(browser, lambda d: d.find_element("id", "status").get_attribute("class") == "error")
    text = browser.find_element("id", "status").text
    assert "at least 2 points" in text and "EOC_NTK" not in text and "dataset_id" not in text


def test_cancel_button_stops_a_running_job(browser, live_server, tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.random.default_rng(3).normal(size=(900, 30)))
    browser.get(live_server.url + "/")
    browser.find_element("id", "file").send_keys(os.fspath(path))
    _choose(browser, "1:200", "linear")
    _wait_for(browser, lambda d: True)
    browser.find_element("id", "run").click()
    _wait_for(browser, lambda d: d.find_element("id", "cancel").is_displayed())
    browser.find_element("id", "cancel").click()
    _wait_for(browser, lambda d: d.find_element("id", "status").get_attribute("class") == "error")
    assert browser.find_element("id", "status").text == "canceled"
    assert not browser.find_element("id", "cancel").is_displayed()


def _train_plot_shown(driver):
    return driver.execute_script(
        "const i = document.getElementById('train-plot'); return i.style.display === 'block' && i.naturalWidth > 0;")


def test_labels_column_gives_the_training_loss_figure(browser, live_server, tmp_path):
    """Labels as the last column of the uploaded CSV: the second figure and the largest rate at which the
    linearised, infinite-width model converges, 2 / lambda_max(K/n), of the points without that column
    (independent reference kernel)."""
    x = small_data(10, 6, seed=23)
    y = np.sign(x[:, 0])
    path = tmp_path / "labelled.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",")
    browser.get(live_server.url + "/")
    browser.find_element("id", "file").send_keys(os.fspath(path))
    browser.find_element("id", "label-column").send_keys("-1")
    _choose(browser, "2:3", "abs")  # ReLU only
    browser.find_element("id", "run").click()
    _wait_for(browser, _train_plot_shown)
    info = browser.find_element("id", "train-info").text
    lam_max = np.linalg.eigvalsh(eoc_angle_ntk(x, 3)[0] / len(x))[-1]
    rate = float(info.split("largest rate at which the linearised, infinite-width model converges ")[1].split(",")[0])
    assert rate == pytest.approx(2 / lam_max, rel=1e-4), info
    svg = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(document.getElementById('train-plot').src).then((r) => r.text()).then(done);""")
    assert "<svg" in svg and "predicted (infinite width)" in svg
    assert browser.find_element("id", "train-title").text == "Predicted training loss"  # titled, downloadable
    assert browser.find_element("id", "dl-train-svg").get_attribute("href").startswith("blob:")
    assert browser.find_elements("css selector", "#results thead th")[1].text == "ReLU (Δ=0.5)"  # m0 = 6 points
    browser.find_element("id", "label-column").send_keys("9")  # now "-19": outside the 7 columns
    browser.find_element("id", "run").click()
    _wait_for(browser, lambda d: d.find_element("id", "status").get_attribute("class") == "error")
    assert browser.find_element("id", "status").text.startswith("Label column:")
    assert not _train_plot_shown(browser)


@pytest.fixture(scope="module")
def laptop():
    """A 1400 x 900 window: a laptop screen."""
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the viewport itself is 1400 x 900
                           {"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _in_view(driver, element_id):
    """Whether the element is laid out and wholly inside the viewport."""
    return driver.execute_script(
        "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
        "return r.height > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight "
        "&& r.right <= window.innerWidth;", element_id)


def test_the_status_line_stays_next_to_compute_in_a_1400_by_900_window(laptop, live_server):
    laptop.get(live_server.url + "/")
    assert laptop.execute_script("return window.innerWidth") >= 1300
    assert laptop.execute_script("return !!document.querySelector('link[rel=icon]')")
    assert ".npz" in laptop.find_element("id", "file").get_attribute("accept")
    assert _in_view(laptop, "run") and _in_view(laptop, "progress")
    laptop.find_element("id", "run").click()  # no data: the error shows where the user looks
    _wait_for(laptop, lambda d: "paste" in d.find_element("id", "status").text)
    assert _in_view(laptop, "status") and _in_view(laptop, "run")
    laptop.find_element("id", "paste").send_keys("\n".join(" ".join(f"{v:.4f}" for v in row)
                                                          for row in small_data(12, 5, seed=3)))
    _choose(laptop, "1:60")
    laptop.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    laptop.find_element("id", "run").click()
    assert _in_view(laptop, "status") and _in_view(laptop, "progress")
    _wait_for(laptop, _plot_shown)
    _wait_for(laptop, lambda d: "done" in d.find_element("id", "status").text)
    columns = laptop.execute_script(  # the data rows and the limit row (its cond cells)
        "const rows = [...document.querySelectorAll('#results tbody tr')];"
        "return rows[0].children.length > 1 ? [...rows[0].children].slice(1).map((_, c) =>"
        " rows.map((r) => r.children[c + 1].textContent)) : [];")
    assert columns
    for column in columns:  # one number format per column: the same decimals, or all powers of ten
        finite = [t for t in column if t not in ("∞", "")]
        shapes = {("e" if "e" in t else len(t.split(".")[1]) if "." in t else 0) for t in finite}
        assert len(shapes) == 1, column
    for y in ("0", "document.body.scrollHeight / 2", "document.body.scrollHeight"):
        laptop.execute_script(f"window.scrollTo(0, {y})")
        assert _in_view(laptop, "status") and _in_view(laptop, "run"), y


_LAYOUT = """
    const box = (id) => { const e = document.getElementById(id); if (!e) return null;
                          const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    const table = document.getElementById('table');
    return {column: box('out'), table: box('table'), results: box('results'),
            overflowX: table ? getComputedStyle(table).overflowX : null,
            page: [document.documentElement.scrollWidth, window.innerWidth, window.innerHeight]};"""


def _table_stays_in_its_column(driver):
    """The table's box ends inside the right column, a wider table scrolls inside it, the page never
    scrolls sideways."""
    got = driver.execute_script(_LAYOUT)
    column, table = got["column"], got["table"]
    assert table is not None and table[2] <= column[2] + 0.5, got
    if got["results"] is not None and got["results"][2] > table[2] + 0.5:
        assert got["overflowX"] in ("auto", "scroll"), got
    assert got["page"][0] <= got["page"][1], got


def _element_in_view(driver, element):
    return driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return r.height > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight "
        "&& r.right <= window.innerWidth;", element)


def test_error_sweep_row_click_and_download_answer_inside_a_1400_by_900_viewport(laptop, live_server):
    """After each action (an error, a sweep of two activations, a click on a row far down the table,
    a download) the status line, and the figure the action made, lie inside the 1400 x 900 viewport;
    the table stays inside its column; the eigenvalue figure opens directly under the row clicked."""
    laptop.get(live_server.url + "/")
    assert laptop.execute_script("return [window.innerWidth, window.innerHeight]") == [1400, 900]
    status = lambda: laptop.find_element("id", "status")  # noqa: E731
    laptop.find_element("id", "run").click()  # error: no data
    _wait_for(laptop, lambda d: status().get_attribute("class") == "error")
    assert _in_view(laptop, "status")
    _table_stays_in_its_column(laptop)

    laptop.find_element("id", "paste").send_keys("\n".join(" ".join(f"{v:.4f}" for v in row)
                                                          for row in small_data(24, 8, seed=5)))
    _choose(laptop, "1:60")  # ReLU and abs
    laptop.find_element("id", "run").click()  # sweep
    _wait_for(laptop, lambda d: "done" in status().text)
    assert _in_view(laptop, "status") and _in_view(laptop, "plot")
    _table_stays_in_its_column(laptop)

    row = laptop.find_element("css selector", "#results tbody tr[data-depth='45']")
    laptop.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    row.click()  # the eigenvalue figure of depth 45, under its row
    _wait_for(laptop, lambda d: "eigenvalues at depth 45 shown" in status().text)
    _wait_for(laptop, lambda d: _in_view(d, "eig-plot"))
    assert _in_view(laptop, "status") and _element_in_view(laptop, row)
    gap = laptop.execute_script(
        "return document.getElementById('eig-plot').getBoundingClientRect().top"
        " - arguments[0].getBoundingClientRect().bottom;", row)
    assert 0 <= gap <= 40, gap  # directly under the row clicked
    _table_stays_in_its_column(laptop)

    link = laptop.find_element("id", "dl-eig-svg")
    assert _element_in_view(laptop, link)
    link.click()  # download: nothing moves
    assert _in_view(laptop, "status") and _in_view(laptop, "eig-plot")
    _table_stays_in_its_column(laptop)


def test_a_wide_table_and_a_cancel_answer_inside_a_1400_by_900_viewport(laptop, live_server, tmp_path):
    """Five activations (16 columns, wider than the column): the table scrolls inside its column and the
    eigenvalue figure of a clicked row is in view; then a cancel, told in the status line."""
    laptop.get(live_server.url + "/")
    status = lambda: laptop.find_element("id", "status")  # noqa: E731
    laptop.find_element("id", "paste").send_keys("\n".join(" ".join(f"{v:.4f}" for v in row)
                                                          for row in small_data(16, 6, seed=7)))
    for name in ("linear", "leaky"):
        laptop.find_element("id", f"act-{name}").click()
    laptop.find_element("id", "act-ab").send_keys("0.3,0.7")
    _choose(laptop, "1:5,50,200")
    laptop.find_element("id", "run").click()
    _wait_for(laptop, lambda d: "done" in status().text)
    assert _in_view(laptop, "status") and _in_view(laptop, "plot")
    _table_stays_in_its_column(laptop)
    assert laptop.execute_script("const t = document.getElementById('table'); return t.scrollWidth > t.clientWidth")
    row = laptop.find_element("css selector", "#results tbody tr[data-depth='200']")
    laptop.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    row.click()
    _wait_for(laptop, lambda d: "eigenvalues at depth 200 shown" in status().text)
    _wait_for(laptop, lambda d: _in_view(d, "eig-plot"))  # as wide as the visible table, not the table
    assert _in_view(laptop, "status") and _element_in_view(
        laptop, laptop.find_element("css selector", "#results tbody tr[data-depth='200'] td"))
    _table_stays_in_its_column(laptop)

    path = tmp_path / "big.npy"
    np.save(path, np.random.default_rng(3).normal(size=(900, 30)))
    laptop.find_element("id", "paste").clear()
    laptop.find_element("id", "file").send_keys(os.fspath(path))
    _choose(laptop, "1:200")
    laptop.find_element("id", "run").click()
    _wait_for(laptop, lambda d: d.find_element("id", "cancel").is_displayed())
    assert _in_view(laptop, "cancel") and _in_view(laptop, "status")
    laptop.find_element("id", "cancel").click()
    _wait_for(laptop, lambda d: status().text == "canceled")
    assert _in_view(laptop, "status") and _in_view(laptop, "hint")  # where the results will appear
    _table_stays_in_its_column(laptop)
