"""The import graph of ``hmviz``: no cycles, and arrows that only point down (docs/architecture.md).

The graph is read statically (``ast`` over every module of the package, relative imports resolved,
imports inside functions included), so an import that only runs on some code path counts too.
An edge ``a -> b`` means module ``a`` imports module ``b``; ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "hmviz"

#: The training engine and the sweeps built on it: what explanations of one trained model never need.
ENGINE = {"hmviz.engine", "hmviz.training", "hmviz.preparation", "hmviz.baselines", "hmviz.studies.runner", "hmviz.studies.executors",
          "hmviz.studies.work", "hmviz.studies.ablation"}
#: What ``hmviz.plots`` (data -> figure) may import: errors, metrics, the data layer and the pure
#: tables of mark subsets. Nothing that holds a model.
PLOTS_MAY_IMPORT = ("hmviz.errors", "hmviz.metrics", "hmviz.data", "hmviz.studies.marks")


def _module_names(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module ``from ... import`` names (relative imports resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, every module of ``root``'s package."""
    modules = _module_names(root)
    package = root.name
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, path.name == "__init__.py", node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a name inside a module
                    target = target.rpartition(".")[0]
                if target.split(".")[0] == package and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def reach(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` may load: its imports, theirs, and the packages above each (a package's
    ``__init__`` runs when one of its modules is imported), except the top package ``hmviz``."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        m = todo.pop()
        for w in graph.get(m, ()):
            parents = [".".join(w.split(".")[:i]) for i in range(2, w.count(".") + 1)]
            for x in [w, *parents]:
                if x not in seen and x != start:
                    seen.add(x)
                    todo.append(x)
    return seen


GRAPH = import_graph()


# ------------------------------------------------------------------ the walker itself, on a toy package
def _toy(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / "pkg" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path / "pkg"


def test_walker_sees_relative_and_function_level_imports(tmp_path):
    root = _toy(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from .sub.c import g\n",
        "sub/__init__.py": "",
        "sub/c.py": "import pkg.a\nfrom .. import b as bb\nfrom pkg.sub import c\ndef g(): pass\n",
    })
    graph = import_graph(root)
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a", "pkg.b"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    assert reach(graph, "pkg.b") >= {"pkg.sub", "pkg.sub.c", "pkg.a"}


def test_walker_finds_no_cycle_in_a_tree(tmp_path):
    root = _toy(tmp_path, {"__init__.py": "", "a.py": "from pkg import b\n", "b.py": "import json\n"})
    assert cycles(import_graph(root)) == []


# ------------------------------------------------------------------------------------ hmviz's own rules
def test_no_import_cycle_among_hmviz_modules():
    assert len(GRAPH) > 50  # the walk found the package
    assert cycles(GRAPH) == []


def test_no_import_cycle_among_subpackages():
    """Arrows point down between the parts too (``hmviz.explain``, ``hmviz.studies``, ``hmviz.cli``, ...)."""
    def part(m: str) -> str:
        return ".".join(m.split(".")[:2])

    parts: dict[str, set[str]] = {}
    for m, edges in GRAPH.items():
        parts.setdefault(part(m), set()).update(part(w) for w in edges if part(w) != part(m))
    assert cycles(parts) == []


def test_nothing_inside_the_package_imports_its_top():
    """``hmviz/__init__`` is the public front (``hmviz.load``): it sits above every module."""
    assert sorted(m for m, edges in GRAPH.items() if "hmviz" in edges) == []


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("hmviz.explain")))
def test_explanations_do_not_import_the_training_engine(module):
    assert sorted(reach(GRAPH, module) & ENGINE) == []


def test_plots_depend_on_data_only():
    outside = sorted(m for m in GRAPH["hmviz.plots"]
                     if not any(m == p or m.startswith(p + ".") for p in PLOTS_MAY_IMPORT))
    assert outside == []


def test_importing_plots_loads_no_model_code():
    code = ("import sys, hmviz.plots; print(' '.join(sorted(m for m in sys.modules if m == 'torch' or "
            "m.startswith(('hmviz.explain', 'hmviz.models', 'hmviz.training', 'hmviz.engine')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []



def test_cli_verbs_do_not_import_the_command_line_entry():
    """The verb registry sits below the verbs; only the entry (``hmviz.cli.main``) imports the verbs."""
    modules = [m for m in GRAPH if m.startswith("hmviz.cli.") and m not in ("hmviz.cli.main", "hmviz.cli.registry")]
    verbs = [m for m in modules if "hmviz.cli.registry" in GRAPH[m]]  # a verb module registers its verbs
    assert len(verbs) >= 7, "hmviz.cli is a package of verb modules"
    # Neither a verb nor a helper the verbs share (e.g. hmviz.cli.annotation) reaches the entry.
    assert sorted(m for m in modules if "hmviz.cli.main" in reach(GRAPH, m) or "hmviz.cli" in GRAPH[m]) == []
    assert GRAPH["hmviz.cli.registry"] <= {"hmviz.errors"}
    assert set(verbs) <= GRAPH["hmviz.cli.main"]


# ------------------------------------------------------------------ the model card is read by attribute
#: Where the card's keys may be read by string: the typed card itself and the file format under it.
CARD_KEYS_READ_IN = ("hmviz/card.py", "hmviz/card_file.py", "hmviz/checkpoints.py")
#: What is scanned: the library, the app, its pages, the benchmarks.
CARD_SCAN = ("hmviz", "hmviz_app", "pages", "bench", "app.py")
#: The card's fields that hold records with keys of their own (``card.training["best_epoch"]`` is a string
#: read too). ``metrics`` is not here: it is a table of measured numbers by metric name.
CARD_RECORDS = {"training", "data", "split", "transform", "config", "extra", "genes"}


def _card_like(node: ast.AST, bound: set[str]) -> bool:
    """``card``, ``model_card``, ``entry.card``, ``self.card.training`` ..., or a name bound to one of them."""
    if isinstance(node, ast.Name):
        return "card" in node.id.lower() or node.id in bound
    if isinstance(node, ast.Attribute):
        return "card" in node.attr.lower() or (node.attr in CARD_RECORDS and _card_like(node.value, bound))
    return False


def _string_read(node: ast.AST, bound: set[str]) -> bool:
    """``X["key"]`` or ``X.get("key", ...)`` on a card-like ``X``."""
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and isinstance(key.value, str) and _card_like(node.value, bound)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        key = node.args[0] if node.args else None
        return isinstance(key, ast.Constant) and isinstance(key.value, str) and _card_like(node.func.value, bound)
    return False


def card_key_reads(source: str) -> list[int]:
    """Lines of ``source`` that read a model card's keys by string (docstrings and comments do not count).

    A name assigned from a card (``c = entry.card``) or from a string read of one
    (``training = card.get("training", {})``) is followed: reads through it count too."""
    if "card" not in source.lower():  # every read starts from a name or attribute with "card" in it
        return []
    nodes = list(ast.walk(ast.parse(source)))
    assigns = [node for node in nodes if isinstance(node, ast.Assign)]
    bound: set[str] = set()
    while True:  # names bound to cards, until no new one is found
        new = {t.id for node in assigns if _card_like(node.value, bound) or _string_read(node.value, bound)
               for t in node.targets if isinstance(t, ast.Name)} - bound
        if not new:
            break
        bound |= new
    return sorted({node.lineno for node in nodes if _string_read(node, bound)})


def test_the_card_scanner_sees_string_reads_and_only_them():
    source = (
        '"""Docs may say card["split"]."""\n'
        'a = card["model"]\n'
        'b = entry.card.get("task", "binary")\n'
        'tr = m.card.get("training", {})\n'
        'c = tr.get("best_epoch")\n'
        'd = card.training["seconds"]\n'
        'x = result.card\n'
        'e = x["metrics"]\n'
        'f = (card.model, card.marks, card.metrics.get(name), card.metrics["test_auroc"], job.result["card"])\n'
        'g = card.best_epoch  # not card["training"]\n'
    )
    assert card_key_reads(source) == [2, 3, 4, 5, 6, 8]


def test_no_module_or_page_reads_model_card_keys_by_string():
    """The card is a :class:`hmviz.card.ModelCard`: its fields are attributes, typed and checked once on load.
    Outside ``hmviz/card.py``, ``hmviz/card_file.py`` and ``hmviz/checkpoints.py`` nothing reads ``card["key"]`` or ``card.get("key")``."""
    repo = ROOT.parent
    files = [p for top in CARD_SCAN for p in ((repo / top).rglob("*.py") if (repo / top).is_dir() else [repo / top])]
    assert len(files) > 50
    found = [f"{p.relative_to(repo)}:{line}" for p in sorted(files)
             if p.relative_to(repo).as_posix() not in CARD_KEYS_READ_IN
             for line in card_key_reads(p.read_text(encoding="utf-8"))]
    assert found == [], "model card keys read by string (use the ModelCard's attributes):\n" + "\n".join(found)
