"""What a run started by a trigger repository tells that repository, as outbox items (plain data).

The application commit gets a commit status per infra source and environment, linking to the run:
queued (by the receiver), planning, then how the run ended. Its context names the infra source,
``manager-pipeline/<source>/<environment>``, so one application repository may trigger several
infra sources without their statuses overwriting each other. Plan comments and notifications stay
with the infra repository, which gets what every run of a GitHub source gives it.

Which repository and commit come from the run's tags (``manager/trigger-repo``,
``manager/trigger-sha``), read as they are at the end of the run: a release names only its tag, and
the run records the commit once it has asked GitHub; an apply run carries those of the run that
planned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from manager_pipeline.events import TRIGGER_REF_TAG, TRIGGER_REPO_TAG, TRIGGER_SHA_TAG, DispatchEvent
from manager_pipeline.feedback import github_items
from manager_pipeline.feedback.outbox import FeedbackItem
from manager_pipeline.outcome import Outcome

TRIGGER_CONTEXT = "manager-pipeline/{source}/{environment}"
TRIGGER_TAGS = (TRIGGER_REPO_TAG, TRIGGER_REF_TAG, TRIGGER_SHA_TAG)


def trigger_context(source: str, environment: str) -> str:
    return TRIGGER_CONTEXT.format(source=source, environment=environment)


def trigger_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The trigger repository's tags among a run's ``tags`` (for an apply run to carry on)."""
    return {key: tags[key] for key in TRIGGER_TAGS if tags.get(key)}


def with_trigger(event: DispatchEvent, tags: Mapping[str, str]) -> DispatchEvent:
    """``event`` with the trigger repository, ref and commit the run's ``tags`` hold now."""
    found = DispatchEvent.from_tags(event.source, event.environment, tags)
    return replace(event, trigger_repo=found.trigger_repo, trigger_ref=found.trigger_ref, trigger_sha=found.trigger_sha)


def queued(repo: str, sha: str, source: str, environment: str, runs_url: str) -> FeedbackItem:
    return github_items.queued(repo, sha, environment, runs_url, context=trigger_context(source, environment))


def started(event: DispatchEvent, run_url: str) -> list[FeedbackItem]:
    """The `pending` "Planning" status of the application commit (none when the run has no trigger commit)."""
    if not (event.trigger_repo and event.trigger_sha):
        return []
    context = trigger_context(event.source, event.environment)
    return [github_items.started(event.trigger_repo, event.trigger_sha, event.environment, run_url, context)]


def items_for(outcome: Outcome, run_url: str, extra_secrets: Sequence[str] = ()) -> list[FeedbackItem]:
    """The status a finished (or failed) run leaves on the application commit that triggered it."""
    event = outcome.event
    if not (event.trigger_repo and event.trigger_sha):
        return []
    context = trigger_context(event.source, event.environment)
    return [
        github_items.outcome_status(event.trigger_repo, event.trigger_sha, outcome, run_url, extra_secrets, context)
    ]
