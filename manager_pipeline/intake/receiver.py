"""The webhook receiver: check, write to the inbox, answer. Terraform never runs here.

``POST /webhooks/github`` takes GitHub's ``push``, ``pull_request`` and ``ping`` deliveries
signed with ``GITHUB_WEBHOOK_SECRET``; ``GET /healthz`` says it is up. A log line per
delivery names it and what became of it, never the secret or the signature.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from manager_pipeline.config import ManagerConfig, load_config
from manager_pipeline.errors import ManagerError
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.webhooks import MAX_BODY_BYTES, Refused, read_delivery, verify_signature

log = logging.getLogger("manager_pipeline.webhooks")
PATH = "/webhooks/github"


class ConfigWatcher:
    """manager.yaml, read again when it changes, so a new source needs no restart."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._config: ManagerConfig | None = None

    def current(self) -> ManagerConfig:
        stamp = os.stat(self.path).st_mtime
        with self._lock:
            if self._config is None or stamp != self._stamp:
                self._config, self._stamp = load_config(self.path), stamp
            return self._config


class WebhookApp:
    def __init__(self, secret: str, config: ConfigWatcher, inbox: Inbox):
        if not secret:
            raise ManagerError("GITHUB_WEBHOOK_SECRET is not set: the receiver will not accept unsigned deliveries")
        self._secret = secret.encode()
        self.config = config
        self.inbox = inbox

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict]:
        delivery_id = headers.get("X-GitHub-Delivery") or ""
        event = headers.get("X-GitHub-Event") or ""
        try:
            if len(delivery_id) > 100:
                raise Refused(400, "X-GitHub-Delivery is too long")
            verify_signature(self._secret, body, headers.get("X-Hub-Signature-256"))
            if not delivery_id:
                raise Refused(400, "missing X-GitHub-Delivery")
            delivery = read_delivery(self.config.current(), event, delivery_id, body)
        except Refused as refused:
            log.warning(
                "delivery %s (%s) refused %d: %s", delivery_id or "-", event or "-", refused.status, refused.reason
            )
            return refused.status, {"error": refused.reason}
        if event == "ping":
            log.info("delivery %s: ping", delivery_id)
            return 200, {"status": "pong"}
        if delivery is None:
            log.info("delivery %s (%s): nothing to deploy", delivery_id, event)
            return 202, {
                "status": "ignored",
                "reason": "no change under a source's variables folder, or not a deploying action",
            }
        row_id, new = self.inbox.add(delivery)
        if not new:
            log.info("delivery %s (%s): duplicate, already in the inbox", delivery_id, event)
            return 200, {"status": "duplicate"}
        log.info(
            "delivery %s (%s %s): queued as %s for %s",
            delivery_id,
            event,
            delivery.repo,
            row_id,
            ",".join(delivery.sources),
        )
        return 202, {"status": "queued", "inbox_id": row_id, "sources": list(delivery.sources)}


def _handler(app: WebhookApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "manager-pipeline"

        def setup(self) -> None:
            super().setup()
            # Answers are small: send them at once instead of waiting on the peer's delayed ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the access log is ours
            pass

        def _answer(self, status: int, payload: dict, close: bool = False) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/healthz":
                return self._answer(200, {"status": "ok"})
            self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != PATH:
                return self._answer(404, {"error": f"deliveries go to {PATH}"}, close=True)
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                return self._answer(411, {"error": "Content-Length required"}, close=True)
            if length > MAX_BODY_BYTES:
                delivery = self.headers.get("X-GitHub-Delivery") or "-"
                log.warning("delivery %s refused 413: %d bytes is over %d", delivery, length, MAX_BODY_BYTES)
                return self._answer(413, {"error": f"body over {MAX_BODY_BYTES} bytes"}, close=True)
            body = self.rfile.read(length)
            status, payload = app.handle(self.headers, body)
            self._answer(status, payload)

    return Handler


def make_server(app: WebhookApp, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), _handler(app))
    server.daemon_threads = True
    return server
