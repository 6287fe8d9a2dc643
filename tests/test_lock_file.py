"""The deployment lock (requirements/lock.txt) satisfies every range in pyproject.toml.

The lock pins ``eoc-ntk[all]`` (the core and every extra ``all`` names) for Python 3.11 on
Linux, with hashes; ``requirements/update-lock`` regenerates it. A range changed in
pyproject.toml without regenerating the lock fails here, naming the package and the fix.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lock.txt"
LOCKED_EXTRAS = ("all",)  # as in requirements/update-lock (--extra all)
# The platform the lock is compiled for (requirements/update-lock, the Docker image).
ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
               "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
               "implementation_name": "cpython", "platform_python_implementation": "CPython"}
FIX = "run requirements/update-lock and commit requirements/lock.txt"


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements(project: dict, extras: tuple[str, ...]) -> list[Requirement]:
    """The core dependencies plus those of ``extras``, with ``eoc-ntk[x]`` self-references expanded."""
    own = canonicalize_name(project["name"])
    optional = project.get("optional-dependencies", {})
    out, seen, todo = [Requirement(r) for r in project["dependencies"]], set(), list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == own:
                todo.extend(req.extras)
            else:
                out.append(req)
    return [r for r in out if r.marker is None or r.marker.evaluate(ENVIRONMENT)]


def _pins() -> dict[str, tuple[Version, int]]:
    """{canonical name: (pinned version, number of hashes)} from the lock file."""
    pins, current = {}, None
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if m:
            current = canonicalize_name(m.group(1))
            pins[current] = (Version(m.group(3)), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _violations(requirements: list[Requirement], pins: dict) -> list[str]:
    problems = []
    for req in requirements:
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req.name}: required ({req}) but not in {LOCK.name}")
        elif not req.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{req.name}: {LOCK.name} pins {pins[name][0]}, pyproject.toml asks {req.specifier}")
    return problems


def test_lock_pins_every_dependency_within_its_range():
    requirements = _requirements(_project(), LOCKED_EXTRAS)
    names = {canonicalize_name(r.name) for r in requirements}
    assert {"numpy", "scipy", "fastapi", "rq", "matplotlib", "httpx", "scikit-learn"} <= names, names
    problems = _violations(requirements, _pins())
    assert not problems, "; ".join(problems) + f": {FIX}"


def test_every_pin_carries_a_hash():
    pins = _pins()
    assert pins, f"no pins read from {LOCK}"
    unhashed = sorted(name for name, (_, hashes) in pins.items() if hashes == 0)
    assert not unhashed, f"pins without --hash (pip --require-hashes refuses them): {unhashed}: {FIX}"


def test_the_check_reports_a_floor_above_the_pin_and_a_missing_package():
    pins = _pins()
    numpy_pin = pins["numpy"][0]
    problems = _violations([Requirement(f"numpy>={numpy_pin.major + 1}"), Requirement("not-a-dependency>=1")], pins)
    assert len(problems) == 2 and f"pins {numpy_pin}" in problems[0] and "not in" in problems[1], problems
