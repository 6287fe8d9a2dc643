"""The architecture itself: imports point down the layers, packages form no cycle, the core
installs and computes alone. A module's folder says its layer; no list of files is kept here.

Layers (docs/architecture.md)::

    service/                                                   the API process
       |          \\
    eoc_ntk/{client,plots,reproduce,sklearn_kernel}.py,       jobs/  (job machinery)
    eoc_ntk/cli/   (users' tools)                               |
       |                                                        |
    eoc_ntk/__init__.py (the facade: re-exports core and learning)
       |                  eoc_ntk/distributed/ (Dask)
    eoc_ntk/learning/     (labels: dynamics, regression, finite width)
       |
    eoc_ntk/core/         (numerics, results, validation, cost model; NumPy/SciPy only)

- the core imports nothing of the project outside ``eoc_ntk/core``;
- ``learning`` and ``distributed`` import the core only;
- the users' tools import the core, learning, the facade and each other, never ``jobs`` or
  ``service``;
- ``jobs`` imports everything of ``eoc_ntk`` but the users' tools; ``service`` imports all.

Privacy: a module or package whose name starts with ``_`` (``eoc_ntk/core/_numerics``,
``eoc_ntk/learning/_kernel_eigen.py``) is imported only from inside the package that holds
it, and no module imports another module's underscore name.

Imports are read with ``ast`` from every module of the three packages: ``import``/``from``
statements anywhere (inside functions too) and ``importlib.import_module("literal")``.
A function-local import of a project module is refused outright: that is how cycles hide.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("eoc_ntk", "jobs", "service")
#: Which layers each layer may import.
ALLOWED = {
    "core": {"core"},
    "learning": {"core", "learning"},
    "distributed": {"core", "distributed"},
    "facade": {"core", "learning"},
    "tools": {"core", "learning", "facade", "tools"},
    "jobs": {"core", "learning", "distributed", "facade", "jobs"},
    "service": {"core", "learning", "distributed", "facade", "tools", "jobs", "service"},
}
#: The folders of eoc_ntk that are layers of their own; every other module of eoc_ntk is a tool.
FOLDER_LAYERS = {"core": "core", "learning": "learning", "distributed": "distributed"}


def layer_of(module: str) -> str | None:
    """The layer of a project module, from its folder; None for anything outside the project."""
    parts = module.split(".")
    if parts[0] == "eoc_ntk":
        if len(parts) == 1:
            return "facade"
        return FOLDER_LAYERS.get(parts[1], "tools")
    if parts[0] in ("jobs", "service"):
        return parts[0]
    if parts[0] == "workers":  # the old package: gone, and nothing may bring it back
        return "removed"
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from <level dots><name> import ...`` inside ``module``."""
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


class _Imports(ast.NodeVisitor):
    """Every import of a module: (line, imported module, inside a function)."""

    def __init__(self, module: str, is_package: bool):
        self.module, self.is_package = module, is_package
        self.found: list[tuple[int, str, bool]] = []
        self.depth = 0

    def _function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node):
        for alias in node.names:
            self.found.append((node.lineno, alias.name, self.depth > 0))

    def visit_ImportFrom(self, node):
        base = _resolve(self.module, self.is_package, node.level, node.module)
        for alias in node.names:
            # "from . import plots" imports the module eoc_ntk.plots; "from .x import f" the module .x
            candidate = f"{base}.{alias.name}" if base else alias.name
            target = candidate if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() \
                or (ROOT / Path(*candidate.split("."))).is_dir() else base
            self.found.append((node.lineno, target, self.depth > 0))

    def visit_Call(self, node):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name == "import_module" and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            self.found.append((node.lineno, node.args[0].value, self.depth > 0))
        self.generic_visit(node)


def project_imports() -> dict[str, list[tuple[int, str, bool]]]:
    """module -> its imports of project modules (line, target, inside a function)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = module_name(path)
            visitor = _Imports(module, path.name == "__init__.py")
            visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
            out[module] = [(line, target, local) for line, target, local in visitor.found
                           if layer_of(target) is not None]
    return out


IMPORTS = project_imports()


def test_the_walker_sees_every_package_and_the_imports_it_must_see():
    """The checks below would pass vacuously on an empty walk: pin a few known edges."""
    assert {m.split(".")[0] for m in IMPORTS} == set(PACKAGES)
    edges = {(m, t) for m, found in IMPORTS.items() for _, t, _ in found}
    assert ("service.engine", "jobs.rq_queue") in edges
    assert ("jobs.compute", "eoc_ntk.core.sweep") in edges
    assert ("eoc_ntk.cli", "eoc_ntk.plots") in edges  # "from . import analyze, plots"
    assert ("eoc_ntk.core.model", "eoc_ntk.core.activations") in edges


def test_the_walker_catches_upward_local_and_dynamic_imports():
    source = textwrap.dedent("""
        import service.app
        def f():
            from jobs import keys
            importlib.import_module("service.engine")
    """)
    visitor = _Imports("eoc_ntk.core.kernels", False)
    visitor.visit(ast.parse(source))
    assert [(t, local) for _, t, local in visitor.found] == [
        ("service.app", False), ("jobs.keys", True), ("service.engine", True)]


def test_imports_point_down_the_layers_only():
    bad = [f"{m}:{line} imports {target} ({layer_of(m)} -> {layer_of(target)})"
           for m, found in IMPORTS.items() for line, target, _ in found
           if layer_of(target) not in ALLOWED[layer_of(m)]]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def _private_owner(target: str) -> str | None:
    """The package that owns the first private part of ``target`` (None if all of it is public)."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_"):
            return ".".join(parts[:i])
    return None


def test_private_modules_are_imported_only_from_inside_their_package():
    bad = [f"{m}:{line} imports {target}, private to {_private_owner(target)}"
           for m, found in IMPORTS.items() for line, target, _ in found
           if _private_owner(target) is not None
           and not (m + ".").startswith(_private_owner(target) + ".")]
    assert not bad, "\n".join(bad)


def _underscore_names() -> list[str]:
    """``from other_module import _name`` anywhere in the project (``__future__`` aside)."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                    found += [f"{module_name(path)}:{node.lineno} imports {a.name} from {node.module}"
                              for a in node.names if a.name.startswith("_")]
    return found


def test_no_module_imports_another_modules_underscore_name():
    assert _underscore_names() == []


def test_the_privacy_checks_see_a_violation():
    assert _private_owner("eoc_ntk.core._numerics.interp") == "eoc_ntk.core"
    assert _private_owner("eoc_ntk.core.kernels") is None
    assert not ("eoc_ntk.distributed" + ".").startswith("eoc_ntk.core.")


def test_no_function_local_import_of_a_project_module():
    """Lazy imports are for optional heavy third-party dependencies (with a comment); a
    project module imported inside a function is a cycle being dodged."""
    bad = [f"{m}:{line} imports {target} inside a function"
           for m, found in IMPORTS.items() for line, target, local in found if local]
    assert not bad, "\n".join(bad)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a list of nodes, first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_packages_and_layers_form_no_cycle():
    packages: dict[str, set[str]] = {}
    layers: dict[str, set[str]] = {}
    for m, found in IMPORTS.items():
        for _, target, _ in found:
            if m.split(".")[0] != target.split(".")[0]:
                packages.setdefault(m.split(".")[0], set()).add(target.split(".")[0])
            if layer_of(m) != layer_of(target):
                layers.setdefault(layer_of(m), set()).add(layer_of(target))
    assert _cycle(packages) is None, f"package cycle {_cycle(packages)}"
    assert _cycle(layers) is None, f"layer cycle {_cycle(layers)}"


# The core alone: a fresh interpreter in which every optional dependency fails to import.
_BLOCKED = ("fastapi", "starlette", "uvicorn", "pydantic", "pydantic_settings", "redis", "rq", "httpx",
            "matplotlib", "sklearn", "prometheus_client", "orjson", "dask", "torch")

_CORE_ALONE = """
import importlib.abc, sys
BLOCKED = {blocked!r}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"blocked for this test: {{name}}", name=name)
        return None

sys.meta_path.insert(0, Block())
for name in BLOCKED:
    try:
        __import__(name)
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit(f"the blocker let {{name}} through")

import json, math
import numpy as np
import eoc_ntk

# Depth-2 ReLU at the edge of chaos on unit-norm rows: K = q theta_2(angle), q = sigma_w^2 / m0, written out
# from the arc-cosine recursion (docs/math.md §2), independently of the core's code.
rng = np.random.default_rng(7)
x = rng.normal(size=(6, 4))
x /= np.linalg.norm(x, axis=1, keepdims=True)
n, m0 = x.shape
a = b = 0.5
delta = b * b / (a * a + b * b)
q = 1.0 / ((a * a + b * b) * m0)

def theta2(t):
    rho2 = math.cos(t) + delta * (2 / math.pi) * (math.sin(t) - t * math.cos(t))
    return rho2 + math.cos(t) * (1 - 2 * delta * t / math.pi)

k = np.array([[q * (2.0 if i == j else theta2(math.acos(min(1.0, max(-1.0, float(x[i] @ x[j]))))))
               for j in range(n)] for i in range(n)])
expected = np.linalg.eigvalsh(k / n)
got = eoc_ntk.spectrum(x, depth=2, a=a, b=b).eigenvalues
try:  # the torch backend without torch: one clear error naming the install
    eoc_ntk.kernel(x, depth=2, a=a, b=b, backend="torch")
except eoc_ntk.core.errors.InvalidParameterError as exc:
    assert exc.param == "backend" and "eoc-ntk[gpu]" in str(exc), exc
else:
    raise SystemExit("backend='torch' worked without torch")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({{"expected": expected.tolist(), "got": [float(v) for v in got], "heavy": heavy}}))
"""


def test_the_core_imports_and_computes_without_the_optional_dependencies():
    code = _CORE_ALONE.format(blocked=_BLOCKED)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    import json

    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    np.testing.assert_allclose(out["got"], out["expected"], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("blocked", [("fastapi",), ("redis", "rq")])
def test_serve_and_worker_without_the_service_extra_name_the_install(blocked):
    """``eoc-ntk serve``/``worker`` are plugins: without their dependencies, one line says what to install."""
    command = "serve" if blocked == ("fastapi",) else "worker"
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {blocked!r} + ("uvicorn",):
                    raise ModuleNotFoundError(name, name=name)
        sys.meta_path.insert(0, Block())
        from eoc_ntk.cli import main
        sys.exit(main([{command!r}, "--check"] if {command!r} == "worker" else [{command!r}]))
    """)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, (run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'eoc-ntk[service]'" in lines[0], run.stderr
