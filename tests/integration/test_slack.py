"""The manager posts deploy notifications to a source's Slack webhook, and the URL never leaks."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from manager_pipeline.feedback.slack import SlackSink
from tests.support import EXAMPLE_VARIABLES, LIGHT_MODULE, commit_all

pytestmark = pytest.mark.integration

# What is fed back, dispatched or superseded is under test here, not what terraform/ builds.
TERRAFORM_DIR = LIGHT_MODULE


def _self_signed(folder):
    """A certificate for 127.0.0.1 that the run trusts through SSL_CERT_FILE (Slack is https only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "slack.pem", folder / "slack.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def slack(tmp_path):
    """An https server on 127.0.0.1 standing in for Slack's incoming webhooks; records each post."""
    posts: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append({"path": self.path, "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    cert_file, key_file = _self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"https://127.0.0.1:{server.server_port}", "posts": posts, "ca": cert_file}
    server.shutdown()
    server.server_close()


def test_applies_are_posted_to_the_sources_slack_webhook_as_asked_and_the_url_never_appears(
    manager, source_repo, slack
):
    hook = "https://hooks.slack.com/services/T0001/B0001/s3cr3tPath"
    variables = source_repo / "infra" / "variables.yml"
    # hooks.slack.com is reached at the stand-in.
    manager.env |= {"SSL_CERT_FILE": str(slack["ca"]), "MANAGER_SLACK_URL": slack["url"]}

    variables.write_text(EXAMPLE_VARIABLES.read_text() + f"notifications:\n  slack_webhook: {hook}\n  on_success: false\n")
    commit_all(source_repo, "notify slack on failures only")
    quiet = manager.cli("run", "--source", "app", "--env", "staging")
    assert quiet.returncode == 0, quiet.stderr
    assert "Applied plan" in quiet.stdout and slack["posts"] == []

    variables.write_text(
        EXAMPLE_VARIABLES.read_text().replace("Team: platform", "Team: payments")
        + f"notifications:\n  slack_webhook: {hook}\n  slack_channel: '#deploys'\n"
    )
    commit_all(source_repo, "notify slack on success too")
    done = manager.cli("run", "--source", "app", "--env", "staging")
    assert done.returncode == 0, done.stderr
    assert [post["path"] for post in slack["posts"]] == ["/services/T0001/B0001/s3cr3tPath"]
    message = slack["posts"][0]["body"]
    assert message["channel"] == "#deploys" and "app / staging" in message["text"] and "Applied plan" in message["text"]
    leaked = [
        str(path)
        for path in manager.home.rglob("*")
        # Nothing the manager keeps holds the webhook: not the event log, run metadata, reports, plan
        # files, working directories, nor what ops hand each other (kept in memory, never pickled).
        if path.is_file() and b"s3cr3tPath" in path.read_bytes()
    ]
    assert "s3cr3tPath" not in quiet.stdout + quiet.stderr + done.stdout + done.stderr and leaked == []


@pytest.fixture
def busy_slack(tmp_path, monkeypatch):
    """A stand-in Slack over https (trusted through SSL_CERT_FILE, as the machine's own CAs are) that gives
    the answers queued in ``answers`` ((status, headers)), then 200; records when each post came."""
    state: dict = {"answers": [], "posts": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            state["posts"].append(time.monotonic())
            status, headers = state["answers"].pop(0) if state["answers"] else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    cert_file, key_file = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["endpoint"] = f"https://127.0.0.1:{server.server_port}"
    state["url"] = "https://hooks.slack.com/services/T0/B0/busy-s3cr3t"
    yield state
    server.shutdown()
    server.server_close()


def test_a_post_slack_asks_to_wait_for_is_sent_again_after_the_wait_and_an_outage_is_given_up_on(busy_slack):
    busy_slack["answers"] = [(429, {"Retry-After": "1"}), (503, {})]
    assert SlackSink(endpoint=busy_slack["endpoint"]).post(busy_slack["url"], {"text": "hi"}) is None
    first, second, third = busy_slack["posts"]
    assert second - first >= 1.0  # Slack's Retry-After is kept
    busy_slack["answers"], busy_slack["posts"] = [(500, {})] * 5, []
    started = time.monotonic()
    problem = SlackSink(endpoint=busy_slack["endpoint"]).post(busy_slack["url"], {"text": "hi"})
    # A few tries within seconds, then the run goes on without the message; the URL is never named.
    assert problem == "Slack answered HTTP 500" and len(busy_slack["posts"]) == 3
    assert time.monotonic() - started < 10


def test_a_slack_that_cannot_be_reached_is_said_in_one_line_without_the_url():
    sink = SlackSink(timeout_s=2, endpoint="https://127.0.0.1:9")
    problem = sink.post("https://hooks.slack.com/services/T0/B0/unreachable-s3cr3t", {"text": "hi"})
    assert problem.startswith("Slack could not be reached (") and "s3cr3t" not in problem


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/x",  # the instance's credentials
        "https://hooks.slack.com:8443/services/T0/B0/x",
        "https://hooks.slack.com.attacker.example/services/T0/B0/x",
        "https://hooks.slack.com@10.0.0.5/services/T0/B0/x",
    ],
)
def test_a_webhook_elsewhere_than_hooks_slack_com_is_refused_at_validation_and_never_posted_to(busy_slack, url):
    """Issue 19 #7: a source's variables point the worker's post anywhere; only Slack's own host on 443."""
    from manager_pipeline.contract import load_variables
    from manager_pipeline.errors import ManagerError

    text = EXAMPLE_VARIABLES.read_text() + f"notifications:\n  slack_webhook: {url}\n"
    with pytest.raises(ManagerError) as refused:
        load_variables(text, ["staging", "production"], "variables.yml")
    message = str(refused.value)
    assert "notifications.slack_webhook: is not a Slack incoming webhook: only https://hooks.slack.com/" in message
    assert url not in message
    # The sink checks again, whatever handed it the URL: nothing reaches any host.
    problem = SlackSink(endpoint=busy_slack["endpoint"]).post(url, {"text": "hi"})
    assert problem.startswith("the Slack webhook is not a Slack incoming webhook") and busy_slack["posts"] == []


def test_a_redirect_from_the_webhook_is_not_followed(busy_slack):
    busy_slack["answers"] = [(302, {"Location": "https://169.254.169.254/latest/meta-data/"})]
    problem = SlackSink(endpoint=busy_slack["endpoint"]).post(busy_slack["url"], {"text": "hi"})
    assert problem == "Slack answered HTTP 302" and len(busy_slack["posts"]) == 1
