"""docs/python-api.md is true: its examples run, in order, against a sandbox, and print nothing;
docs/python-reference.md is the code's own signatures and docstrings, regenerated.

The page's ```python blocks are one program, run in-process in one namespace, in
the test's scratch folder, with ``CO_API_KEY`` and ``CO_API_URL`` pointing at the
session's sandbox, inside :func:`~tests.support.quiet.nothing_printed`: the
library's own silence is part of what the page promises. Every public name of
the package must be used in an example of the section that documents it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import cohere_batch_cli as cb
from cohere_batch_cli import engine
from tests.conftest import TEST_KEY
from tests.support.quiet import nothing_printed

PAGE = Path(__file__).resolve().parent.parent / "docs" / "python-api.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def blocks() -> list[str]:
    return BLOCK.findall(PAGE.read_text(encoding="utf-8"))


def test_the_examples_run_against_the_sandbox_and_print_nothing(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cohere_batch_cli import pace

    monkeypatch.setenv("CO_API_KEY", TEST_KEY)
    monkeypatch.setenv("CO_API_URL", sandbox.base_url)
    # The examples wait as a program would, polling every 2 s at first; the sandbox ends a
    # batch in a fraction of that, so the page's waits poll faster here (nothing they print
    # depends on the pace).
    monkeypatch.setattr(pace, "INTERVAL", 0.1)
    namespace: dict[str, Any] = {"__name__": "python_api_page"}
    found = blocks()
    assert len(found) >= 10
    try:
        with nothing_printed():
            for number, code in enumerate(found, 1):
                try:
                    exec(compile(code, f"{PAGE.name}, example {number}", "exec"), namespace)
                except Exception as exc:
                    raise AssertionError(
                        f"example {number} of {PAGE.name} failed:\n{code}"
                    ) from exc
    finally:  # a failed example leaves its clients open
        for value in namespace.values():
            if isinstance(value, cb.Client):
                value.close()


def test_every_public_name_is_used_in_an_example_of_its_own_section() -> None:
    """Each name of ``cb.__all__`` is used (``cb.NAME``) in an executed block of the page,
    in a section that also documents it in words: a mention alone proves nothing runs."""
    text = PAGE.read_text(encoding="utf-8")
    sections = re.split(r"^(?=#{2,3} )", text, flags=re.M)
    unused = []
    for name in cb.__all__:
        used = re.compile(rf"\bcb\.{re.escape(name)}\b")
        if not any(
            any(used.search(code) for code in BLOCK.findall(section))
            and used.search(BLOCK.sub("", section))
            for section in sections
        ):
            unused.append(name)
    assert unused == [], "used in no example of the section that documents it"


ENGINE_SECTION = "## The engine: what the command line is made of"


def engine_section() -> str:
    """The page's section on the engine, up to the next section of the same level."""
    text = PAGE.read_text(encoding="utf-8")
    assert ENGINE_SECTION in text
    section = text.split(ENGINE_SECTION, 1)[1]
    return re.split(r"^## ", section, maxsplit=1, flags=re.M)[0]


def test_the_engine_section_lists_exactly_the_engine_names() -> None:
    """A name in ``engine.__all__`` not on the page, or on the page and gone from the code, fails."""
    listed = re.findall(r"^- `(\w+)`: \S", engine_section(), flags=re.M)
    assert len(listed) == len(set(listed)), "a name listed twice"
    assert sorted(set(engine.__all__) - set(listed)) == [], "in engine.__all__, not on the page"
    assert sorted(set(listed) - set(engine.__all__)) == [], "on the page, not in engine.__all__"


def test_the_engine_names_are_its_homes_and_each_says_what_it_is_for() -> None:
    homes = engine._HOMES
    assert sorted(homes) == sorted(engine.__all__)
    for name in engine.__all__:
        value = getattr(engine, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_the_python_reference_is_generated_from_the_code_and_current() -> None:
    import sys

    docs = PAGE.parent
    sys.path.insert(0, str(docs))
    try:
        import generate_python_reference
    finally:
        sys.path.remove(str(docs))
    assert generate_python_reference.main(["--check"]) == 0, (
        "run: python docs/generate_python_reference.py"
    )
    text = (docs / "python-reference.md").read_text(encoding="utf-8")
    for name in cb.__all__:
        assert name == "__version__" or f"`cb.{name}`" in text or f"## cb.{name}" in text, name
    for name in engine.__all__:
        assert f"## engine.{name}\n" in text, name
