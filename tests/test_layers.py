"""gfcore's layers hold (docs/architecture.md): a module imports only from its own layer or below, and no modules
import each other in a circle. Every import counts, also one inside a function or under TYPE_CHECKING: the
import graph is read from the source, nothing is imported. And ruff's rules of pyproject.toml hold: the heavy
runtimes are never imported at a module's top (TID253)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("gfcore", "guardianflow", "hydra_plugins")

# Lowest first; a package not named here belongs to no layer, and the test says so.
LAYERS = {
    "core": ("gfcore", "gfcore.core", "gfcore.config", "gfcore.verdicts"),
    "integrations": ("gfcore.tracking", "gfcore.data", "gfcore.yolo", "gfcore.backends", "gfcore.mot",
                     "gfcore.registry", "gfcore.stack", "gfcore.cluster"),
    "jobs": ("gfcore.jobs",),
    "orchestration": ("gfcore.orchestration",),
    "decisions": ("gfcore.fleet", "gfcore.automation", "gfcore.legacy"),
    "interfaces": ("gfcore.cli", "guardianflow", "hydra_plugins"),
}
ORDER = list(LAYERS)


def modules() -> dict[str, Path]:
    found = {}
    for top in SOURCES:
        for path in (REPO / top).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The project's modules that `path` imports: `from a.b import c` is a.b.c when that is a module, else a.b."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a package's attribute: its module
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def layer_of(module: str) -> str | None:
    best = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (layer, prefix)
    return best[0] if best else None


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(path, name, set(found)) for name, path in found.items()}


def test_every_module_has_a_layer():
    assert [m for m in graph() if layer_of(m) is None] == []


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{m} ({layer_of(m)}) imports {t} ({layer_of(t)})" for m, targets in sorted(graph().items())
              for t in sorted(targets) if ORDER.index(layer_of(t)) > ORDER.index(layer_of(m))]
    assert upward == []


def test_no_import_circles():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert circles == []


def test_the_check_reads_imports():
    """The reader finds what a module imports, also inside functions: a check that cannot fail proves nothing."""
    edges = graph()
    assert "gfcore.core.errors" in edges["gfcore.orchestration.pipeline"]
    assert "gfcore.orchestration.app" in edges["guardianflow.train"]
    assert layer_of("gfcore.cli.metrics") == "interfaces" and layer_of("gfcore.config.schema") == "core"


def ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_lint_rules_hold():
    proc = ruff(".")
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_a_heavy_runtime_at_module_top_is_refused():
    proc = ruff("--stdin-filename", "gfcore/jobs/example.py", "-", stdin="import torch\n\n\ndef f():\n    return torch\n")
    assert proc.returncode == 1 and "TID253" in proc.stdout
    inside = ruff("--stdin-filename", "gfcore/jobs/example.py", "-", stdin="def f():\n    import torch\n\n    return torch\n")
    assert inside.returncode == 0, inside.stdout
