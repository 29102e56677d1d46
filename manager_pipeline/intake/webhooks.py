"""GitHub webhook deliveries, read and checked (plain functions: no HTTP, no database)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from manager_pipeline.config.model import ManagerConfig, SourceSpec
from manager_pipeline.feedback import checks

MAX_BODY_BYTES = 1024 * 1024
SUPPORTED_EVENTS = ("push", "pull_request", "pull_request_review", "issue_comment", "release", "ping", "check_run")
PR_ACTIONS = ("opened", "synchronize", "reopened")
# Who GitHub says may be trusted to plan with the manager's credentials: the repository's owner,
# members of its organisation and invited collaborators. Anyone else (CONTRIBUTOR, FIRST_TIMER,
# NONE, ...) and every fork waits for a maintainer's `/plan` comment.
TRUSTED_ASSOCIATIONS = ("OWNER", "MEMBER", "COLLABORATOR")
PLAN_COMMAND = "/plan"
# A comment whose first line starts so may approve a plan (github/approvals.py reads it, from GitHub).
APPROVE_COMMAND = re.compile(r"^/approve(\s|$)")
ZERO_COMMIT = "0" * 40
# GitHub lists at most 20 commits (with their files) in a push; past that the files are not known.
PUSH_COMMIT_LIST_LIMIT = 20


class Refused(Exception):
    """A delivery the receiver will not take; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str):
        self.status, self.reason = status, reason
        super().__init__(reason)


def signature_for(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes | list[bytes], body: bytes, header: str | None) -> None:
    """The header must be the signature of ``body`` with one of the secrets (a delivery's repository
    decides which are valid: its own, and the organisation's or App's hook secret)."""
    if not header:
        raise Refused(401, "missing X-Hub-Signature-256")
    secrets = [secret] if isinstance(secret, bytes) else [s for s in secret if s]
    # compare_digest takes ASCII text only; anything else cannot be a signature of ours.
    if not header.isascii() or not any(
        hmac.compare_digest(signature_for(key, body), header.strip()) for key in secrets
    ):
        raise Refused(401, "signature does not match")


def claimed_repository(body: bytes) -> str | None:
    """``repository.full_name`` as the (not yet verified) body claims it, to choose the secrets that
    may sign it; None when the body has none (an organisation ping) or is not JSON."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    repository = payload.get("repository") if isinstance(payload, dict) else None
    name = repository.get("full_name") if isinstance(repository, dict) else None
    return name if isinstance(name, str) else None


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
    # What the delivery asks for, whatever its id: (repository, ref or pull request, commits[, push
    # time]). A signed body replayed under a new X-GitHub-Delivery has the same one.
    dedupe_key: str | None = None
    # Why it waits for a maintainer's `/plan` instead of running (fork, author without write access).
    hold: str | None = None
    # A trigger repository's push or release (``repo`` is the application repository, ``sha`` its
    # commit when known, ``sources`` the infra sources it triggers): the full ref, `refs/tags/v1.2.0`.
    trigger_ref: str | None = None
    # The one environment it plans (a check run's "Plan again": that check run's), else those of its sources.
    environment: str | None = None

    @property
    def ref_key(self) -> str:
        """What a newer delivery supersedes: the same pull request, or the same branch (or trigger ref)."""
        if self.trigger_ref is not None:
            return f"trigger:{self.repo.lower()}:{self.trigger_ref}"
        key = f"pr:{self.pr}" if self.pr is not None else f"branch:{self.branch}"
        # A button's plan of one environment supersedes (and is superseded by) that environment's only.
        return key if self.environment is None else f"{key}:{self.environment}"


@dataclass(frozen=True)
class ApprovalNote:
    """A "look now": someone may have approved a plan on pull request ``pr`` (a submitted approving
    review, a new `/approve` comment). Never an approval itself: the approval sensor asks GitHub who
    approved which commit, and judges them, as it does when it polls. ``sha`` (the reviewed commit,
    when the delivery names one) only narrows which plans it looks at."""

    delivery_id: str
    event: str
    repo: str
    pr: int
    sha: str | None = None
    login: str | None = None
    # The review or comment, whatever the delivery id: a replay under a new id is a duplicate.
    dedupe_key: str | None = None


def touches_source(spec: SourceSpec, files: tuple[str, ...] | None) -> bool:
    """Whether changed ``files`` touch the source's variables file or its folder (unknown: yes)."""
    if files is None:
        return True
    folder = str(PurePosixPath(spec.variables_file).parent)
    prefix = "" if folder == "." else folder + "/"
    return any(path == spec.variables_file or (prefix and path.startswith(prefix)) for path in files)


def sources_for(config: ManagerConfig, repo: str) -> list[SourceSpec]:
    return list(config.sources_by_repo.get(repo.lower(), ()))


def secret_envs_for(config: ManagerConfig, repo: str) -> list[tuple[str, str]]:
    """(who names it, environment variable) of each secret of ``repo``'s own: its sources' and, for a
    trigger repository, its triggers' ``webhook_secret_env``."""
    named = [(f"source {s.name}", s.webhook_secret_env) for s in sources_for(config, repo) if s.webhook_secret_env]
    for spec in config.sources_by_trigger.get(repo.lower(), ()):
        trigger = spec.trigger_for(repo)
        if trigger is not None and trigger.webhook_secret_env:
            named.append((f"trigger {repo} of source {spec.name}", trigger.webhook_secret_env))
    return named


def _push_files(payload: dict[str, Any]) -> tuple[str, ...] | None:
    commits = payload.get("commits")
    # No commit list (a force-push back to an older commit, a branch created at an existing
    # commit) says nothing about the files: the variables may have changed.
    if not isinstance(commits, list) or not commits or len(commits) >= PUSH_COMMIT_LIST_LIMIT:
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


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; Refused (400) with what is wrong with it otherwise."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Refused(400, "body is not JSON (or nests too deep)") from None
    if not isinstance(payload, dict):
        raise Refused(400, "body is not a JSON object")
    return payload


def read_delivery(config: ManagerConfig, event: str, delivery_id: str, body: bytes) -> Delivery | ApprovalNote | None:
    """The delivery (an ``ApprovalNote`` for a possible approval), None for a ping or a delivery that
    asks for nothing; Refused if not acceptable."""
    if event not in SUPPORTED_EVENTS:
        raise Refused(400, f"event type {event[:40]!r} is not handled ({', '.join(SUPPORTED_EVENTS)} are)")
    payload = json_object(body)
    try:
        return _read_payload(config, event, delivery_id, payload)
    except (AttributeError, TypeError, ValueError):
        # A signed body of another shape than GitHub documents (e.g. `number: "abc"`).
        raise Refused(400, f"the {event} payload is not shaped as GitHub documents it") from None


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([str(part) for part in parts]).encode()).hexdigest()


def _login(value: Any) -> str | None:
    login = value.get("login") if isinstance(value, dict) else None
    return login if isinstance(login, str) else None


def head_repository(pull: dict[str, Any]) -> str | None:
    """The repository a pull request's head lives in (GitHub's pull request object), if known."""
    head_repo = (pull.get("head") or {}).get("repo")
    name = head_repo.get("full_name") if isinstance(head_repo, dict) else None
    return name if isinstance(name, str) else None


def pull_request_hold(repo: str, head_repo: str | None, association: Any) -> str | None:
    """Why a pull request must wait for a maintainer's `/plan`, or None when its author may plan;
    the same rule for a webhook and for polling."""
    if head_repo is None or head_repo.lower() != repo.lower():
        origin = head_repo or "a deleted or unknown repository"
        return f"from a fork ({origin}): waits for a maintainer's `{PLAN_COMMAND}` comment"
    if association not in TRUSTED_ASSOCIATIONS:
        return (
            f"its author ({association if isinstance(association, str) else 'unknown'}) has no write access: "
            f"waits for a maintainer's `{PLAN_COMMAND}` comment"
        )
    return None


def _plan_comment(
    config_specs: list[SourceSpec], repo: str, delivery_id: str, payload: dict[str, Any]
) -> Delivery | None:
    """A maintainer's new `/plan` comment on a pull request: releases its deliveries that wait."""
    issue, comment = payload.get("issue"), payload.get("comment")
    if payload.get("action") != "created" or not isinstance(issue, dict) or not isinstance(comment, dict):
        return None  # edited and deleted comments never count
    if not issue.get("pull_request"):
        return None  # a comment on an issue, not on a pull request
    text = comment.get("body")
    lines = text.strip().splitlines() if isinstance(text, str) else []
    if not lines or lines[0].strip() != PLAN_COMMAND:
        return None
    if comment.get("author_association") not in TRUSTED_ASSOCIATIONS:
        return None
    comment_id = comment.get("id")
    if type(comment_id) is not int:
        raise Refused(400, "the comment id must be an integer")
    number = _number(issue.get("number"))
    return Delivery(
        delivery_id,
        "issue_comment",
        "created",
        repo,
        tuple(s.name for s in config_specs),
        pr=number,
        author=_login(comment.get("user")),
        dedupe_key=_key("issue_comment", repo.lower(), comment_id),
    )


def _approve_comment(repo: str, delivery_id: str, payload: dict[str, Any]) -> ApprovalNote | None:
    """A new comment starting with `/approve` on a pull request: a note to look, whoever wrote it
    (the approval sensor judges the author, from GitHub)."""
    issue, comment = payload.get("issue"), payload.get("comment")
    if payload.get("action") != "created" or not isinstance(issue, dict) or not isinstance(comment, dict):
        return None  # an edited comment never counts as an approval (github/approvals.py)
    if not issue.get("pull_request"):
        return None
    text = comment.get("body")
    if not isinstance(text, str) or not APPROVE_COMMAND.match(text.strip()):
        return None
    comment_id = comment.get("id")
    if type(comment_id) is not int:
        raise Refused(400, "the comment id must be an integer")
    return ApprovalNote(
        delivery_id,
        "issue_comment",
        repo,
        _number(issue.get("number")),
        login=_login(comment.get("user")),
        dedupe_key=_key("approve-comment", repo.lower(), comment_id),
    )


def _approving_review(repo: str, delivery_id: str, payload: dict[str, Any]) -> ApprovalNote | None:
    """A submitted approving review of a pull request: a note to look (GitHub says who and for which commit)."""
    review, pull = payload.get("review"), payload.get("pull_request")
    if payload.get("action") != "submitted" or not isinstance(review, dict) or not isinstance(pull, dict):
        return None
    if str(review.get("state") or "").lower() != "approved":
        return None  # a comment or a request for changes approves nothing
    review_id = review.get("id")
    if type(review_id) is not int:
        raise Refused(400, "the review id must be an integer")
    commit = review.get("commit_id") or (pull.get("head") or {}).get("sha")
    return ApprovalNote(
        delivery_id,
        "pull_request_review",
        repo,
        _number(pull.get("number")),
        sha=_commit(commit) if commit is not None else None,
        login=_login(review.get("user")),
        dedupe_key=_key("pull_request_review", repo.lower(), review_id),
    )


def _plan_again(specs: list[SourceSpec], repo: str, delivery_id: str, payload: dict[str, Any]) -> Delivery | None:
    """A press of "Plan again" on a check run this manager made: a plan (never an apply) of that check
    run's source and environment at its commit. Who pressed it (``author``) is not yet trusted: the
    receiver asks GitHub for their permission on the repository before it stores the delivery."""
    check_run, action = payload.get("check_run"), payload.get("requested_action")
    if payload.get("action") != "requested_action" or not isinstance(check_run, dict) or not isinstance(action, dict):
        return None  # created, completed, rerequested: GitHub telling the App about its own check runs
    if action.get("identifier") != checks.PLAN_AGAIN:
        return None
    made = checks.parse_external_id(check_run.get("external_id"))
    if made is None or made[0] not in {s.name for s in specs}:
        return None  # not a check run of this manager's, or of a source it no longer has
    source, environment, _ = made
    check_run_id = check_run.get("id")
    if type(check_run_id) is not int:
        raise Refused(400, "the check run id must be an integer")
    pulls = [p.get("number") for p in check_run.get("pull_requests") or [] if isinstance(p, dict)]
    suite = check_run.get("check_suite") if isinstance(check_run.get("check_suite"), dict) else {}
    return Delivery(
        delivery_id,
        "check_run",
        "requested_action",
        repo,
        (source,),
        sha=_commit(check_run.get("head_sha")),
        branch=suite.get("head_branch") if isinstance(suite.get("head_branch"), str) else None,
        pr=_number(pulls[0]) if pulls else None,
        author=_login(payload.get("sender")),
        # One press per check run: the re-plan makes a check run of its own, with a button of its own.
        dedupe_key=_key("check_run", repo.lower(), check_run_id, checks.PLAN_AGAIN),
        environment=environment,
    )


def _trigger_delivery(
    config: ManagerConfig, event: str, delivery_id: str, repo: str, payload: dict[str, Any]
) -> Delivery | None:
    """A trigger repository's push of a branch or tag, or its published release: a delivery for the
    infra sources whose trigger patterns match the ref. Everything else it sends asks for nothing."""
    if event == "push":
        ref = payload.get("ref")
        if not isinstance(ref, str) or payload.get("deleted") or payload.get("after") == ZERO_COMMIT:
            return None
        head = payload.get("head_commit")
        # An annotated tag's push names the tag object in `after`; its commit is the head commit.
        tagged = head.get("id") if ref.startswith("refs/tags/") and isinstance(head, dict) else None
        sha = _commit(tagged or payload.get("after"))
        action, author = None, (payload.get("pusher") or {}).get("name")
    elif event == "release":
        release = payload.get("release")
        if payload.get("action") != "published" or not isinstance(release, dict):
            return None
        tag = release.get("tag_name")
        if not isinstance(tag, str) or not tag:
            raise Refused(400, "the release names no tag_name")
        # The payload does not name the tag's commit: the run asks GitHub for it.
        ref, sha, action, author = f"refs/tags/{tag}", None, "published", _login(release.get("author"))
    else:
        return None
    specs = config.sources_by_trigger[repo.lower()]
    sources = tuple(s.name for s in specs if s.trigger_for(repo).matches(ref))
    if not sources:
        return None
    # A tag starts its runs once, whether its push or its release comes first; a branch like a source's push.
    pushed_at = (payload.get("repository") or {}).get("pushed_at")
    dedupe = (
        _key("trigger-tag", repo.lower(), ref)
        if ref.startswith("refs/tags/")
        else _key("trigger-push", repo.lower(), ref, payload.get("before"), sha, pushed_at)
    )
    return Delivery(
        delivery_id, event, action, repo, sources, sha=sha, author=author, dedupe_key=dedupe, trigger_ref=ref
    )


def _read_payload(
    config: ManagerConfig, event: str, delivery_id: str, payload: dict[str, Any]
) -> Delivery | ApprovalNote | None:
    repository = payload.get("repository")
    if event == "ping" and repository is None:
        # An organisation's or a GitHub App's hook: GitHub pings it with no repository.
        return None
    repo = repository.get("full_name") if isinstance(repository, dict) else None
    if not isinstance(repo, str) or "/" not in repo:
        raise Refused(400, "no repository.full_name in the payload")
    specs = sources_for(config, repo)
    if not specs and repo.lower() in config.sources_by_trigger:
        return _trigger_delivery(config, event, delivery_id, repo, payload)
    if not specs:
        raise Refused(403, f"repository {repo} is not a source in manager.yaml")
    if event in ("ping", "release"):
        return None
    if event == "issue_comment":
        return _plan_comment(specs, repo, delivery_id, payload) or _approve_comment(repo, delivery_id, payload)
    if event == "pull_request_review":
        return _approving_review(repo, delivery_id, payload)
    if event == "check_run":
        return _plan_again(specs, repo, delivery_id, payload)
    if event == "push":
        ref = str(payload.get("ref") or "")
        if not ref.startswith("refs/heads/") or payload.get("deleted") or payload.get("after") == ZERO_COMMIT:
            return None
        files = _push_files(payload)
        touched = tuple(s.name for s in specs if touches_source(s, files))
        if not touched:
            return None
        sha = _commit(payload.get("after"))
        branch = ref.removeprefix("refs/heads/")
        repository = payload.get("repository") or {}
        return Delivery(
            delivery_id,
            event,
            None,
            repo,
            touched,
            sha=sha,
            branch=branch,
            author=(payload.get("pusher") or {}).get("name"),
            changed_files=files,
            # `before` tells a force-push back to an older commit from the first push of it, and
            # `pushed_at` a push of the same commits again later; a replay has both unchanged.
            dedupe_key=_key("push", repo.lower(), branch, payload.get("before"), sha, repository.get("pushed_at")),
        )
    action = payload.get("action")
    pull = payload.get("pull_request") or {}
    if action not in PR_ACTIONS or not isinstance(pull, dict):
        return None
    sha = _commit((pull.get("head") or {}).get("sha"))
    number = _number(payload.get("number") or pull.get("number"))
    return Delivery(
        delivery_id,
        event,
        action,
        repo,
        tuple(s.name for s in specs),
        sha=sha,
        branch=(pull.get("head") or {}).get("ref"),
        pr=number,
        author=_login(pull.get("user")),
        dedupe_key=_key("pull_request", repo.lower(), number, sha, action),
        hold=pull_request_hold(repo, head_repository(pull), pull.get("author_association")),
    )
