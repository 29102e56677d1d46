"""GitHub Actions OIDC tokens at the receiver, without a network: PyJWT's key client reads the issuer's keys
from a stand-in for the one HTTP opener it makes, on a clock the tests move."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
import urllib.error
import urllib.request

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.oidc import REFETCH_AFTER_S, OidcVerifier
from manager_pipeline.intake.receiver import ConfigWatcher, WebhookApp
from manager_pipeline.intake.webhooks import signature_for
from tests.support import INTAKE_CONFIG, pull_request_payload, push_payload

ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "manager-pipeline"
SECRET = "unit-secret"
SHA = "c0ffee" + "0" * 34


@pytest.fixture(scope="module")
def keys():
    return {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("github", "mallory")}


class Issuer:
    """The issuer's JWKS endpoint, as the opener PyJWT's key client fetches it with; counts fetches. ``now``
    is the clock the key cache reads (``time.monotonic``)."""

    def __init__(self, keys: dict):
        self.published = {"k1": keys["github"]}
        self.fetches: list[str] = []
        self.now = 1000.0
        self.down = False

    def open(self, request: urllib.request.Request, timeout: float | None = None) -> io.BytesIO:
        self.fetches.append(request.full_url)
        if self.down:
            raise urllib.error.URLError("connection refused")
        entries = []
        for kid, key in self.published.items():
            entry = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            entries.append({**entry, "kid": kid, "use": "sig", "alg": "RS256"})
        return io.BytesIO(json.dumps({"keys": entries}).encode())


@pytest.fixture
def issuer(keys, monkeypatch):
    issuer = Issuer(keys)
    monkeypatch.setattr(urllib.request, "build_opener", lambda *handlers: issuer)
    monkeypatch.setattr(time, "monotonic", lambda: issuer.now)
    return issuer


def make_app(tmp_path, issuer, config=INTAKE_CONFIG, secret=SECRET, pulls=None) -> WebhookApp:
    path = tmp_path / "manager.yaml"
    path.write_text(config)
    verifier = OidcVerifier(ISSUER, AUDIENCE)
    inbox = Inbox(f"sqlite:///{tmp_path / 'inbox.db'}")
    return WebhookApp(secret, ConfigWatcher(path), inbox, environ={}, oidc=verifier, pulls=pulls)


@pytest.fixture
def app(tmp_path, issuer):
    return make_app(tmp_path, issuer)


def claims(**changes) -> dict:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 300,
        "repository": "acme/web",
        "repository_owner": "acme",
        "event_name": "push",
        "ref": "refs/heads/main",
        "sha": SHA,
        # Who started the workflow run (push_payload's pusher).
        "actor": "dev",
        "sub": "repo:acme/web:ref:refs/heads/main",
        "jti": "j-1",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(keys, key="github", kid="k1", **changes) -> str:
    return jwt.encode(claims(**changes), keys[key], algorithm="RS256", headers={"kid": kid})


def send(app, body: bytes, bearer: str | None = None, event="push", delivery="d-1", signature=None):
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return app.handle(headers, body)


def test_a_valid_token_is_taken_without_a_signature_and_the_keys_are_fetched_once(app, issuer, keys):
    status, answer = send(app, push_payload(sha=SHA), token(keys))
    assert status == 202 and answer["status"] == "queued" and answer["sources"] == ["web"]
    # Another delivery: the cached keys serve it (no fetch per request); the repository is matched
    # whatever its case.
    other = push_payload(repo="acme/web", sha="d" * 40)
    assert send(app, other, token(keys, sha="d" * 40, repository="Acme/Web"), delivery="d-2")[0] == 202
    assert issuer.fetches == [f"{ISSUER}/.well-known/jwks"]
    # HMAC stays the fallback for a source without `auth: oidc`.
    body = push_payload(sha="e" * 40)
    assert send(app, body, delivery="d-3", signature=signature_for(SECRET.encode(), body))[0] == 202


def test_a_pull_request_token_vouches_for_its_own_pull_request_only(app, keys):
    pr_claims = {"event_name": "pull_request", "ref": "refs/pull/12/merge", "head_ref": "feature", "sha": "f" * 40}
    body = pull_request_payload(number=12)
    status, answer = send(app, body, token(keys, **pr_claims), event="pull_request")
    # Without GitHub credentials the receiver cannot ask GitHub who made it and from where: it waits.
    assert status == 202 and answer["status"] == "waiting" and "no GitHub credentials" in answer["reason"]
    other = pull_request_payload(number=13)
    status, answer = send(app, other, token(keys, **pr_claims), event="pull_request", delivery="d-2")
    assert status == 401 and "pull request #13" in answer["error"]


def test_a_push_names_as_its_pusher_only_the_tokens_actor(app, keys):
    """Issue 19 #4: in workflow mode the body is the workflow's word; the author the self-approval rule
    checks is who GitHub says started the run (the token's `actor`), never a pusher the body names."""
    body = json.loads(push_payload(sha=SHA))
    body["pusher"] = {"name": "alice", "email": "alice@example.com"}  # an approver, so she may approve it
    status, answer = send(app, json.dumps(body).encode(), token(keys))
    assert status == 401 and "the token's run was started by 'dev'" in answer["error"], answer
    assert "pusher 'alice'" in answer["error"]


def _unsigned(header: dict, payload: dict) -> str:
    part = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part(header)}.{part(payload)}."


def _hs256_with_public_key(keys) -> str:
    """The classic forgery: HS256 "signed" with the issuer's public key as the HMAC secret."""
    pem = (
        keys["github"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    unsigned = _unsigned({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims())[:-1]
    mac = hmac.new(pem, unsigned.encode(), hashlib.sha256).digest()
    return unsigned + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "make, body, reason",
    [
        (lambda k: token(k, iss="https://token.actions.example.com"), None, "the manager trusts"),
        (lambda k: token(k, aud="someone-else"), None, "audience is 'someone-else', the manager expects"),
        (lambda k: token(k, aud=["manager-pipeline", "x"]), None, "audience"),
        (lambda k: token(k, iat=int(time.time()) - 900, exp=int(time.time()) - 600), None, "expired"),
        (lambda k: token(k, nbf=int(time.time()) + 600), None, "not valid yet"),
        (lambda k: token(k, exp=None), None, "no `exp` claim"),
        (lambda k: token(k, repository="acme/mono"), None, "token is for repository 'acme/mono'"),
        (
            lambda k: token(k),
            push_payload("acme/mono", files=("services/api/infra/variables.yml",), sha=SHA),
            "the delivery names 'acme/mono'",
        ),
        (lambda k: token(k, ref="refs/heads/feature"), None, "token is for ref 'refs/heads/feature'"),
        (lambda k: token(k, sha="1" * 40), None, "a token vouches only for the commit its run was for"),
        (lambda k: token(k, event_name="workflow_dispatch"), None, "requested by a 'workflow_dispatch' run"),
        (lambda k: token(k, key="mallory"), None, "signature does not verify"),
        (lambda k: token(k, key="mallory", kid="mallory-key"), None, "does not list: it was not issued by"),
        (lambda k: _unsigned({"alg": "none", "typ": "JWT", "kid": "k1"}, claims()), None, "'none'; only RS256"),
        (_hs256_with_public_key, None, "'HS256'; only RS256"),
        (lambda k: "not-a-jwt", None, "not a JWT"),
    ],
    ids=[
        "issuer",
        "audience",
        "audience-list",
        "expired",
        "not-yet",
        "no-exp",
        "other-repository",
        "body-other-repository",
        "other-ref",
        "other-sha",
        "other-event",
        "unknown-key-same-kid",
        "unknown-kid",
        "alg-none",
        "hs256-public-key",
        "garbage",
    ],
)
def test_a_token_that_does_not_hold_is_refused_with_its_reason(app, keys, make, body, reason):
    status, answer = send(app, body or push_payload(sha=SHA), make(keys))
    assert status == 401 and reason in answer["error"], answer
    assert app.inbox.states() == {}


def test_a_token_never_overrides_a_signature_and_is_not_logged(app, keys, caplog):
    body = push_payload(sha=SHA)
    bad = token(keys, sha="1" * 40)
    # A good signature does not rescue a token that fails: the token decides when sent.
    status, _ = send(app, body, bad, signature=signature_for(SECRET.encode(), body))
    assert status == 401
    assert bad not in caplog.text and "refused 401" in caplog.text
    status, answer = app.handle({"X-GitHub-Event": "push", "X-GitHub-Delivery": "d", "Authorization": "Basic x"}, body)
    assert status == 401 and "Bearer <GitHub Actions OIDC token>" in answer["error"]


def test_a_token_vouches_only_for_push_and_pull_request_events(app, keys):
    ping = json.dumps({"zen": "hi", "repository": {"full_name": "acme/web"}}).encode()
    status, answer = send(app, ping, token(keys, event_name="ping"), event="ping")
    assert status == 401 and "push and pull_request deliveries only" in answer["error"]


def test_an_unknown_kid_fetches_the_keys_again_at_most_once_per_window(app, issuer, keys):
    assert send(app, push_payload(sha=SHA), token(keys))[0] == 202
    issuer.now += REFETCH_AFTER_S
    # The issuer rotated: the new key is fetched on the first token that names it.
    issuer.published["k2"] = keys["mallory"]
    rotated = push_payload(sha="2" * 40)
    assert send(app, rotated, token(keys, key="mallory", kid="k2", sha="2" * 40), delivery="d-2")[0] == 202
    assert len(issuer.fetches) == 2
    # Made-up kids right after cost no further fetch.
    for index in range(5):
        assert send(app, push_payload(sha=SHA), token(keys, kid=f"made-up-{index}"), delivery=f"x{index}")[0] == 401
    assert len(issuer.fetches) == 2
    issuer.now += REFETCH_AFTER_S
    assert send(app, push_payload(sha=SHA), token(keys, kid="made-up-again"), delivery="y")[0] == 401
    assert len(issuer.fetches) == 3


def test_an_unreachable_issuer_gives_503_and_stale_keys_keep_serving(app, issuer, keys):
    issuer.down = True
    status, answer = send(app, push_payload(sha=SHA), token(keys))
    assert status == 503 and "redeliver later" in answer["error"]
    issuer.down, issuer.now = False, issuer.now + REFETCH_AFTER_S
    assert send(app, push_payload(sha=SHA), token(keys))[0] == 202
    issuer.down, issuer.now = True, issuer.now + 7200  # keys an hour old: fetched again, which fails
    assert send(app, push_payload(sha="3" * 40), token(keys, sha="3" * 40), delivery="d-2")[0] == 202


OIDC_ONLY = INTAKE_CONFIG.replace("{name: web, repo: acme/web}", "{name: web, repo: acme/web, auth: oidc}")


def test_a_source_with_auth_oidc_refuses_signatures_even_the_organisations(tmp_path, issuer, keys):
    app = make_app(tmp_path, issuer, OIDC_ONLY, secret="")  # no secret at all: `auth: oidc` is enough to start
    body = push_payload(sha=SHA)
    status, answer = send(app, body, signature=signature_for(b"", body))
    assert status == 401 and "auth: oidc" in answer["error"] and "audience 'manager-pipeline'" in answer["error"]
    assert send(app, body, token(keys))[0] == 202


def test_the_issuer_must_be_https_and_the_audience_set():
    from manager_pipeline.errors import ManagerError

    with pytest.raises(ManagerError, match="https://"):
        OidcVerifier("http://token.example.com", AUDIENCE)
    with pytest.raises(ManagerError, match="AUDIENCE"):
        OidcVerifier(ISSUER, "")
    verifier = OidcVerifier.from_environ({"MANAGER_OIDC_ISSUER": "http://127.0.0.1:9/", "MANAGER_OIDC_AUDIENCE": "m"})
    assert (verifier.jwks_url, verifier.audience) == ("http://127.0.0.1:9/.well-known/jwks", "m")
    assert OidcVerifier.from_environ({}).jwks_url == "https://token.actions.githubusercontent.com/.well-known/jwks"

