"""DispatchEvent: why a run exists. It travels as Dagster run tags.

Tags are the one carrier every way of starting a run shares (CLI, sensors, backfills,
the UI's launchpad), and they are what the UI filters runs by. No secret ever goes here.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Mapping

TAG_PREFIX = "manager/"
# What a run row shows, and what a person filters runs by (at most five, with the partition Dagster shows):
SOURCE_TAG = "manager/source"
ENVIRONMENT_TAG = "manager/environment"
# deploy, apply, destroy, drift, fleet (each job's own tag).
KIND_TAG = "manager/kind"
# What came of the run, set when it ends: applied, awaiting-approval, plan-only, failed, drift, ...
OUTCOME_TAG = "manager/outcome"
# The commit planned, short; the whole sha travels hidden.
COMMIT_TAG = "manager/commit"
VISIBLE_TAGS = (SOURCE_TAG, ENVIRONMENT_TAG, KIND_TAG, OUTCOME_TAG, COMMIT_TAG)

# The rest travels on the run, hidden from its row and its tag list: Dagster hides every `.dagster/` tag.
HIDDEN_PREFIX = ".dagster/manager/"
SHA_TAG = HIDDEN_PREFIX + "sha"
BRANCH_TAG = HIDDEN_PREFIX + "branch"
PR_TAG = HIDDEN_PREFIX + "pr"
DELIVERY_TAG = HIDDEN_PREFIX + "delivery"
PLAN_ONLY_TAG = HIDDEN_PREFIX + "plan-only"
TRIGGER_TAG = HIDDEN_PREFIX + "trigger"
AUTHOR_TAG = HIDDEN_PREFIX + "author"
# The manager's word for the author (``sign_author``): the self-approval rule believes no other.
AUTHOR_PROOF_TAG = HIDDEN_PREFIX + "author-proof"
PLAN_ID_TAG = HIDDEN_PREFIX + "plan-id"
# A run that plans (or applies) the destroy of everything the partition's state holds.
DESTROY_TAG = HIDDEN_PREFIX + "destroy"
# A run started by a trigger repository (an application repository of an infra source): which one,
# the ref that triggered it and the application commit (config/, TriggerSpec).
TRIGGER_REPO_TAG = HIDDEN_PREFIX + "trigger-repo"
TRIGGER_REF_TAG = HIDDEN_PREFIX + "trigger-ref"
TRIGGER_SHA_TAG = HIDDEN_PREFIX + "trigger-sha"


def tag(tags: Mapping[str, str], key: str) -> str | None:
    """``key``'s value; for a hidden tag, also under its visible name of earlier releases (``manager/sha``),
    so a run queued by an older manager is read the same."""
    value = tags.get(key)
    if value is None and key.startswith(HIDDEN_PREFIX):
        value = tags.get(TAG_PREFIX + key.removeprefix(HIDDEN_PREFIX))
    return value


def _author_proof(key: bytes, source: str, environment: str, sha: str | None, author: str) -> str:
    message = "\0".join(("author", source, environment, sha or "", author)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_author(tags: Mapping[str, str], key: bytes) -> dict[str, str]:
    """``tags`` with the proof of the author they name (bound to their source, environment and commit),
    under ``key`` (``signing.run_tag_key``): what the manager's own sensors and commands launch with.
    A run launched any other way (the UI's launchpad, edited tags) has an author nobody vouches for."""
    signed = dict(tags)
    author, source, environment = tag(tags, AUTHOR_TAG), tags.get(SOURCE_TAG), tags.get(ENVIRONMENT_TAG)
    if author and source and environment:
        signed[AUTHOR_PROOF_TAG] = _author_proof(key, source, environment, tag(tags, SHA_TAG), author)
    return signed


def vouched_author(
    tags: Mapping[str, str], source: str, environment: str, key: bytes | None
) -> tuple[str | None, str | None]:
    """(the author the manager vouches for, or None; the author claimed without a valid proof, or None)."""
    claimed = tag(tags, AUTHOR_TAG) or None
    if claimed is None:
        return None, None
    proof = tags.get(AUTHOR_PROOF_TAG, "")
    if key is not None and hmac.compare_digest(proof, _author_proof(key, source, environment, tag(tags, SHA_TAG), claimed)):
        return claimed, None
    return None, claimed


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
            tags[COMMIT_TAG] = self.sha[:12]
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
    def from_tags(
        cls, source: str, environment: str, tags: Mapping[str, str], author_key: bytes | None = None
    ) -> DispatchEvent:
        """The event of a run of partition (source, environment); missing tags mean a manual run.

        Its author is one the manager vouches for (``sign_author`` under ``author_key``), else None: an
        unknown author, whom the approval asks GitHub for (the author of the commit planned)."""
        pr = tag(tags, PR_TAG)

        def flag(key: str) -> bool:
            return (tag(tags, key) or "").lower() in ("1", "true", "yes")

        return cls(
            source=source,
            environment=environment,
            sha=tag(tags, SHA_TAG) or None,
            branch=tag(tags, BRANCH_TAG) or None,
            pr=int(pr) if pr and pr.isdigit() else None,
            delivery_id=tag(tags, DELIVERY_TAG) or None,
            plan_only=flag(PLAN_ONLY_TAG),
            trigger=tag(tags, TRIGGER_TAG) or ("backfill" if "dagster/backfill" in tags else "manual"),
            author=vouched_author(tags, source, environment, author_key)[0],
            destroy=flag(DESTROY_TAG),
            trigger_repo=tag(tags, TRIGGER_REPO_TAG) or None,
            trigger_ref=tag(tags, TRIGGER_REF_TAG) or None,
            trigger_sha=tag(tags, TRIGGER_SHA_TAG) or None,
        )
