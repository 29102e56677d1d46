"""Approvals given on GitHub: pull request reviews of the plan's commit and `/approve <env>` comments.

Reads through ``GitHubClient``; this module only decides which reviews and comments are approvals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from manager_pipeline.github.client import Comment, GitHubClient, GitHubError
from manager_pipeline.plans.approvals import Candidate

_APPROVE = re.compile(
    r"^\s*/approve\s+(?P<env>[A-Za-z0-9_.-]+)(?:\s+(?P<plan>[0-9a-f]{12})\b)?(?:\s+(?P<reason>.*))?$"
)


@dataclass(frozen=True)
class ApproveCommand:
    plan_id: str | None
    reason: str | None


def approve_command(body: str, environment: str) -> ApproveCommand | None:
    """`/approve <env> [<plan-id>] [reason]` on the comment's first line, for ``environment``; else None."""
    first = (body or "").strip().split("\n", 1)[0]
    match = _APPROVE.match(first)
    if not match or match["env"] != environment:
        return None
    return ApproveCommand(match["plan"], (match["reason"] or "").strip() or None)


@dataclass
class GitHubApprovals:
    """The ``ApprovalSource`` of ``plans/approvals.py``, on GitHub."""

    client: GitHubClient

    def candidates(self, repo: str, sha: str, environment: str, pulls: list[int], since: float) -> list[Candidate]:
        """Reviews approving exactly ``sha`` and `/approve <environment>` comments, each given after ``since``
        (the plan's creation): what was said before a plan existed approves none of it, not even a
        re-plan of the same commit."""
        found: list[Candidate] = []
        for number in pulls:
            for review in self.client.reviews(repo, number):
                # GitHub's times have whole seconds: a review in the plan's own second still counts.
                fresh = review.submitted_at >= int(since)
                if review.state == "APPROVED" and review.commit_id == sha and review.login and fresh:
                    found.append(Candidate(review.login, "review", f"review:{review.id}", review.body or None))
            for comment in self.client.issue_comments(repo, number):
                found += self._command(comment, environment, since, "comment")
        for comment in self.client.commit_comments(repo, sha):
            found += self._command(comment, environment, since, "commit-comment")
        return found

    @staticmethod
    def _command(comment: Comment, environment: str, since: float, via: str) -> list[Candidate]:
        command = approve_command(comment.body, environment)
        # GitHub's times have whole seconds: a comment in the plan's own second still counts.
        if command is None or not comment.login or comment.created_at < int(since):
            return []
        # GitHub does not say who edited a comment: a writer could have turned an approver's
        # old comment into `/approve`. Only comments as they were posted count.
        if comment.edited:
            return []
        return [Candidate(comment.login, via, f"{via}:{comment.id}", command.reason, command.plan_id)]

    def in_team(self, login: str, team: str) -> bool:
        try:
            return self.client.in_team(login, team)
        except GitHubError:
            return False

    def pulls_for(self, repo: str, sha: str) -> list[int]:
        try:
            return self.client.pulls_of_commit(repo, sha)
        except GitHubError:
            return []

    def author(self, repo: str, sha: str) -> str | None:
        try:
            return self.client.commit_author(repo, sha)
        except GitHubError:
            return None
