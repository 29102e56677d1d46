"""Feedback on GitHub: commit statuses, sticky plan comments, notifications.

Every write is safe to repeat: a status is the latest for its context, a plan comment is
found again by its hidden marker and edited in place, a notification carries a marker and
is not posted twice. That is what lets the outbox retry after an outage without
duplicating anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from github import Github

STATUS_DESCRIPTION_LIMIT = 140
_PART = re.compile(r"<!-- manager-pipeline:(?P<key>[^ ]+) part (?P<index>\d+)/(?P<count>\d+)")


def part_index(body: str, key: str) -> int | None:
    match = _PART.search(body.split("\n", 1)[0])
    return int(match["index"]) if match and match["key"] == key else None


@dataclass
class GitHubPublisher:
    github: Github

    def set_status(self, repo: str, sha: str, context: str, state: str, description: str, target_url: str) -> None:
        if len(description) > STATUS_DESCRIPTION_LIMIT:
            description = description[: STATUS_DESCRIPTION_LIMIT - 1] + "…"
        self.github.get_repo(repo).get_commit(sha).create_status(
            state=state, target_url=target_url, description=description, context=context
        )

    def upsert_comment(self, repo: str, pr: int, key: str, parts: list[str]) -> None:
        """One comment per part, found by ``key`` and edited in place; surplus old parts removed."""
        issue = self.github.get_repo(repo).get_issue(pr)
        existing = {}
        for comment in issue.get_comments():
            index = part_index(comment.body or "", key)
            if index is not None:
                existing.setdefault(index, comment)
        for index, body in enumerate(parts, start=1):
            comment = existing.pop(index, None)
            if comment is None:
                issue.create_comment(body)
            elif comment.body != body:
                comment.edit(body)
        for comment in existing.values():
            comment.delete()

    def post_once(self, repo: str, pr: int | None, sha: str, marker: str, body: str) -> None:
        """A comment on the pull request (or the commit) unless one with ``marker`` is there."""
        target = self.github.get_repo(repo)
        if pr is not None:
            issue = target.get_issue(pr)
            if not any(marker in (c.body or "") for c in issue.get_comments()):
                issue.create_comment(body)
            return
        commit = target.get_commit(sha)
        if not any(marker in (c.body or "") for c in commit.get_comments()):
            commit.create_comment(body)

    def pull_requests(self, repo: str, sha: str) -> list[int]:
        """Open pull requests whose head is ``sha``."""
        return [pull.number for pull in self.github.get_repo(repo).get_commit(sha).get_pulls()]
