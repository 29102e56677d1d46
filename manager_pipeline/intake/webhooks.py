"""GitHub webhook deliveries, read and checked (plain functions: no HTTP, no database)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from manager_pipeline.config import ManagerConfig, SourceSpec

MAX_BODY_BYTES = 1024 * 1024
SUPPORTED_EVENTS = ("push", "pull_request", "ping")
PR_ACTIONS = ("opened", "synchronize", "reopened")
# GitHub lists at most 20 commits (with their files) in a push; past that the files are not known.
PUSH_COMMIT_LIST_LIMIT = 20


class Refused(Exception):
    """A delivery the receiver will not take; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str):
        self.status, self.reason = status, reason
        super().__init__(reason)


def signature_for(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> None:
    if not header:
        raise Refused(401, "missing X-Hub-Signature-256")
    # compare_digest takes ASCII text only; anything else cannot be a signature of ours.
    if not header.isascii() or not hmac.compare_digest(signature_for(secret, body), header.strip()):
        raise Refused(401, "signature does not match")


@dataclass(frozen=True)
class Delivery:
    """What a delivery asks for, reduced to what dispatch needs."""

    delivery_id: str
    event: str
    action: str | None
    repo: str
    sources: tuple[str, ...]
    sha: str | None = None
    branch: str | None = None
    pr: int | None = None
    author: str | None = None
    changed_files: tuple[str, ...] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ref_key(self) -> str:
        """What a newer delivery supersedes: the same pull request, or the same branch."""
        return f"pr:{self.pr}" if self.pr is not None else f"branch:{self.branch}"


def touches_source(spec: SourceSpec, files: tuple[str, ...] | None) -> bool:
    """Whether changed ``files`` touch the source's variables file or its folder (unknown: yes)."""
    if files is None:
        return True
    folder = str(PurePosixPath(spec.variables_file).parent)
    prefix = "" if folder == "." else folder + "/"
    return any(path == spec.variables_file or (prefix and path.startswith(prefix)) for path in files)


def sources_for(config: ManagerConfig, repo: str) -> list[SourceSpec]:
    return list(config.sources_by_repo.get(repo.lower(), ()))


def _push_files(payload: dict[str, Any]) -> tuple[str, ...] | None:
    commits = payload.get("commits")
    if not isinstance(commits, list) or len(commits) >= PUSH_COMMIT_LIST_LIMIT:
        return None
    files: set[str] = set()
    for commit in commits:
        for key in ("added", "removed", "modified"):
            files.update(str(path) for path in commit.get(key) or [])
    return tuple(sorted(files))


_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _commit(value: Any) -> str:
    if not isinstance(value, str) or not _COMMIT.match(value):
        raise Refused(400, "the commit id must be 40 hexadecimal characters")
    return value


def _number(value: Any) -> int:
    if type(value) is not int or value <= 0:
        raise Refused(400, "the pull request number must be a positive integer")
    return value


def read_delivery(config: ManagerConfig, event: str, delivery_id: str, body: bytes) -> Delivery | None:
    """The delivery, None for a ping or a delivery that asks for nothing; Refused if not acceptable."""
    if event not in SUPPORTED_EVENTS:
        raise Refused(400, f"event type {event[:40]!r} is not handled (push, pull_request and ping are)")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Refused(400, "body is not JSON (or nests too deep)") from None
    if not isinstance(payload, dict):
        raise Refused(400, "body is not a JSON object")
    try:
        return _read_payload(config, event, delivery_id, payload)
    except (AttributeError, TypeError, ValueError):
        # A signed body of another shape than GitHub documents (e.g. `number: "abc"`).
        raise Refused(400, f"the {event} payload is not shaped as GitHub documents it") from None


def _read_payload(config: ManagerConfig, event: str, delivery_id: str, payload: dict[str, Any]) -> Delivery | None:
    repository = payload.get("repository")
    if event == "ping" and repository is None:
        # An organisation's or a GitHub App's hook: GitHub pings it with no repository.
        return None
    repo = repository.get("full_name") if isinstance(repository, dict) else None
    if not isinstance(repo, str) or "/" not in repo:
        raise Refused(400, "no repository.full_name in the payload")
    specs = sources_for(config, repo)
    if not specs:
        raise Refused(403, f"repository {repo} is not a source in manager.yaml")
    if event == "ping":
        return None
    if event == "push":
        ref = str(payload.get("ref") or "")
        if not ref.startswith("refs/heads/") or payload.get("deleted"):
            return None
        files = _push_files(payload)
        touched = tuple(s.name for s in specs if touches_source(s, files))
        if not touched:
            return None
        return Delivery(
            delivery_id,
            event,
            None,
            repo,
            touched,
            sha=_commit(payload.get("after")),
            branch=ref.removeprefix("refs/heads/"),
            author=(payload.get("pusher") or {}).get("name"),
            changed_files=files,
        )
    action = payload.get("action")
    pull = payload.get("pull_request") or {}
    if action not in PR_ACTIONS or not isinstance(pull, dict):
        return None
    return Delivery(
        delivery_id,
        event,
        action,
        repo,
        tuple(s.name for s in specs),
        sha=_commit((pull.get("head") or {}).get("sha")),
        branch=(pull.get("head") or {}).get("ref"),
        pr=_number(payload.get("number") or pull.get("number")),
        author=(pull.get("user") or {}).get("login"),
    )
