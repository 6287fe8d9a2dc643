"""Settings where they are used: every environment variable is read in exactly one place, and
docs/configuration.md lists every setting with its default.

A *read* is ``os.environ.get("NAME")``, ``os.getenv("NAME")``, ``os.environ["NAME"]``,
``"NAME" in os.environ``, or a field of a settings class
(a subclass of pydantic-settings' ``BaseSettings``), whose variable is ``EOC_NTK_`` + its name in
upper case (``REDIS_URL`` for ``redis_url``). Code is read with ``ast``, so a second reader is found
wherever it hides: a module-level constant, a function, another settings class.
"""
from __future__ import annotations

import ast
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

from jobs.settings import JobSettings, environment_name
from service.config import Settings, markdown_table, settings_table

ROOT = Path(__file__).resolve().parent.parent
#: The code whose environment reads are counted (tests read their own variables, e.g. the test Redis).
PACKAGES = ("eoc_ntk", "jobs", "service", "bench")


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and \
        isinstance(node.value, ast.Name) and node.value.id == "os"


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound to a string (``DEVICE_ENV = "EOC_NTK_DEVICE"``)."""
    return {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for t in node.targets if isinstance(t, ast.Name)}


def _literal(node: ast.AST | None, constants: dict[str, str]) -> str:
    """The variable a read names (a string, or a module constant holding one); a computed name is
    reported as such (it cannot be checked)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    return "<computed name>"


def _settings_classes(tree: ast.Module) -> list[ast.ClassDef]:
    """Classes deriving (directly or through another settings class of the same scan) from BaseSettings."""
    known = {"BaseSettings", "JobSettings", "Settings"}
    return [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            and any(getattr(b, "id", getattr(b, "attr", None)) in known for b in node.bases)]


def environment_reads(source: str, where: str) -> list[tuple[str, str]]:
    """(variable, place) of every environment read in ``source``."""
    tree = ast.parse(source)
    constants = _constants(tree)
    reads = []
    for node in ast.walk(tree):
        place = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if _is_os_environ(func.value) and func.attr == "get":
                reads.append((_literal(node.args[0] if node.args else None, constants), place))
            elif func.attr == "getenv" and isinstance(func.value, ast.Name) and func.value.id == "os":
                reads.append((_literal(node.args[0] if node.args else None, constants), place))
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value) and isinstance(node.ctx, ast.Load):
            reads.append((_literal(node.slice, constants), place))
        elif isinstance(node, ast.Compare) and any(_is_os_environ(c) for c in node.comparators):
            reads.append((_literal(node.left, constants), place))
    for cls in _settings_classes(tree):
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                    and stmt.target.id != "model_config":
                reads.append((environment_name(stmt.target.id), f"{where}:{stmt.lineno} ({cls.name})"))
    return reads


def all_reads() -> dict[str, list[str]]:
    readers: dict[str, list[str]] = defaultdict(list)
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name, place in environment_reads(path.read_text(), str(path.relative_to(ROOT))):
                readers[name].append(place)
    return readers


def test_each_environment_variable_is_read_in_exactly_one_place():
    readers = all_reads()
    assert "<computed name>" not in readers, f"environment read with a computed name: {readers['<computed name>']}"
    twice = {name: places for name, places in readers.items() if len(places) > 1}
    assert not twice, f"read in more than one place: {twice}"
    # The scan sees the settings objects: the API's limits and the job layer's queue.
    assert readers["EOC_NTK_MAX_N"][0].startswith("service/config.py")
    assert readers["EOC_NTK_JOB_TIMEOUT"][0].startswith("jobs/settings.py")
    assert readers["REDIS_URL"][0].startswith("jobs/settings.py")


def test_the_scan_finds_a_second_reader_of_any_kind():
    source = textwrap.dedent("""
        import os
        from pydantic_settings import BaseSettings
        class Settings(BaseSettings):
            max_n: int = 1
        LIMIT = os.environ.get("EOC_NTK_MAX_N")
        NAME = "EOC_NTK_D"
        def f():
            os.environ.get(NAME)
            return os.getenv("EOC_NTK_A"), os.environ["EOC_NTK_B"], "EOC_NTK_C" in os.environ, os.environ.get(name)
    """)
    names = [name for name, _ in environment_reads(source, "x.py")]
    assert sorted(names) == sorted(["EOC_NTK_MAX_N", "EOC_NTK_MAX_N", "EOC_NTK_A", "EOC_NTK_B", "EOC_NTK_C",
                                    "EOC_NTK_D", "<computed name>"])


def test_the_api_settings_live_with_the_service_and_the_job_settings_with_the_jobs():
    api_only = {"max_n", "max_body_bytes", "body_timeout", "api_keys", "cors_origins", "sync_wait_seconds",
                "async_seconds", "limit_concurrency"}
    assert api_only <= set(Settings.model_fields) and not api_only & set(JobSettings.model_fields)
    assert {"redis_url", "queue_name", "job_timeout", "result_ttl", "dask_address"} <= set(JobSettings.model_fields)
    assert "async_threshold" not in Settings.model_fields


@pytest.mark.parametrize("env, value, field, expected", [
    ("EOC_NTK_MAX_N", "123", "max_n", 123),
    ("EOC_NTK_JOB_TIMEOUT", "77", "job_timeout", 77),
    ("REDIS_URL", "redis://example:1/0", "redis_url", "redis://example:1/0"),
    ("EOC_NTK_SYNC_WAIT_SECONDS", "0.5", "sync_wait_seconds", 0.5),
])
def test_the_variable_named_in_the_table_sets_its_field(monkeypatch, env, value, field, expected):
    monkeypatch.setenv(env, value)
    assert getattr(Settings(), field) == expected
    assert env in [row[0] for row in settings_table()]


def test_configuration_page_lists_every_setting_with_its_default():
    page = (ROOT / "docs" / "configuration.md").read_text()
    for env, default, _ in settings_table():
        assert f"| `{env}` | {default or '(unset)'} |" in page, f"docs/configuration.md lacks {env} = {default}"
    for layer in ("jobs", "service"):
        assert markdown_table(layer) in page, "docs/configuration.md is out of date: paste `python -m service.config`"
    assert len(settings_table("jobs")) + len(settings_table("service")) == len(settings_table())
