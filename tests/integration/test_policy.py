"""The policy stage with the real engine: checkov 3.3.30 (installed by `manager-pipeline setup`) on the
JSON of real plans, made by the project's Terraform toolchain against the moto stand-in.

Where the engine itself must misbehave (hang, crash) the engine's executable is a small script
instead: the boundary the stage has with checkov is a process, and that is what it replaces.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from manager_pipeline.policy import (
    Checkov,
    CheckovInstallError,
    ChecksFile,
    PlanToScan,
    PolicyEngineError,
    ensure_checkov,
    installed_checkov,
    load_reviewed_skips,
    prestart,
    resolve_policy,
    scan,
    scan_many,
)
from manager_pipeline.policy import server
from manager_pipeline.terraform import TerraformRunner, ensure_toolchain
from manager_pipeline.terraform.workdir import endpoint_override

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SECRET = "hunter2-Sensitive-db-password-7731"
MODULE = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 3.39" }
  }
}
provider "aws" {
  region = "us-east-1"
}
variable "tags" {
  type = map(string)
}
variable "db_password" {
  type      = string
  sensitive = true
}
resource "aws_s3_bucket" "public" {
  bucket = "acme-public-site"
  acl    = "public-read"
  tags   = var.tags
}
resource "aws_ssm_parameter" "db_password" {
  name  = "/app/db-password"
  type  = "SecureString"
  value = var.db_password
  tags  = var.tags
}
"""


@pytest.fixture(scope="module")
def checkov(tools_dir) -> Checkov:
    found = installed_checkov(tools_dir)
    if found is None:
        pytest.skip(f"checkov is not installed in {tools_dir}: `make env` (manager-pipeline setup) installs it")
    return found


def plan_of(folder: Path, endpoint: str, tools_dir: Path, tags: dict[str, str]) -> dict:
    """`terraform show -json` of the module's plan with ``tags``, against the stand-in."""
    folder.mkdir(parents=True)
    (folder / "main.tf").write_text(MODULE)
    (folder / "zz_endpoint_override.tf").write_text(endpoint_override(endpoint))
    (folder / "terraform.tfvars.json").write_text(json.dumps({"tags": tags, "db_password": SECRET}))
    (folder / "backend.hcl").write_text("")
    toolchain = ensure_toolchain(tools_dir)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        **toolchain.env(),
    }
    runner = TerraformRunner(folder, toolchain.terraform, env)
    runner.init(folder / "backend.hcl")
    runner.plan(folder / "plan.tfplan")
    return runner.show_json(folder / "plan.tfplan")


@pytest.fixture(scope="module")
def plans(tmp_path_factory, moto_endpoint, tools_dir) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("policy-plans")
    return {
        "untagged": plan_of(root / "untagged", moto_endpoint, tools_dir, {"team": "web"}),
        "tagged": plan_of(root / "tagged", moto_endpoint, tools_dir, {"team": "web", "cost_center": "cc-42"}),
    }


def ids(findings) -> set[tuple[str, str]]:
    return {(f.check_id, f.resource) for f in findings}


PUBLIC_READ = ("CKV_AWS_20", "aws_s3_bucket.public")
REVIEWED = ChecksFile.model_validate(
    {"skips": [{"check": "CKV_AWS_20", "resources": ["aws_s3_bucket.public"], "reason": "a public website, reviewed"}]}
)
CUSTOM = ChecksFile(enforce=("CKV2_MP_1",), custom_policies="examples/policies")


@pytest.fixture(scope="module")
def verdicts(plans, checkov) -> dict:
    """The verdicts the tests below look at, from two engine calls (one per custom policy folder), as
    the fleet planner scans many plans at once: checkov takes seconds to start on these shared cores."""
    production, reviewed, untagged, tagged = scan_many(
        [
            PlanToScan(plans["untagged"], resolve_policy("production"), "web"),
            PlanToScan(plans["untagged"], resolve_policy("production", REVIEWED), "web"),
            PlanToScan(plans["untagged"], resolve_policy("staging", CUSTOM, root=REPO), "web"),
            PlanToScan(plans["tagged"], resolve_policy("staging", CUSTOM, root=REPO), "web"),
        ],
        checkov=checkov,
    )
    return {"production": production, "reviewed": reviewed, "untagged": untagged, "tagged": tagged}


def test_a_public_bucket_fails_an_enforced_check_in_production(plans, verdicts):
    assert SECRET in json.dumps(plans["untagged"]), "the plan JSON holds the sensitive value in clear"
    result = verdicts["production"]
    assert result.blocked and PUBLIC_READ in ids(result.failures)
    assert result.warnings == () and result.passed > 0
    public = next(f for f in result.failures if (f.check_id, f.resource) == PUBLIC_READ)
    assert "public READ" in public.name and public.guideline.startswith("https://")
    assert result.headline().startswith("policy failed:") and "\n" not in result.headline()
    # Nothing the plan marks sensitive reaches the results, whatever checkov printed around it.
    assert SECRET not in json.dumps([verdict.to_dict() for verdict in verdicts.values()])


def test_the_same_plan_in_a_warning_environment_only_warns(verdicts):
    assert PUBLIC_READ in ids(verdicts["untagged"].warnings) and PUBLIC_READ in ids(verdicts["tagged"].warnings)
    assert not verdicts["tagged"].blocked


def test_a_skip_with_its_reason_is_reported_and_does_not_block(verdicts):
    result = verdicts["reviewed"]
    assert ids(result.skipped) == {PUBLIC_READ} and result.skipped[0].reason == "a public website, reviewed"
    assert ids(result.failures) == ids(verdicts["production"].failures) - {PUBLIC_READ}


def test_a_custom_required_tag_policy_refuses_a_plan_without_the_tag(verdicts):
    untagged, tagged = verdicts["untagged"], verdicts["tagged"]
    assert ids(untagged.failures) == {
        ("CKV2_MP_1", "aws_s3_bucket.public"),
        ("CKV2_MP_1", "aws_ssm_parameter.db_password"),
    }
    assert untagged.blocked and "cost_center" in untagged.failures[0].guideline
    assert not any(f.check_id == "CKV2_MP_1" for f in (*tagged.failures, *tagged.warnings))


def test_a_prestarted_engine_gives_the_same_verdict(plans, checkov, verdicts):
    prestart(checkov)
    warm = scan(plans["untagged"], resolve_policy("production"), checkov=checkov, source="web")
    cold = verdicts["production"]
    assert (warm.failures, warm.warnings, warm.passed) == (cold.failures, cold.warnings, cold.passed)


def test_the_served_engine_gives_the_verdict_of_a_process_of_its_own_and_only_its_owner_reaches_it(
    plans, checkov, verdicts
):
    """The installed checkov is served (imported once, a fork per scan): the same verdict, custom policies
    included, as checkov in a process of its own; the socket is the owner's alone; a server stopped
    between two scans is started again by the next."""
    assert checkov.served
    alone = dataclasses.replace(checkov, served=False)
    custom = resolve_policy("staging", CUSTOM, root=REPO)
    for name, policy in (("production", resolve_policy("production")), ("untagged", custom)):
        own = scan(plans["untagged"], policy, checkov=alone, source="web")
        served = scan(plans["untagged"], policy, checkov=checkov, source="web")
        assert (served.failures, served.warnings, served.passed) == (own.failures, own.warnings, own.passed), name
        assert (served.failures, served.warnings, served.passed) == (
            verdicts[name].failures, verdicts[name].warnings, verdicts[name].passed
        ), name
    path = server.socket_path(checkov)
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    pid = server.stop(checkov)
    assert pid and not path.exists()
    # Gone, not a zombie of whoever started it: the server is nobody's child but init's.
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the stopped server {pid} is still there")
    again = scan(plans["untagged"], resolve_policy("production"), checkov=checkov, source="web")
    assert again.failures == verdicts["production"].failures
    assert server.socket_path(checkov).exists()


def test_an_engine_timeout_fails_with_one_line(plans, checkov):
    started = time.monotonic()
    with pytest.raises(PolicyEngineError) as caught:
        # The served engine scans this small plan in a fraction of a second: a millisecond it cannot.
        scan(plans["untagged"], resolve_policy("staging"), checkov=checkov, timeout_s=0.001)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "did not finish within 0.001 s and was stopped; the plan is not checked" in message and "\n" not in message


def test_the_reviewed_skips_name_only_checks_checkov_has(checkov):
    assert load_reviewed_skips(REPO / "terraform", known=checkov.checks)


def test_setup_is_idempotent(tools_dir, checkov):
    started = time.monotonic()
    assert ensure_checkov(tools_dir) == checkov
    assert time.monotonic() - started < 1


def test_an_install_that_cannot_reach_pypi_fails_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(CheckovInstallError) as caught:
        ensure_checkov(tmp_path / "tools")
    message = str(caught.value)
    assert message.startswith("pip could not install checkov==3.3.30 into ") and "\n" not in message
    assert "run `manager-pipeline setup` again" in message
    assert not (tmp_path / "tools" / "checkov-3.3.30" / ".installed").exists()


# --- the engine's process replaced by a script ----------------------------------------------------

FAKE = """#!{python}
import json, os, stat, sys, time
request = json.loads(sys.stdin.readline())
argv = request["argv"]
files = argv[argv.index("-f") + 1 : argv.index("--framework")]
record = {{
    "pid": os.getpid(),
    "argv": argv,
    "env": sorted(os.environ),
    "files": [
        {{
            "path": name,
            "mode": stat.S_IMODE(os.stat(name).st_mode),
            "folder_mode": stat.S_IMODE(os.stat(os.path.dirname(name)).st_mode),
            "holds_the_secret": {secret!r} in open(name).read(),
            "keys": sorted(json.load(open(name))),
        }}
        for name in files
    ],
}}
with open({record!r}, "w") as handle:
    json.dump(record, handle)
behaviour = {behaviour!r}
if behaviour == "hang":
    time.sleep(600)
if behaviour.startswith("crash"):
    print("Traceback (most recent call last):", file=sys.stderr)
    print("RuntimeError: could not parse value {secret}", file=sys.stderr)
    sys.exit(int(behaviour.split()[1]))
failed = [
    {{"check_id": "CKV_AWS_20", "check_name": "public READ", "resource_address": "aws_s3_bucket.public",
      "file_abs_path": name, "guideline": None}}
    for name in files
]
print(json.dumps({{"check_type": "terraform_plan", "results": {{"failed_checks": failed, "passed_checks": []}}}}))
sys.exit(1)
"""


def fake_engine(folder: Path, behaviour: str, checkov: Checkov) -> tuple[Checkov, Path]:
    """An engine whose process is a script that records what it was given, then ``behaviour``."""
    python = folder / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    record = folder / "record.json"
    python.write_text(FAKE.format(python=sys.executable, secret=SECRET, record=str(record), behaviour=behaviour))
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return Checkov(python=python, version="3.3.30", checks_file=checkov.checks_file), record


def test_the_plan_is_in_a_private_file_only_while_the_engine_reads_it(tmp_path, plans, checkov, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-secret-key-of-the-manager")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_token_of_the_manager")
    engine, record = fake_engine(tmp_path, "report", checkov)
    result = scan(plans["untagged"], resolve_policy("production"), checkov=engine)
    assert ids(result.failures) == {PUBLIC_READ}
    seen = json.loads(record.read_text())
    [file] = seen["files"]
    assert file["holds_the_secret"] and file["mode"] == 0o600 and file["folder_mode"] == 0o700
    # Only what checkov reads: the inputs' values (the sensitive variable), outputs and prior state stay out.
    assert file["keys"] == [
        "configuration",
        "format_version",
        "planned_values",
        "resource_changes",
        "terraform_version",
    ]
    assert not os.path.exists(file["path"]) and not os.path.exists(os.path.dirname(file["path"]))
    assert "AWS_SECRET_ACCESS_KEY" not in seen["env"] and "GITHUB_TOKEN" not in seen["env"]
    assert seen["argv"][-6:] == ["--framework", "terraform_plan", "-o", "json", "--compact", "--skip-download"]


def test_a_hanging_engine_is_stopped_at_the_timeout_and_the_file_removed(tmp_path, plans, checkov):
    engine, record = fake_engine(tmp_path, "hang", checkov)
    started = time.monotonic()
    with pytest.raises(PolicyEngineError, match=r"^policy engine checkov 3.3.30 did not finish within 2 s") as caught:
        scan(plans["untagged"], resolve_policy("production"), checkov=engine, timeout_s=2)
    assert 2 <= time.monotonic() - started < 8 and "\n" not in str(caught.value)
    seen = json.loads(record.read_text())
    assert not os.path.exists(seen["files"][0]["path"])
    with pytest.raises(ProcessLookupError):
        os.kill(seen["pid"], 0)


@pytest.mark.parametrize("code", [2, 1])
def test_a_crashing_engine_fails_with_its_last_line_redacted(tmp_path, plans, checkov, code):
    # 1 is also Python's exit code for an uncaught exception: without a report it is a crash too.
    engine, record = fake_engine(tmp_path, f"crash {code}", checkov)
    with pytest.raises(PolicyEngineError) as caught:
        scan(plans["untagged"], resolve_policy("staging"), checkov=engine)
    message = str(caught.value)
    assert message == f"policy engine checkov 3.3.30 failed (exit code {code}): RuntimeError: could not parse value ***"
    assert not os.path.exists(json.loads(record.read_text())["files"][0]["path"])
