"""DispatchEvent: why a run exists. It travels as Dagster run tags.

Tags are the one carrier every way of starting a run shares (CLI, sensors, backfills,
the UI's launchpad), and they are what the UI filters runs by. No secret ever goes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

TAG_PREFIX = "manager/"
SOURCE_TAG = "manager/source"
ENVIRONMENT_TAG = "manager/environment"
SHA_TAG = "manager/sha"
BRANCH_TAG = "manager/branch"
PR_TAG = "manager/pr"
DELIVERY_TAG = "manager/delivery"
PLAN_ONLY_TAG = "manager/plan-only"
TRIGGER_TAG = "manager/trigger"
AUTHOR_TAG = "manager/author"
PLAN_ID_TAG = "manager/plan-id"
# A run that plans (or applies) the destroy of everything the partition's state holds.
DESTROY_TAG = "manager/destroy"
# A run started by a trigger repository (an application repository of an infra source): which one,
# the ref that triggered it and the application commit (config.py, TriggerSpec).
TRIGGER_REPO_TAG = "manager/trigger-repo"
TRIGGER_REF_TAG = "manager/trigger-ref"
TRIGGER_SHA_TAG = "manager/trigger-sha"


@dataclass(frozen=True)
class DispatchEvent:
    """A request to deploy one source to one environment, at a commit when known."""

    source: str
    environment: str
    sha: str | None = None
    branch: str | None = None
    pr: int | None = None
    delivery_id: str | None = None
    plan_only: bool = False
    trigger: str = "manual"
    author: str | None = None
    destroy: bool = False
    trigger_repo: str | None = None
    trigger_ref: str | None = None
    trigger_sha: str | None = None

    def to_tags(self) -> dict[str, str]:
        tags = {
            SOURCE_TAG: self.source,
            ENVIRONMENT_TAG: self.environment,
            TRIGGER_TAG: self.trigger,
        }
        if self.sha:
            tags[SHA_TAG] = self.sha
        if self.branch:
            tags[BRANCH_TAG] = self.branch
        if self.pr is not None:
            tags[PR_TAG] = str(self.pr)
        if self.delivery_id:
            tags[DELIVERY_TAG] = self.delivery_id
        if self.plan_only:
            tags[PLAN_ONLY_TAG] = "true"
        if self.author:
            tags[AUTHOR_TAG] = self.author
        if self.destroy:
            tags[DESTROY_TAG] = "true"
        for key, value in (
            (TRIGGER_REPO_TAG, self.trigger_repo),
            (TRIGGER_REF_TAG, self.trigger_ref),
            (TRIGGER_SHA_TAG, self.trigger_sha),
        ):
            if value:
                tags[key] = value
        return tags

    @classmethod
    def from_tags(cls, source: str, environment: str, tags: Mapping[str, str]) -> DispatchEvent:
        """The event of a run of partition (source, environment); missing tags mean a manual run."""
        pr = tags.get(PR_TAG)
        return cls(
            source=source,
            environment=environment,
            sha=tags.get(SHA_TAG) or None,
            branch=tags.get(BRANCH_TAG) or None,
            pr=int(pr) if pr and pr.isdigit() else None,
            delivery_id=tags.get(DELIVERY_TAG) or None,
            plan_only=tags.get(PLAN_ONLY_TAG, "").lower() in ("1", "true", "yes"),
            trigger=tags.get(TRIGGER_TAG) or ("backfill" if "dagster/backfill" in tags else "manual"),
            author=tags.get(AUTHOR_TAG) or None,
            destroy=tags.get(DESTROY_TAG, "").lower() in ("1", "true", "yes"),
            trigger_repo=tags.get(TRIGGER_REPO_TAG) or None,
            trigger_ref=tags.get(TRIGGER_REF_TAG) or None,
            trigger_sha=tags.get(TRIGGER_SHA_TAG) or None,
        )
