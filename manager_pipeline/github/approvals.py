"""Approvals given on GitHub: pull request reviews of the plan's commit and `/approve <env>` comments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from github import Github, GithubException

from manager_pipeline.approvals.policy import Candidate

_APPROVE = re.compile(r"^\s*/approve\s+(?P<env>[A-Za-z0-9_.-]+)(?:\s+(?P<reason>.*))?$")


def _time(value: datetime | None) -> float:
    if value is None:
        return 0.0
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def approve_command(body: str, environment: str) -> tuple[bool, str | None]:
    first = (body or "").strip().split("\n", 1)[0]
    match = _APPROVE.match(first)
    if not match or match["env"] != environment:
        return False, None
    return True, (match["reason"] or "").strip() or None


@dataclass
class GitHubApprovals:
    github: Github

    def candidates(self, repo: str, sha: str, environment: str, pulls: list[int], since: float) -> list[Candidate]:
        """Reviews approving exactly ``sha``, and `/approve <environment>` comments made after ``since``."""
        target = self.github.get_repo(repo)
        found: list[Candidate] = []
        for number in pulls:
            for review in target.get_pull(number).get_reviews():
                if review.state == "APPROVED" and review.commit_id == sha and review.user:
                    found.append(Candidate(review.user.login, "review", f"review:{review.id}", review.body or None))
            for comment in target.get_issue(number).get_comments():
                found += self._command(comment, environment, since, "comment")
        for comment in target.get_commit(sha).get_comments():
            found += self._command(comment, environment, since, "commit-comment")
        return found

    @staticmethod
    def _command(comment, environment: str, since: float, via: str) -> list[Candidate]:
        matched, reason = approve_command(comment.body, environment)
        # GitHub's times have whole seconds: a comment in the plan's own second still counts.
        if not matched or not comment.user or _time(comment.created_at) < int(since):
            return []
        return [Candidate(comment.user.login, via, f"{via}:{comment.id}", reason)]

    def in_team(self, login: str, team: str) -> bool:
        org, slug = team.split("/", 1)
        try:
            found = self.github.get_organization(org).get_team_by_slug(slug)
            return found.has_in_members(self.github.get_user(login, lazy=True))
        except GithubException:
            return False

    def pulls_for(self, repo: str, sha: str) -> list[int]:
        try:
            return [pull.number for pull in self.github.get_repo(repo).get_commit(sha).get_pulls()]
        except GithubException:
            return []

    def author(self, repo: str, sha: str) -> str | None:
        try:
            commit = self.github.get_repo(repo).get_commit(sha)
            return commit.author.login if commit.author else None
        except GithubException:
            return None
