"""``cbatch login`` edits config.toml in place (issue 24, item 4).

It rewrote the whole file from the parsed values: every comment gone, ``1_000``
turned into ``1000``, quoted keys unquoted. The user's file is compared byte for
byte before and after: only the key that changed differs.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli

WRITTEN = """\
# my cbatch settings: keep this note
default_profile = "work"   # the one I use most

[profiles.work]
api_key = "old-key-0123456789"   # rotated every month
model = 'command-r-08-2024'
assumed_output_tokens = 1_000

# prices from the contract, not the website
[profiles.work.prices."command-r-08-2024"]
input  = 0.150
output = 6e-1

[profiles."ci"]
base_url = "http://127.0.0.1:8787"
"""


def test_login_changes_the_key_and_nothing_else(isolated_env: Path) -> None:
    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_text(WRITTEN, encoding="utf-8")
    Cli(None, None)("login", "--no-check", "--profile", "work", input="new-key-0123456789\n")
    assert isolated_env.read_bytes() == WRITTEN.replace("old-key", "new-key").encode()


def test_login_adds_a_profile_after_what_the_user_wrote(isolated_env: Path) -> None:
    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_text(WRITTEN, encoding="utf-8")
    Cli(None, None)("login", "--no-check", "--profile", "new", input="n-key-0123456789\n")
    text = isolated_env.read_text(encoding="utf-8")
    assert text.startswith(WRITTEN)
    assert Cli(None, None)("--profile", "new", "config", "--json").stdout.count("n-key") == 0
    shown = Cli(None, None)("--profile", "new", "config").stdout
    assert "****6789" in shown and "profile 'new'" in shown


def test_login_warns_that_the_environment_key_wins(isolated_env: Path) -> None:
    result = Cli(None, None)(
        "login",
        "--no-check",
        input="saved-key-0123456789\n",
        env={"CO_API_KEY": "env-key-9876543210"},
    )
    assert "warning: CO_API_KEY is set and wins over the key saved in profile 'default'" in (
        result.stderr
    )
    quiet = Cli(None, None)("login", "--no-check", input="saved-key-0123456789\n")
    assert "warning" not in quiet.stderr
