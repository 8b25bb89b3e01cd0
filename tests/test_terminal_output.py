"""What a person at a terminal sees: tables, colour and words, in a real pseudo-terminal.

CliRunner's stdout is never a terminal, so these run the installed ``cbatch``
under pexpect, against the session's sandbox.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from cohere_batch_cli.api.client import CohereClient
from tests.conftest import TEST_KEY
from tests.support.flows import make_batch, wait_terminal

pexpect = pytest.importorskip("pexpect")
CBATCH = shutil.which("cbatch", path=os.path.dirname(sys.executable)) or shutil.which("cbatch")
pytestmark = pytest.mark.skipif(CBATCH is None, reason="cbatch is not installed in this environment")


def run_in_terminal(base_url: str, *args: str, **env_extra: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CO_", "NO_COLOR", "FORCE_COLOR"))}
    env.update({"CO_API_KEY": TEST_KEY, "CO_API_URL": base_url, "TERM": "xterm-256color"})
    env.update(env_extra)
    child = pexpect.spawn(CBATCH, list(args), env=env, encoding="utf-8", timeout=20, dimensions=(40, 160))
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before or ""


@pytest.fixture
def finished(sandbox: object, tmp_path: Path) -> str:
    with CohereClient(TEST_KEY, sandbox.base_url) as client:  # type: ignore[attr-defined]
        batch = make_batch(client, tmp_path, 3, fail={1}, name="terminal-view")
        wait_terminal(client, batch.id)
    return batch.id


def test_list_is_a_coloured_table_with_words_for_statuses(sandbox: object, finished: str) -> None:
    code, out = run_in_terminal(sandbox.base_url, "list", "--limit", "5")  # type: ignore[attr-defined]
    assert code == 0, out
    header = next(line for line in out.splitlines() if "STATUS" in line)
    assert all(word in header for word in ("ID", "NAME", "MODEL", "PROGRESS", "CREATED"))
    assert finished in out, "ids are shown whole"
    assert "completed" in out and "BATCH_STATUS_" not in out
    assert "\x1b[" in out, "colour on a terminal"


def test_no_color_and_the_flag_turn_colour_off(sandbox: object, finished: str) -> None:
    for extra_args, env in (((), {"NO_COLOR": "1"}), (("--no-color",), {}), ((), {"TERM": "dumb"})):
        code, out = run_in_terminal(sandbox.base_url, *extra_args, "get", finished, **env)  # type: ignore[attr-defined]
        assert code == 0 and "completed" in out
        assert "\x1b[3" not in out and "\x1b[9" not in out, (extra_args, env, out)


def test_get_shows_fields_readably(sandbox: object, finished: str) -> None:
    code, out = run_in_terminal(sandbox.base_url, "get", finished)  # type: ignore[attr-defined]
    assert code == 0
    assert "3/3 (100%), 1 failed" in out and "Output dataset" in out
