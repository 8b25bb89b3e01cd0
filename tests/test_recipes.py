"""docs/recipes.md runs: each recipe, killed right after its create and run again, makes one batch.

Each ```python block of the page is a script, written to a file and run by a
child Python process against the session's sandbox, as a notebook kernel, an
Airflow worker or a Dagster run would run it. The first run is killed with
SIGKILL as its ``client.create`` returns (the harness below wraps the method:
the recipe itself is the page's text, untouched); the second run, on the same
state store or an empty one (another worker), must give back the same run,
and the sandbox's lists must hold one batch and one dataset for its key.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEY
from tests.support.keyed import made_for

PAGE = Path(__file__).resolve().parent.parent / "docs" / "recipes.md"

HARNESS = """
import os, runpy, signal, sys
import cohere_batch_cli as cb

if os.environ.get("KILL_AFTER_CREATE"):
    create = cb.Client.create

    def create_then_die(self, *args, **kwargs):
        create(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies: nothing after the create runs

    cb.Client.create = create_then_die
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def recipe(title: str) -> str:
    """The ```python block under the page's heading ``## {title}``."""
    text = PAGE.read_text(encoding="utf-8")
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, title
    return str(blocks[0])


def run(
    sandbox: Any, folder: Path, state: Path, script: str, *args: str, kill: bool = False
) -> subprocess.CompletedProcess[str]:
    path = folder / "recipe.py"
    path.write_text(script, encoding="utf-8")
    env = dict(
        os.environ, CO_API_KEY=TEST_KEY, CO_API_URL=sandbox.base_url, CBATCH_STATE_DIR=str(state)
    )
    env.pop("KILL_AFTER_CREATE", None)
    if kill:
        env["KILL_AFTER_CREATE"] = "1"
    return subprocess.run(
        [sys.executable, "-c", HARNESS, str(path), *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def killed_then_again(
    sandbox: Any, folder: Path, script: str, *args: str, empty_store: bool
) -> str:
    """The recipe run twice, the first killed after its create; the second's stdout."""
    first = run(sandbox, folder, folder / "state-1", script, *args, kill=True)
    assert first.returncode == -signal.SIGKILL, first.stderr
    state = folder / ("state-2" if empty_store else "state-1")
    again = run(sandbox, folder, state, script, *args)
    assert again.returncode == 0, again.stderr
    return again.stdout


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text("id,text\nr1,great phone\nr2,broke in a day\n", encoding="utf-8")
    return path


def test_the_notebook_run_again_re_attaches(sandbox: Any, tmp_path: Path) -> None:
    out = killed_then_again(sandbox, tmp_path, recipe("A notebook"), empty_store=False)
    batch_id, answers = out.split()
    assert answers == "3"
    batches, datasets = made_for(sandbox, "tickets-2026-12-06")
    assert batches == [batch_id] and len(datasets) == 1


@pytest.mark.parametrize("empty_store", [False, True], ids=["same store", "empty store"])
def test_the_airflow_task_retried_after_its_worker_died_makes_one_batch(
    sandbox: Any, tmp_path: Path, reviews: Path, empty_store: bool
) -> None:
    ds = f"2026-12-06-{uuid.uuid4().hex[:8]}"
    out = killed_then_again(
        sandbox, tmp_path, recipe("An Airflow task"), ds, str(reviews), empty_store=empty_store
    )
    batches, datasets = made_for(sandbox, f"classify_reviews/{ds}")
    assert batches == [out.strip()] and len(datasets) == 1
    table = (tmp_path / f"reviews-{ds}.csv").read_text(encoding="utf-8").splitlines()
    assert table[0].startswith("id,text,") and len(table) == 3


def test_the_dagster_asset_re_materialized_makes_one_batch(
    sandbox: Any, tmp_path: Path, reviews: Path
) -> None:
    partition = f"2026-12-06-{uuid.uuid4().hex[:8]}"
    out = killed_then_again(
        sandbox, tmp_path, recipe("A Dagster asset"), partition, str(reviews), empty_store=True
    )
    value = json.loads(out)
    assert sorted(value) == ["r1", "r2"]
    assert set(value.values()) <= {"positive", "negative"}
    batches, datasets = made_for(sandbox, f"review_sentiment/{partition}")
    assert len(batches) == 1 and len(datasets) == 1
