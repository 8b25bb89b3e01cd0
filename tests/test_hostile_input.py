"""Hostile and careless ids and names: escaped, carried intact, never a traceback."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohere_batch_cli.api.client import CohereClient, RetryPolicy
from cohere_batch_cli.api.errors import InvalidRequestError, NotFoundError
from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.cli_cache import cache_app_command
from tests.support.fault_server import FaultServer, batch_json

NASTY = st.one_of(
    st.sampled_from(
        [
            "a/b",
            "../../v1/datasets",
            "%2e%2e",
            "?page_size=1",
            "#frag",
            "a b",
            "ü🙂",
            "\x00\n\t",
            "x" * 5000,
        ]
    ),
    st.text(min_size=1, max_size=60),
)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def client(fault_server: FaultServer) -> Iterator[CohereClient]:
    """One client for every example of a test: building its TLS context is most of the cost."""
    with CohereClient(TEST_KEY, fault_server.base_url, retry=RetryPolicy(retries=0)) as c:
        yield c


@SETTINGS
@given(batch_id=NASTY)
def test_any_id_stays_one_path_segment(
    fault_server: FaultServer, client: CohereClient, batch_id: str
) -> None:
    fault_server.requests.clear()
    try:
        client.get_batch(batch_id)
    except InvalidRequestError:
        assert batch_id.strip(" .") == ""
        return
    except NotFoundError:
        pass
    [request] = fault_server.requests
    prefix = "/v2/batches/"
    assert request.path.startswith(prefix)
    segment = request.path[len(prefix) :]
    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert unquote(segment) == batch_id


@SETTINGS
@given(name=st.text(max_size=80))
def test_names_travel_intact_in_the_json_body(
    fault_server: FaultServer, client: CohereClient, name: str
) -> None:
    fault_server.requests.clear()
    fault_server.steady["POST /v2/batches"] = (200, {}, {"batch": batch_json(name=name)})
    batch = client.create_batch(name=name, input_dataset_id="ds-1", model="m")
    assert json.loads(fault_server.requests[-1].body)["name"] == name
    assert batch.name == name


@pytest.mark.parametrize("bad", ["", ".", "..", "  "])
def test_empty_or_dot_ids_are_usage_errors(fault_cli: Cli, bad: str) -> None:
    result = fault_cli("get", bad, exit_code=ExitCode.USAGE)
    assert "not a valid id" in result.stderr


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batch_id=st.text(min_size=1, max_size=40).filter(
        lambda s: s.strip(" .") and not s.startswith("-")
    )
)
def test_cli_answers_any_id_with_one_line(
    fast_cli: None, fault_server: FaultServer, batch_id: str
) -> None:
    result = Cli(fault_server.base_url, TEST_KEY)("get", batch_id, exit_code=ExitCode.NOT_FOUND)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


@pytest.fixture
def fast_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build the click command of the app once per test, not once per hypothesis example."""
    cache_app_command(monkeypatch)


# -- careless input files, through ``cbatch datasets validate`` ------------------------------
# tests/test_validate.py proves what check_file reports; these prove what a user sees:
# the exit code, the last line on stderr, nothing on stdout, never a traceback.

CHAT_LINE = b'{"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}'


def _huge_line_file(path: Path) -> None:
    from cohere_batch_cli.validate import MAX_LINE_BYTES

    chunk = b"x" * (1 << 20)
    with path.open("wb") as fh:
        fh.write(CHAT_LINE + b"\n" + b'{"custom_id": "b", "x": "')
        for _ in range(MAX_LINE_BYTES // len(chunk) + 1):
            fh.write(chunk)
        fh.write(b'"}\n' + CHAT_LINE.replace(b'"a"', b'"c"') + b"\n")


CARELESS_FILES = [
    ("empty", lambda p: p.write_bytes(b""), ExitCode.REFUSED, "no records"),
    ("blank lines", lambda p: p.write_bytes(b"\n \r\n\n"), ExitCode.REFUSED, "no records"),
    ("binary", lambda p: p.write_bytes(bytes(range(256)) * 64), ExitCode.REFUSED, "binary"),
    ("gzip", lambda p: p.write_bytes(gzip.compress(CHAT_LINE + b"\n")), ExitCode.REFUSED, "gzip"),
    ("utf-16", lambda p: p.write_bytes((CHAT_LINE.decode() + "\n").encode("utf-16")), ExitCode.REFUSED, "UTF-16"),
    ("bom", lambda p: p.write_bytes(b"\xef\xbb\xbf" + CHAT_LINE + b"\n"), ExitCode.OK, "1 record of"),
    ("crlf", lambda p: p.write_bytes(CHAT_LINE + b"\r\n" + CHAT_LINE.replace(b'"a"', b'"b"') + b"\r\n"), ExitCode.OK, "2 records"),
    ("no final newline", lambda p: p.write_bytes(CHAT_LINE), ExitCode.OK, "1 record of"),
    ("huge line", _huge_line_file, ExitCode.REFUSED, "jsonl:2: the line is longer than"),
    ("latin-1", lambda p: p.write_bytes(CHAT_LINE.replace(b"hi", b"caf\xe9") + b"\n"), ExitCode.REFUSED, "jsonl:1: not valid UTF-8"),
    ("a directory", lambda p: p.mkdir(), ExitCode.USAGE, "in.jsonl"),
    ("missing", lambda p: None, ExitCode.USAGE, "in.jsonl"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "code", "fragment"),
    [c[1:] for c in CARELESS_FILES],
    ids=[c[0] for c in CARELESS_FILES],
)
def test_careless_input_files_get_a_clear_error_and_exit_code(
    fast_cli: None, tmp_path: Path, make: Any, code: int, fragment: str
) -> None:
    path = tmp_path / "in.jsonl"
    make(path)
    result = Cli(None, None)("datasets", "validate", str(path), exit_code=code)
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert fragment in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.lower().startswith("error: ") == (code != ExitCode.OK), (
        result.stderr
    )  # typer's own: "Error:"
    assert len(result.stderr) < 4000, "one problem, not one per line"


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.one_of(
    st.binary(max_size=3000),
    st.lists(st.sampled_from([CHAT_LINE, b"{", b"[]", b"null", b"\xff\xfe", b"\x00", b"   ", b"\xef\xbb\xbf" + CHAT_LINE]), max_size=8)
    .flatmap(lambda lines: st.sampled_from([b"\n", b"\r\n", b"\r"]).map(lambda end: end.join(lines))),
))  # fmt: skip
def test_validate_answers_any_bytes_with_0_or_5(
    fast_cli: None, tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "any.jsonl"
    path.write_bytes(data)
    result = Cli(None, None)("datasets", "validate", str(path), exit_code=_code_of(path))
    assert result.stdout == "" and "Traceback" not in result.stderr


def _code_of(path: Path) -> int:
    from cohere_batch_cli.validate import check_file

    return ExitCode.OK if check_file(path, None).ok else ExitCode.REFUSED


# -- careless config files ---------------------------------------------------------------------
# tests/test_config.py has one case of each kind; these try many, and bad base URLs.


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(["[profiles.default]", "[profiles]", "profiles = 1", 'api_key = "k"', "api_key = 1",
                              "model = []", "default_profile = 3", "[[profiles.x]]", "x = {", "\x00", '"'])).map("\n".join),
))  # fmt: skip
def test_any_config_text_is_read_or_refused_in_one_line(
    fast_cli: None, isolated_env: Path, text: str
) -> None:
    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_text(text, encoding="utf-8")
    result = Cli(None, TEST_KEY)("config", exit_code=_config_code())
    assert "Traceback" not in result.stderr
    if result.exit_code:
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def _config_code() -> int:
    from cohere_batch_cli.config import ConfigError, resolve

    try:
        resolve()
    except ConfigError:
        return ExitCode.AUTH
    return ExitCode.OK


VALUES = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.just("k"), st.integers(), max_size=1),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    profile=st.dictionaries(
        st.sampled_from(["api_key", "base_url", "model", "client_name", "other"]),
        VALUES,
        max_size=4,
    )
)
def test_a_value_of_the_wrong_type_names_its_key(
    fast_cli: None, isolated_env: Path, profile: dict[str, Any]
) -> None:
    import tomli_w

    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_bytes(tomli_w.dumps({"profiles": {"p": profile}}).encode())
    wrong = sorted(k for k, v in profile.items() if k != "other" and not isinstance(v, str))
    result = Cli(None, TEST_KEY)(
        "--profile", "p", "config", exit_code=ExitCode.AUTH if wrong else ExitCode.OK
    )
    if wrong:
        assert f"profiles.p.{wrong[0]} must be a string" in result.stderr or any(
            f"profiles.p.{k} must be a string" in result.stderr for k in wrong
        )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "url", ["http://", "not a url", "http://[::1", "ftp://example.com", "//no-scheme.example"]
)
@pytest.mark.parametrize("where", ["flag", "env", "profile"])
def test_an_unusable_base_url_is_a_configuration_error(
    isolated_env: Path, url: str, where: str
) -> None:
    args = ["--retries", "0", "get", "b-1"]
    env = {}
    if where == "flag":
        args = ["--base-url", url, *args]
    elif where == "env":
        env["CO_API_URL"] = url
    else:
        isolated_env.parent.mkdir(parents=True, exist_ok=True)
        isolated_env.write_text(f'[profiles.default]\nbase_url = "{url}"\n', encoding="utf-8")
    result = Cli(None, TEST_KEY)(*args, env=env, exit_code=ExitCode.AUTH)
    assert (
        result.stderr.count("\n") == 1
        and "base URL" in result.stderr
        and "cbatch config" in result.stderr
    )


def test_a_default_profile_that_does_not_exist_is_named(isolated_env: Path) -> None:
    isolated_env.parent.mkdir(parents=True, exist_ok=True)
    isolated_env.write_text(
        'default_profile = "wrok"\n[profiles.work]\napi_key = "k"\n', encoding="utf-8"
    )
    result = Cli(None, None)("list", exit_code=ExitCode.AUTH)
    assert "unknown profile 'wrok'" in result.stderr
