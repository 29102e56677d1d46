"""Stage: read the source's variables at the event's commit, and check them against the contract."""

import os
import socket
from dataclasses import replace

from dagster import (
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    op,
)

from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.contract import DeployConfig
from manager_pipeline.defs.resources import FeedbackResource, ManagerConfigResource, SourcesResource
from manager_pipeline.defs.stage import WORKER_TAG, current_event, failure_for, redacted_metadata, say
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import BRANCH_TAG, COMMIT_TAG, SHA_TAG, TRIGGER_SHA_TAG
from manager_pipeline.pipeline import read_config
from manager_pipeline.sources import VariablesDocument


@op(
    description="Resolve the run's request against manager.yaml (once per run), and read the source's "
    "variables file at the event's commit.",
    out={"request": Out(ResolvedRequest), "document": Out(VariablesDocument)},
)
def fetch_variables(
    context: OpExecutionContext, manager: ManagerConfigResource, sources: SourcesResource, feedback: FeedbackResource
):
    try:
        # The one read of manager.yaml in a deploy run: later stages decide on this snapshot.
        request = ResolvedRequest.resolve(manager.load(), current_event(context, manager.run_tag_key()))
        spec, event = request.source, request.event
        document = sources.fetch(spec, event)
    except ManagerError as exc:
        raise failure_for(exc) from None
    if event.trigger_repo and not event.trigger_sha:
        try:
            event = sources.trigger_commit(event)
            request = replace(request, event=event)
        except ManagerError as exc:
            # The infra plan does not depend on it: only the application commit's status is lost.
            say(context, "fetch", f"{exc}; no status for the application commit")
    # The commit actually read, on the run itself: the UI shows it and later stages report on it.
    resolved = {
        SHA_TAG: document.sha,
        COMMIT_TAG: document.sha[:12] if document.sha else None,
        BRANCH_TAG: document.branch,
        TRIGGER_SHA_TAG: event.trigger_sha,
    }
    tags = {k: v for k, v in resolved.items() if v and k not in context.run.tags}
    # Which process works on the run: a run whose process is gone (killed) holds nothing any more.
    tags[WORKER_TAG] = f"{socket.gethostname()}:{os.getpid()}"
    context.instance.add_run_tags(context.run_id, tags)
    say(context, "fetch", f"{document.location} at {(document.sha or 'working tree')[:12]} on {document.branch}")
    if event.trigger_repo:
        say(context, "fetch", f"triggered by {event.trigger_repo} {event.trigger_ref} at {event.trigger_sha or '?'}")
    if spec.repo and document.sha:
        delivery = feedback.started(spec.repo, document.sha, event.environment, context.run_id, event)
        if delivery.pending:
            say(context, "fetch", "GitHub did not take the pending status yet; it stays queued")
    yield Output(request, "request", metadata={"manager.yaml sha256": request.manager_digest})
    yield Output(
        document,
        "document",
        metadata={
            "location": document.location,
            "commit": document.sha or "(not in git)",
            "branch": document.branch or "(unknown)",
            "sha256": document.digest,
        },
    )


@op(description="Check variables.yml against the contract and resolve this environment.")
def validate(context: OpExecutionContext, request: ResolvedRequest, document: VariablesDocument) -> DeployConfig:
    event = request.event
    try:
        # With its document: another machine reads the webhook from it again (handoff/).
        config = read_config(document, request.environments, event.environment, event.source)
    except ManagerError as exc:
        raise failure_for(exc) from None
    say(context, "validate", f"{config.project_name} for {config.environment} in {config.region}")
    context.add_output_metadata(
        redacted_metadata({"resolved": MetadataValue.json(config.to_tfvars()), "digest": config.digest})
    )
    return config
