"""Settings: where each one comes from, and the config file that holds profiles.

Precedence, highest first (the order users of other CLIs expect; a stored key
never beats the environment):

1. command-line flags (``--base-url``, ``--timeout``...; never the key itself)
2. environment: ``CO_API_KEY`` (then ``COHERE_API_KEY``), ``CO_API_URL``, ``CBATCH_MODEL``
3. the selected profile of the config file: ``--profile``, else
   ``CBATCH_PROFILE``, else the file's ``default_profile``, else ``default``
4. built-in defaults

The file is TOML at ``platformdirs.user_config_dir("cbatch")/config.toml``
(``CBATCH_CONFIG`` names another path)::

    default_profile = "default"

    [profiles.default]
    api_key = "..."
    base_url = "https://api.cohere.com"
    model = "command-r-08-2024"
    client_name = "my-pipeline"
    dataset_ttl = "30d"
    assumed_output_tokens = 4096      # the output bound of a record without max_tokens

    [profiles.default.prices."command-r-08-2024"]
    input = 0.15                      # per million input tokens
    output = 0.60                     # per million output tokens

The service's limits are settings too (:class:`Limits`), since the API does not
publish them: ``dataset_max_bytes``, ``org_max_bytes`` and ``dataset_ttl``, each
from its ``CBATCH_...`` variable, else the profile, else Cohere's published value.
A test or a private deployment lowers them as it lowers a sandbox's.

cbatch ships no prices: a price is whatever the user's contract says, in their
currency, and a stale built-in table would be worse than none. The environment
overrides them (``CBATCH_INPUT_PRICE`` and ``CBATCH_OUTPUT_PRICE``, for any
model, and ``CBATCH_ASSUMED_OUTPUT_TOKENS``), as it overrides everything else.

A file holding a key is written atomically with mode 0600 from its first byte
(:mod:`cohere_batch_cli.atomic`); reading one that others can read earns a warning,
and so does a key or table cbatch does not know (``api-key``, ``[profile.x]``): a
typo would otherwise be ignored in silence, and newer files stay readable.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from . import units

ENV_API_KEY = "CO_API_KEY"
ENV_API_KEY_FALLBACK = "COHERE_API_KEY"
ENV_BASE_URL = "CO_API_URL"
ENV_PROFILE = "CBATCH_PROFILE"
ENV_CONFIG = "CBATCH_CONFIG"
ENV_MODEL = "CBATCH_MODEL"
ENV_DATASET_MAX_BYTES = "CBATCH_DATASET_MAX_BYTES"
ENV_ORG_MAX_BYTES = "CBATCH_ORG_MAX_BYTES"
ENV_DATASET_TTL = "CBATCH_DATASET_TTL"
ENV_STATE_DIR = "CBATCH_STATE_DIR"
ENV_CACHE_DIR = "CBATCH_CACHE_DIR"
ENV_CACHE_MAX_BYTES = "CBATCH_CACHE_MAX_BYTES"
ENV_INPUT_PRICE = "CBATCH_INPUT_PRICE"
ENV_OUTPUT_PRICE = "CBATCH_OUTPUT_PRICE"
ENV_ASSUMED_OUTPUT = "CBATCH_ASSUMED_OUTPUT_TOKENS"
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    (ENV_API_KEY, "The API key (wins over any profile)."),
    (ENV_API_KEY_FALLBACK, f"The API key, when {ENV_API_KEY} is not set."),
    (ENV_BASE_URL, "The API base URL (default https://api.cohere.com); --base-url wins."),
    (ENV_PROFILE, "The config profile to use; --profile wins."),
    (ENV_CONFIG, "Path of the config file, instead of the platform's config directory."),
    (ENV_MODEL, "The default model of create (wins over the profile's model); --model wins."),
    (
        "CBATCH_LOCAL_TIME",
        "1: show times in this machine's time zone with the offset (default UTC); also --local-time.",
    ),
    (
        ENV_STATE_DIR,
        "Folder of the local state store (batch lineage, retries), instead of the user data folder.",
    ),
    (
        ENV_CACHE_DIR,
        "Folder of the answer cache of table runs, instead of the user cache folder.",
    ),
    (
        ENV_CACHE_MAX_BYTES,
        "Largest size of the answer cache (default 1GB); the answers used longest ago go first.",
    ),
    ("NO_COLOR", "Any value: no colour. Also --no-color, and TERM=dumb."),
    ("FORCE_COLOR", "Any value: colour even when output is not a terminal."),
    ("SSL_CERT_FILE", "A CA bundle to verify TLS with (a private CA or a TLS-inspecting proxy)."),
    ("HTTPS_PROXY, NO_PROXY", "The usual proxy settings, honoured for API and download requests."),
    ("CBATCH_RETRY_BASE", "Seconds of the first retry backoff (default 1; doubles each retry)."),
    (
        ENV_DATASET_MAX_BYTES,
        "Largest file one dataset may hold (default 1.5GB: 1,500,000,000 bytes); profile key dataset_max_bytes.",
    ),
    (
        ENV_ORG_MAX_BYTES,
        "Dataset storage of the organisation (default 10GB); profile key org_max_bytes.",
    ),
    (
        ENV_DATASET_TTL,
        "How long the service keeps a dataset (default 30d; 90, 15m, 2h also read); profile key dataset_ttl.",
    ),
    (
        ENV_INPUT_PRICE,
        "Price per million input tokens, for any model (with CBATCH_OUTPUT_PRICE); wins over the profile.",
    ),
    (ENV_OUTPUT_PRICE, "Price per million output tokens, for any model (with CBATCH_INPUT_PRICE)."),
    (ENV_ASSUMED_OUTPUT, "Output tokens assumed for a record without max_tokens (default 4096)."),
)
"""Every environment variable cbatch reads, for ``cbatch help environment`` and the docs."""
DEFAULT_PROFILE = "default"
DEFAULT_BASE_URL = "https://api.cohere.com"
STRING_KEYS = ("api_key", "base_url", "model", "client_name")
LIMIT_KEYS = ("dataset_max_bytes", "org_max_bytes", "dataset_ttl")
ASSUMED_OUTPUT_KEY = "assumed_output_tokens"
PRICES_KEY = "prices"
PROFILE_KEYS = STRING_KEYS + LIMIT_KEYS + (ASSUMED_OUTPUT_KEY, PRICES_KEY)

DATASET_MAX_BYTES = 1_500_000_000
"""Cohere's "1.5 GB" for one dataset, taken as decimal gigabytes: 1,500,000,000 bytes."""
ORG_MAX_BYTES = 10_000_000_000
"""Cohere's "10 GB" of datasets per organisation, batch outputs included."""
DATASET_TTL = 30 * 86_400.0
"""Cohere deletes a dataset 30 days after it was created (seconds)."""
DEFAULT_ASSUMED_OUTPUT = 4096
"""Output tokens assumed for a record without ``max_tokens``, since the API publishes no default.

4,096 is the largest reply Cohere documents for Command R and Command R7B (its models
page; Command A models may write 8,192): an upper bound for those, a floor for the
rest, so a cost bound built on it says which (docs/estimating.md).
"""


from .errors import ConfigError  # noqa: E402 - re-exported: callers catch it from here


@dataclass(frozen=True)
class Setting:
    """A resolved value and where it came from, so ``cbatch config`` can say why."""

    value: str | None
    source: str


@dataclass(frozen=True)
class Limits:
    """What the service allows, which its API does not say: known here, overridable.

    Each value remembers where it came from, as every setting does, so
    ``cbatch config`` can say why a file was refused.
    """

    dataset_max_bytes: int = DATASET_MAX_BYTES
    org_max_bytes: int = ORG_MAX_BYTES
    dataset_ttl: float = DATASET_TTL
    sources: tuple[str, str, str] = ("default", "default", "default")


@dataclass(frozen=True)
class Prices:
    """What a model costs per million tokens, in the user's own currency; and where it was set."""

    input: Decimal
    output: Decimal
    source: str = ""

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        return (self.input * input_tokens + self.output * output_tokens) / 1_000_000


@dataclass(frozen=True)
class Settings:
    """Everything resolved from flags, environment, profile and defaults."""

    profile: str
    config_path: Path
    api_key: Setting
    base_url: Setting
    model: Setting
    client_name: Setting
    warnings: tuple[str, ...] = field(default=())
    limits: Limits = field(default_factory=Limits)
    assumed_output_tokens: Setting = Setting(str(DEFAULT_ASSUMED_OUTPUT), "default")
    prices: dict[str, Prices] = field(default_factory=dict)
    """Prices by model name, from the profile; :meth:`prices_for` applies the environment."""
    env_prices: Prices | None = None
    profile_source: str = "default"
    """What chose the profile: ``--profile``, ``CBATCH_PROFILE``, the file's default_profile."""

    @property
    def assumed_output(self) -> int:
        """The output bound of a record without ``max_tokens``."""
        return int(self.assumed_output_tokens.value or DEFAULT_ASSUMED_OUTPUT)

    def prices_for(self, model: str) -> Prices | None:
        """The prices of ``model``: the environment's for any model, else the profile's, else None."""
        return self.env_prices or self.prices.get(model)

    def require_api_key(self) -> str:
        """The key, stripped of surrounding white space; refused (never shown) if malformed."""
        key = (self.api_key.value or "").strip()
        if not key:
            raise ConfigError(
                f"no API key: set {ENV_API_KEY}, or run 'cbatch login' to store one"
                + (f" in profile '{self.profile}'" if self.profile != DEFAULT_PROFILE else "")
            )
        check_key_shape(key, self.api_key.source)
        return key


def check_key_shape(key: str, source: str) -> None:
    """Refuse a key that cannot travel in a header, without ever repeating it.

    A key pasted with a line break or curly quotes would otherwise fail deep in
    the HTTP library, whose message quotes the header, key and all.
    """
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise ConfigError(
            f"the API key from {source} contains white space, control or non-ASCII "
            "characters; set it again (it is not shown here)"
        )


def config_path() -> Path:
    """Where the config file lives (``CBATCH_CONFIG`` overrides)."""
    override = os.environ.get(ENV_CONFIG)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("cbatch", appauthor=False)) / "config.toml"


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    data: dict[str, Any] = tomllib.loads(
        text
    )  # tomli is untyped to a 3.10 check: say what it returns
    return data


def load_file(path: Path) -> dict[str, Any]:
    """The parsed config file ({} when absent), its shape checked so errors name the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = _toml_loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    default = data.get("default_profile")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"config file {path}: default_profile must be a string")
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"config file {path}: [profiles] must be a table")
    for name, profile in profiles.items():
        if not isinstance(profile, dict):
            raise ConfigError(f"config file {path}: profiles.{name} must be a table")
        for key, value in profile.items():
            if key in STRING_KEYS and not isinstance(value, str):
                raise ConfigError(f"config file {path}: profiles.{name}.{key} must be a string")
            if key in LIMIT_KEYS and (
                isinstance(value, bool) or not isinstance(value, (str, int, float))
            ):
                raise ConfigError(
                    f"config file {path}: profiles.{name}.{key} must be a number or a string"
                )
        where = f"config file {path}: profiles.{name}"
        if ASSUMED_OUTPUT_KEY in profile:
            _positive_int(profile[ASSUMED_OUTPUT_KEY], f"{where}.{ASSUMED_OUTPUT_KEY}")
        _check_prices(profile.get(PRICES_KEY, {}), f"{where}.{PRICES_KEY}")
    return data


TOP_KEYS = ("default_profile", "profiles")


def unknown_keys(data: dict[str, Any], path: Path) -> list[str]:
    """One warning per key or table the file holds that cbatch does not read (a typo, most likely)."""
    import difflib

    def hint(key: str, known: tuple[str, ...]) -> str:
        close = difflib.get_close_matches(key.replace("-", "_"), known, n=1, cutoff=0.6)
        return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"

    warnings = [
        f"config file {path}: {key!r} is not a setting cbatch reads{hint(key, TOP_KEYS)}"
        for key in data
        if key not in TOP_KEYS
    ]
    for name, profile in data.get("profiles", {}).items():
        warnings += [
            f"config file {path}: profiles.{name}.{key} is not a setting cbatch reads{hint(key, PROFILE_KEYS)}"
            for key in profile
            if key not in PROFILE_KEYS
        ]
    return warnings


def _limits(env: Any, stored: dict[str, Any], from_profile: str) -> Limits:
    """The service's limits from the environment, else the profile, else the published values."""
    found: list[Any] = []
    sources: list[str] = []
    wanted = (
        (ENV_DATASET_MAX_BYTES, "dataset_max_bytes", units.parse_size, DATASET_MAX_BYTES),
        (ENV_ORG_MAX_BYTES, "org_max_bytes", units.parse_size, ORG_MAX_BYTES),
        (ENV_DATASET_TTL, "dataset_ttl", units.parse_duration, DATASET_TTL),
    )
    for env_name, key, parse, default in wanted:
        if env.get(env_name):
            raw, source = env[env_name], f"environment {env_name}"
        elif key in stored:
            raw, source = stored[key], f"{key} in {from_profile}"
        else:
            found.append(default)
            sources.append("default")
            continue
        try:
            found.append(parse(raw))
        except ValueError as exc:
            raise ConfigError(f"{key} from {source}: {exc}") from None
        sources.append(source)
    return Limits(found[0], found[1], found[2], (sources[0], sources[1], sources[2]))


def _positive_int(value: Any, where: str) -> int:
    """``value`` as a positive int (an int, or digits from the environment), or ConfigError."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where} must be a positive whole number of tokens, got {value!r}")
    return value


def _price(value: Any, where: str) -> Decimal:
    """A price per million tokens: a number at least 0 (from TOML, or text from the environment)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{where} must be a number (a price per million tokens), got {value!r}")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(
            f"{where} must be a number (a price per million tokens), got {value!r}"
        ) from None
    if not price.is_finite() or price < 0:
        raise ConfigError(f"{where} must be a number at least 0, got {value!r}")
    return price


def _check_prices(table: Any, where: str) -> dict[str, Prices]:
    """The ``prices`` table of a profile: ``[prices."MODEL"]`` tables of ``input`` and ``output``."""
    if not isinstance(table, dict):
        raise ConfigError(
            f"{where} must be a table of models, each a table of input and output prices"
        )
    found = {}
    for model, prices in table.items():
        at = f'{where}."{model}"'
        if not isinstance(prices, dict) or set(prices) != {"input", "output"}:
            raise ConfigError(
                f"{at} must hold exactly input and output, each a price per million tokens"
            )
        found[model] = Prices(
            _price(prices["input"], f"{at}.input"), _price(prices["output"], f"{at}.output")
        )
    return found


def _permission_warning(path: Path) -> str | None:
    if os.name != "posix":
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"config file {path} can be read by other users; run: chmod 600 {path}"
    return None


def resolve(
    *,
    profile: str | None = None,
    base_url_flag: str | None = None,
    environ: dict[str, str] | None = None,
    new_profile: bool = False,
) -> Settings:
    """Resolve every setting with its source; raises ConfigError for a bad file or profile.

    ``new_profile`` lets the selected profile be one that does not exist yet
    (``cbatch --profile ci login`` creates it).
    """
    env = os.environ if environ is None else environ
    path = config_path()
    data = load_file(path)
    profiles: dict[str, dict[str, Any]] = data.get("profiles", {})
    if profile:
        chosen, chosen_by = profile, "--profile"
    elif env.get(ENV_PROFILE):
        chosen, chosen_by = env[ENV_PROFILE], ENV_PROFILE
    else:
        chosen, chosen_by = data.get("default_profile") or DEFAULT_PROFILE, None
    if chosen_by is None and data.get("default_profile"):
        chosen_by = f"default_profile in {path}"
    if chosen_by and chosen not in profiles and not new_profile:
        known = ", ".join(sorted(profiles)) or "none yet"
        raise ConfigError(
            f"unknown profile '{chosen}' (from {chosen_by}); profiles in {path}: {known}"
        )
    stored = profiles.get(chosen, {})
    from_profile = f"profile '{chosen}' ({path})"

    def pick(flag: str | None, flag_name: str, env_names: tuple[str, ...], key: str) -> Setting:
        if flag:
            return Setting(flag, flag_name)
        for name in env_names:
            if env.get(name):
                return Setting(env[name], f"environment {name}")
        if stored.get(key):
            return Setting(stored[key], from_profile)
        return Setting(None, "not set")

    api_key = pick(None, "", (ENV_API_KEY, ENV_API_KEY_FALLBACK), "api_key")
    base_url = pick(base_url_flag, "--base-url", (ENV_BASE_URL,), "base_url")
    if base_url.value is None:
        base_url = Setting(DEFAULT_BASE_URL, "default")
    model = pick(None, "", (ENV_MODEL,), "model")
    client_name = pick(None, "", (), "client_name")
    if client_name.value is None:
        client_name = Setting("cbatch", "default")
    warnings = unknown_keys(data, path)
    assumed = pick(None, "", (ENV_ASSUMED_OUTPUT,), ASSUMED_OUTPUT_KEY)
    if assumed.value is None:
        assumed = Setting(str(DEFAULT_ASSUMED_OUTPUT), "default")
    else:
        assumed = Setting(str(_positive_int(assumed.value, assumed.source)), assumed.source)
    prices = {
        model: Prices(p.input, p.output, f"profile '{chosen}'")
        for model, p in _check_prices(
            stored.get(PRICES_KEY, {}), f"{from_profile}: {PRICES_KEY}"
        ).items()
    }
    if stored.get("api_key"):
        warning = _permission_warning(path)
        if warning:
            warnings.append(warning)
    return Settings(
        profile=chosen,
        config_path=path,
        api_key=api_key,
        base_url=base_url,
        model=model,
        client_name=client_name,
        warnings=tuple(warnings),
        limits=_limits(env, stored, from_profile),
        assumed_output_tokens=assumed,
        prices=prices,
        env_prices=_env_prices(env),
        profile_source=chosen_by or "default",
    )


def _env_prices(env: Any) -> Prices | None:
    """Prices from the environment, for whichever model is estimated; both or neither."""
    given = {name: env.get(name) for name in (ENV_INPUT_PRICE, ENV_OUTPUT_PRICE)}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise ConfigError(
            f"{missing[0]} is not set: prices from the environment need both "
            f"{ENV_INPUT_PRICE} and {ENV_OUTPUT_PRICE}"
        )
    return Prices(
        _price(given[ENV_INPUT_PRICE], f"environment {ENV_INPUT_PRICE}"),
        _price(given[ENV_OUTPUT_PRICE], f"environment {ENV_OUTPUT_PRICE}"),
        f"environment {ENV_INPUT_PRICE}, {ENV_OUTPUT_PRICE}",
    )


def mask(secret: str | None) -> str:
    """A key as it may be shown: never more than its last four characters."""
    if not secret:
        return "(not set)"
    if len(secret) <= 8:
        return "****"
    return "****" + secret[-4:]


def save_profile(name: str, values: dict[str, str], *, make_default: bool = False) -> Path:
    """Set ``values`` in profile ``name`` of the config file, editing it in place.

    The file is the user's: its comments, blank lines, key order, number
    spellings (``1_000``) and quoted keys stay byte for byte as they were, and
    only the keys set here change (tomlkit edits the parsed document, where a
    dump of the parsed values would rewrite it all). Imported here only:
    ``login`` is the one command that writes the file.
    """
    import tomlkit

    from .atomic import write_text_atomic

    path = config_path()
    load_file(path)  # a malformed file is refused as every command refuses it, not overwritten
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    document = tomlkit.parse(text)
    if "profiles" not in document:
        document["profiles"] = tomlkit.table(is_super_table=True)
    profiles = document["profiles"]
    if name not in profiles:
        profiles[name] = tomlkit.table()
    profile = profiles[name]
    for key, value in values.items():
        if value and profile.get(key) != value:
            profile[key] = value
    if make_default and document.get("default_profile") != name:
        document["default_profile"] = name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_text_atomic(path, tomlkit.dumps(document), mode=0o600)
    return path
