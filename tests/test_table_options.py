"""Every table option reaches its spec, on every command that takes a table.

The table options are declared once (``cli/_tables.table_options``) and parsed into one
``TableSpec``. This test runs each command in-process with each option and reads the
spec the command hands over at its seam (``cli._options.seams["table"]``, as gh's ``runF``): the
parsed value, before any request. An option accepted by one command and lost on another
fails here. What the spec then does is seen end to end in tests/test_table_in.py and
tests/test_table_runs.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cohere_batch_cli.exit_codes import ExitCode
from cohere_batch_cli.tasks.table_prompts import TableSpec
from tests.conftest import TEST_KEY, Cli

TABLE = "docs.csv"

COMMANDS: dict[str, list[str]] = {
    "create": ["create", "--model", "m"],
    "create --split": ["create", "--model", "m", "--split"],
    "jobs create": ["jobs", "create", "--model", "m"],
    "estimate": ["estimate", "--model", "m"],
}
"""Every command that takes a table, as its seam names it, with the arguments it needs."""

CHAT = ["--from", TABLE, "--prompt", "{{ text }}"]
EMBED = ["--from", TABLE, "--embed", "text"]

OPTIONS: dict[str, tuple[list[str], Callable[[TableSpec], bool]]] = {
    "--from": (CHAT, lambda t: t.table == Path(TABLE) and t.embed is None),
    "--prompt": (CHAT, lambda t: t.template == "{{ text }}" and t.where == "--prompt"),
    "--prompt-file": (
        ["--from", TABLE, "--prompt-file", "prompt.j2"],
        lambda t: t.template == "File: {{ text }}" and t.where == "prompt.j2",
    ),
    "--system": ([*CHAT, "--system", "Be brief."], lambda t: t.system == "Be brief."),
    "--system-file": ([*CHAT, "--system-file", "system.txt"], lambda t: t.system == "From a file."),
    "--id-column": ([*CHAT, "--id-column", "id"], lambda t: t.id_column == "id"),
    "--max-tokens": ([*CHAT, "--max-tokens", "7"], lambda t: t.options == {"max_tokens": 7}),
    "--temperature": ([*CHAT, "--temperature", "0.5"], lambda t: t.options == {"temperature": 0.5}),
    "--p": ([*CHAT, "--p", "0.9"], lambda t: t.options == {"p": 0.9}),
    "--k": ([*CHAT, "--k", "40"], lambda t: t.options == {"k": 40}),
    "--seed": ([*CHAT, "--seed", "18446744073709551615"], lambda t: t.options == {"seed": 2**64 - 1}),
    "--frequency-penalty": ([*CHAT, "--frequency-penalty", "1"], lambda t: t.options == {"frequency_penalty": 1.0}),
    "--presence-penalty": ([*CHAT, "--presence-penalty", "0"], lambda t: t.options == {"presence_penalty": 0.0}),
    "--stop-sequence": (
        [*CHAT, "--stop-sequence", "END", "--stop-sequence", "\n\n"],
        lambda t: t.options == {"stop_sequences": ["END", "\n\n"]},
    ),
    "--safety-mode": ([*CHAT, "--safety-mode", "OFF"], lambda t: t.options == {"safety_mode": "OFF"}),
    "--thinking": ([*CHAT, "--thinking", "disabled"], lambda t: t.options == {"thinking": {"type": "disabled"}}),
    "--thinking-budget": (
        [*CHAT, "--thinking-budget", "512"],
        lambda t: t.options == {"thinking": {"type": "enabled", "token_budget": 512}},
    ),
    "--priority": ([*CHAT, "--priority", "999"], lambda t: t.options == {"priority": 999}),
    "--schema": (
        [*CHAT, "--schema", "s.json"],
        lambda t: t.options["response_format"]["json_schema"]["required"] == ["label"],
    ),
    "--no-dedupe": ([*CHAT, "--no-dedupe"], lambda t: not t.dedupe and t.cache),
    "--no-cache": ([*CHAT, "--no-cache"], lambda t: t.dedupe and not t.cache),
    "--embed": (
        EMBED,
        lambda t: t.embed == "text"
        and t.template is None
        and t.dataset_type == "batch-embed-v2-input"
        and t.options == {"input_type": "search_document"},
    ),
    "--embed-input-type": (
        [*EMBED, "--embed-input-type", "search_query"],
        lambda t: t.options["input_type"] == "search_query",
    ),
    "--embed-types": (
        [*EMBED, "--embed-types", "float,int8", "--embed-types", "ubinary"],
        lambda t: t.options["embedding_types"] == ["float", "int8", "ubinary"],
    ),
    "--embed-truncate": ([*EMBED, "--embed-truncate", "NONE"], lambda t: t.options["truncate"] == "NONE"),
    "--embed-max-tokens": ([*EMBED, "--embed-max-tokens", "9"], lambda t: t.options["max_tokens"] == 9),
}  # fmt: skip
"""Every table option, and what the spec holds when it is given."""


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, TableSpec]:
    """The seam: each command's table spec, by the command's name, instead of running it."""
    from cohere_batch_cli.cli import _options

    monkeypatch.chdir(tmp_path)
    (tmp_path / TABLE).write_text("id,text\n1,a\n")
    (tmp_path / "prompt.j2").write_text("File: {{ text }}")
    (tmp_path / "system.txt").write_text("From a file.")
    (tmp_path / "s.json").write_text(
        '{"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}'
    )
    seen: dict[str, TableSpec] = {}
    monkeypatch.setitem(
        _options.seams, "table", lambda command, table: seen.__setitem__(command, table)
    )
    return seen


def test_every_declared_table_option_is_in_the_table() -> None:
    from cohere_batch_cli.cli._tables import TABLE_FLAGS

    assert set(TABLE_FLAGS.values()) == set(OPTIONS)


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_table_option_reaches_the_spec_of_every_command_that_takes_a_table(
    handed: dict[str, TableSpec], command: str, option: str
) -> None:
    flags, holds = OPTIONS[option]
    Cli("http://127.0.0.1:9", TEST_KEY)(*COMMANDS[command], *flags)  # the seam ends it first
    assert command in handed, f"{command} never handed its table spec over"
    assert holds(handed[command]), f"{command} {' '.join(flags)}: {handed[command]}"


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--embed-types", "float"], "--embed-types goes with --from TABLE"),
        ([*CHAT, "--embed", "text"], "--embed and --prompt do not go together"),
        ([*EMBED, "--temperature", "0.2"], "--temperature goes with --prompt, not --embed"),
        ([*EMBED, "--seed", "1", "--thinking", "enabled"], "--seed, --thinking go with --prompt"),
        ([*CHAT, "--embed-truncate", "END"], "--embed-truncate goes with --embed"),
        ([*EMBED, "--type", "batch-embed-v2-input"], "--type goes with --file"),
    ],
    ids=[
        "stray",
        "embed and prompt",
        "chat option on embed",
        "generation options on embed",
        "embed option on chat",
        "--type",
    ],
)
def test_a_table_option_that_means_nothing_here_is_refused_alike_on_every_command(
    handed: dict[str, TableSpec], command: str, flags: list[str], says: str
) -> None:
    result = Cli("http://127.0.0.1:9", TEST_KEY)(
        *COMMANDS[command], *flags, exit_code=ExitCode.USAGE
    )
    assert says in result.stderr
    assert not handed


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--temperature", "1.01"], "'--temperature': 1.01 is not in the range 0.0<=x<=1.0"),
        (["--p", "0"], "'--p': 0.0 is not in the range 0.01<=x<=0.99"),
        (["--k", "501"], "'--k': 501 is not in the range 0<=x<=500"),
        (["--seed", str(2**64)], "'--seed': 18446744073709551616 is not in the range"),
        (["--frequency-penalty", "-0.1"], "'--frequency-penalty': -0.1 is not in the range"),
        (["--presence-penalty", "1.5"], "'--presence-penalty': 1.5 is not in the range"),
        (["--priority", "1000"], "'--priority': 1000 is not in the range 0<=x<=999"),
        (["--thinking-budget", "0"], "'--thinking-budget': 0 is not in the range x>=1"),
        (["--safety-mode", "NONE"], "'--safety-mode': 'NONE' is not one of"),
        (
            [f"--stop-sequence={n}" for n in "abcdef"],
            "6 stop sequences given; the API takes at most 5",
        ),
        (["--stop-sequence", ""], "a stop sequence must be text, and not empty"),
        (
            ["--thinking", "disabled", "--thinking-budget", "9"],
            "a thinking budget goes with thinking enabled, not disabled",
        ),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_a_generation_option_outside_the_apis_bounds_is_refused_alike_on_every_command(
    handed: dict[str, TableSpec], command: str, flags: list[str], says: str
) -> None:
    """The bounds of bodies.yaml, before any row is read: exit 2, nothing handed on."""
    result = Cli("http://127.0.0.1:9", TEST_KEY)(
        *COMMANDS[command], *CHAT, *flags, exit_code=ExitCode.USAGE
    )
    assert says in result.stderr
    assert not handed


def test_the_choices_the_flags_offer_are_the_apis() -> None:
    from cohere_batch_cli import generation_options
    from cohere_batch_cli.cli._tables import SafetyMode, Thinking

    assert tuple(m.value for m in SafetyMode) == generation_options.SAFETY_MODES
    assert tuple(t.value for t in Thinking) == generation_options.THINKING
