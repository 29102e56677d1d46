"""A trigger repository's commit, for the run it started: a published release names only its tag."""

from __future__ import annotations

from dataclasses import replace

from manager_pipeline.errors import SourceError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.github.client import GitHubClient, GitHubError

TAG_PREFIX = "refs/tags/"


def trigger_commit(event: DispatchEvent, client: GitHubClient) -> DispatchEvent:
    """``event`` with the application commit filled in, asked of GitHub for a tag when the delivery
    did not name it; SourceError (one line) when GitHub cannot say."""
    ref = event.trigger_ref or ""
    if not event.trigger_repo or event.trigger_sha or not ref.startswith(TAG_PREFIX):
        return event
    tag = ref.removeprefix(TAG_PREFIX)
    try:
        sha = client.tag_commit(event.trigger_repo, tag)
    except GitHubError as exc:
        raise SourceError(
            f"trigger repository {event.trigger_repo}: tag `{tag}` not resolved to a commit "
            f"(GitHub answered {exc.status or 'nothing'}: {exc.reason}); check that the manager's GitHub "
            "credentials can read that repository"
        ) from None
    return replace(event, trigger_sha=sha)
