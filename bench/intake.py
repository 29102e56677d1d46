"""Intake speed: deliveries per second the receiver accepts, and one dispatch tick's time.

1. Starts `manager-pipeline serve-webhooks` and sends signed push deliveries (distinct ids,
   each touching a source's infra/) from several keep-alive connections; every answer must
   be 202. Prints deliveries per second (signature checked, written to the SQLite inbox).
2. Fills an inbox with 10,000 deliveries over 1,000 sources (pushes and pull requests) and
   times one evaluation of the dispatch sensor that turns them into run requests.

    .venv/bin/python bench/intake.py [--deliveries 4000] [--connections 8]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dagster import DagsterInstance, build_sensor_context  # noqa: E402

from manager_pipeline.config.file import load_config  # noqa: E402
from manager_pipeline.defs.resources import GitHubResource, InboxResource, ManagerConfigResource  # noqa: E402
from manager_pipeline.defs.intake import dispatch_sensor  # noqa: E402
from manager_pipeline.intake.inbox import Inbox  # noqa: E402
from manager_pipeline.intake.webhooks import read_delivery  # noqa: E402
from manager_pipeline.aws.standin import free_port  # noqa: E402

SECRET = b"bench-secret"


def push_body(repo: str, index: int) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "after": hashlib.sha1(f"{repo}{index}".encode()).hexdigest(),
            "repository": {"full_name": repo},
            "pusher": {"name": "bench"},
            "commits": [{"id": str(index), "added": [], "removed": [], "modified": ["infra/variables.yml"]}],
        }
    ).encode()


def pr_body(repo: str, index: int) -> bytes:
    return json.dumps(
        {
            "action": "synchronize",
            "number": index % 7 + 1,
            "repository": {"full_name": repo},
            "pull_request": {"number": index % 7 + 1, "head": {"sha": f"{index:040x}", "ref": "feature"}},
        }
    ).encode()


def receiver_rate(work: Path, deliveries: int, connections: int) -> float:
    port = free_port()
    env = dict(
        os.environ,
        MANAGER_CONFIG=str(work / "manager.yaml"),
        MANAGER_HOME=str(work / ".manager"),
        DAGSTER_HOME=str(work / ".manager" / "dagster"),
        GITHUB_WEBHOOK_SECRET=SECRET.decode(),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "manager_pipeline.cli", "serve-webhooks", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(200):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
        bodies = [push_body(f"acme/svc-{i % 1000:04d}", i) for i in range(deliveries)]
        signed = [(b, "sha256=" + hmac.new(SECRET, b, hashlib.sha256).hexdigest()) for b in bodies]
        failures: list[int] = []

        def send(offset: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for index in range(offset, deliveries, connections):
                body, signature = signed[index]
                connection.request(
                    "POST",
                    "/webhooks/github",
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-GitHub-Event": "push",
                        "X-GitHub-Delivery": f"bench-{index}",
                        "X-Hub-Signature-256": signature,
                    },
                )
                response = connection.getresponse()
                response.read()
                if response.status != 202:
                    failures.append(response.status)
            connection.close()

        threads = [threading.Thread(target=send, args=(offset,)) for offset in range(connections)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        assert not failures, f"{len(failures)} deliveries not accepted: {set(failures)}"
        return deliveries / elapsed
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def dispatch_tick(work: Path, events: int) -> tuple[float, int]:
    config = load_config(work / "manager.yaml")
    url = f"sqlite:///{work / 'dispatch.db'}"
    inbox = Inbox(url)
    for index in range(events):
        repo = f"acme/svc-{index % 1000:04d}"
        event, body = ("pull_request", pr_body(repo, index)) if index % 5 == 0 else ("push", push_body(repo, index))
        inbox.add(read_delivery(config, event, f"tick-{index}", body))
    (work / "dagster-tick").mkdir()
    instance = DagsterInstance.from_config(str(work / "dagster-tick"))
    resources = {
        "manager": ManagerConfigResource(config_path=str(work / "manager.yaml")),
        "inbox": InboxResource(database_url=url),
        "github": GitHubResource(),
    }
    sensor = dispatch_sensor()
    started = time.perf_counter()
    with build_sensor_context(instance=instance, resources=resources) as context:
        result = sensor(context)
    return time.perf_counter() - started, len(result.run_requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mp-intake-"))
    sources = "".join(f"  - {{name: svc-{i:04d}, repo: acme/svc-{i:04d}}}\n" for i in range(1000))
    (work / "manager.yaml").write_text("sources:\n" + sources)
    try:
        rate = receiver_rate(work, args.deliveries, args.connections)
        print(
            f"receiver: {rate:.0f} deliveries/s accepted ({args.deliveries} signed deliveries, "
            f"{args.connections} connections, SQLite inbox)"
        )
        seconds, runs = dispatch_tick(work, args.events)
        print(
            f"dispatch tick: {seconds:.2f} s for {args.events} pending deliveries over 1000 sources "
            f"-> {runs} run requests"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
