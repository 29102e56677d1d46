"""GitHub Actions OIDC ID tokens: what a source's workflow sends instead of an HMAC signature.

A workflow with ``permissions: id-token: write`` asks GitHub for an ID token with the manager's
audience and sends it as ``Authorization: Bearer <token>``. The token is an RS256 JWT from the
issuer (``MANAGER_OIDC_ISSUER``, default GitHub's), checked here against the keys the issuer
publishes at ``<issuer>/.well-known/jwks`` (cached; fetched again at most once per
``REFETCH_AFTER_S`` for a key not yet known, and hourly to drop retired keys; never per request).
Its ``aud`` must be ``MANAGER_OIDC_AUDIENCE``, and ``exp``/``nbf``/``iat`` hold with ``LEEWAY_S``.

An HMAC signature covers the whole body; a token does not cover the body at all. So the body is
trusted only for what the token's claims pin (``pin_claims``): the repository (``repository``),
the event (``event_name``), for a push the branch (``ref``) and commit (``sha`` = ``after``), for a
pull request its number (``ref`` = ``refs/pull/N/merge``) and branch (``head_ref``). The rest (the
changed files, ``before``, the pusher, a pull request's head commit) is the word of whoever ran
the workflow: someone who can run workflows in that repository, as a holder of its secret is.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt

from manager_pipeline.errors import ManagerError
from manager_pipeline.intake.webhooks import Refused, json_object

log = logging.getLogger("manager_pipeline.webhooks")

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
DEFAULT_AUDIENCE = "manager-pipeline"
ALGORITHM = "RS256"
LEEWAY_S = 60
FETCH_TIMEOUT_S = 5.0
# An unknown `kid` fetches the keys again, but not more often than this (a flood of made-up kids
# costs the issuer one request per window); keys older than MAX_KEY_AGE_S are fetched again too.
REFETCH_AFTER_S = 10.0
MAX_KEY_AGE_S = 3600.0
MAX_JWKS_BYTES = 256 * 1024
# What a token may vouch for: the events the source-side workflow sends.
TOKEN_EVENTS = ("push", "pull_request")


class IssuerUnavailable(ManagerError):
    """The issuer's keys cannot be fetched (and none are cached): the manager must act, or retry."""


def fetch_json(url: str, timeout: float = FETCH_TIMEOUT_S) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read(MAX_JWKS_BYTES + 1)[:MAX_JWKS_BYTES])


class OidcVerifier:
    """Checks a token's signature and issuer, audience and times; ``fetch`` gets the JWKS (JSON)."""

    def __init__(
        self,
        issuer: str = GITHUB_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        fetch: Callable[[str], Any] = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ):
        issuer = issuer.rstrip("/")
        parts = urlsplit(issuer)
        local = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ManagerError(f"MANAGER_OIDC_ISSUER must be an https:// URL, got {issuer!r}")
        if not audience:
            raise ManagerError("MANAGER_OIDC_AUDIENCE must not be empty")
        self.issuer, self.audience = issuer, audience
        self.jwks_url = f"{issuer}/.well-known/jwks"
        self._fetch, self._clock = fetch, clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None  # the last good fetch
        self._tried_at: float | None = None  # the last attempt, good or not

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **kwargs: Any) -> OidcVerifier:
        return cls(
            environ.get("MANAGER_OIDC_ISSUER") or GITHUB_ISSUER,
            environ.get("MANAGER_OIDC_AUDIENCE") or DEFAULT_AUDIENCE,
            **kwargs,
        )

    def _refresh(self) -> None:
        self._tried_at = self._clock()
        try:
            document = self._fetch(self.jwks_url)
            keys: dict[str, Any] = {}
            for entry in document.get("keys") or []:
                if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                    continue
                if entry.get("alg", ALGORITHM) != ALGORITHM or not isinstance(entry.get("kid"), str):
                    continue
                try:
                    keys[entry["kid"]] = jwt.PyJWK(entry, algorithm=ALGORITHM).key
                except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                    continue
        except Exception as exc:  # noqa: BLE001 - any failure to get keys is the issuer being unavailable
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            if not self._keys:
                raise IssuerUnavailable(f"cannot fetch {self.jwks_url} ({problem})") from None
            log.warning(
                "cannot fetch %s (%s); still using the %d keys fetched before", self.jwks_url, problem, len(self._keys)
            )
            return
        if not keys:
            if not self._keys:
                raise IssuerUnavailable(f"{self.jwks_url} lists no RS256 signing keys")
            log.warning("%s lists no RS256 signing keys; still using the ones fetched before", self.jwks_url)
            return
        self._keys, self._fetched_at = keys, self._clock()

    def key(self, kid: str) -> Any:
        with self._lock:
            now = self._clock()
            recently_tried = self._tried_at is not None and now - self._tried_at < REFETCH_AFTER_S
            stale = self._fetched_at is None or now - self._fetched_at >= MAX_KEY_AGE_S
            if stale and not recently_tried:
                self._refresh()
            elif kid not in self._keys and not recently_tried:
                self._refresh()
            if kid not in self._keys and not self._keys:
                raise IssuerUnavailable(f"no keys of {self.issuer} could be fetched yet")
            if kid not in self._keys:
                raise Refused(
                    401,
                    f"the token is signed with key {kid[:64]!r}, which {self.jwks_url} does not list: "
                    f"it was not issued by {self.issuer}",
                )
            return self._keys[kid]

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once it is proven to be the issuer's, for this audience, and current."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Refused(401, "the bearer token is not a JWT") from None
        if header.get("alg") != ALGORITHM:
            raise Refused(
                401, f"the token's algorithm is {str(header.get('alg'))[:20]!r}; only {ALGORITHM} is accepted"
            )
        if unverified.get("iss") != self.issuer:
            # Said before fetching keys: a token of another issuer (GHES, another enterprise) is told so.
            raise Refused(
                401,
                f"the token was issued by {str(unverified.get('iss'))[:200]!r}, the manager trusts {self.issuer!r} "
                "(MANAGER_OIDC_ISSUER)",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Refused(401, "the token names no signing key (`kid` in its header)")
        key = self.key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                leeway=LEEWAY_S,
                options={"verify_aud": False, "verify_iss": False, "require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Refused(401, "the token has expired: request a new one for each delivery") from None
        except jwt.ImmatureSignatureError:
            raise Refused(401, "the token is not valid yet (nbf or iat in the future): check the clocks") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Refused(401, f"the token has no `{exc.claim}` claim") from None
        except jwt.InvalidSignatureError:
            raise Refused(401, f"the token's signature does not verify with {self.issuer}'s key {kid[:64]!r}") from None
        except jwt.PyJWTError as exc:
            raise Refused(401, f"the token is not valid ({type(exc).__name__})") from None
        if claims.get("iss") != self.issuer:
            raise Refused(401, f"the token was issued by {str(claims.get('iss'))[:200]!r}, not {self.issuer!r}")
        if claims.get("aud") != self.audience:
            raise Refused(
                401,
                f"the token's audience is {str(claims.get('aud'))[:200]!r}, the manager expects {self.audience!r}: "
                f"request the token with `audience={self.audience}` (MANAGER_OIDC_AUDIENCE)",
            )
        return claims


def bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not token.isascii() or len(token) > 16 * 1024:
        raise Refused(401, "Authorization must be `Bearer <GitHub Actions OIDC token>`")
    return token


def pin_claims(claims: Mapping[str, Any], event: str, body: bytes) -> None:
    """The body may say only what the token vouches for: its repository, event, branch and commit."""
    if event not in TOKEN_EVENTS:
        raise Refused(
            401,
            f"an OIDC token vouches for push and pull_request deliveries only; sign {event[:40]!r} ones with the "
            "HMAC secret",
        )
    payload = json_object(body)
    repository = payload.get("repository")
    repo = repository.get("full_name") if isinstance(repository, dict) else None
    claimed = claims.get("repository")
    if not isinstance(claimed, str) or not isinstance(repo, str) or claimed.lower() != repo.lower():
        raise Refused(
            401,
            f"the token is for repository {str(claimed)[:200]!r}, the delivery names {str(repo)[:200]!r}: a token "
            "vouches only for the repository whose workflow requested it",
        )
    if claims.get("event_name") != event:
        raise Refused(
            401,
            f"the token was requested by a {str(claims.get('event_name'))[:40]!r} run, the delivery is a {event!r} "
            "event: send the event of the run that requested the token",
        )
    if event == "push":
        if claims.get("ref") != payload.get("ref"):
            raise Refused(
                401,
                f"the token is for ref {str(claims.get('ref'))[:200]!r}, "
                f"the push names {str(payload.get('ref'))[:200]!r}",
            )
        if claims.get("sha") != payload.get("after"):
            raise Refused(
                401,
                f"the token is for commit {str(claims.get('sha'))[:40]!r}, the push names "
                f"{str(payload.get('after'))[:40]!r}: a token vouches only for the commit its run was for",
            )
        return
    pull = payload.get("pull_request")
    number = payload.get("number") or (pull.get("number") if isinstance(pull, dict) else None)
    if claims.get("ref") != f"refs/pull/{number}/merge":
        raise Refused(
            401,
            f"the token is for ref {str(claims.get('ref'))[:200]!r}, the delivery is for pull request "
            f"#{str(number)[:20]} (refs/pull/{str(number)[:20]}/merge)",
        )
    head = pull.get("head") if isinstance(pull, dict) else None
    branch = head.get("ref") if isinstance(head, dict) else None
    if claims.get("head_ref") is not None and claims.get("head_ref") != branch:
        raise Refused(
            401,
            f"the token is for branch {str(claims.get('head_ref'))[:200]!r}, the pull request names "
            f"{str(branch)[:200]!r}",
        )
