"""``cbatch login`` and ``cbatch config``: storing a key, and seeing what is in effect."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from .. import UsageError
from ._context import get_state
from ._errors import command_errors
from ._options import JsonlOpt, JsonOpt

if TYPE_CHECKING:
    from ..engine import Settings


def _read_key(state_is_tty: bool) -> str:
    """The key from a hidden prompt on a terminal, else the first line of stdin."""
    if state_is_tty:
        import getpass

        return getpass.getpass("Cohere API key (input hidden): ").strip()
    return sys.stdin.readline().strip()


def _prices(settings: Settings) -> tuple[str, str]:
    """Which models have prices, and where they come from: the environment's apply to every model."""
    if settings.env_prices is not None:
        return "every model", settings.env_prices.source
    if settings.prices:
        return ", ".join(sorted(settings.prices)), next(iter(settings.prices.values())).source
    return "(none: cbatch estimate shows no cost)", ""


def register(app: typer.Typer) -> None:
    @app.command("login", rich_help_panel="Configuration")
    @command_errors
    def login(
        ctx: typer.Context,
        profile: Annotated[
            str | None,
            typer.Option(
                "--profile",
                "-p",
                help="Profile to store the key in (default: the selected profile).",
            ),
        ] = None,
        base_url: Annotated[
            str | None,
            typer.Option("--base-url", help="Store this API base URL in the profile too."),
        ] = None,
        model: Annotated[
            str | None, typer.Option("--model", help="Store a default model in the profile too.")
        ] = None,
        no_check: Annotated[
            bool, typer.Option("--no-check", help="Save without checking the key against the API.")
        ] = False,
    ) -> None:
        """Store an API key in a profile, after checking it with one cheap call.

        The key is read without echo at a terminal, or from the first line of
        standard input, never from an option (it would show in process lists
        and shell history). The config file is written with mode 0600.

        Examples:

          cbatch login

          printf '%s\\n' "$COHERE_KEY" | cbatch login --profile ci
        """
        from .. import AuthenticationError
        from ..engine import (
            CohereClient,
            RetryPolicy,
            Timeouts,
            check_key_shape,
            resolve,
            save_profile,
        )

        state = get_state(ctx)
        key = _read_key(sys.stdin.isatty())
        if not key:
            raise UsageError("no key given: type it at the prompt or pipe it on stdin")
        check_key_shape(key, "the key you entered")
        target = resolve(
            profile=profile or state.profile,
            base_url_flag=base_url or state.base_url,
            new_profile=True,
        )
        name, url = target.profile, target.base_url.value or ""
        if not no_check:
            with CohereClient(
                key,
                url,
                timeouts=Timeouts(read=state.timeout or 30.0),
                retry=RetryPolicy.from_env(state.retries),
                ca_bundle=state.ca_bundle,
                debug=state.out.debug if state.debug else None,
            ) as client:
                try:
                    client.list_batches_page(page_size=1)
                except AuthenticationError as exc:
                    exc.message = f"the key you entered was refused by {url}: {exc.message}"
                    raise
        values = {"api_key": key}
        if base_url:
            values["base_url"] = base_url
        if model:
            values["model"] = model
        path = save_profile(name, values)
        state.out.info(
            f"key saved in profile '{name}' of {path}" + ("" if no_check else " (checked)")
        )
        if target.api_key.source.startswith("environment "):  # the saved key is not the one used
            variable = target.api_key.source.removeprefix("environment ")
            state.out.warn(
                f"{variable} is set and wins over the key saved in profile '{name}'; "
                f"unset {variable} to use the saved key"
            )

    @app.command("config", rich_help_panel="Configuration")
    @command_errors
    def config(ctx: typer.Context, json_out: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
        """Show the settings in effect and where each comes from (the key masked).

        Precedence: flags, then environment (CO_API_KEY, CO_API_URL), then the
        selected profile, then defaults. The service's limits (dataset size,
        organisation storage, dataset lifetime) are settings too, since the
        API does not publish them. The key is never shown beyond its
        last four characters. The last line is where the local state store
        is (lineage of retried batches; CBATCH_STATE_DIR moves it).

        Example:

          cbatch --profile ci config
        """
        from ..engine import STATE_FILE_NAME, mask, state_dir
        from ._options import format_duration

        state = get_state(ctx)
        out = state.out.set_mode(json_out=json_out, jsonl=jsonl)
        settings = state.settings()
        key = settings.api_key.value
        rows: list[tuple[str, str | None, str]] = [
            ("profile", settings.profile, settings.profile_source),
            (
                "config file",
                str(settings.config_path),
                "exists" if settings.config_path.exists() else "absent",
            ),
            ("api key", mask(key) if key else None, settings.api_key.source),
            ("base url", settings.base_url.value, settings.base_url.source),
            ("model", settings.model.value, settings.model.source),
            ("client name", settings.client_name.value, settings.client_name.source),
        ]
        limits = settings.limits
        rows += [
            ("dataset max bytes", f"{limits.dataset_max_bytes:,}", limits.sources[0]),
            ("org max bytes", f"{limits.org_max_bytes:,}", limits.sources[1]),
            ("dataset ttl", format_duration(limits.dataset_ttl), limits.sources[2]),
        ]
        rows += [
            (
                "assumed output",
                f"{settings.assumed_output} tokens",
                settings.assumed_output_tokens.source,
            ),
            ("prices", *_prices(settings)),
        ]
        folder, folder_source = state_dir()
        store = folder / STATE_FILE_NAME
        store_state = "exists" if store.exists() else "absent: made on first use"
        rows.append(
            (
                "state store",
                str(store),
                store_state + ("" if folder_source == "default" else f", {folder_source}"),
            )
        )
        if out.for_machines:  # what is not set is null, not a phrase a script must know
            out.document({k.replace(" ", "_"): {"value": v, "source": s} for k, v, s in rows})
            return
        width = max(len(k) for k, _, _ in rows)
        for name, value, source in rows:
            out.line(
                f"{name:<{width}}  {value or '(not set)'}" + (f"  ({source})" if source else "")
            )
