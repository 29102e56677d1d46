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
        )
