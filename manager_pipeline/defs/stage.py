"""What every stage of the Dagster layer shares: the run's event, progress lines, failures a
person can act on (redacted), and manager.yaml for sensors."""

import os
import socket
import time
from typing import Protocol

from dagster import (
    DagsterRunStatus,
    Failure,
    HookContext,
    JsonMetadataValue,
    MarkdownMetadataValue,
    MetadataValue,
    OpExecutionContext,
    RunsFilter,
    SkipReason,
    TextMetadataValue,
)

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.defs.partitions import split_partition_key
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import AUTHOR_TAG, HIDDEN_PREFIX, DispatchEvent, tag
from manager_pipeline.feedback.checks import annotations_of
from manager_pipeline.redact import redact, redact_text
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform.runner import StateLocked

DEPLOY_JOB = "deploy"
APPLY_JOB = "apply_plan"
DESTROY_JOB = "destroy"
WORKER_TAG = HIDDEN_PREFIX + "worker"
# Plan text shown inline in the UI; the full text is always in the plan artifact.


MAX_METADATA_PLAN_CHARS = 60_000
ANNOTATIONS = "annotations"


def current_event(context: OpExecutionContext | HookContext, author_key: bytes | None = None) -> DispatchEvent:
    """The run's event. Its author only under ``author_key`` (the step that records it passes the key) and only
    when the manager's own sensor or command vouched for it; otherwise unknown, and said once."""
    run = context.run if isinstance(context, OpExecutionContext) else context.instance.get_run_by_id(context.run_id)
    key = run.tags.get("dagster/partition") if isinstance(context, HookContext) else context.partition_key
    if not key:
        raise Failure("the deploy job runs per partition: pick a source and an environment")
    source, environment = split_partition_key(key)
    event = DispatchEvent.from_tags(source, environment, run.tags, author_key=author_key)
    claimed = tag(run.tags, AUTHOR_TAG)
    if author_key is not None and claimed and event.author is None:
        context.log.warning(
            redact_text(
                f"the run's author tag names {claimed[:40]!r}, but no sensor or command of this manager set it "
                "(launched by hand or with edited tags): the author is unknown, and the approval asks GitHub "
                "who wrote the commit planned"
            )
        )
    return event


def say(context: OpExecutionContext, stage: str, message: str, *, warning: bool = False) -> None:
    """A progress line: in the run's event log (at warning level with ``warning``), and on stdout (the
    CLI, the UI's stdout tab); redacted."""
    message = redact_text(message)
    (context.log.warning if warning else context.log.info)(f"{stage}: {message}")
    print(f"[{stage:<8}] {'WARNING: ' if warning else ''}{message}", flush=True)


class TerraformLines:
    """Terraform's output as it comes, redacted: each line on stdout at once (the CLI, the UI's stdout
    tab), and into the run's event log in batches of at most a second (a 20-minute apply is watchable
    without a record per line). Use as a context manager: the last batch is written on the way out."""

    def __init__(self, context: OpExecutionContext, stage: str, every_s: float = 1.0):
        self._context, self._stage, self._every_s = context, stage, every_s
        self._batch: list[str] = []
        self._since = time.monotonic()

    def __call__(self, line: str) -> None:
        line = redact_text(line)
        print(f"[{self._stage:<8}] | {line}", flush=True)
        self._batch.append(line)
        if time.monotonic() - self._since >= self._every_s:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self._context.log.info(f"{self._stage}: terraform says\n" + "\n".join(self._batch))
        self._batch, self._since = [], time.monotonic()

    def __enter__(self) -> "TerraformLines":
        return self

    def __exit__(self, *exc_info) -> None:
        self.flush()


def failure_for(
    exc: ManagerError, context: OpExecutionContext | None = None, document: VariablesDocument | None = None
) -> Failure:
    """``document``: the variables the op worked from, to place a Terraform error that names a variable."""
    message = str(exc)
    if isinstance(exc, StateLocked) and context is not None and exc.lock.get("ID"):
        event = current_event(context)
        active = _other_active_runs(context)
        if active:
            message += (
                f"\nRun {active[0]} of this partition is still going and holds it: wait for it to end "
                "(or stop it in the UI); do not unlock."
            )
        else:
            message += (
                "\nNo run of this partition is going: a killed run left it behind. Release it with: "
                f"manager-pipeline unlock {event.source} {event.environment} {exc.lock['ID']}"
            )
    # The description reaches the event log, the UI, the failure report and the CLI: redacted here.
    # Where the variables file is at fault travels with it: the failure hook's check run annotates it.
    annotations = annotations_of(exc, document)
    metadata = {ANNOTATIONS: MetadataValue.json(redact(list(annotations)))} if annotations else None
    return Failure(description=redact_text(message), metadata=metadata)


def failure_annotations(error: BaseException | None) -> tuple[dict, ...]:
    """The annotations ``failure_for`` gave a failure (none for any other exception)."""
    value = (error.metadata or {}).get(ANNOTATIONS) if isinstance(error, Failure) else None
    return tuple(value.data) if isinstance(value, JsonMetadataValue) and isinstance(value.data, list) else ()


def _other_active_runs(context: OpExecutionContext) -> list[str]:
    """Runs of this run's partition, other than this one, that the instance says are going."""
    key = context.partition_key
    runs = context.instance.get_runs(
        RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING], tags={"dagster/partition": key})
    )
    return [run.run_id for run in runs if run.run_id != context.run_id and _worker_alive(run.tags.get(WORKER_TAG))]


def _worker_alive(worker: str | None) -> bool:
    """Whether the process of a run is still there; one on another host is taken to be."""
    host, _, pid = (worker or "").rpartition(":")
    if not pid.isdigit() or host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def redacted_metadata(metadata: dict) -> dict:
    """Run metadata with every known secret masked (text, markdown and JSON values)."""
    cleaned = {}
    for key, value in metadata.items():
        if isinstance(value, str):
            value = redact_text(value)
        elif isinstance(value, MarkdownMetadataValue):
            value = MetadataValue.md(redact_text(value.md_str or ""))
        elif isinstance(value, JsonMetadataValue):
            value = MetadataValue.json(redact(value.data))
        elif isinstance(value, TextMetadataValue):
            value = MetadataValue.text(redact_text(value.text))
        cleaned[key] = value
    return cleaned


class ConfigSource(Protocol):
    """The manager.yaml resource: read afresh at each call."""

    def load(self) -> ManagerConfig: ...


def config_or_skip(manager: ConfigSource) -> ManagerConfig | SkipReason:
    """manager.yaml, or why this tick does nothing (a broken file must not crash every sensor)."""
    try:
        return manager.load()
    except ManagerError as exc:
        return SkipReason(f"manager.yaml not loaded: {exc}")
