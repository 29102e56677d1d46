"""Dispatch intake over the wire: the webhook receiver process, the source-side workflow script, and
polling GitHub (the stand-in)."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from manager_pipeline.config.file import parse_config
from manager_pipeline.defs.resources import GitHubResource
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.polling import PollState, poll
from manager_pipeline.intake.webhooks import signature_for
from manager_pipeline.aws.standin import free_port
from tests.support import (
    BIN,
    INTAKE_CONFIG,
    REPO,
    WEBHOOK_SECRET,
    push_payload,
    stop_process,
    wait_for_http,
)
# --- the receiver, over HTTP --------------------------------------------------------------


class Receiver:
    def __init__(self, url: str, inbox: Inbox, log: Path):
        self.url, self.inbox, self.log = url, inbox, log

    def post(self, body: bytes, event="push", delivery="d-1", signature: str | None = "sign", headers=None):
        sent = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
        if signature == "sign":
            sent["X-Hub-Signature-256"] = signature_for(WEBHOOK_SECRET.encode(), body)
        elif signature:
            sent["X-Hub-Signature-256"] = signature
        sent.update(headers or {})
        request = urllib.request.Request(f"{self.url}/webhooks/github", data=body, method="POST", headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


@pytest.fixture
def receiver(tmp_path, request):
    """The receiver process; ``@pytest.mark.parametrize("receiver", [[args]], indirect=True)`` adds flags;
    a test that also uses ``oidc_issuer`` gets a receiver trusting it."""
    extra = list(getattr(request, "param", []))
    (tmp_path / "manager.yaml").write_text(INTAKE_CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MANAGER_", "DAGSTER_", "GITHUB_"))} | {
        "MANAGER_CONFIG": str(tmp_path / "manager.yaml"),
        "MANAGER_HOME": str(tmp_path / ".manager"),
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PYTHONPATH": str(REPO),
    }
    if "oidc_issuer" in request.fixturenames:
        env["MANAGER_OIDC_ISSUER"] = request.getfixturevalue("oidc_issuer").url
    port = free_port()
    log = tmp_path / "receiver.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "manager-pipeline"), "serve-webhooks", "--port", str(port), *extra],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/healthz", process, log)
    yield Receiver(url, Inbox(f"sqlite:///{tmp_path / '.manager' / 'dagster' / 'manager.db'}"), log)
    stop_process(process)


def test_receiver_refuses_forged_missing_oversized_and_unknown(receiver):
    body = push_payload()
    assert receiver.post(body, signature=None)[0] == 401
    assert receiver.post(body, signature="sha256=" + "0" * 64)[0] == 401
    assert receiver.post(body + b" ", signature=signature_for(WEBHOOK_SECRET.encode(), body))[0] == 401
    assert receiver.post(b"x" * (1024 * 1024 + 1))[0] == 413
    assert receiver.post(b"{oops")[0] == 400
    assert receiver.post(push_payload(), event="deployment")[0] == 400
    assert receiver.post(push_payload(repo="evil/repo"))[0] == 403
    assert receiver.post(push_payload(), delivery="")[0] == 400
    assert receiver.inbox.states() == {}
    log = receiver.log.read_text()
    assert "refused 401" in log and "refused 413" in log and "refused 403" in log
    assert WEBHOOK_SECRET not in log and "sha256=" not in log
    assert signature_for(WEBHOOK_SECRET.encode(), body) not in log


def test_receiver_queues_once_per_delivery_and_answers_fast(receiver):
    status, answer = receiver.post(push_payload(), delivery="abc-1")
    assert status == 202 and answer["status"] == "queued" and answer["sources"] == ["web"]
    assert receiver.post(push_payload(), delivery="abc-1") == (200, {"status": "duplicate"})
    assert receiver.post(push_payload(files=("docs/x.md",)), delivery="abc-2")[1]["status"] == "ignored"
    assert (
        receiver.post(
            json.dumps({"zen": "hi", "repository": {"full_name": "acme/web"}}).encode(), event="ping", delivery="p"
        )[0]
        == 200
    )
    assert receiver.inbox.states() == {"received": 1}
    timings = []
    for index in range(50):
        started = time.perf_counter()
        assert receiver.post(push_payload(sha=f"{index + 1:040x}"), delivery=f"t-{index}")[0] == 202
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.1
    assert receiver.inbox.states() == {"received": 51}


def _raw(url: str, data: bytes, timeout: float = 10) -> bytes:
    """What the receiver answers to raw bytes on a fresh connection (b"" when it closes without a word)."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as peer:
        peer.sendall(data)
        return peer.recv(200)


def test_malformed_framing_gets_an_answer_before_any_body_is_read(receiver):
    answer = _raw(receiver.url, b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n" + b"x" * 4096)
    assert answer.startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("receiver", [["--request-timeout", "1"]], indirect=True)
def test_idle_and_slow_peers_are_cut_off_and_never_block_a_delivery(receiver):
    import socket

    host, port = receiver.url.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(60)]
    slow_headers = socket.create_connection((host, int(port)))
    slow_headers.sendall(b"POST /webhooks/github HTTP/1.1\r\n")
    slow_body = socket.create_connection((host, int(port)))
    slow_body.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    status, answer = receiver.post(push_payload(), delivery="while-idle")
    assert status == 202 and answer["status"] == "queued"
    slow_body.settimeout(10)
    assert slow_body.recv(200).startswith(b"HTTP/1.1 408")
    for peer in [*idle, slow_headers]:
        peer.settimeout(10)
        assert peer.recv(10) == b"", "an idle connection was left open past the request timeout"
        peer.close()
    slow_body.close()


def test_receiver_refuses_to_start_without_a_secret(tmp_path):
    (tmp_path / "manager.yaml").write_text(INTAKE_CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MANAGER_", "GITHUB_"))} | {
        "MANAGER_CONFIG": str(tmp_path / "manager.yaml"),
        "MANAGER_HOME": str(tmp_path / ".m"),
    }
    done = subprocess.run(
        [str(BIN / "manager-pipeline"), "serve-webhooks", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "GITHUB_WEBHOOK_SECRET is not set" in done.stderr


def test_the_source_side_workflow_posts_a_signed_event_the_receiver_takes(receiver, tmp_path):
    workflow = yaml.safe_load((REPO / "examples/source_monorepo/.github/workflows/infra-dispatch.yml").read_text())
    assert set(workflow[True]) == {"push", "pull_request"} and workflow[True]["push"]["paths"] == ["infra/**"]
    script = workflow["jobs"]["dispatch"]["steps"][0]["run"]
    event = tmp_path / "event.json"
    event.write_bytes(push_payload())
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_RUN_ID": "4711",
        "GITHUB_RUN_ATTEMPT": "1",
        "MANAGER_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MANAGER_WEBHOOK_URL": f"{receiver.url}/webhooks/github",
    }
    done = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "manager answered 202" in done.stdout
    assert receiver.inbox.after(0, 10)[0].delivery.delivery_id == "actions-4711-1"
    env["MANAGER_WEBHOOK_SECRET"] = "wrong"
    env["GITHUB_RUN_ID"] = "4712"
    refused = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "refused the event (401)" in refused.stderr


class OidcIssuer:
    """A stand-in for GitHub's OIDC issuer: its JWKS, and the runner's token request endpoint
    (``ACTIONS_ID_TOKEN_REQUEST_URL``), minting RS256 tokens with ``claims`` for the audience asked."""

    request_token = "runner-request-token"

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "gh-1", "use": "sig"}
        self.claims: dict = {}
        self.audiences: list[str] = []
        self.jwks_fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit

                url = urlsplit(self.path)
                if url.path == "/.well-known/jwks":
                    issuer.jwks_fetches += 1
                    return self.answer(200, {"keys": [jwk]})
                if url.path != "/token" or self.headers.get("Authorization") != f"bearer {issuer.request_token}":
                    return self.answer(401, {"message": "Unauthorized"})
                audience = parse_qs(url.query)["audience"][0]
                issuer.audiences.append(audience)
                now = int(time.time())
                claims = {"iss": issuer.url, "aud": audience, "iat": now, "nbf": now, "exp": now + 300,
                          **issuer.claims}
                self.answer(200, {"value": jwt.encode(claims, key, algorithm="RS256", headers={"kid": "gh-1"})})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def oidc_issuer():
    issuer = OidcIssuer()
    yield issuer
    issuer.server.shutdown()
    issuer.server.server_close()


def test_the_source_side_workflow_sends_an_oidc_token_and_needs_no_secret(oidc_issuer, receiver, tmp_path):
    script = yaml.safe_load((REPO / "examples/source_monorepo/.github/workflows/infra-dispatch.yml").read_text())[
        "jobs"
    ]["dispatch"]["steps"][0]["run"]
    sha = "7" * 40
    event = tmp_path / "event.json"
    event.write_bytes(push_payload(sha=sha))
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_RUN_ID": "5001",
        "GITHUB_RUN_ATTEMPT": "1",
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{oidc_issuer.url}/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": oidc_issuer.request_token,
        "MANAGER_WEBHOOK_URL": f"{receiver.url}/webhooks/github",
    }
    oidc_issuer.claims = {
        "repository": "acme/web", "event_name": "push", "ref": "refs/heads/main", "sha": sha, "actor": "dev"
    }
    done = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "manager answered 202" in done.stdout and oidc_issuer.audiences == ["manager-pipeline"]
    assert receiver.inbox.after(0, 10)[0].delivery.delivery_id == "actions-5001-1"
    # A token of another repository's workflow vouches for nothing here.
    oidc_issuer.claims["repository"] = "acme/other"
    env["GITHUB_RUN_ID"] = "5002"
    refused = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "refused the event (401)" in refused.stderr
    assert "token is for repository 'acme/other'" in refused.stderr
    assert receiver.inbox.states() == {"received": 1}
    assert oidc_issuer.jwks_fetches == 1  # cached between deliveries
    assert "(push acme/web, oidc): queued" in receiver.log.read_text()


# --- polling ------------------------------------------------------------------------------


def test_polling_picks_up_a_new_commit_once_and_unchanged_repos_cost_304s(github_standin):
    name = f"acme/poll-{os.getpid()}-{time.time_ns() % 10**6}"
    token = f"ghp_poll{time.time_ns()}"
    first, second, third = (hashlib.sha1(f"{name}{i}".encode()).hexdigest() for i in range(3))
    github_standin.token(token)
    github_standin.repo(
        name, commits={first: {"infra/variables.yml": "a: 1\n", "src/x.py": "1"}}, branches={"main": first}
    )
    config_ = parse_config(
        f"sources:\n  - {{name: polled, repo: {name}}}\nenvironments:\n  staging: {{auto_apply: true}}\n",
        Path("/srv/m/manager.yaml"),
    )
    poller = GitHubResource(api_url=github_standin.url, token=token, throttle=False).client()
    state = PollState()
    assert poll(config_, poller, state) == []  # the first look records what is there
    github_standin.update(
        name, commits={second: {"infra/variables.yml": "a: 1\n", "src/x.py": "2"}}, branches={"main": second}
    )
    assert poll(config_, poller, state) == []  # a change outside infra/
    github_standin.update(
        name, commits={third: {"infra/variables.yml": "a: 2\n", "src/x.py": "2"}}, branches={"main": third}
    )
    state = PollState.from_json(state.to_json())
    found = poll(config_, poller, state)
    assert [(d.delivery_id, d.sources, d.sha) for d in found] == [(f"poll:{name}:main:{third}", ("polled",), third)]
    before = len(github_standin.requests())
    assert poll(config_, poller, state) == []
    unchanged = github_standin.requests()[before:]
    assert unchanged and all(r.get("status") == 304 for r in unchanged)
    github_standin.update(
        name,
        pulls=[
            {"number": 5, "head_sha": third, "head_ref": "feature"},
            {"number": 6, "head_sha": third, "head_ref": "patch-1", "head_repo": "stranger/fork"},
            {"number": 7, "head_sha": third, "head_ref": "typo", "author_association": "FIRST_TIME_CONTRIBUTOR"},
        ],
    )
    pulls = {d.pr: d for d in poll(config_, poller, state)}
    assert [(d.event, d.pr, d.sha) for d in pulls.values()] == [("pull_request", n, third) for n in (5, 6, 7)]
    # Polling holds forks and outsiders for a maintainer's /plan, exactly as webhooks do.
    assert pulls[5].hold is None
    assert "from a fork (stranger/fork)" in pulls[6].hold
    assert "FIRST_TIME_CONTRIBUTOR" in pulls[7].hold and "/plan" in pulls[7].hold


def test_a_receiver_with_only_per_repository_secrets_takes_each_repositorys_own(tmp_path):
    """Issue 10 #1 over the wire: no GITHUB_WEBHOOK_SECRET, each source its own secret by variable name."""
    config = INTAKE_CONFIG.replace(
        "{name: web, repo: acme/web}", "{name: web, repo: acme/web, webhook_secret_env: WEB_SECRET}"
    ).replace("{name: api, repo: acme/mono,", "{name: api, repo: acme/mono, webhook_secret_env: MONO_SECRET,")
    (tmp_path / "manager.yaml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MANAGER_", "DAGSTER_", "GITHUB_"))} | {
        "MANAGER_CONFIG": str(tmp_path / "manager.yaml"),
        "MANAGER_HOME": str(tmp_path / ".manager"),
        "WEB_SECRET": "web-only-secret",
        "MONO_SECRET": "mono-only-secret",
        "PYTHONPATH": str(REPO),
    }
    port = free_port()
    log = tmp_path / "receiver.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "manager-pipeline"), "serve-webhooks", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", process, log)
        receiver = Receiver(url, Inbox(f"sqlite:///{tmp_path / '.manager' / 'dagster' / 'manager.db'}"), log)
        body = push_payload("acme/web", sha="5" * 40)
        forged = receiver.post(body, delivery="forged", signature=signature_for(b"mono-only-secret", body))
        assert forged[0] == 401
        assert receiver.post(body, delivery="own", signature=signature_for(b"web-only-secret", body))[0] == 202
        replay = receiver.post(body, delivery="replay", signature=signature_for(b"web-only-secret", body))
        assert replay == (200, {"status": "duplicate"})
        assert receiver.inbox.states() == {"received": 1}
        assert "web-only-secret" not in log.read_text() and "mono-only-secret" not in log.read_text()
    finally:
        stop_process(process)
