"""The naming scheme (read back from names alone) and the local state store (created on first
use, migrated on open, shared by processes, refused when it is from a newer cbatch)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cohere_batch_cli import naming
from cohere_batch_cli.errors import LocalWriteError, StoreDamaged
from cohere_batch_cli.naming import Lineage
from cohere_batch_cli.state import store as state_store
from cohere_batch_cli.state.migrations import MIGRATIONS
from cohere_batch_cli.state.store import BatchRecord, InputFile, StateStore

ROOT = "3a21ff4a-03d6-4a8c-b324-3f5f5e292b57"


@pytest.mark.parametrize(
    ("lineage", "name"),
    [
        (Lineage(root_batch_id=ROOT, attempt=2), f"nightly [retry 1 of {ROOT}]"),
        (Lineage(root_batch_id=ROOT, attempt=4), f"nightly [retry 3 of {ROOT}]"),
        (Lineage(job_id="7f3k2q", part=3), "nightly [job 7f3k2q part 3]"),
        (Lineage(job_id="7f3k2q", part=3, attempt=3), "nightly [job 7f3k2q part 3 retry 2]"),
    ],
)
def test_a_batch_name_carries_its_lineage_and_reads_back(lineage: Lineage, name: str) -> None:
    assert naming.batch_name("nightly", lineage) == name
    assert naming.parse_batch_name(name) == ("nightly", lineage)
    assert naming.label_of(name) == "nightly"


def test_names_of_the_user_s_own_are_no_lineage() -> None:
    for name in ("nightly", "exp [v2]", "[retry one of x]", "a [job x part 0]", ""):
        assert naming.parse_batch_name(name) == (name, None)
    # a label with brackets of its own keeps them, and the tag is still found
    tagged = naming.batch_name("exp [v2]", Lineage(root_batch_id=ROOT, attempt=2))
    assert naming.parse_batch_name(tagged) == ("exp [v2]", Lineage(root_batch_id=ROOT, attempt=2))


def test_an_original_keeps_its_own_name() -> None:
    with pytest.raises(ValueError):
        naming.batch_name("nightly", Lineage(root_batch_id=ROOT))


@pytest.mark.parametrize(
    "label", ["nightly", "", "x" * 200, "Évaluation du modèle — run #12 (final)"]
)
def test_dataset_names_stay_under_fifty_characters_and_keep_the_tag(label: str) -> None:
    for lineage in (
        Lineage(root_batch_id=ROOT, attempt=12),
        Lineage(job_id="j" * 30, part=999, attempt=7),
    ):
        name = naming.dataset_name(label, lineage)
        assert len(name) < 50, name
        assert name.endswith("retry11-3a21ff4a") or name.endswith("p999-retry6"), name
    assert (
        naming.dataset_name("nightly", Lineage(root_batch_id=ROOT, attempt=2))
        == "nightly-retry1-3a21ff4a"
    )


# -- the store -----------------------------------------------------------------------------------


def test_the_store_is_made_on_first_use_where_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CBATCH_STATE_DIR", str(tmp_path / "deep" / "state"))
    assert state_store.state_dir() == (tmp_path / "deep" / "state", "environment CBATCH_STATE_DIR")
    assert state_store.existing_store() is None
    assert not (tmp_path / "deep").exists(), "a read makes nothing"
    store = state_store.open_store()
    assert store.path == tmp_path / "deep" / "state" / "state.sqlite3"
    assert store.version == len(MIGRATIONS)
    assert state_store.open_store() is store, "one connection per process"
    assert state_store.existing_store() is store
    state_store.close_all()


def test_records_survive_and_another_process_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = StateStore(path)
    store.record_batch(
        BatchRecord("b2", f"n [retry 1 of {ROOT}]", "command-r", "ds-2", ROOT, ROOT, 2, None)
    )
    store.record_input_file(InputFile("ds-1", "/data/requests.jsonl", 123, "ab" * 32, 1))
    store.begin_attempt(
        root_id=ROOT,
        attempt=3,
        parent_id="b2",
        batch_name="n",
        dataset_name="d",
        model="m",
        records=5,
        source="file",
    )
    store.advance_attempt(ROOT, 3, "uploaded", dataset_id="ds-3")
    code = (
        "import sys; from pathlib import Path\n"
        "from cohere_batch_cli.state.store import StateStore\n"
        "s = StateStore(Path(sys.argv[1]))\n"
        "a = s.attempt(sys.argv[2], 3)\n"
        "print(s.chain(sys.argv[2])[0].id, s.input_file('ds-1').size, a.step, a.dataset_id)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), ROOT], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["b2", "123", "uploaded", "ds-3"]
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_an_older_store_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite3"
    sqlite3.connect(old).close()  # version 0: an empty file from before the first migration
    assert StateStore(old).version == len(MIGRATIONS)
    newer = tmp_path / "newer.sqlite3"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreDamaged, match="made by a newer cbatch"):
        StateStore(newer)


def test_a_store_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LocalWriteError, match="cannot use the state store") as caught:
        StateStore(blocker / "state.sqlite3")
    assert "CBATCH_STATE_DIR" in (caught.value.hint or "")


def test_cbatch_config_says_where_the_store_is(tmp_path: Path) -> None:
    import json

    from tests.conftest import TEST_KEY, Cli

    path = tmp_path.parent / f"{tmp_path.name}-state" / "state.sqlite3"
    result = Cli("http://127.0.0.1:1", TEST_KEY)("config")
    (line,) = [row for row in result.stdout.splitlines() if row.startswith("state store")]
    assert line.split()[2:] == [
        str(path),
        "(absent:",
        "made",
        "on",
        "first",
        "use,",
        "environment",
        "CBATCH_STATE_DIR)",
    ]
    StateStore(path).close()
    document = json.loads(Cli("http://127.0.0.1:1", TEST_KEY)("config", "--json").stdout)
    assert document["state_store"] == {
        "value": str(path),
        "source": "exists, environment CBATCH_STATE_DIR",
    }
