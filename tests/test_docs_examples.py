"""Every code example of README.md and docs/*.md runs as written, top to bottom, in an empty folder.

A page's fenced ```python and ```bash blocks run in the order they appear, in one new temporary
folder per page (so a block may use the files an earlier block of its page made, and nothing
else): a ```python block as a script file (``python example_<line>.py``, so that
``if __name__ == "__main__":`` works as for a reader), a ```bash block with ``bash -e -o
pipefail``. ``python`` and ``eoc-ntk`` are this interpreter's. Other fences (```json, plain
text) are not examples. An HTML comment on the line before a fence marks the block:

- ``<!-- no-run -->``: shown, never run: it starts a long-running server, installs packages,
  or needs Docker, a Redis on the default port or a cluster;
- ``<!-- slow -->``: run only by ``pytest -m slow`` (``.ci/run`` runs them in its docs step);
- ``<!-- http-error -->``: the block shows an error answer, so HTTP errors of its ``curl``
  calls are expected.

Blocks that talk to the service use the address of the Quick start, ``http://127.0.0.1:8000``;
the test starts a service (embedded mode, the Quick start's ``python -m service``) on a free
port and rewrites that address to it. Every ``curl`` of a block runs with ``--fail-with-body``
(unless the block is ``http-error``), so an HTTP error fails the example as a non-zero exit
would.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from _service_support import ApiProcess

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DEFAULT_URL = "http://127.0.0.1:8000"
RUNNABLE = ("python", "bash")
MARKERS = ("no-run", "slow", "http-error")
FENCE = re.compile(r"^```([\w-]*)\s*$")
MARKER = re.compile(r"^<!--\s*([\w-]+)\s*-->\s*$")
BLOCK_TIMEOUT_S = 300
README_MAX_LINES = 250
#: Tests whose EOC_NTK_* names are made-up inputs of the scanner they test, not variables.
SYNTHETIC_NAMES = ("test_settings.py",)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, from 1
    lang: str
    code: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page with their language and marker, in order."""
    lines = page.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start, lang = i, fence.group(1)
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"{page.relative_to(ROOT)}:{start + 1}: a fence that is never closed"
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        mark = MARKER.match(before)
        marker = mark.group(1) if mark else None
        assert marker is None or marker in MARKERS, f"{page.relative_to(ROOT)}:{start + 1}: unknown marker {marker}"
        out.append(Block(page, start + 1, lang, "\n".join(lines[start + 1:end]) + "\n", marker))
        i = end + 1
    return out


def runnable(page: Path, slow: bool) -> list[Block]:
    """The blocks of ``page`` this run executes: no ``no-run``; ``slow`` ones only when ``slow``."""
    return [b for b in blocks_of(page)
            if b.lang in RUNNABLE and b.marker != "no-run" and (slow or b.marker != "slow")]


def _needs_server(blocks: list[Block]) -> bool:
    return any(DEFAULT_URL in b.code for b in blocks)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A service in embedded mode on a free port, for the blocks that talk to 127.0.0.1:8000."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EOC_NTK_") and k != "REDIS_URL"}
    log = open(tmp_path_factory.mktemp("service") / "service.log", "wb")
    with log, ApiProcess(env, log=log, probe="/healthz") as api:
        yield api.url


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EOC_NTK_") and k != "REDIS_URL"}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "Agg"
    # The examples import this checkout's code, as `pip install -e .` in it would.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_block(block: Block, folder: Path, url: str | None) -> None:
    """Run one block in ``folder``; fail naming the block, with its output, on a non-zero exit."""
    code = block.code if url is None else block.code.replace(DEFAULT_URL, url)
    if block.lang == "python":
        script = folder / f"example_{block.line}.py"
        script.write_text(code)
        command = [sys.executable, script.name]
    else:
        curl = "" if block.marker == "http-error" else 'curl() { command curl --fail-with-body "$@"; }\n'
        command = ["bash", "-e", "-o", "pipefail", "-c", curl + code]
    done = subprocess.run(command, cwd=folder, env=_environment(), capture_output=True, text=True,
                          timeout=BLOCK_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (
        f"the example at {block.where} failed (exit {done.returncode}):\n{code}\n"
        f"--- stdout (end) ---\n{done.stdout[-3000:]}\n--- stderr (end) ---\n{done.stderr[-3000:]}")


def run_page(page: Path, folder: Path, slow: bool, request) -> int:
    blocks = runnable(page, slow)
    if any(re.search(r"\bcurl\b", b.code) for b in blocks) and shutil.which("curl") is None:
        pytest.skip(f"{page.relative_to(ROOT)}'s examples call curl, which is not installed (apt-get install curl)")
    url = request.getfixturevalue("service") if _needs_server(blocks) else None
    for block in blocks:
        run_block(block, folder, url)
    return len(blocks)


PAGE_IDS = [str(p.relative_to(ROOT)) for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_the_examples_of_a_page_run_as_written(page, tmp_path, request):
    run_page(page, tmp_path, slow=False, request=request)


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if any(b.marker == "slow" for b in blocks_of(p))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_examples_of_a_page_run_as_written_slow_ones_included(page, tmp_path, request):
    run_page(page, tmp_path, slow=True, request=request)


def test_the_readme_and_the_guides_have_examples_that_run():
    """The collection itself: a page that lost its fences, or a marker that hides them all, fails here."""
    counts = {p.relative_to(ROOT).as_posix(): len(runnable(p, slow=False)) for p in PAGES}
    for page in ("README.md", "docs/library.md", "docs/cli.md", "docs/http.md"):
        assert counts[page] >= 2, counts


def test_the_readme_is_a_front_door_whose_links_lead_somewhere():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    for heading in ("## Quick start", "## The library", "## The command line", "## The HTTP API", "## The web page"):
        assert f"\n{heading}\n" in text, heading
    targets = re.findall(r"\]\(([^)#\s]+)", text)
    local = [t for t in targets if "://" not in t]
    assert any(t.endswith(".png") for t in local), "the README shows no figure"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_every_environment_variable_is_on_the_configuration_page():
    """Every EOC_NTK_* name that the code, the tests, the benchmarks, Compose or CI read is documented."""
    page = (ROOT / "docs" / "configuration.md").read_text()
    sources = [*ROOT.glob("eoc_ntk/**/*.py"), *ROOT.glob("service/**/*.py"), *ROOT.glob("jobs/**/*.py"),
               *ROOT.glob("tests/*.py"), *ROOT.glob("bench/*.py"), ROOT / "docker-compose.yml", ROOT / "Dockerfile",
               ROOT / ".ci" / "run"]
    names = {name for path in sources if path.exists() and path.name not in SYNTHETIC_NAMES
             for name in re.findall(r"\bEOC_NTK_[A-Z0-9_]*[A-Z0-9]\b", path.read_text())}
    assert len(names) > 20, names
    missing = sorted(name for name in names if f"`{name}`" not in page)
    assert not missing, f"docs/configuration.md does not document {missing}"


def test_the_block_parser_reads_fences_markers_and_languages(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\nprint(1)\n```\n\n<!-- no-run -->\n```bash\neoc-ntk serve\n```\n"
                    "<!-- slow -->\n\n```bash\nsleep 1\n```\n```json\n{}\n```\n```\nplain\n```\n")
    got = [(b.line, b.lang, b.code, b.marker) for b in blocks_of(page)]
    assert got == [(3, "python", "print(1)\n", None), (8, "bash", "eoc-ntk serve\n", "no-run"),
                   (13, "bash", "sleep 1\n", "slow"), (16, "json", "{}\n", None), (19, "", "plain\n", None)]
    assert [b.line for b in runnable(page, slow=False)] == [3]
    assert [b.line for b in runnable(page, slow=True)] == [3, 13]


def test_a_failing_example_fails_naming_its_page_and_line(tmp_path):
    bad = Block(ROOT / "docs" / "cli.md", 7, "bash", "eoc-ntk spectrum missing.npy --depth 3\n", None)
    with pytest.raises(AssertionError, match=r"docs/cli.md:7 failed \(exit 2\)"):
        run_block(bad, tmp_path, None)
