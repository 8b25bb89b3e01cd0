"""The engine: the run model's entry points and option values, what every ``cbatch`` command is made of.

The second public tier of the package, for a program that wants to do what a
command does, at the level the command line works: parse nothing, build the
command's option value (a :class:`SendSpec`, a :class:`WatchSpec`, a
:class:`RetryOptions`, a :class:`ResultsSpec`...) and call the entry point with
a client and a reporter. ``import cohere_batch_cli as cb`` is the first tier,
the library a notebook uses; this one is what the command line itself is a
client of (tests/test_architecture.py holds ``cli/`` to these two tiers and
``output/``), documented in docs/python-api.md, "The engine".

Like the package, it imports nothing when imported: each name is loaded from its
home module when first asked for, and looked up there again each time
(``cohere_batch_cli._lazy_names``), so a name is always its home's current value.
"""

from . import _lazy_names

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: the import stays free

_HOMES: dict[str, str] = {
    # The program, its client and its settings
    "version_line": "",
    "Settings": "config",
    "Setting": "config",
    "resolve": "config",
    "save_profile": "config",
    "check_key_shape": "config",
    "mask": "config",
    "ENVIRONMENT": "config",
    "scope_of": "completion_cache",
    "CohereClient": "api.client",
    "RetryPolicy": "api.client",
    "Timeouts": "api.client",
    "InvalidBaseURL": "api.errors",
    "FetchSettings": "tokens.source",
    "install_hint": "extras",
    "write_text_atomic": "atomic",
    "require_pyarrow": "results.parquet",
    # How a task speaks
    "Reporter": "tasks.reporting",
    "LibraryReporter": "library.reporting",
    # Sending a file: checks, datasets, batches
    "SendSpec": "tasks.send_file",
    "create_from_file": "tasks.send_file",
    "Sent": "tasks.send_file",
    "send_lock": "tasks.send_file",
    "GuardOptions": "tasks.estimating",
    "KeyOptions": "tasks.keyed",
    "check_key": "idempotency",
    "check_model": "tasks.models",
    "dry_run_create": "tasks.dry_run",
    "DryRun": "tasks.dry_run",
    "create_batch": "tasks.batches",
    "cancel_batches": "tasks.batches",
    "remember_new_batch": "tasks.lineage",
    "default_name": "tasks.datasets",
    "check_dataset_name": "naming",
    "plain_dataset_name": "naming",
    "upload_file": "tasks.datasets",
    "validate_input": "tasks.datasets",
    "FileReport": "validate",
    "deletion_impact": "tasks.datasets",
    "DatasetInfo": "api.models:Dataset",
    "BATCH_INPUT_TYPES": "input_rules",
    "is_stdin": "spool",
    "InputFileError": "errors",
    # Tables
    "TableSpec": "tasks.table_prompts",
    "chat_options": "tasks.table_prompts",
    "CHAT_BOUNDS": "generation_options:BOUNDS",
    "embed_options": "tasks.table_prompts",
    "EMBED_WITH_PROMPT": "tasks.table_prompts",
    "TableRequests": "tasks.table_send",
    "table_requests_file": "tasks.table_send",
    "job_input_path": "tasks.table_send",
    "table_job": "tasks.table_send",
    "table_fields": "tasks.keyed",
    # Jobs: one input run as several batches
    "JobOptions": "tasks.jobs",
    "create_job": "tasks.jobs",
    "keyed_job": "tasks.keyed",
    "send_parts": "tasks.jobs",
    "attach_job": "tasks.jobs",
    "find_job": "tasks.jobs",
    "input_of": "tasks.jobs",
    "job_run": "tasks.jobs",
    "job_view": "tasks.jobs",
    "job_left": "tasks.jobs",
    "job_schema": "tasks.table_results",
    "JobView": "tasks.jobs",
    "JobProgress": "tasks.jobs",
    "record_json": "tasks.jobs",
    "recorded_status": "tasks.jobs",
    "retry_job": "tasks.jobs",
    "dry_run_retry": "tasks.jobs",
    "cancel_job": "tasks.jobs",
    "prune_jobs": "tasks.jobs",
    "prune_maps": "tasks.request_reuse",
    # Watching
    "WatchSpec": "tasks.watching",
    "follow": "tasks.watching",
    "BatchDone": "watcher",
    "watch_changes": "tasks.listing",
    "PageCursor": "tasks.listing",
    "INTERVAL": "pace",
    "MAX_INTERVAL": "pace",
    "OUTAGE_LIMIT": "pace",
    "combine": "exit_codes",
    "PRECEDENCE": "exit_codes",
    "for_interruption": "exit_codes",
    "stop_word": "errors",
    "Terminated": "errors",
    # Retrying
    "RetryOptions": "tasks.retrying",
    "Rule": "selection",
    "PAUSE": "pace",
    "retry_rounds": "tasks.retrying",
    "retry_once": "tasks.retrying",
    "mark_done": "tasks.retrying",
    "RetryOutcome": "tasks.retrying",
    "still_failing_error": "tasks.retrying",
    "invalid_left": "tasks.retrying",
    "RecordsStillFailing": "errors",
    # Results
    "ResultsSpec": "tasks.results_spec",
    "check_results_spec": "tasks.results_spec:check",
    "check_run": "tasks.results_spec",
    "write_results": "tasks.results",
    "ResultsOf": "tasks.results:Run",
    "OutputOptionError": "errors",
    "expired": "lifetimes",
    "now_utc": "lifetimes",
    "results_expire_at": "lifetimes",
    # Finding a run from what was typed
    "BATCH": "tasks.resolving",
    "DATASET": "tasks.resolving",
    "act_on": "tasks.resolving",
    "resolve_id": "tasks.resolving",
    "resolve_ids": "tasks.resolving",
    "find_run": "tasks.runs",
    "lone_run": "tasks.runs",
    "known_lineage": "tasks.lineage",
    # Estimating and budgets
    "CountOptions": "tasks.estimating",
    "estimate_file": "tasks.estimating",
    "compare": "tasks.estimating",
    "Budget": "tasks.budget",
    "make_budget": "tasks.budget",
    # The state store
    "StateStore": "state.store",
    "JobRecord": "state.store",
    "open_store": "state.store",
    "existing_store": "state.store",
    "open_store_or_warn": "tasks.lineage",
    "state_dir": "state.store",
    "store_path": "state.store",
    "STATE_FILE_NAME": "state.store:FILE_NAME",
    "run_lock": "state.runlock",
    # The answer cache
    "AnswerCache": "state.answer_cache",
    "open_cache": "state.answer_cache",
    "CacheUnusable": "state.answer_cache",
    "Stats": "state.answer_cache",
    "cache_dir": "state.answer_cache",
    "CACHE_FILE_NAME": "state.answer_cache:FILE_NAME",
    "max_bytes": "state.answer_cache",
    "remove_cache": "state.answer_cache",
    # The sandbox server
    "SandboxServer": "sandbox.server",
    "SandboxSettings": "sandbox.server",
    "run_foreground": "sandbox.server",
    "DataDirInUse": "sandbox.server",
    "configure_sandbox_log": "sandbox.log:configure",
    # Units
    "parse_size": "units",
    "parse_duration": "units",
    "parse_moment": "units",
    "human_bytes": "units",
    "counted": "units",
}
"""Each name and its home module under the package (``module:attribute`` where it is named otherwise there)."""

__all__ = [
    "BATCH",
    "BATCH_INPUT_TYPES",
    "CACHE_FILE_NAME",
    "CHAT_BOUNDS",
    "DATASET",
    "EMBED_WITH_PROMPT",
    "ENVIRONMENT",
    "INTERVAL",
    "MAX_INTERVAL",
    "OUTAGE_LIMIT",
    "PAUSE",
    "PRECEDENCE",
    "STATE_FILE_NAME",
    "AnswerCache",
    "BatchDone",
    "Budget",
    "CacheUnusable",
    "CohereClient",
    "CountOptions",
    "DataDirInUse",
    "DatasetInfo",
    "DryRun",
    "FetchSettings",
    "FileReport",
    "GuardOptions",
    "InputFileError",
    "InvalidBaseURL",
    "JobOptions",
    "JobProgress",
    "JobRecord",
    "JobView",
    "KeyOptions",
    "LibraryReporter",
    "OutputOptionError",
    "PageCursor",
    "RecordsStillFailing",
    "Reporter",
    "ResultsOf",
    "ResultsSpec",
    "RetryOptions",
    "RetryOutcome",
    "RetryPolicy",
    "Rule",
    "SandboxServer",
    "SandboxSettings",
    "SendSpec",
    "Sent",
    "Setting",
    "Settings",
    "StateStore",
    "Stats",
    "TableRequests",
    "TableSpec",
    "Terminated",
    "Timeouts",
    "WatchSpec",
    "act_on",
    "attach_job",
    "cache_dir",
    "cancel_batches",
    "cancel_job",
    "chat_options",
    "check_dataset_name",
    "check_key",
    "check_key_shape",
    "check_model",
    "check_results_spec",
    "check_run",
    "combine",
    "compare",
    "configure_sandbox_log",
    "counted",
    "create_batch",
    "create_from_file",
    "create_job",
    "default_name",
    "deletion_impact",
    "dry_run_create",
    "dry_run_retry",
    "embed_options",
    "estimate_file",
    "existing_store",
    "expired",
    "find_job",
    "find_run",
    "follow",
    "for_interruption",
    "human_bytes",
    "input_of",
    "install_hint",
    "invalid_left",
    "is_stdin",
    "job_input_path",
    "job_left",
    "job_run",
    "job_schema",
    "job_view",
    "keyed_job",
    "known_lineage",
    "lone_run",
    "make_budget",
    "mark_done",
    "mask",
    "max_bytes",
    "now_utc",
    "open_cache",
    "open_store",
    "open_store_or_warn",
    "parse_duration",
    "parse_moment",
    "parse_size",
    "plain_dataset_name",
    "prune_jobs",
    "prune_maps",
    "record_json",
    "recorded_status",
    "remember_new_batch",
    "remove_cache",
    "require_pyarrow",
    "resolve",
    "resolve_id",
    "resolve_ids",
    "results_expire_at",
    "retry_job",
    "retry_once",
    "retry_rounds",
    "run_foreground",
    "run_lock",
    "save_profile",
    "scope_of",
    "send_lock",
    "send_parts",
    "state_dir",
    "still_failing_error",
    "stop_word",
    "store_path",
    "table_fields",
    "table_job",
    "table_requests_file",
    "upload_file",
    "validate_input",
    "version_line",
    "watch_changes",
    "write_results",
    "write_text_atomic",
]
"""The engine's names: :data:`_HOMES`'s, spelt out so type checkers see them exported."""

if TYPE_CHECKING:  # what type checkers and editors see; at run time, __getattr__ below
    from . import version_line
    from .api.client import CohereClient, RetryPolicy, Timeouts
    from .api.errors import InvalidBaseURL
    from .api.models import Dataset as DatasetInfo
    from .atomic import write_text_atomic
    from .completion_cache import scope_of
    from .config import ENVIRONMENT, Setting, Settings, check_key_shape, mask, resolve, save_profile
    from .errors import (
        InputFileError,
        OutputOptionError,
        RecordsStillFailing,
        Terminated,
        stop_word,
    )
    from .exit_codes import PRECEDENCE, combine, for_interruption
    from .extras import install_hint
    from .generation_options import BOUNDS as CHAT_BOUNDS
    from .idempotency import check_key
    from .input_rules import BATCH_INPUT_TYPES
    from .library.reporting import LibraryReporter
    from .lifetimes import expired, now_utc, results_expire_at
    from .naming import check_dataset_name, plain_dataset_name
    from .pace import INTERVAL, MAX_INTERVAL, OUTAGE_LIMIT, PAUSE
    from .results.parquet import require_pyarrow
    from .sandbox.log import configure as configure_sandbox_log
    from .sandbox.server import DataDirInUse, SandboxServer, SandboxSettings, run_foreground
    from .selection import Rule
    from .spool import is_stdin
    from .state.answer_cache import FILE_NAME as CACHE_FILE_NAME
    from .state.answer_cache import (
        AnswerCache,
        CacheUnusable,
        Stats,
        cache_dir,
        max_bytes,
        open_cache,
        remove_cache,
    )
    from .state.runlock import run_lock
    from .state.store import FILE_NAME as STATE_FILE_NAME
    from .state.store import (
        JobRecord,
        StateStore,
        existing_store,
        open_store,
        state_dir,
        store_path,
    )
    from .tasks.batches import cancel_batches, create_batch
    from .tasks.budget import Budget, make_budget
    from .tasks.datasets import default_name, deletion_impact, upload_file, validate_input
    from .tasks.dry_run import DryRun, dry_run_create
    from .tasks.estimating import CountOptions, GuardOptions, compare, estimate_file
    from .tasks.jobs import (
        JobOptions,
        JobProgress,
        JobView,
        attach_job,
        cancel_job,
        create_job,
        dry_run_retry,
        find_job,
        input_of,
        job_left,
        job_run,
        job_view,
        prune_jobs,
        record_json,
        recorded_status,
        retry_job,
        send_parts,
    )
    from .tasks.keyed import KeyOptions, keyed_job, table_fields
    from .tasks.lineage import known_lineage, open_store_or_warn, remember_new_batch
    from .tasks.listing import PageCursor, watch_changes
    from .tasks.models import check_model
    from .tasks.reporting import Reporter
    from .tasks.request_reuse import prune_maps
    from .tasks.resolving import BATCH, DATASET, act_on, resolve_id, resolve_ids
    from .tasks.results import Run as ResultsOf
    from .tasks.results import write_results
    from .tasks.results_spec import ResultsSpec, check_run
    from .tasks.results_spec import check as check_results_spec
    from .tasks.retrying import (
        RetryOptions,
        RetryOutcome,
        invalid_left,
        mark_done,
        retry_once,
        retry_rounds,
        still_failing_error,
    )
    from .tasks.runs import find_run, lone_run
    from .tasks.send_file import SendSpec, Sent, create_from_file, send_lock
    from .tasks.table_prompts import EMBED_WITH_PROMPT, TableSpec, chat_options, embed_options
    from .tasks.table_results import job_schema
    from .tasks.table_send import TableRequests, job_input_path, table_job, table_requests_file
    from .tasks.watching import WatchSpec, follow
    from .tokens.source import FetchSettings
    from .units import counted, human_bytes, parse_duration, parse_moment, parse_size
    from .validate import FileReport
    from .watcher import BatchDone

__getattr__, __dir__ = _lazy_names(__name__, _HOMES)
