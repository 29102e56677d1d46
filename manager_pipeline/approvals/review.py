"""Gather the approvals of a plan (GitHub and console), judge each under the policy, record them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from manager_pipeline.approvals.policy import Candidate, approved_by, judge
from manager_pipeline.approvals.records import ApprovalRecord, PlanRecord, Records
from manager_pipeline.config import EnvironmentPolicy


class ApprovalSource(Protocol):
    def candidates(self, repo: str, sha: str, environment: str, pulls: list[int], since: float) -> list[Candidate]: ...
    def in_team(self, login: str, team: str) -> bool: ...
    def author(self, repo: str, sha: str) -> str | None: ...
    def pulls_for(self, repo: str, sha: str) -> list[int]: ...


@dataclass
class Review:
    accepted: list[str] = field(default_factory=list)
    new: list[ApprovalRecord] = field(default_factory=list)
    approved: bool = False


def _no_team(login: str, team: str) -> bool:
    return False


def author_of(record: PlanRecord, github: ApprovalSource | None) -> str | None:
    if record.author:
        return record.author
    if github and record.repo and record.sha:
        return github.author(record.repo, record.sha)
    return None


def review(record: PlanRecord, policy: EnvironmentPolicy, records: Records, github: ApprovalSource | None) -> Review:
    """Record what GitHub says about ``record`` since the last look; judge all approvals under today's policy."""
    in_team = github.in_team if github else _no_team
    author = author_of(record, github)
    result = Review()
    if github and record.repo and record.sha:
        pulls = [record.pr] if record.pr is not None else github.pulls_for(record.repo, record.sha)
        for candidate in github.candidates(record.repo, record.sha, record.environment, pulls, record.created_at):
            refusal = judge(policy, author, candidate, in_team)
            approval = ApprovalRecord(
                plan_id=record.plan_id,
                login=candidate.login,
                via=candidate.via,
                origin=candidate.origin,
                accepted=refusal is None,
                reason=refusal or candidate.reason,
                at=time.time(),
            )
            if records.record(approval):
                result.new.append(approval)
    for approval in records.approvals(record.plan_id):
        # Judged again: an approver taken off the policy since no longer counts.
        if (
            approval.accepted
            and judge(policy, author, Candidate(approval.login, approval.via, approval.origin), in_team) is None
        ):
            result.accepted.append(approval.login)
    result.approved = approved_by(policy, result.accepted)
    return result
