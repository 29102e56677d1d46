"""Polling mode, for setups that cannot receive webhooks: new commits and pull request heads
become deliveries in the same inbox, with ids that make a second sight of them a duplicate."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.intake.webhooks import Delivery, pull_request_hold, touches_source


class Poller(Protocol):
    def branch_head(self, repo: str, branch: str, etag: str | None) -> tuple[bool, str | None, str | None]: ...
    def open_pulls(self, repo: str, etag: str | None) -> tuple[bool, list[dict[str, Any]], str | None]: ...
    def changed_files(self, repo: str, base: str, head: str) -> tuple[str, ...] | None: ...


@dataclass
class PollState:
    """Per repository: branch heads and pull request heads last seen, with their ETags."""

    repos: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> PollState:
        return cls(json.loads(text)) if text else cls()

    def to_json(self) -> str:
        return json.dumps(self.repos, sort_keys=True)


def poll(config: ManagerConfig, poller: Poller, state: PollState) -> list[Delivery]:
    """Deliveries for what changed since the last poll; the first poll of a repository only looks."""
    deliveries: list[Delivery] = []
    repos: dict[str, list] = {}
    for spec in config.sources.values():
        if spec.repo:
            repos.setdefault(spec.repo, []).append(spec)
    for repo, specs in sorted(repos.items()):
        seen = state.repos.setdefault(repo, {"branches": {}, "pulls": None, "pulls_etag": None})
        branches = sorted({b for s in specs for e in s.environments for b in config.policy(e).apply_branches})
        for branch in branches:
            before = seen["branches"].get(branch) or {}
            changed, sha, etag = poller.branch_head(repo, branch, before.get("etag"))
            if not changed or sha is None:
                continue
            seen["branches"][branch] = {"sha": sha, "etag": etag}
            if not before.get("sha") or before["sha"] == sha:
                continue
            files = poller.changed_files(repo, before["sha"], sha)
            touched = tuple(s.name for s in specs if touches_source(s, files))
            if touched:
                deliveries.append(
                    Delivery(
                        f"poll:{repo}:{branch}:{sha}",
                        "push",
                        None,
                        repo,
                        touched,
                        sha=sha,
                        branch=branch,
                        changed_files=files,
                    )
                )
        changed, pulls, etag = poller.open_pulls(repo, seen["pulls_etag"])
        if changed:
            first_look = seen["pulls"] is None
            heads = seen["pulls"] or {}
            seen["pulls"] = {str(p["number"]): p["sha"] for p in pulls}
            seen["pulls_etag"] = etag
            for pull in pulls if not first_look else []:
                if heads.get(str(pull["number"])) != pull["sha"]:
                    deliveries.append(
                        Delivery(
                            f"poll:{repo}:pr{pull['number']}:{pull['sha']}",
                            "pull_request",
                            "synchronize",
                            repo,
                            tuple(s.name for s in specs),
                            sha=pull["sha"],
                            branch=pull["ref"],
                            pr=pull["number"],
                            author=pull.get("author"),
                            # A fork or an outsider waits for a maintainer's `/plan`, as over webhooks.
                            hold=pull_request_hold(repo, pull.get("head_repo"), pull.get("author_association")),
                        )
                    )
    return deliveries
