"""The webhook receiver: check, write to the inbox, answer. Terraform never runs here.

``POST /webhooks/github`` takes GitHub's ``push``, ``pull_request``, ``issue_comment`` (a
maintainer's ``/plan``; an ``/approve``), ``pull_request_review`` (an approving review) and ``ping``
deliveries. A possible approval is only a note for the approval sensor to look at the pull
request's plans at once: who approved which commit it asks GitHub, as when it polls.

A delivery must be signed with the secret of the repository it names (the environment variable
its source's ``webhook_secret_env`` names) or with ``GITHUB_WEBHOOK_SECRET``, the organisation's
or GitHub App's hook secret that GitHub signs with; a secret of one repository never signs for
another. Instead of a signature, a source's workflow
may send ``Authorization: Bearer <GitHub Actions OIDC token>`` (intake/oidc.py): the token must be
for the repository, event, branch and commit the body names; a pull request's head commit, fork and
author are then asked of GitHub (``pulls``), never taken from the unsigned body; a source with
``auth: oidc`` takes tokens only. ``GET /healthz`` says it is up (and whether manager.yaml
is). It is a Starlette app served by uvicorn (both come with dagster-webserver): uvicorn bounds
connections and idle keep-alives, h11 refuses malformed framing, and the body is read here
under a size cap and a deadline before anything else looks at it.

Every request gets an answer: 4xx for what the sender must fix, 503 for what the manager must
(GitHub shows it and a redelivery will go through), never a dropped connection. A log line per
delivery names it and what became of it, never the secret or the signature.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from manager_pipeline.config.file import load_config
from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.errors import ManagerError
from manager_pipeline.github.client import GitHubError
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.lifecycle import (
    LIFECYCLE_EVENTS,
    Repositories,
    claimed_repository_id,
    known_by_id,
    read_lifecycle,
)
from manager_pipeline.intake.oidc import IssuerUnavailable, OidcVerifier, bearer_token, pin_claims, with_github_pull
from manager_pipeline.intake.webhooks import (
    MAX_BODY_BYTES,
    PR_ACTIONS,
    ApprovalNote,
    Delivery,
    Refused,
    claimed_repository,
    json_object,
    read_delivery,
    secret_envs_for,
    sources_for,
    verify_signature,
)
from manager_pipeline.settings import Settings

log = logging.getLogger("manager_pipeline.webhooks")
PATH = "/webhooks/github"
# A sender gets this long for a request's headers, and again for its body; GitHub sends at once.
REQUEST_DEADLINE_S = 10.0
# A declared body up to this size is drained before a 413 is sent; past it the connection closes.
DRAIN_LIMIT = 8 * MAX_BODY_BYTES
# Connections and requests at once; past it uvicorn answers 503 rather than queueing without bound.
MAX_CONNECTIONS = 1000
KEEP_ALIVE_S = 5
# GitHub's `permission` of a collaborator who may press "Plan again" (maintain shows as write, triage as read).
WRITE_PERMISSIONS = ("admin", "write")


class ConfigUnavailable(ManagerError):
    """manager.yaml has never been readable since the receiver started."""


class GitHubUnavailable(ManagerError):
    """GitHub cannot say now what an OIDC pull request delivery needs of it: redeliver later."""


# An OIDC pull request delivery when the receiver has no GitHub credentials to ask who made it, and from where.
UNVOUCHED_HOLD = (
    "sent with an OIDC token, and the receiver has no GitHub credentials to read its head, fork and author from "
    "GitHub: waits for a maintainer's `/plan` comment"
)


class ConfigWatcher:
    """manager.yaml, read again when it changes, so a new source needs no restart.

    A file caught mid-edit (or broken) is reported and the last good one keeps serving."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._config: ManagerConfig | None = None
        self.problem: str | None = None

    def current(self) -> ManagerConfig:
        with self._lock:
            try:
                info = os.stat(self.path)
                stamp = (info.st_mtime, info.st_size)
                if self._config is None or stamp != self._stamp:
                    self._config, self._stamp, self.problem = load_config(self.path), stamp, None
            except (OSError, ManagerError) as exc:
                problem = str(exc).splitlines()[0]
                if problem != self.problem:
                    serving = "still serving the last good one" if self._config else "refusing deliveries"
                    log.error("manager.yaml cannot be read (%s); %s", problem, serving)
                self.problem = problem
            if self._config is None:
                raise ConfigUnavailable(f"manager.yaml cannot be read: {self.problem}")
            return self._config


class WebhookApp:
    """What to answer a delivery: plain Python over headers and body (no HTTP here)."""

    def __init__(
        self,
        secret: str,
        config: ConfigWatcher,
        inbox: Inbox,
        environ: Mapping[str, str] | None = None,
        announce: Callable[[int, Delivery], None] | None = None,
        oidc: OidcVerifier | None = None,
        pulls: Callable[[str, int], dict[str, Any]] | None = None,
        permission: Callable[[str, str], str] | None = None,
    ):
        # Where the secrets manager.yaml names (`webhook_secret_env`) and the OIDC settings are read.
        self._environ = Settings.from_env().named_secrets if environ is None else environ
        if not secret and not self._any_source_secret(config):
            raise ManagerError(
                "GITHUB_WEBHOOK_SECRET is not set and no source names a set `webhook_secret_env` or `auth: oidc`: "
                "the receiver will not accept unsigned deliveries"
            )
        # GitHub Actions OIDC tokens (MANAGER_OIDC_ISSUER, MANAGER_OIDC_AUDIENCE); keys fetched on first use.
        self.oidc = oidc if oidc is not None else OidcVerifier.from_environ(self._environ)
        self._secret = secret.encode()
        self.config = config
        self.inbox = inbox
        # Called once a new delivery is stored and will start runs (intake/announce.py); never blocks.
        self.announce = announce
        # GitHub's word on a pull request (``GitHubClient.pull_request``), for OIDC deliveries; None: none asked.
        self.pulls = pulls
        # Each source's repository id and what GitHub said of it since (renamed, the App removed, ...).
        self.repositories = Repositories(engine=inbox.engine)
        # GitHub's word on a login's permission on a repository (``GitHubClient.permission``): who may press
        # a check run's "Plan again". None (no GitHub credentials): no press is taken.
        self.permission = permission
        self._warned: set[str] = set()

    def _any_source_secret(self, config: ConfigWatcher) -> bool:
        try:
            specs = config.current().sources.values()
        except ConfigUnavailable:
            return False
        triggers = [t for s in specs for t in s.triggers]
        return any(
            s.auth == "oidc" or (s.webhook_secret_env and self._environ.get(s.webhook_secret_env)) for s in specs
        ) or any(t.webhook_secret_env and self._environ.get(t.webhook_secret_env) for t in triggers)

    def authenticate(self, headers: Mapping[str, str], event: str, body: bytes) -> dict[str, Any] | None:
        """The OIDC token's claims, None for a delivery proven by its HMAC signature; Refused if neither.

        A bearer token, when sent, decides (it is preferred, and a token that fails is never
        overridden by a signature); otherwise the HMAC signature, unless a source of the
        repository takes tokens only."""
        repo = claimed_repository(body)
        oidc_only = repo is not None and any(s.auth == "oidc" for s in sources_for(self.config.current(), repo))
        authorization = headers.get("Authorization")
        if authorization is not None:
            claims = self.oidc.verify(bearer_token(authorization))
            pin_claims(claims, event, body)
            return claims
        if oidc_only:
            raise Refused(
                401,
                f"deliveries for {repo} must carry a GitHub Actions OIDC token (`auth: oidc` in manager.yaml): send "
                f"`Authorization: Bearer <token>` requested with audience {self.oidc.audience!r}; signatures are not "
                "accepted for it",
            )
        # The repository the body names decides which secrets may have signed it.
        verify_signature(self.secrets_for(repo, claimed_repository_id(body)), body, headers.get("X-Hub-Signature-256"))
        return None

    def vouched_id(self, headers: Mapping[str, str], claims: Mapping[str, Any] | None, body: bytes) -> int | None:
        """The body's repository id when GitHub vouches for it: signed with the organisation's or App's hook
        secret (no source repository holds it), or an OIDC token's ``repository_id``. A repository's own
        secret may be held by its workflow's writers: a body signed only with it names an id nobody checked."""
        repo_id = claimed_repository_id(body)
        if repo_id is None:
            return None
        if claims is not None:
            return repo_id if str(claims.get("repository_id")) == str(repo_id) else None
        try:
            verify_signature([self._secret], body, headers.get("X-Hub-Signature-256"))
        except Refused:
            return None
        return repo_id

    def lifecycle(self, event: str, delivery_id: str, body: bytes, shown: str) -> tuple[int, dict]:
        """A repository renamed or transferred, the App removed, the webhook deleted: recorded for the
        sources it concerns (``manager-pipeline sources`` shows it), answered 202."""
        config = self.config.current()
        try:
            change = read_lifecycle(config, self.repositories, event, json_object(body))
        except (AttributeError, TypeError, ValueError):
            raise Refused(400, f"the {event} payload is not shaped as GitHub documents it") from None
        names = {s.name: s.repo or "" for s in config.sources.values()}
        if change.sources:
            self.repositories.record(change, f"{event} delivery {shown}", names)
        log.warning("delivery %s (%s): %s (sources: %s)", shown, event, change.note, ",".join(change.sources) or "none")
        return 202, {"status": "recorded", "sources": list(change.sources), "note": change.note}

    def under_known_id(
        self, body: bytes, claims: Mapping[str, Any] | None
    ) -> tuple[bytes, tuple[str, str] | None]:
        """A delivery under a name manager.yaml does not have, of a repository whose id is recorded (it
        was renamed or transferred): the body under the name manager.yaml has, and (new name, warning).

        A signature was checked with the secrets of that id's sources (``secrets_for``); a token vouches
        for the id only as its ``repository_id`` claim: any repository's workflow can request a token."""
        try:
            payload = json_object(body)
        except Refused:
            return body, None
        if claims is not None and str(claims.get("repository_id")) != str(claimed_repository_id(body)):
            return body, None
        repository = payload.get("repository")
        config = self.config.current()
        name = repository.get("full_name") if isinstance(repository, dict) else None
        if not isinstance(name, str) or sources_for(config, name) or name.lower() in config.sources_by_trigger:
            return body, None
        found = known_by_id(config, self.repositories, repository)
        if found is None:
            return body, None
        specs, warning = found
        log.warning("%s: taken for %s", warning, ", ".join(s.name for s in specs))
        payload["repository"] = {**repository, "full_name": specs[0].repo}
        return json.dumps(payload).encode(), (name, warning)

    def vouched_pull(self, claims: Mapping[str, Any], body: bytes) -> bytes:
        """An OIDC pull request delivery's body with GitHub's head commit, fork and author in it."""
        payload = json_object(body)
        if payload.get("action") not in PR_ACTIONS or self.pulls is None:
            return body
        repo, number = payload["repository"]["full_name"], payload.get("number")
        if type(number) is not int or number <= 0:
            raise Refused(400, "the pull request number must be a positive integer")
        try:
            pull = self.pulls(repo, number)
        except GitHubError as exc:
            if exc.not_found:
                raise Refused(
                    422,
                    f"GitHub shows no pull request #{number} of {repo} to the manager: check that the manager's "
                    "GitHub credentials can read the repository",
                ) from None
            raise GitHubUnavailable(str(exc)) from None
        except OSError as exc:
            raise GitHubUnavailable(f"pull request #{number} of {repo}: {type(exc).__name__}") from None
        return with_github_pull(body, claims, pull)

    def secrets_for(self, repo: str | None, repo_id: int | None = None) -> list[bytes]:
        """The secrets that may sign a delivery naming ``repo``: the organisation's or App's hook
        secret, and the repository's own (never another repository's): its sources' or, for a trigger
        repository, its triggers'."""
        secrets = [self._secret] if self._secret else []
        if repo is None:
            return secrets
        config = self.config.current()
        named = secret_envs_for(config, repo)
        if not named:
            # A repository renamed or transferred since manager.yaml named it: its sources' own secrets.
            found = known_by_id(config, self.repositories, {"full_name": repo, "id": repo_id})
            named = [pair for spec in (found[0] if found else []) for pair in secret_envs_for(config, spec.repo)]
        for owner, name in named:
            value = self._environ.get(name, "")
            if value:
                secrets.append(value.encode())
            elif name not in self._warned:
                self._warned.add(name)
                log.error(
                    "%s names webhook_secret_env %s, which is not set: its own deliveries are refused", owner, name
                )
        return secrets

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict]:
        delivery_id = headers.get("X-GitHub-Delivery") or ""
        event = headers.get("X-GitHub-Event") or ""
        shown = delivery_id if delivery_id.isprintable() and len(delivery_id) <= 100 else "-"
        try:
            if len(delivery_id) > 100 or not delivery_id.isascii():
                raise Refused(400, "X-GitHub-Delivery must be at most 100 ASCII characters")
            claims = self.authenticate(headers, event, body)
            via = "hmac" if claims is None else "oidc"
            if not delivery_id:
                raise Refused(400, "missing X-GitHub-Delivery")
            if event in LIFECYCLE_EVENTS:
                return self.lifecycle(event, delivery_id, body, shown)
            if claims is not None and event == "pull_request":
                body = self.vouched_pull(claims, body)
            body, renamed = self.under_known_id(body, claims)
            delivery = read_delivery(self.config.current(), event, delivery_id, body)
            if renamed is not None and isinstance(delivery, (Delivery, ApprovalNote)):
                delivery = replace(delivery, repo=renamed[0])
            if claims is not None and isinstance(delivery, Delivery) and delivery.pr is not None and not self.pulls:
                delivery = replace(delivery, hold=UNVOUCHED_HOLD)
            if event == "ping":
                log.info("delivery %s: ping", shown)
                return 200, {"status": "pong"}
            if delivery is None:
                log.info("delivery %s (%s): nothing to deploy", shown, event)
                return 202, {
                    "status": "ignored",
                    "reason": "no change under a source's variables folder, or not a deploying action",
                }
            if isinstance(delivery, Delivery) and delivery.event == "check_run":
                try:
                    refusal = self._may_press(delivery)
                except (GitHubError, OSError) as exc:
                    log.error("delivery %s (check_run) not taken: GitHub cannot say who pressed (%s)", shown, exc)
                    return 503, {"error": "the manager cannot ask GitHub who pressed the button now; redeliver later"}
                if refusal:
                    log.info("delivery %s (check_run on %s): %s", shown, delivery.repo, refusal)
                    return 202, {"status": "ignored", "reason": refusal}
            if isinstance(delivery, ApprovalNote):
                row_id, new = None, self.inbox.note_approval(delivery)
            else:
                row_id, new = self.inbox.add(delivery)
                if delivery.trigger_ref is None:
                    self.repositories.remember(delivery.sources, self.vouched_id(headers, claims, body), delivery.repo)
        except Refused as refused:
            log.warning("delivery %s (%s) refused %d: %s", shown, event[:40] or "-", refused.status, refused.reason)
            return refused.status, {"error": refused.reason}
        except ConfigUnavailable as exc:
            log.error("delivery %s (%s) not taken: %s", shown, event[:40] or "-", exc)
            return 503, {"error": "the manager's configuration is broken; redeliver once it is fixed"}
        except IssuerUnavailable as exc:
            log.error("delivery %s (%s) not taken: %s", shown, event[:40] or "-", exc)
            return 503, {"error": "the manager cannot fetch the OIDC issuer's keys right now; redeliver later"}
        except GitHubUnavailable as exc:
            log.error("delivery %s (%s) not taken: GitHub cannot say who made the pull request (%s)", shown, event, exc)
            return 503, {"error": "the manager cannot ask GitHub for the pull request right now; redeliver later"}
        except (SQLAlchemyError, OSError) as exc:
            log.error("delivery %s (%s) not taken: the inbox cannot be written (%s)", shown, event, type(exc).__name__)
            return 503, {"error": "the manager cannot store deliveries right now; redeliver later"}
        if not new:
            log.info("delivery %s (%s): duplicate (same id, or same repository, ref and commits)", shown, event)
            return 200, {"status": "duplicate"}
        if isinstance(delivery, ApprovalNote):
            log.info(
                "delivery %s (%s on %s#%s by %s): approval noted; the approval sensor asks GitHub",
                shown,
                event,
                delivery.repo,
                delivery.pr,
                delivery.login or "?",
            )
            return 202, {"status": "approval noted"}
        if delivery.event == "issue_comment":
            released = self.inbox.last_note(row_id)
            log.info("delivery %s (/plan on %s#%s): %s", shown, delivery.repo, delivery.pr, released)
            return 202, {"status": "plan requested", "inbox_id": row_id, "note": released}
        if delivery.hold:
            log.info("delivery %s (%s %s#%s): waiting, %s", shown, event, delivery.repo, delivery.pr, delivery.hold)
            return 202, {"status": "waiting", "inbox_id": row_id, "reason": f"pull request {delivery.hold}"}
        log.info(
            "delivery %s (%s %s, %s): queued as %s for %s",
            shown,
            event,
            delivery.repo,
            via,
            row_id,
            ",".join(delivery.sources),
        )
        if self.announce is not None:
            self.announce(row_id, delivery)
        return 202, {"status": "queued", "inbox_id": row_id, "sources": list(delivery.sources)}

    def _may_press(self, delivery: Delivery) -> str | None:
        """Why the sender of a check run's "Plan again" may not re-plan, or None: a collaborator with write
        access, as GitHub says now (the payload's sender is only who GitHub says pressed; their access is asked)."""
        if self.permission is None:
            return "the receiver has no GitHub credentials to ask who may press the button"
        if not delivery.author:
            return "the delivery names no sender"
        permission = self.permission(delivery.repo, delivery.author)
        if permission not in WRITE_PERMISSIONS:
            return f"{delivery.author} has {permission} permission on {delivery.repo}; planning again needs write"
        return None


async def _read_body(request: Request, limit: int, deadline_s: float) -> bytes:
    """The body, at most ``limit`` bytes, whatever Content-Length claims; Refused otherwise.

    A body declared a little too large is read and dropped before the 413, so that the sender,
    still writing, sees the answer instead of a broken pipe."""
    declared = request.headers.get("content-length")
    too_large = declared is not None and declared.isdigit() and int(declared) > limit
    if too_large and int(declared) > DRAIN_LIMIT:
        raise Refused(413, f"body over {limit} bytes")
    chunks, size = [], 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > (DRAIN_LIMIT if too_large else limit):
                raise Refused(413, f"body over {limit} bytes")
            if not too_large:
                chunks.append(chunk)
        if too_large:
            raise Refused(413, f"body over {limit} bytes")

    try:
        await asyncio.wait_for(read(), deadline_s)
    except asyncio.TimeoutError:
        raise Refused(408, f"the body did not arrive within {deadline_s:g} s") from None
    return b"".join(chunks)


def asgi_app(app: WebhookApp, max_body: int = MAX_BODY_BYTES, deadline_s: float = REQUEST_DEADLINE_S) -> Starlette:
    async def deliveries(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, max_body, deadline_s)
        except Refused as refused:
            log.warning(
                "delivery %s refused %d: %s",
                (request.headers.get("x-github-delivery") or "-")[:100],
                refused.status,
                refused.reason,
            )
            return JSONResponse({"error": refused.reason}, refused.status, headers={"Connection": "close"})
        status, payload = await run_in_threadpool(app.handle, request.headers, body)
        return JSONResponse(payload, status)

    async def health(request: Request) -> JSONResponse:
        problem = app.config.problem
        return JSONResponse({"status": "ok", "manager_yaml": problem or "ok"})

    async def elsewhere(request: Request) -> JSONResponse:
        return JSONResponse({"error": f"deliveries go to {PATH}"}, 404)

    return Starlette(
        routes=[
            Route(PATH, deliveries, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
            Route("/{path:path}", elsewhere, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]
    )


def _protocol(deadline_s: float) -> type:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineH11(H11Protocol):
        """uvicorn's h11 protocol, plus a deadline for a request's headers: uvicorn times out a
        keep-alive connection only after a response, so a peer that never sends (or sends a byte
        now and then) would hold its connection for ever."""

        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(deadline_s, self._expire)

        def _expire(self) -> None:
            self._deadline = None
            if self.cycle is None or self.cycle.response_complete:
                self.timeout_keep_alive_handler()

    return HeaderDeadlineH11


def serve(
    app: WebhookApp,
    host: str,
    port: int,
    on_ready: Callable[[str, int], None],
    deadline_s: float = REQUEST_DEADLINE_S,
    max_connections: int = MAX_CONNECTIONS,
) -> None:
    """Serve until interrupted; ``on_ready`` gets the bound address once deliveries can arrive."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    config = uvicorn.Config(
        asgi_app(app, deadline_s=deadline_s),
        http=_protocol(deadline_s),
        limit_concurrency=max_connections,
        timeout_keep_alive=KEEP_ALIVE_S,
        access_log=False,
        lifespan="off",
        log_config=None,
        h11_max_incomplete_event_size=64 * 1024,
    )
    server = uvicorn.Server(config)
    on_ready(*sock.getsockname()[:2])
    server.run(sockets=[sock])
