"""The shape rules of the code in eoc_ntk/, jobs/ and service/ (the house style):

- a function or method spans at most ``MAX_FUNCTION_LINES`` lines (its decorators, signature,
  docstring and body);
- a module is at most ``MAX_FILE_LINES`` lines;
- the code states rules, not history: no issue references (``issue #NN``) in it; the numbers and
  the stories behind a rule belong in bench/README.md.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("eoc_ntk", "jobs", "service")
MAX_FUNCTION_LINES = 80
MAX_FILE_LINES = 500
ISSUE_REFERENCE = re.compile(r"issue\s*#\s*\d+", re.IGNORECASE)


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _long_functions(source: str, limit: int) -> list[tuple[str, int, int]]:
    """``(name, first line, length)`` of every function or method in ``source`` longer than ``limit``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > limit:
                out.append((node.name, first, length))
    return out


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_rules_see_the_code():
    modules = _modules()
    assert len(modules) > 50 and any(p.name == "sweep.py" for p in modules), [_rel(p) for p in modules]


def test_functions_are_short():
    long = [f"{_rel(path)}:{line} {name} ({length} lines)" for path in _modules()
            for name, line, length in _long_functions(path.read_text(), MAX_FUNCTION_LINES)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: split them: " + "; ".join(long)


def test_files_are_short():
    long = [f"{_rel(p)} ({n} lines)" for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES]
    assert not long, f"modules over {MAX_FILE_LINES} lines: split them by job: " + "; ".join(long)


def test_no_issue_references_in_the_code():
    found = [f"{_rel(p)}:{i}: {line.strip()}" for p in _modules()
             for i, line in enumerate(p.read_text().splitlines(), start=1) if ISSUE_REFERENCE.search(line)]
    assert not found, "issue references in the code (state the rule; the story goes to bench/README.md): " + \
        "; ".join(found)


@pytest.mark.parametrize("source, expected", [
    ("def f():\n" + "    x = 1\n" * 80, [("f", 1, 81)]),
    ("def f():\n" + "    x = 1\n" * 79, []),
    ("class A:\n    @staticmethod\n    def g():\n" + "        pass\n" * 79, [("g", 2, 81)]),
])
def test_the_length_rule_counts_decorators_signature_and_body(source, expected):
    assert _long_functions(source, MAX_FUNCTION_LINES) == expected


@pytest.mark.parametrize("text, found", [("see issue #15", True), ("Issue # 7", True), ("(issue 11)", False),
                                         ("the tissue", False)])
def test_the_issue_rule_matches_references(text, found):
    assert bool(ISSUE_REFERENCE.search(text)) is found
