"""Latency of a pull request: from GitHub's webhook to the `pending` status and the plan comment.

Starts what a deployment runs, each in a process group of its own on a free 127.0.0.1 port:
the AWS stand-in (moto), the GitHub stand-in (`python -m tests.github_standin`), the webhook
receiver (`manager-pipeline serve-webhooks`) and `dagster-daemon run`, for a manager whose one
source, `app`, is a repository on the GitHub stand-in (staging only unless --all-environments).

Then, one event at a time (after --warmup events that are not counted), it pushes a new commit
that changes infra/variables.yml to the stand-in, moves pull request #1 to it, POSTs a signed
`pull_request` delivery (`opened` first, `synchronize` after) to the receiver and measures, on
the stand-in's record of requests (same clock):

- POST -> the first `pending` commit status for the commit (whoever posts it: the receiver's
  "queued" announcement or the run's own "Planning ..." status);
- POST -> the run's own `pending` "Planning ..." status (the run has started and read the commit);
- POST -> the plan comment on the pull request (created or edited; the last environment's);

and, from the Dagster instance, where the time went (delivery -> run created by the dispatch
sensor -> taken from the queue and launched -> started -> ended). It then runs bare `terraform init && terraform plan`
of the same module with the same inputs, backend and endpoint (--bare-runs times, fresh
working directory each). Goals (issue "Speed where people wait"): pending <= 2 s; comment <= bare + 3 s.

    .venv/bin/python bench/latency.py [--events 10] [--warmup 1] [--bare-runs 3]
        [--all-environments] [--github-throttle on|off] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from harness import (
    BIN,
    in_workspace,
    REPO,
    Bare,
    Services,
    median,
    start_daemon,
    start_moto,
    start_standin,
    table,
    toolchain,
    wait_for_sensor_tick,
)

from manager_pipeline.defs.instance import open_instance
from manager_pipeline.intake.webhooks import signature_for
from manager_pipeline.aws.standin import free_port
from tests.support import EXAMPLE_VARIABLES, build_manager, pull_request_payload, wait_for_http, wait_until

SECRET = "bench-latency-webhook-secret"
PR = 1


def post_delivery(url: str, event: str, delivery_id: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": signature_for(SECRET.encode(), body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def first(requests: list[dict], since: float, match) -> float | None:
    times = [r["time"] for r in requests if r["time"] >= since and r.get("status", 0) < 300 and match(r)]
    return min(times) if times else None


def body_of(request: dict) -> dict:
    try:
        return json.loads(request["body"]) if request["body"] else {}
    except ValueError:
        return {}


def feedback_times(
    requests: list[dict], name: str, sha: str, since: float, environments: list[str]
) -> dict[str, float | None] | None:
    """When the stand-in received the feedback of commit ``sha``: None until every environment's final
    status and plan comment are there."""
    statuses = f"/repos/{name}/statuses/{sha}"

    def pending(r, planning=None):
        data = body_of(r)
        return (
            r["method"] == "POST"
            and r["path"] == statuses
            and data.get("state") == "pending"
            and (planning is None or ("Planning" in data.get("description", "") and data.get("context") == planning))
        )

    def comment(r, environment):
        return (
            r["method"] in ("POST", "PATCH")
            and f"/repos/{name}/issues/" in r["path"]
            and f"manager-pipeline:plan:app:{environment} " in body_of(r).get("body", "")
        )

    def final(r, environment):
        data = body_of(r)
        return (
            r["method"] == "POST"
            and r["path"] == statuses
            and data.get("context") == f"manager-pipeline/{environment}"
            and data.get("state") != "pending"
        )

    done = [first(requests, since, lambda r, e=e: final(r, e)) for e in environments]
    comments = [first(requests, since, lambda r, e=e: comment(r, e)) for e in environments]
    planning = [first(requests, since, lambda r, e=e: pending(r, f"manager-pipeline/{e}")) for e in environments]
    failed = any(body_of(r).get("state") in ("failure", "error") for r in requests if r["path"] == statuses)
    # The final status is sent first, the plan comment after it (a failed run posts none).
    if None in done or (None in comments and not failed):
        return None
    return {
        "first pending": first(requests, since, pending),
        "run's pending": min((p for p in planning if p is not None), default=None),
        "last run's pending": None if None in planning else max(planning),
        "comment": None if None in comments else max(comments),
        "final status": max(done),
    }


def run_stages(instance, delivery_id: str) -> dict[str, float] | None:
    """None until the delivery's runs have ended; then when the last was created, taken from the queue
    and launched (RUN_STARTING), started executing in its own process (RUN_START) and ended (epoch s)."""
    from dagster import DagsterEventType, RunsFilter

    records = instance.get_run_records(RunsFilter(tags={".dagster/manager/delivery": delivery_id}))
    if not records:
        return None
    stages: dict[str, float] = {}
    for record in records:
        moments = {"created": record.create_timestamp.timestamp(), "ended": record.end_time or float("nan")}
        for name, kind in (("launched", DagsterEventType.RUN_STARTING), ("started", DagsterEventType.RUN_START)):
            logs = instance.all_logs(record.dagster_run.run_id, of_type=kind)
            moments[name] = logs[0].timestamp if logs else float("nan")
        for name, moment in moments.items():
            stages[name] = max(stages.get(name, moment), moment)
    return stages if stages["ended"] == stages["ended"] else None  # NaN until every run has ended


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10, help="events measured (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=1, help="events sent first and not counted")
    parser.add_argument("--bare-runs", type=int, default=3, help="bare terraform init && plan runs (median)")
    parser.add_argument("--all-environments", action="store_true", help="the source plans staging and production")
    parser.add_argument(
        "--github-throttle",
        choices=("on", "off"),
        default="on",
        help="the client's pacing of GitHub requests (on, as against github.com: 1 s between writes)",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for one event's feedback")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) and print it")
    args = parser.parse_args()

    in_workspace("mp-latency-", args.keep, lambda work, services: measure(args, work, services))


def measure(args: argparse.Namespace, work: Path, services: Services) -> None:
    tools_dir, tools = toolchain()
    endpoint = start_moto(services)
    standin = start_standin(services)
    name = f"acme/bench-{uuid.uuid4().hex[:8]}"
    token = f"ghp_{uuid.uuid4().hex}"
    variables = EXAMPLE_VARIABLES.read_text()
    base = hashlib.sha1(f"{name}-base".encode()).hexdigest()
    standin.token(token)
    standin.repo(name, commits={base: {"infra/variables.yml": variables}}, branches={"main": base})

    environments = ["staging", "production"] if args.all_environments else ["staging"]
    manager = build_manager(work / "manager", endpoint, tools_dir, {})
    manager.write_config(
        f"sources:\n  - name: app\n    repo: {name}\n    environments: [{', '.join(environments)}]\n"
        "environments:\n  staging: {auto_apply: true, apply_branches: [main]}\n"
        "  production: {auto_apply: false, apply_branches: [main]}\n"
        f"terraform_dir: {REPO / 'terraform'}\n"
    )
    manager.env |= {
        "GITHUB_API_URL": standin.url,
        "GITHUB_TOKEN": token,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GITHUB_TIMEOUT": "5",
        "GITHUB_THROTTLE": args.github_throttle,
    }
    instance = open_instance(manager.settings())

    port = free_port()
    receiver = services.start(
        "receiver",
        [str(BIN / "manager-pipeline"), "serve-webhooks", "--port", str(port)],
        cwd=manager.root,
        env=manager.env,
    )
    wait_for_http(f"http://127.0.0.1:{port}/healthz", receiver, services.log("receiver"))
    started = time.monotonic()
    start_daemon(services, manager)
    wait_for_sensor_tick(manager, "dispatch_webhooks", 180, services.log("dagster-daemon"))
    print(f"services up; daemon's first dispatch tick {time.monotonic() - started:.1f} s after its start")

    url = f"http://127.0.0.1:{port}/webhooks/github"
    rows = []
    for index in range(args.warmup + args.events):
        sha = hashlib.sha1(f"{name}-{index}".encode()).hexdigest()
        changed = variables.replace("CostCenter: engineering", f"CostCenter: bench{index}")
        standin.update(name, commits={sha: {"infra/variables.yml": changed}}, pulls=[{"number": PR, "head_sha": sha}])
        delivery_id = f"bench-{index}-{uuid.uuid4().hex[:8]}"
        body = pull_request_payload(repo=name, number=PR, action="opened" if index == 0 else "synchronize", sha=sha)
        posted = time.time()
        status, answer = post_delivery(url, "pull_request", delivery_id, body)
        assert status == 202 and answer.get("status") == "queued", (status, answer)

        seen = wait_until(
            lambda sha=sha, posted=posted: feedback_times(standin.requests(), name, sha, posted, environments),
            args.timeout,
            f"the feedback of event {index + 1}",
            services.log("dagster-daemon"),
            interval=0.1,
        )
        stages = wait_until(lambda delivery=delivery_id: run_stages(instance, delivery), 60, "the runs' end")
        row = {key: (value - posted if value is not None else float("nan")) for key, value in seen.items()}
        row |= {
            "POST -> run created": stages["created"] - posted,
            "created -> dequeued, launching": stages["launched"] - stages["created"],
            "launching -> started": stages["started"] - stages["launched"],
            "started -> run's pending": (seen["last run's pending"] or stages["started"]) - stages["started"],
            "run's pending -> comment": (seen["comment"] or 0) - (seen["last run's pending"] or 0),
            "comment -> run ended": stages["ended"] - (seen["comment"] or stages["ended"]),
        }
        counted = index >= args.warmup
        print(
            f"event {index + 1}{'' if counted else ' (warm-up)'}: pending {row['first pending']:.1f} s, "
            f"comment {row['comment']:.1f} s"
        )
        if counted:
            rows.append(row)

    bare = Bare(tools, REPO / "terraform", endpoint, manager.bucket, work)
    bare.once("app", "staging", variables)  # warm-up
    bare_s = median(bare.once("app", "staging", variables) for _ in range(args.bare_runs))

    def cell(key: str) -> tuple[str, ...]:
        values = [row[key] for row in rows]
        return (f"{median(values):.2f}", f"{min(values):.2f}", f"{max(values):.2f}")

    pending_s, comment_s = median(r["first pending"] for r in rows), median(r["comment"] for r in rows)
    print(
        f"\n{args.events} pull_request events, environments {','.join(environments)}, "
        f"GITHUB_THROTTLE={args.github_throttle}; seconds after the POST:"
    )
    print(
        table(
            [
                ("figure", "median s", "min s", "max s", "goal"),
                ("POST -> first pending status", *cell("first pending"), "<= 2 s"),
                ("POST -> run's own pending (Planning)", *cell("run's pending"), ""),
                ("POST -> plan comment", *cell("comment"), f"<= {bare_s + 3:.2f} s"),
                ("POST -> final status", *cell("final status"), ""),
                (f"bare terraform init && plan (x{args.bare_runs})", f"{bare_s:.2f}", "", "", ""),
                ("comment - bare", f"{comment_s - bare_s:.2f}", "", "", "<= 3 s"),
                ("comment / bare", f"{comment_s / bare_s:.2f}x", "", "", ""),
                ("pending (absolute)", f"{pending_s:.2f}", "", "", "<= 2 s"),
            ]
        )
    )
    print("\nwhere the time went (last run of each event):")
    stages = [
        "POST -> run created",
        "created -> dequeued, launching",
        "launching -> started",
        "started -> run's pending",
        "run's pending -> comment",
        "comment -> run ended",
    ]
    print(table([("stage", "median s", "min s", "max s"), *[(stage, *cell(stage)) for stage in stages]]))


if __name__ == "__main__":
    main()
