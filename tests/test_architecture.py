"""The layering of src/clipxai, checked on its source with ``ast`` (nothing is imported or executed).

Layers, bottom up: errors / io / seeding / config; the libraries (data, models, attribution, metrics, heads,
protocols, segmentation, artifacts, viz, report); the verbs (commands/<verb>.py, one per CLI verb, with their
shared helpers commands/_*.py); the CLI (cli.py, __main__.py). A module imports only from its own layer or below:

- no library module imports clipxai.commands or clipxai.cli;
- no verb imports another verb (a verb may import commands/_*.py helpers and the commands package's list);
- viz/ and report/ draw and write what the results say: they import no model code (clipxai.models, at any level)
  and, at module level, neither torch nor clipxai.attribution (the report runs in envs/report.yaml, which has no
  torch; a figure helper may import torch inside the one function that needs it);
- the module-level import graph has no cycle.

How imports are counted. ``import clipxai.a.b`` and ``from clipxai.a import b`` where ``clipxai/a/b.py`` (or
``clipxai/a/b/__init__.py``) exists are an edge to ``clipxai.a.b``; ``from clipxai.a import name`` for any other
name is an edge to ``clipxai.a``; relative imports are resolved the same way. Importing a module does not add an
edge to its parent packages (Python initialises those first; counting them would make every package that imports
its own submodules a cycle). For cycles only *module-level* imports count: statements in a module's body,
including those under a top-level ``if`` / ``try`` / ``with``, but not imports inside functions or classes, which
run later, after every module involved has finished initialising. The layering rules above count imports at every level, function bodies included: a lazy
import still makes the library depend on the verb.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from conftest import REPO

SRC = REPO / "src"
PACKAGE = "clipxai"
LIBRARIES = ("data", "models", "attribution", "metrics", "heads", "protocols", "artifacts", "report",
             "segmentation", "viz")
NO_MODEL_CODE = ("viz", "report")

# Verb -> verb imports allowed for now, each with why. Delete an entry once its import is gone (the test then
# fails if the entry lingers: test_allowed_exceptions_are_still_needed).
ALLOWED_VERB_IMPORTS: set[tuple[str, str]] = set()  # none: every verb imports only library modules


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _module_level(body: list[ast.stmt]):
    """The statements that run when a module is imported: its body, into if / try / with blocks, not into
    function or class bodies."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)) or type(node).__name__ == "TryStar":
            for field in ("body", "orelse", "finalbody"):
                yield from _module_level(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                yield from _module_level(handler.body)


def _targets(node: ast.stmt, importer: str) -> set[str]:
    """The modules (clipxai's and third-party top-level names) an import statement imports."""
    out: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            out.add(alias.name)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
            parts = package.split(".")
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join(parts + ([node.module] if node.module else []))
        for alias in node.names:
            out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return out


def imports(name: str, module_level_only: bool) -> set[str]:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"), filename=str(MODULES[name]))
    nodes = _module_level(tree.body) if module_level_only else ast.walk(tree)
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= _targets(node, name)
    return out


def internal(targets: set[str]) -> set[str]:
    return {t for t in targets if t == PACKAGE or t.startswith(PACKAGE + ".")}


def graph(module_level_only: bool) -> dict[str, set[str]]:
    return {name: internal(imports(name, module_level_only)) for name in MODULES}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself), Tarjan's."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def is_verb(name: str) -> bool:
    prefix = f"{PACKAGE}.commands."
    return name.startswith(prefix) and "." not in name[len(prefix):] and not name[len(prefix):].startswith("_")


def in_package(name: str, sub: str) -> bool:
    return name == f"{PACKAGE}.{sub}" or name.startswith(f"{PACKAGE}.{sub}.")


# ---------------------------------------------------------------------------------------------------- the checker


def test_the_import_reader_sees_what_python_would_import(tmp_path, monkeypatch):
    """The rules are only as good as the edges: module vs name, relative imports, module level vs lazy."""
    root = tmp_path / "src"
    (root / PACKAGE / "commands").mkdir(parents=True)
    (root / PACKAGE / "viz").mkdir()
    files = {
        f"{PACKAGE}/__init__.py": "",
        f"{PACKAGE}/errors.py": "",
        f"{PACKAGE}/commands/__init__.py": "",
        f"{PACKAGE}/commands/a.py": "from clipxai.commands import b\nfrom clipxai.errors import InputError\n",
        f"{PACKAGE}/commands/b.py": "def f():\n    from . import a\n",
        f"{PACKAGE}/viz/__init__.py": "",
        f"{PACKAGE}/viz/x.py": "try:\n    import torch\nexcept ImportError:\n    pass\nfrom ..commands import _h\n",
        f"{PACKAGE}/commands/_h.py": "from clipxai.viz import x\n",
    }
    for rel, text in files.items():
        (root / rel).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "SRC", root)
    modules = {module_name(p): p for p in sorted((root / PACKAGE).rglob("*.py"))}
    monkeypatch.setattr(sys.modules[__name__], "MODULES", modules)
    assert imports("clipxai.commands.a", True) == {"clipxai.commands.b", "clipxai.errors"}
    assert imports("clipxai.commands.b", True) == set()
    assert imports("clipxai.commands.b", False) == {"clipxai.commands.a"}
    assert imports("clipxai.viz.x", True) == {"torch", "clipxai.commands._h"}
    assert cycles(graph(True)) == [["clipxai.commands._h", "clipxai.viz.x"]]  # a -> b is lazy: not a cycle
    assert sorted(map(sorted, cycles(graph(False)))) == [["clipxai.commands._h", "clipxai.viz.x"],
                                                         ["clipxai.commands.a", "clipxai.commands.b"]]
    assert is_verb("clipxai.commands.a") and not is_verb("clipxai.commands._h") and not is_verb("clipxai.commands")


# ---------------------------------------------------------------------------------------------------- the rules


VERB_MAX_LINES = 120  # a verb is argparse, one library call and its artifact; the protocol lives below it


def test_every_verb_is_thin():
    fat = {name: n for name in MODULES if is_verb(name)
           if (n := len(MODULES[name].read_text(encoding="utf-8").splitlines())) > VERB_MAX_LINES}
    assert fat == {}, f"verbs over {VERB_MAX_LINES} lines: move their protocol code under protocols/ or artifacts/"


def test_every_source_file_parses_and_the_package_is_found():
    assert f"{PACKAGE}.cli" in MODULES and f"{PACKAGE}.commands.report" in MODULES
    assert sum(is_verb(m) for m in MODULES) > 30


def test_no_import_cycle_at_module_level():
    assert cycles(graph(module_level_only=True)) == []


def test_no_library_module_imports_the_verbs_or_the_cli():
    bad = [(name, target) for name, targets in graph(module_level_only=False).items()
           if any(in_package(name, lib) for lib in LIBRARIES)
           for target in targets if in_package(target, "commands") or in_package(target, "cli")]
    assert bad == []


def test_no_verb_imports_another_verb():
    bad = {(name, target) for name, targets in graph(module_level_only=False).items() if is_verb(name)
           for target in targets if is_verb(target)}
    assert bad - ALLOWED_VERB_IMPORTS == set()


def test_allowed_exceptions_are_still_needed():
    edges = graph(module_level_only=False)
    stale = {(a, b) for a, b in ALLOWED_VERB_IMPORTS if b not in edges.get(a, set())}
    assert stale == set(), "remove these from ALLOWED_VERB_IMPORTS: the import is gone"


@pytest.mark.parametrize("sub", NO_MODEL_CODE)
def test_viz_and_report_import_no_model_code(sub):
    everywhere = {(name, t) for name in MODULES if in_package(name, sub)
                  for t in imports(name, module_level_only=False) if in_package(t, "models")}
    assert everywhere == set()
    heavy = {(name, t) for name in MODULES if in_package(name, sub)
             for t in imports(name, module_level_only=True)
             if t.split(".")[0] in ("torch", "torchvision", "open_clip") or in_package(t, "attribution")}
    assert heavy == set()
