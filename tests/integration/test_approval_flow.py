"""Gated applies end to end: plans waiting, approvals given and refused, the approval sensor, apply integrity."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from github import Auth, Github

from manager_pipeline.defs.instance import open_instance
from manager_pipeline.events import AUTHOR_TAG
from manager_pipeline.plans import Plans, PlanState
from tests.support import (
    BIN,
    EXAMPLE_VARIABLES,
    LIGHT_MODULE,
    REPO,
    approval_requests,
    approve_as,
    commit_all,
    github_time,
    run_partition,
)

pytestmark = pytest.mark.integration


def gated_config(sources: str, approvers: str, required: int = 1, module: Path = LIGHT_MODULE) -> str:
    # What is decided around the plan is under test here, not what the module builds: the light module,
    # but where a real apply's length and its provider processes are (`gated_real`).
    return (
        f"sources:\n{sources}"
        "environments:\n"
        "  staging: {auto_apply: true}\n"
        f"  production: {{auto_apply: false, required_approvals: {required}, approvers: {approvers}}}\n"
        f"terraform_dir: {module}\n"
    )


@pytest.fixture
def gated(manager, source_repo, github_standin):
    manager.write_config(gated_config(f"  - name: app\n    path: {source_repo}\n", "[alice, bob, carol]"))
    manager.github = github_standin  # vouches for the approvers' own tokens
    return manager


@pytest.fixture
def gated_real(manager, source_repo, github_standin):
    """``gated`` on terraform/: an apply that creates a VPC for seconds, with the AWS provider's processes."""
    manager.write_config(
        gated_config(f"  - name: app\n    path: {source_repo}\n", "[alice, bob, carol]", module=REPO / "terraform")
    )
    manager.github = github_standin
    return manager


def records_of(manager) -> Plans:
    settings = manager.settings()
    return Plans(settings.database_url, settings.plans_dir)


def plan_production(manager, **event) -> str:
    # The change's author is known (a pull request or push carries it), so self-approval can be checked.
    event.setdefault("author", "dev")
    result = run_partition(manager, "app", "production", **event)
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    return result.output_for_node("plan").plan_id


def audit_messages(manager, run_id: str) -> list[str]:
    instance = open_instance(manager.settings())
    return [entry.message for entry in instance.all_logs(run_id) if "approval of plan" in (entry.message or "")]


def test_an_unapproved_plan_stays_unapplied_and_refusals_are_recorded(gated):
    planned = gated.cli("run", "--source", "app", "--env", "production", "--author", "alice")
    assert planned.returncode == 0, planned.stderr
    plan_id = re.search(r"awaiting approval: plan (\w+)", planned.stdout).group(1)
    for _ in range(5):
        assert approval_requests(gated) == []
    assert records_of(gated).find(plan_id).state is PlanState.AWAITING

    refused = approve_as(gated, "mallory", plan_id, "--reason", "lgtm")
    assert refused.returncode == 1 and "mallory is not an approver of production" in refused.stderr
    selfish = approve_as(gated, "alice", plan_id, "--reason", "my own change")
    assert selfish.returncode == 1 and "alice is the author of the change" in selfish.stderr
    unapproved = gated.cli("apply", plan_id)
    assert unapproved.returncode == 1 and "has 0 of 1 required approval(s)" in unapproved.stderr

    record = records_of(gated).find(plan_id)
    assert record.state is PlanState.AWAITING
    decisions = [(a.login, a.accepted, a.via) for a in records_of(gated).approvals(plan_id)]
    assert decisions == [("mallory", False, "console"), ("alice", False, "console")]
    messages = audit_messages(gated, record.run_id)
    assert any("by mallory (console): refused" in m for m in messages)
    assert any("by alice (console): refused" in m and "author of the change" in m for m in messages)
    listed = gated.cli("plans")
    assert plan_id in listed.stdout and "mallory (refused)" in listed.stdout


def test_a_console_approver_is_who_runs_the_command_not_who_the_environment_claims(gated):
    """Issue 10 #9: USER and LOGNAME name nobody; only the kernel's uid or a token GitHub vouches for do."""
    import pwd

    plan_id = plan_production(gated)
    claimed = subprocess.run(
        [str(BIN / "manager-pipeline"), "approve", plan_id, "--reason", "lgtm"],
        cwd=gated.root,
        env=dict(gated.env, USER="bob", LOGNAME="bob"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    myself = pwd.getpwuid(os.geteuid()).pw_name
    assert f"approving as `{myself}` (the operating-system user" in claimed.stdout
    assert claimed.returncode == 1 and f"{myself} is not an approver of production" in claimed.stderr
    forged = subprocess.run(
        [str(BIN / "manager-pipeline"), "approve", plan_id, "--reason", "trust me"],
        cwd=gated.root,
        env=dict(gated.env, MANAGER_APPROVER_TOKEN="ghp_not_a_token", GITHUB_API_URL=gated.github.url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert forged.returncode == 2 and "MANAGER_APPROVER_TOKEN was not accepted by GitHub" in forged.stderr
    assert "ghp_not_a_token" not in forged.stdout + forged.stderr
    assert [a.login for a in records_of(gated).approvals(plan_id)] == [myself]
    assert records_of(gated).find(plan_id).state is PlanState.AWAITING


def test_a_pull_request_plan_is_never_applied(gated):
    plan_id = plan_production(gated, pr=5)
    assert approve_as(gated, "bob", plan_id, "--reason", "ok").returncode == 1
    refused = gated.cli("apply", plan_id)
    assert refused.returncode == 1 and "is a preview" in refused.stderr


def test_two_approvals_and_many_ticks_apply_once(gated, source_repo):
    gated.write_config(gated_config(f"  - name: app\n    path: {source_repo}\n", "[alice, bob, carol]", required=2))
    plan_id = plan_production(gated, author="alice")
    first = approve_as(gated, "bob", plan_id, "--reason", "checked the VPC")
    assert first.returncode == 0 and "1 of 2" in first.stdout
    assert approval_requests(gated) == []
    assert approve_as(gated, "carol", plan_id, "--reason", "ok").returncode == 0
    # Each tick asks again for an approved plan's apply until it starts (a tick that crashed after
    # approving must not strand it); the one run key makes Dagster launch it once.
    requests = [request for _ in range(4) for request in approval_requests(gated)]
    assert {(r.run_key, r.tags[".dagster/manager/plan-id"], r.partition_key) for r in requests} == {
        (f"apply:{plan_id}", plan_id, "production|app")
    }
    assert records_of(gated).find(plan_id).state == "approved"
    messages = audit_messages(gated, records_of(gated).find(plan_id).run_id)
    assert sum("accepted" in m for m in messages) == 2


def test_a_new_commit_after_approval_means_the_old_plan_is_never_applied(gated, source_repo):
    old = plan_production(gated)
    assert approve_as(gated, "bob", old, "--reason", "fine").returncode == 0
    variables = source_repo / "infra" / "variables.yml"
    variables.write_text(variables.read_text().replace("CostCenter: engineering", "CostCenter: research"))
    commit_all(source_repo, "retag")
    new = plan_production(gated)
    assert records_of(gated).find(old).state == "superseded"
    for _ in range(3):
        assert approval_requests(gated) == []
    refused = gated.cli("apply", old)
    assert refused.returncode == 1
    assert f"plan {new} is newer for app/production; approvals do not carry over" in refused.stderr
    assert "the source's variables changed since plan" in refused.stderr


# A bound on a loaded two-core machine, not a measure (bench/ measures speed).
@pytest.mark.timeout(1500)
def test_tampered_plans_are_refused_and_s3_artifacts_apply_anywhere(gated, monkeypatch):
    bucket = f"plans-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("PLAN_ARTIFACT_BUCKET", bucket)
    gated.env["PLAN_ARTIFACT_BUCKET"] = bucket
    tampered = plan_production(gated)
    keys = {o["Key"] for o in gated.s3().list_objects_v2(Bucket=bucket)["Contents"]}
    assert {f"plans/{tampered}/plan.tfplan", f"plans/{tampered}/plan.txt"} <= keys
    assert approve_as(gated, "bob", tampered, "--reason", "ok").returncode == 0
    with open(gated.dagster_home / "plans" / tampered / "plan.tfplan", "ab") as plan_file:
        plan_file.write(b"\0tampered")
    refused = gated.cli("apply", tampered)
    assert refused.returncode == 1 and "is not the one that was planned (sha256 differs)" in refused.stderr
    assert records_of(gated).find(tampered).state == "refused"

    clean = plan_production(gated)
    assert approve_as(gated, "carol", clean, "--reason", "ok").returncode == 0
    # Another machine: nothing of the plan on local disk, only in the bucket.
    shutil.rmtree(gated.dagster_home / "plans")
    applied = gated.cli("apply", clean)
    assert applied.returncode == 0, applied.stderr
    assert "finished: applied" in applied.stdout and "project = demo-app" in applied.stdout
    assert records_of(gated).find(clean).state == "applied"
    again = gated.cli("apply", clean)
    assert again.returncode == 1 and "was applied already" in again.stderr
    assert records_of(gated).find(clean).state == "applied"


@pytest.fixture
def github_gated(manager, github_standin, monkeypatch):
    name = f"acme/shop-{uuid.uuid4().hex[:8]}"
    head = hashlib.sha1(name.encode()).hexdigest()
    tokens = {login: f"ghp_{login}_{uuid.uuid4().hex[:8]}" for login in ("manager", "carol", "dave")}
    for login, token in tokens.items():
        github_standin.token(token, login)
    github_standin.team("acme", "platform-team", ["carol"])
    github_standin.repo(
        name,
        commits={head: {"infra/variables.yml": EXAMPLE_VARIABLES.read_text()}},
        branches={"main": head},
        commit_authors={head: "erin"},
    )
    manager.write_config(gated_config(f"  - name: app\n    repo: {name}\n", "[acme/platform-team, zoe]"))
    for key, value in {
        "GITHUB_API_URL": github_standin.url,
        "GITHUB_TOKEN": tokens["manager"],
        "GITHUB_THROTTLE": "off",
        "GITHUB_TIMEOUT": "3",
    }.items():
        monkeypatch.setenv(key, value)
    return {"name": name, "head": head, "tokens": tokens}


def test_an_author_named_by_a_launchpad_run_is_not_believed(manager, github_standin, github_gated):
    """Issue 19 #4: zoe wrote the change and approves production. Launched from the launchpad with an author tag
    that names someone else, her own review would count; the tag is not the manager's word, so it names nobody."""
    name, head = github_gated["name"], github_gated["head"]
    github_standin.update(name, commit_authors={head: "zoe"})
    result = run_partition(manager, "app", "production", sha=head, branch="main", extra_tags={AUTHOR_TAG: "someone-else"})
    assert result.success, [e.message for e in result.all_events if e.is_step_failure]
    plan_id = result.output_for_node("plan").plan_id
    assert records_of(manager).get(plan_id).author is None
    said = [entry.user_message for entry in open_instance(manager.settings()).all_logs(result.run_id)]
    assert any("'someone-else', but no sensor or command of this manager set it" in line for line in said), said
    review = {"id": 9, "user": {"login": "zoe"}, "state": "APPROVED", "body": "ship it", "commit_id": head}
    github_standin.update(name, pulls=[{"number": 8, "head_sha": head}], reviews={"8": [review | {"submitted_at": github_time()}]})
    # The approval asks GitHub who wrote the commit planned: zoe, whose own review is refused.
    assert approval_requests(manager) == []
    [refused] = records_of(manager).approvals(plan_id)
    assert (refused.login, refused.accepted) == ("zoe", False) and "zoe is the author of the change" in refused.reason


def test_a_team_member_approves_by_comment_and_a_stranger_is_refused(manager, github_standin, github_gated):
    plan_id = plan_production(manager, sha=github_gated["head"], branch="main")
    assert approval_requests(manager) == []

    def as_user(login):
        return Github(base_url=github_standin.url, auth=Auth.Token(github_gated["tokens"][login]), lazy=True)

    as_user("dave").get_repo(github_gated["name"]).get_commit(github_gated["head"]).create_comment(
        "/approve production looks good to me"
    )
    assert approval_requests(manager) == []
    as_user("carol").get_repo(github_gated["name"]).get_commit(github_gated["head"]).create_comment(
        "/approve production reviewed with the DBA"
    )
    requests = approval_requests(manager)
    assert [r.run_key for r in requests] == [f"apply:{plan_id}"]
    decisions = {(a.login, a.accepted, a.via) for a in records_of(manager).approvals(plan_id)}
    assert decisions == {("dave", False, "commit-comment"), ("carol", True, "commit-comment")}
    messages = audit_messages(manager, records_of(manager).find(plan_id).run_id)
    assert any("by carol (commit-comment): accepted: reviewed with the DBA" in m for m in messages)
    assert any("by dave (commit-comment): refused" in m for m in messages)


def _providers_started_with(tmpdir: Path) -> list[int]:
    """Live aws provider processes of this test's runs (marked by their TMPDIR), not the machine's."""
    found = []
    for line in subprocess.run(["pgrep", "-f", "terraform-provider-aws"], capture_output=True, text=True).stdout.split():
        try:
            environ = Path(f"/proc/{line}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"TMPDIR={tmpdir}".encode() in environ:
            found.append(int(line))
    return found


LOCK_KEY = "app/staging/terraform.tfstate.tflock"


def apply_holding_the_lock(gated, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`manager-pipeline run` of staging, returned once its apply holds the state lock; and its plan id."""
    process = subprocess.Popen(
        [str(BIN / "manager-pipeline"), "run", "--source", "app", "--env", "staging"],
        cwd=gated.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    plan_id = None
    for line in process.stdout:
        found = re.search(r"\(plan (\w+)\)", line)
        plan_id = found.group(1) if found else plan_id
        if line.startswith("[gate"):
            break
    deadline = time.monotonic() + 60
    while not gated.s3().list_objects_v2(Bucket=gated.bucket, Prefix=LOCK_KEY).get("KeyCount"):
        assert time.monotonic() < deadline and process.poll() is None, "the apply never took the state lock"
        time.sleep(0.1)
    return process, plan_id


def test_a_killed_apply_leaves_a_lock_that_the_next_run_reports(gated_real, tmp_path):
    gated = gated_real
    marker = tmp_path / "tmp"
    marker.mkdir()
    env = dict(gated.env, MANAGER_LOCK_TIMEOUT="1s", TMPDIR=str(marker))
    # Kill it while terraform apply holds the state lock (it creates the VPC for seconds).
    process, plan_id = apply_holding_the_lock(gated, env)
    # Held there (stopped, not ended) while another run looks: the apply cannot finish first, however slow
    # the machine.
    os.killpg(process.pid, signal.SIGSTOP)
    # While the apply's process lives, nobody is told to unlock: they are told to wait for it.
    waiting = subprocess.run(
        [str(BIN / "manager-pipeline"), "run", "--source", "app", "--env", "staging", "--plan-only"],
        cwd=gated.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "is still going and holds it" in waiting.stderr, waiting.stderr
    assert "manager-pipeline unlock" not in waiting.stderr
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)

    # Not applied twice: the killed run's plan is never taken again, by hand or by a tick.
    gated.env = env
    again = gated.cli("apply", plan_id)
    assert again.returncode == 1 and f"plan {plan_id} is being applied by run" in again.stderr, again.stderr
    assert approval_requests(gated) == []
    # State intact: whatever Terraform had written before the kill is a whole state document.
    try:
        state = json.loads(gated.s3().get_object(Bucket=gated.bucket, Key="app/staging/terraform.tfstate")["Body"].read())
    except gated.s3().exceptions.NoSuchKey:
        state = None
    assert state is None or (state["lineage"] and isinstance(state["resources"], list))
    blocked = gated.cli("run", "--source", "app", "--env", "staging", "--plan-only")
    assert blocked.returncode == 1
    assert "the state is locked by another run (ID " in blocked.stderr
    command = re.search(r"manager-pipeline unlock app staging (\S+)", blocked.stderr)
    assert command, blocked.stderr
    released = gated.cli("unlock", "app", "staging", command.group(1))
    assert released.returncode == 0, released.stderr
    assert gated.cli("run", "--source", "app", "--env", "staging", "--plan-only").returncode == 0
    assert _providers_started_with(marker) == []


def test_a_run_stopped_during_apply_stops_terraform_cleanly_and_never_leaves_the_plan_applying(gated_real, tmp_path):
    gated = gated_real
    marker = tmp_path / "tmp"
    marker.mkdir()
    env = dict(gated.env, TMPDIR=str(marker))
    process, plan_id = apply_holding_the_lock(gated, env)
    lock = LOCK_KEY
    process.send_signal(signal.SIGTERM)  # the run process only, as a supervisor stops it
    rest = process.stdout.read()
    assert process.wait(timeout=120) != 0
    assert "failed at apply: the run was stopped (interrupted) during this stage" in rest, rest
    # Terraform was told and waited for: its lock is gone, its providers too, the plan says what happened.
    assert not gated.s3().list_objects_v2(Bucket=gated.bucket, Prefix=lock).get("KeyCount")
    assert _providers_started_with(marker) == []
    assert records_of(gated).find(plan_id).state == "failed"
    gated.env = env
    again = gated.cli("run", "--source", "app", "--env", "staging")
    assert again.returncode == 0, again.stderr


def test_a_stale_saved_plan_needs_a_re_plan(tmp_path, tools_dir):
    from manager_pipeline.errors import TerraformError
    from manager_pipeline.terraform import TerraformRunner, ensure_toolchain

    toolchain = ensure_toolchain(tools_dir)
    (tmp_path / "main.tf").write_text(
        'variable "n" {\n  type = number\n}\nresource "terraform_data" "x" {\n  input = var.n\n}\n'
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)} | toolchain.env()
    runner = TerraformRunner(tmp_path, toolchain.terraform, env)
    subprocess.run(
        [str(toolchain.terraform), "init", "-input=false"], cwd=tmp_path, env=env, check=True, capture_output=True
    )
    (tmp_path / "a.auto.tfvars.json").write_text(json.dumps({"n": 1}))
    runner.plan(tmp_path / "first.tfplan")
    (tmp_path / "a.auto.tfvars.json").write_text(json.dumps({"n": 2}))
    runner.plan(tmp_path / "second.tfplan")
    runner.apply(tmp_path / "second.tfplan")
    with pytest.raises(TerraformError, match="the saved plan is stale .*; re-plan required"):
        runner.apply(tmp_path / "first.tfplan")


def test_a_review_of_the_plans_own_commit_approves_it(manager, github_standin, github_gated):
    plan_id = plan_production(manager, sha=github_gated["head"], branch="main", author=None)  # GitHub names the author
    review = {"user": {"login": "zoe"}, "state": "APPROVED", "body": "ship it", "submitted_at": github_time()}
    github_standin.update(
        github_gated["name"],
        pulls=[{"number": 7, "head_sha": github_gated["head"]}],
        reviews={
            "7": [
                review | {"id": 1, "commit_id": "0" * 40},
                review | {"id": 2, "user": {"login": "erin"}, "commit_id": github_gated["head"]},
            ]
        },
    )
    # A review of another commit counts for nothing; the author's own review is refused.
    assert approval_requests(manager) == []
    github_standin.update(github_gated["name"], reviews={"7": [review | {"id": 3, "commit_id": github_gated["head"]}]})
    assert [r.run_key for r in approval_requests(manager)] == [f"apply:{plan_id}"]
    decisions = [(a.login, a.accepted, a.via) for a in records_of(manager).approvals(plan_id)]
    assert decisions == [("erin", False, "review"), ("zoe", True, "review")]
    assert "erin is the author of the change" in records_of(manager).approvals(plan_id)[0].reason
