"""The folder tree is the architecture (DESIGN.md §7): imports flow downward, no cycles, the handler ships alone, and
the longest function and the widest folder stay readable. Read from the source with `ast`, so it cannot drift."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import orderflow

ROOT = Path(orderflow.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each orderflow module -> the orderflow modules it imports (anywhere in it, function-level imports too)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            graph[_module(path)] |= {n for n in names if n.startswith("orderflow") and _exists(n)}
    return graph


def _exists(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (ROOT / relative).with_suffix(".py").exists() or (ROOT / relative / "__init__.py").exists()


GRAPH = _imports()


def _imported_by(prefix: str) -> set[str]:
    return {target for module, targets in GRAPH.items() if module.startswith(prefix) for target in targets}


def test_the_handler_imports_nothing_of_orderflow():
    assert _imported_by("orderflow.lambda_code") == set()


def test_provision_and_flow_never_import_the_embedded_aws_or_the_cli():
    for layer in ("orderflow.provision", "orderflow.flow"):
        upward = {
            t for t in _imported_by(layer) if t.startswith(("orderflow.local", "orderflow.cli", "orderflow.render"))
        }
        assert upward == set(), (layer, upward)


def test_the_export_is_derived_from_provisioning_and_never_imports_the_embedded_aws_or_the_cli():
    upward = {
        t for t in _imported_by("orderflow.iac") if t.startswith(("orderflow.local", "orderflow.cli", "orderflow.flow"))
    }
    assert upward == set()
    assert "orderflow.provision.planner" in _imported_by("orderflow.iac")


def test_provision_never_imports_the_flows():
    assert {t for t in _imported_by("orderflow.provision") if t.startswith("orderflow.flow")} == set()


def test_the_foundation_imports_no_layer_above_it():
    for base in ("orderflow.stack", "orderflow.aws", "orderflow.arns", "orderflow.errors", "orderflow.iam"):
        above = {
            t
            for t in GRAPH[base]
            if t.startswith(("orderflow.provision", "orderflow.flow", "orderflow.local", "orderflow.cli"))
        }
        assert above == set(), (base, above)


def test_no_import_cycles_between_modules():
    def visit(module: str, path: list[str], seen: set[str]) -> None:
        for target in GRAPH.get(module, ()):
            target = target if target in GRAPH else target.rsplit(".", 1)[0]
            assert target not in path, f"import cycle: {' -> '.join([*path[path.index(target) :], target])}"
            if target not in seen:
                seen.add(target)
                visit(target, [*path, target], seen)

    seen: set[str] = set()
    for module in sorted(GRAPH):
        if module not in seen:
            seen.add(module)
            visit(module, [module], seen)


def test_no_function_is_longer_than_45_lines_and_no_folder_holds_more_than_12_modules():
    long = []
    folders: dict[Path, int] = defaultdict(int)
    for path in ROOT.rglob("*.py"):
        if path.name != "__init__.py":
            folders[path.parent] += 1
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 45:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert long == []
    assert {str(f.relative_to(ROOT)): n for f, n in folders.items() if n > 12} == {}
    assert sum(1 for _ in (ROOT / "cli.py").open()) < 500


def test_no_thread_subclass_overrides_what_threading_itself_calls():
    """A method named like one of Thread's own (`_delete`, `_stop`, …) is called by threading at the thread's end:
    a poller's `_delete` once was, and every poller thread ended in a TypeError."""
    import importlib
    import inspect
    import threading

    own = set(dir(threading.Thread)) - {"__init__", "run", "__doc__", "__module__", "__qualname__", "__dict__"}
    clashes = []
    for path in ROOT.rglob("*.py"):
        if path.name == "__main__.py":
            continue  # running it runs the CLI
        module = importlib.import_module(_module(path))
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, threading.Thread) and cls.__module__ == module.__name__:
                clashes += [f"{module.__name__}.{name}.{attribute}" for attribute in vars(cls) if attribute in own]
    assert clashes == []
