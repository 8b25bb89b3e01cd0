"""Write docs/python-reference.md from the Python API itself: every public name, its signature and docstring.

Run ``python docs/generate_python_reference.py`` after changing a public name or
its docstring; the test suite runs it with ``--check`` and fails when the
committed file is stale. The page is read from the package (``cb.__all__``,
``inspect``), so it says what the code says; docs/python-api.md is the guide.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

from generated_page import write_or_check

REFERENCE = Path(__file__).with_name("python-reference.md")
HEADER = """# Python API reference

Every public name of `import cohere_batch_cli as cb` and of its engine tier, made from the
code's own signatures and docstrings by `docs/generate_python_reference.py` (the tests fail
when this page is stale). The guide, with examples, is [Python API](python-api.md).
"""

ENGINE_HEADER = """# The engine

`from cohere_batch_cli import engine`: the run model's entry points and option values, what
every `cbatch` command is made of. Each with its signature and the first paragraph of its
docstring (the rest is in the code). The guide:
[the engine](python-api.md#the-engine-what-the-command-line-is-made-of).
"""


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "") if getattr(obj, "__doc__", None) else ""


def _annotation(value: Any) -> str:
    """An annotation as written in the source (they are strings here: ``from __future__ import annotations``)."""
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _signature(name: str, obj: Any, *, method: bool = False, returns: bool = True) -> str:
    """``name(params) -> result`` as the source spells it; a method's ``self`` or ``cls`` left out."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    params = list(signature.parameters.values())[1 if method else 0 :]
    shown: list[str] = []
    star = False
    for param in params:
        if param.kind == param.KEYWORD_ONLY and not star:
            shown.append("*")
            star = True
        text = {param.VAR_POSITIONAL: "*", param.VAR_KEYWORD: "**"}.get(param.kind, "") + param.name
        star = star or param.kind == param.VAR_POSITIONAL
        if param.annotation is not param.empty:
            text += f": {_annotation(param.annotation)}"
        if param.default is not param.empty:
            text += f" = {param.default!r}"
        shown.append(text)
    result = ""
    if returns and signature.return_annotation is not signature.empty:
        result = f" -> {_annotation(signature.return_annotation)}"
    return f"{name}({', '.join(shown)}){result}"


def _own_members(cls: type) -> list[tuple[str, Any]]:
    """The public methods and properties a class defines itself, in source order."""
    return [
        (name, value)
        for name, value in vars(cls).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or isinstance(value, (property, classmethod)))
    ]


def _error(name: str, cls: type) -> str:
    parents = ", ".join(f"`{b.__name__}`" for b in cls.__bases__)
    first = _doc(cls).split("\n\n")[0].replace("\n", " ")
    return f"| `cb.{name}` | {int(cls.exit_code)} | {parents} | {first} |"  # type: ignore[attr-defined]


def _section(name: str, obj: Any, prefix: str = "cb", *, whole: bool = True) -> str:
    """A name's section; not ``whole`` (the engine's): its signature and first paragraph only."""
    import enum

    lines = [f"## {prefix}.{name}", ""]
    if inspect.isclass(obj) and issubclass(obj, enum.Enum):
        lines += ["```python", f"class {name}({obj.__bases__[0].__name__})", "```", ""]
    elif inspect.isclass(obj):
        lines += ["```python", f"class {_signature(name, obj, returns=False)}", "```", ""]
    elif inspect.isfunction(obj):
        lines += ["```python", f"def {_signature(name, obj)}", "```", ""]
    elif isinstance(obj, (set, frozenset)):  # in order: a set's own order changes with each run
        lines += ["```python", f"{name} = {type(obj).__name__}({sorted(obj)!r})", "```", ""]
    else:
        lines += ["```python", f"{name} = {obj!r}", "```", ""]
    if not whole:
        summary = _doc(obj).split("\n\n")[0]
        return "\n".join(lines + ([summary, ""] if summary else []))
    if _doc(obj):
        lines += [_doc(obj), ""]
    if inspect.isclass(obj) and issubclass(obj, enum.Enum):
        lines += [f"- `{member.name}` = {member.value!r}" for member in obj] + [""]
        return "\n".join(lines)
    if not inspect.isclass(obj):
        return "\n".join(lines)
    members = _own_members(obj)
    properties = [(member, value) for member, value in members if isinstance(value, property)]
    if properties:
        lines += ["Properties:", ""]
        for member, value in properties:
            first = _doc(value.fget).split("\n\n")[0].replace("\n", " ")
            lines.append(f"- `{member}`" + (f": {first}" if first else ""))
        lines.append("")
    for member, value in members:
        if isinstance(value, property):
            continue
        function = value.__func__ if isinstance(value, classmethod) else value
        lines += [
            f"### {name}.{member}",
            "",
            "```python",
            _signature(member, function, method=True),
            "```",
            "",
        ]
        if _doc(function):
            lines += [_doc(function), ""]
    return "\n".join(lines)


def render() -> str:
    import cohere_batch_cli as cb
    from cohere_batch_cli import engine

    names = sorted(n for n in cb.__all__ if n != "__version__")
    objects = {name: getattr(cb, name) for name in names}
    errors = [
        n for n in names if inspect.isclass(objects[n]) and issubclass(objects[n], cb.CbatchError)
    ]
    parts = [HEADER]
    parts += [_section(n, objects[n]) for n in names if n not in errors]
    parts.append(
        "## Errors\n\nEach with its `exit_code`, the number `cbatch` ends with for it.\n\n"
        "| exception | exit code | base | meaning |\n|---|---|---|---|\n"
        + "\n".join(_error(n, objects[n]) for n in errors)
        + "\n"
    )
    parts.append(ENGINE_HEADER)
    parts += [
        _section(n, getattr(engine, n), "engine", whole=False) for n in sorted(engine.__all__)
    ]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(REFERENCE, render(), argv, "docs/generate_python_reference.py")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main(sys.argv[1:]))
