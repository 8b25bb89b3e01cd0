"""The package's shape, read from its source: layers, imports, and who may write to a stream.

docs/architecture.md describes the layers; these tests keep the code to it.
They read the syntax tree, so a lazy import inside a function counts as much
as one at the top of a module (only ``if TYPE_CHECKING:`` blocks are left out,
since they never run).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cohere_batch_cli"
NAME = "cohere_batch_cli"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that can run: the bodies of ``if TYPE_CHECKING:`` are skipped."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module: str) -> set[str]:
    """The package modules ``module`` imports at run time, lazily or not."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path.name == "__init__.py", node.level, node.module)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith(NAME) and name != module:
                found.add(name)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle_lazy_imports_included() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def command_modules() -> set[str]:
    from cohere_batch_cli.cli.app import COMMANDS

    return {f"{NAME}.cli.{module}" for module, _, _ in COMMANDS.values()}


def test_no_command_module_imports_another() -> None:
    commands = command_modules()
    assert len(commands) >= 8
    crossing = {m: sorted(GRAPH[m] & commands) for m in commands if GRAPH[m] & commands}
    assert crossing == {}


ENTRY_POINTS = {f"{NAME}.main", f"{NAME}.__main__", f"{NAME}.sandbox.__main__"}
"""``python -m`` and console-script entry points sit above every layer."""


def _layer(prefix: str) -> set[str]:
    return {m for m in MODULES if m == prefix or m.startswith(prefix + ".")}


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("library", ("cli", "output", "sandbox")),
        ("api", ("cli", "output", "tasks", "sandbox", "library")),
        ("tokens", ("cli", "output", "tasks", "sandbox", "library")),
        ("tasks", ("cli", "library")),
        ("output", ("cli", "tasks", "sandbox", "library")),
        ("sandbox", ("cli", "output", "tasks", "library")),
    ],
)
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    bad = {
        module: sorted(
            dep for dep in GRAPH[module] if any(dep in _layer(f"{NAME}.{f}") for f in forbidden)
        )
        for module in _layer(f"{NAME}.{layer}") - ENTRY_POINTS
    }
    assert {m: deps for m, deps in bad.items() if deps} == {}


ENGINE = ("api", "tasks", "results", "state", "selection")
"""The engine: what a Python program calls with a client, a spec and a reporter, with no command line."""
ENGINE_MAY_USE = {f"{NAME}.output.progress"}
"""Of ``output/``, the engine runs only the do-nothing progress sink (``NullProgress``) where nobody watches."""


def test_the_engine_runs_without_the_command_line_or_the_output() -> None:
    cli, output = _layer(f"{NAME}.cli"), _layer(f"{NAME}.output")
    bad = {
        module: sorted(
            dep
            for dep in GRAPH[module]
            if dep in cli or (dep in output and dep not in ENGINE_MAY_USE)
        )
        for layer in ENGINE
        for module in _layer(f"{NAME}.{layer}")
    }
    assert {m: deps for m, deps in bad.items() if deps} == {}


def test_tasks_the_api_and_the_library_know_nothing_of_typer() -> None:
    for module in _layer(f"{NAME}.api") | _layer(f"{NAME}.tasks") | _layer(f"{NAME}.library"):
        source = MODULES[module].read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from)\s+(typer|click)\b", source, re.M), module


def test_the_api_layer_names_no_cbatch_command() -> None:
    """Hints that name a command are the CLI's and the tasks' to give, not the client's."""
    command = re.compile(
        r"cbatch (create|list|get|cancel|watch|results|datasets|login|config|sandbox|demo)\b"
    )
    for module in _layer(f"{NAME}.api"):
        for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not command.search(node.value), f"{module}: {node.value!r}"


# -- who writes to stdout and stderr -----------------------------------------------------------

ALLOWED_WRITERS = {f"{NAME}.main"}
"""The ``--version`` fast path answers before anything else is imported."""


def _stream_writes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in ("print", "Console"):
                yield node.lineno, func.id
            if isinstance(func, ast.Attribute):
                dotted = ast.unparse(func)
                if dotted in (
                    "typer.echo",
                    "typer.secho",
                    "click.echo",
                    "rich.print",
                    "rich.console.Console",
                ):
                    yield node.lineno, dotted
                if dotted == "os.write" and node.args and ast.unparse(node.args[0]) in ("1", "2"):
                    yield node.lineno, "os.write to fd 1 or 2"
        if isinstance(node, ast.Attribute) and ast.unparse(node) in (
            "sys.stdout",
            "sys.stderr",
            "sys.__stdout__",
            "sys.__stderr__",
        ):
            yield node.lineno, ast.unparse(node)


def test_nothing_outside_output_writes_to_a_stream() -> None:
    offenders = []
    for module, path in MODULES.items():
        if module in _layer(f"{NAME}.output") or module in ALLOWED_WRITERS:
            continue
        for line, what in _stream_writes(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    assert offenders == []


def test_the_stream_check_sees_each_kind_of_write() -> None:
    source = "import sys, os, typer\nprint(1)\ntyper.echo('x')\nsys.stderr.write('x')\nos.write(2, b'x')\nConsole()\n"
    assert [what for _, what in _stream_writes(ast.parse(source))].count("sys.stderr") == 1
    assert {what for _, what in _stream_writes(ast.parse(source))} == {
        "print", "typer.echo", "sys.stderr", "os.write to fd 1 or 2", "Console",
    }  # fmt: skip


def test_the_architecture_page_names_every_module_with_its_job() -> None:
    """docs/architecture.md's module index is the modules' own first docstring paragraphs."""
    import sys

    docs = Path(__file__).resolve().parent.parent / "docs"
    sys.path.insert(0, str(docs))
    try:
        import module_index
    finally:
        sys.path.remove(str(docs))
    assert module_index.main(["--check"]) == 0, "run: python docs/module_index.py --write"
    assert "(no docstring)" not in module_index.index(), "every module says what it is for"


# -- the Python API ----------------------------------------------------------------------------


def test_the_package_root_imports_nothing_and_names_only_public_modules() -> None:
    """``import cohere_batch_cli`` runs no import of the package (``--version`` reads it first);
    each public name comes from the library or a module the library makes public."""
    import cohere_batch_cli

    assert GRAPH[NAME] == set()
    public_modules = {"library.client", "library.run", "library.job", "library.events", "library.sources", "api.models", "api.errors",
                      "errors", "exit_codes", "results"}  # fmt: skip
    assert set(cohere_batch_cli._PUBLIC.values()) <= public_modules
    for name, module in cohere_batch_cli._PUBLIC.items():
        assert f"{NAME}.{module}" in MODULES, (name, module)


# -- the command line is a client of the public API --------------------------------------------


def _cli_imports(
    module: str, source: str, is_package: bool = False
) -> Iterator[tuple[int, str, str]]:
    """Each name ``module`` (one of ``cli/``) imports from the package: (line, module, name).

    The module is spelt from the package (``""`` for the package itself,
    ``engine``, ``output.core``, ``cli._context``), whether the import was
    written relative or absolute. Every import counts, ``if TYPE_CHECKING:``
    ones too: what mypy reads of the package is held to the same list.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            if base == NAME or base.startswith(NAME + "."):
                for alias in node.names:
                    yield node.lineno, base[len(NAME) + 1 :], alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == NAME or alias.name.startswith(NAME + "."):
                    yield node.lineno, alias.name[len(NAME) + 1 :], "*"


def _foreign(
    imports: Iterator[tuple[int, str, str]], public: set[str], engine: set[str]
) -> list[str]:
    """The imports that are none of: ``cli/``'s own, a public name, an engine name, ``output/``."""
    bad = []
    for line, module, name in imports:
        allowed = (
            module == "cli"
            or module.startswith("cli.")
            or (module == "" and name in public)
            or (module == "engine" and name in engine)
            or module == "output"
            or module.startswith("output.")
        )
        if not allowed:
            bad.append(f"{line}: from {module or '.'} import {name}")
    return bad


def test_the_command_line_imports_only_the_public_api_the_engine_and_the_output() -> None:
    """Every command is a client of the API (issue 26): ``cli/`` imports ``cohere_batch_cli``'s
    public names, ``cohere_batch_cli.engine``'s, ``output/`` and itself; nothing else of the package."""
    import cohere_batch_cli
    from cohere_batch_cli import engine

    public, names = set(cohere_batch_cli.__all__), set(engine.__all__)
    bad = {}
    for module, path in MODULES.items():
        if module in _layer(f"{NAME}.cli"):
            source = path.read_text(encoding="utf-8")
            imports = _cli_imports(module, source, path.name == "__init__.py")
            if found := _foreign(imports, public, names):
                bad[str(path.relative_to(PACKAGE.parent))] = found
    assert bad == {}, (
        "import it through cohere_batch_cli or cohere_batch_cli.engine; a name the engine lacks "
        "joins engine.py (_HOMES, __all__, the TYPE_CHECKING imports) and docs/python-api.md's "
        "engine section, then: python docs/generate_python_reference.py"
    )


def test_the_import_check_refuses_an_internal_module_however_it_is_spelt() -> None:
    source = (
        "from .. import UsageError, units\nfrom ..engine import SendSpec, nonsense\n"
        "from ..tasks.jobs import create_job\nimport cohere_batch_cli.state.store\n"
        "from cohere_batch_cli.config import resolve\nfrom ..output.core import Output\n"
        "from . import _context\nfrom ._errors import command_errors\n"
    )
    bad = _foreign(_cli_imports(f"{NAME}.cli._probe", source), {"UsageError"}, {"SendSpec"})
    assert bad == [
        "1: from . import units",
        "2: from engine import nonsense",
        "3: from tasks.jobs import create_job",
        "4: from state.store import *",
        "5: from config import resolve",
    ]


def test_the_engine_names_each_live_in_a_module_of_the_package() -> None:
    """``engine._HOMES`` names real modules, and the engine imports nothing at run time."""
    from cohere_batch_cli import engine

    assert sorted(engine._HOMES) == sorted(engine.__all__)
    for name, home in engine._HOMES.items():
        module = home.partition(":")[0]
        assert (f"{NAME}.{module}" if module else NAME) in MODULES, (name, home)
    assert GRAPH[f"{NAME}.engine"] == {NAME}, "the engine imports only the lazy mechanism"


def test_a_name_replaced_in_its_home_module_is_replaced_in_both_tiers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Neither tier keeps what it looked up: a test (or a program) that replaces a function where
    it lives is seen by every ``from ..engine import`` made after, as by the package's names."""
    import cohere_batch_cli
    from cohere_batch_cli import engine, errors, units

    def fake(size: int | None) -> str:
        return "fake"

    assert engine.human_bytes is units.human_bytes
    monkeypatch.setattr(units, "human_bytes", fake)
    from cohere_batch_cli.engine import human_bytes

    assert human_bytes is fake and engine.human_bytes is fake
    monkeypatch.setattr(errors, "UsageError", KeyError)
    assert cohere_batch_cli.UsageError is KeyError


@pytest.mark.parametrize(("tier", "table"), [(NAME, "_PUBLIC"), (f"{NAME}.engine", "_HOMES")])
def test_each_tier_says_each_name_three_times_alike(tier: str, table: str) -> None:
    """A tier's table (where each name lives), its ``__all__`` and its ``if TYPE_CHECKING:``
    imports (what mypy and editors see) name the same things from the same homes."""
    import importlib

    module = importlib.import_module(tier)
    homes: dict[str, str] = getattr(module, table)
    tree = ast.parse(MODULES[tier].read_text(encoding="utf-8"))
    seen: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in ast.walk(node):
                if isinstance(child, ast.ImportFrom) and child.level == 1:
                    for alias in child.names:
                        home = child.module or ""
                        if alias.asname:
                            home += f":{alias.name}"
                        seen[alias.asname or alias.name] = home
    assert seen == homes, "the TYPE_CHECKING imports and the table differ"
    assert sorted(set(module.__all__) - {"__version__"}) == sorted(homes)
