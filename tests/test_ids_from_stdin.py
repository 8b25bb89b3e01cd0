"""``watch -``, ``get -`` and ``results -`` read ids from stdin as ``cancel -`` does; ``get`` takes several
(issue 24, item 15).

One reader (``cli._options.ids_from_stdin``) serves every command that takes ``-``:
``cbatch list -q ... | cbatch watch -`` follows what the listing printed. ``get`` of
several ids prints one JSON array with ``--json``, a line each with ``--jsonl``; one id
keeps its one object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cohere_batch_cli.api.client import CohereClient
from cohere_batch_cli.api.models import Batch
from tests.conftest import TEST_KEY, Cli
from tests.support.flows import make_batch, wait_terminal


@pytest.fixture
def two(sandbox: Any, tmp_path: Path) -> list[Batch]:
    with CohereClient(TEST_KEY, sandbox.base_url) as client:
        made = [make_batch(client, tmp_path, 2, name=f"piped-{n}") for n in range(2)]
        return [wait_terminal(client, b.id) for b in made]


def test_watch_dash_follows_the_ids_on_stdin(cli: Cli, two: list[Batch]) -> None:
    piped = "".join(f"{b.id}\n" for b in two)
    result = cli("watch", "-", "--plain", input=piped)
    for batch in two:
        assert f"({batch.id}) completed" in result.stdout
    nothing = cli("watch", "-", input="")
    assert "no batch ids on standard input: nothing to watch" in nothing.stderr


def test_get_takes_several_ids_and_reads_them_from_stdin(cli: Cli, two: list[Batch]) -> None:
    ids = [b.id for b in two]
    array = json.loads(cli("get", "-", "--json", input="\n".join(ids) + "\n").stdout)
    assert [b["id"] for b in array] == ids
    lines = cli("get", *ids, "--jsonl").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids
    assert cli("get", "-", "-q", input=f"{ids[1]}\n{ids[0]}\n").stdout.split() == ids[::-1]
    plain = cli("get", *ids).stdout
    assert plain.count("ID:") == 2 and "\n\n" in plain
    one = json.loads(cli("get", ids[0], "--json").stdout)
    assert isinstance(one, dict) and one["id"] == ids[0], "one id keeps its one object"
    assert json.loads(cli("get", "-", "--json", input=ids[0]).stdout)["id"] == ids[0]


def test_results_dash_reads_the_batch_id_from_stdin(
    cli: Cli, two: list[Batch], tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    cli("results", "-", "-o", str(out), input=f"{two[0].id}\n")
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    several = cli("results", "-", input="".join(f"{b.id}\n" for b in two), exit_code=2)
    assert "standard input holds 2 ids" in several.stderr
    assert "xargs -n1 cbatch results" in several.stderr
