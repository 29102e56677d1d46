"""Who may approve, and when a plan has enough approvals. One place, pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from manager_pipeline.config import EnvironmentPolicy

TeamCheck = Callable[[str, str], bool]


@dataclass(frozen=True)
class Candidate:
    """Someone who said "approve": a GitHub review, a `/approve` comment, or an operator."""

    login: str
    via: str
    origin: str
    reason: str | None = None


def judge(policy: EnvironmentPolicy, author: str | None, candidate: Candidate, in_team: TeamCheck) -> str | None:
    """None when ``candidate`` may approve under ``policy``; else why not."""
    login = candidate.login.lower()
    if not policy.approvers:
        return f"{policy.name} has no approvers; list them under `approvers` in manager.yaml"
    if not policy.allow_self_approval and author and login == author.lower():
        return f"{candidate.login} is the author of the change and {policy.name} does not allow self-approval"
    logins = {a.lower() for a in policy.approvers if "/" not in a}
    if login in logins:
        return None
    teams = [a for a in policy.approvers if "/" in a]
    if any(in_team(candidate.login, team) for team in teams):
        return None
    return f"{candidate.login} is not an approver of {policy.name} (approvers: {', '.join(policy.approvers)})"


def approved_by(policy: EnvironmentPolicy, accepted_logins: list[str]) -> bool:
    return len({login.lower() for login in accepted_logins}) >= policy.required_approvals
