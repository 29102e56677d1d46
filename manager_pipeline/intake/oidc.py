"""GitHub Actions OIDC ID tokens: what a source's workflow sends instead of an HMAC signature.

A workflow with ``permissions: id-token: write`` asks GitHub for an ID token with the manager's
audience and sends it as ``Authorization: Bearer <token>``. The token is an RS256 JWT from the
issuer (``MANAGER_OIDC_ISSUER``, default GitHub's), checked here against the keys the issuer
publishes at ``<issuer>/.well-known/jwks`` (PyJWT's ``PyJWKClient`` caches them; fetched again at
most once per ``REFETCH_AFTER_S`` for a key not yet known, and hourly to drop retired keys; never per
request).
Its ``aud`` must be ``MANAGER_OIDC_AUDIENCE``, and ``exp``/``nbf``/``iat`` hold with ``LEEWAY_S``.

An HMAC signature covers the whole body; a token does not cover the body at all. So the body is
trusted only for what the token's claims pin (``pin_claims``): the repository (``repository``),
the event (``event_name``), for a push the branch (``ref``), commit (``sha`` = ``after``) and pusher
(``actor``: the author the self-approval rule checks), for a pull request its number (``ref`` =
``refs/pull/N/merge``) and branch (``head_ref``). What a pull request's token does not pin and the
fork hold rests on (its head commit, the repository its head lives in, its author and the author's
association) is GitHub's word, asked of the API as polling does (``with_github_pull``), never the
body's. The rest (a push's changed files, ``before``) is the word of whoever ran the workflow:
someone who can run workflows in that repository, as a holder of its secret is.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from manager_pipeline.errors import ManagerError
from manager_pipeline.intake.webhooks import Refused, json_object
from manager_pipeline.settings import OidcSettings

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
# What a token may vouch for: the events the source-side workflow sends.
TOKEN_EVENTS = ("push", "pull_request")


class IssuerUnavailable(ManagerError):
    """The issuer's keys cannot be fetched (and none are cached): the manager must act, or retry."""


class IssuerKeys(PyJWKClient):
    """The issuer's keys: PyJWT's client and its cache (the key set is kept ``MAX_KEY_AGE_S``; a ``kid``
    it does not list fetches it again, at most once per ``REFETCH_AFTER_S``). While the issuer cannot be
    reached, the last key set it gave keeps serving: its outage must not refuse every delivery."""

    def __init__(self, jwks_url: str):
        super().__init__(
            jwks_url,
            lifespan=MAX_KEY_AGE_S,
            cooldown_duration=REFETCH_AFTER_S,
            timeout=FETCH_TIMEOUT_S,
            headers={"Accept": "application/json"},
        )
        self._last_good: PyJWKSet | None = None
        self._failed_at: float | None = None

    def get_jwk_set(self, refresh: bool = False) -> PyJWKSet:
        if self._last_good is None and self._failed_at is not None:
            # No keys yet and the issuer just failed: a flood of deliveries is not a flood of fetches.
            if time.monotonic() - self._failed_at < REFETCH_AFTER_S:
                raise IssuerUnavailable(f"no keys of {self.uri} could be fetched yet")
        try:
            keys = super().get_jwk_set(refresh)
        except (jwt.PyJWKClientError, jwt.PyJWKSetError, ValueError) as exc:
            # An unreachable issuer, an error page, a set without one usable key: all the issuer's failure.
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            if self._last_good is None:
                self._failed_at = time.monotonic()
                raise IssuerUnavailable(f"cannot fetch {self.uri} ({problem})") from None
            log.warning("cannot fetch %s (%s); still using the keys fetched before", self.uri, problem)
            # Cached again, so the next attempt waits as a fetch would have made it wait.
            assert self.jwk_set_cache is not None
            self.jwk_set_cache.put(self._last_good)
            return self._last_good
        self._last_good, self._failed_at = keys, None
        return keys


class OidcVerifier:
    """Checks a token's signature and issuer, audience and times against the issuer's published keys."""

    def __init__(self, issuer: str = GITHUB_ISSUER, audience: str = DEFAULT_AUDIENCE):
        issuer = issuer.rstrip("/")
        parts = urlsplit(issuer)
        local = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ManagerError(f"MANAGER_OIDC_ISSUER must be an https:// URL, got {issuer!r}")
        if not audience:
            raise ManagerError("MANAGER_OIDC_AUDIENCE must not be empty")
        self.issuer, self.audience = issuer, audience
        self.jwks_url = f"{issuer}/.well-known/jwks"
        self._keys = IssuerKeys(self.jwks_url)

    @classmethod
    def from_settings(cls, oidc: OidcSettings) -> OidcVerifier:
        return cls(oidc.issuer or GITHUB_ISSUER, oidc.audience or DEFAULT_AUDIENCE)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> OidcVerifier:
        """From a mapping of variables (MANAGER_OIDC_ISSUER, MANAGER_OIDC_AUDIENCE)."""
        return cls.from_settings(OidcSettings.from_env(environ))

    def key(self, kid: str) -> Any:
        """The public key ``kid`` names, if the issuer lists it as an RS256 signing key."""
        try:
            found: PyJWK = self._keys.get_signing_key(kid)
        except jwt.PyJWKClientError:
            raise Refused(
                401,
                f"the token is signed with key {kid[:64]!r}, which {self.jwks_url} does not list: "
                f"it was not issued by {self.issuer}",
            ) from None
        if found.algorithm_name != ALGORITHM:
            raise Refused(401, f"{self.jwks_url} lists key {kid[:64]!r} for {found.algorithm_name}, not {ALGORITHM}")
        return found.key

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
        # The pusher is the change's author, whom the self-approval rule checks: the token's actor only.
        pusher = payload.get("pusher")
        name = pusher.get("name") if isinstance(pusher, dict) else None
        if name is not None and name != claims.get("actor"):
            raise Refused(
                401,
                f"the token's run was started by {str(claims.get('actor'))[:40]!r}, the push names pusher "
                f"{str(name)[:40]!r}: send the push event of the run that requested the token",
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


def with_github_pull(body: bytes, claims: Mapping[str, Any], pull: Mapping[str, Any]) -> bytes:
    """A pull request delivery's body with GitHub's word (``pull``: ``GitHubClient.pull_request``) for
    its head commit and branch, the repository its head lives in, its author and the author's
    association: the token pins none of them, and the fork hold and the self-approval rule rest on them."""
    payload = json_object(body)
    request = payload.get("pull_request")
    if not isinstance(request, dict):
        raise Refused(400, "the pull_request payload has no pull_request object")
    if claims.get("head_ref") is not None and claims.get("head_ref") != pull["ref"]:
        raise Refused(
            401,
            f"the token is for branch {str(claims.get('head_ref'))[:200]!r}, GitHub says pull request "
            f"#{pull['number']} is from {str(pull['ref'])[:200]!r}: send the event of the run that requested the token",
        )
    head = request.get("head") if isinstance(request.get("head"), dict) else {}
    if head.get("sha") != pull["sha"]:
        log.warning(
            "OIDC delivery for %s#%s names head %s, GitHub's head is %s: planning GitHub's",
            (payload.get("repository") or {}).get("full_name"),
            pull["number"],
            str(head.get("sha"))[:40],
            pull["sha"],
        )
    head_repo = {"full_name": pull["head_repo"]} if pull["head_repo"] else None
    request["head"] = {**head, "sha": pull["sha"], "ref": pull["ref"], "repo": head_repo}
    request["user"] = {"login": pull["author"]} if pull["author"] else None
    request["author_association"] = pull["author_association"]
    return json.dumps(payload).encode()
