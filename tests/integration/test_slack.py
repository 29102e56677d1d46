"""The manager posts deploy notifications to a source's Slack webhook, and the URL never leaks."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import EXAMPLE_VARIABLES, commit_all

pytestmark = pytest.mark.integration


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
    hook = f"{slack['url']}/services/T0001/B0001/s3cr3tPath"
    variables = source_repo / "infra" / "variables.yml"
    manager.env["SSL_CERT_FILE"] = str(slack["ca"])

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
