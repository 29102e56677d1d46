"""The command lines the runner gives Terraform, seen from the command it runs (a recording stand-in)."""

import json
import os
import stat

import pytest

from manager_pipeline.errors import TerraformError
from manager_pipeline.terraform import TerraformRunner

RECORDER = """#!/usr/bin/env python3
import json, os, sys
record = {"argv": sys.argv[1:], "env": dict(os.environ), "stdin_is_tty_or_open": not sys.stdin.closed}
try:
    record["stdin"] = sys.stdin.read()
except Exception:
    record["stdin"] = None
with open(os.path.join(os.getcwd(), "calls.jsonl"), "a") as f:
    f.write(json.dumps(record) + "\\n")
if sys.argv[1] == "plan":
    print("Plan: 1 to add")
    sys.exit(int(os.environ.get("FAKE_PLAN_RC", "2")))
if sys.argv[1] == "output":
    print(json.dumps({"id": {"value": "x", "sensitive": False}}))
if sys.argv[1] == "apply" and os.environ.get("FAKE_LOCKED"):
    print("Error: Error acquiring the state lock", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def fake_terraform(tmp_path):
    exe = tmp_path / "terraform"
    exe.write_text(RECORDER)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def calls(workdir):
    return [json.loads(line) for line in (workdir / "calls.jsonl").read_text().splitlines()]


def test_commands_carry_no_var_files_a_closed_stdin_and_only_the_given_environment(tmp_path, fake_terraform):
    lines = []
    runner = TerraformRunner(tmp_path, fake_terraform, {"PATH": "/usr/bin:/bin", "TF_IN_AUTOMATION": "1"}, lines.append)
    runner.init(tmp_path / "backend.hcl")
    has_changes, result = runner.plan(tmp_path / "plan.tfplan")
    runner.apply(tmp_path / "plan.tfplan")
    assert runner.outputs() == {"id": {"value": "x", "sensitive": False}}
    recorded = calls(tmp_path)
    init, plan, apply, output = (c["argv"] for c in recorded)
    assert f"-backend-config={tmp_path / 'backend.hcl'}" in init and "-input=false" in init
    assert plan[0] == "plan" and "-detailed-exitcode" in plan and f"-out={tmp_path / 'plan.tfplan'}" in plan
    assert apply[0] == "apply" and apply[-1] == str(tmp_path / "plan.tfplan")
    assert not any(arg.startswith(("-var-file", "-var=")) for c in recorded for arg in c["argv"])
    assert all(c["stdin"] == "" for c in recorded)
    assert all(set(c["env"]) <= {"PATH", "TF_IN_AUTOMATION", "PWD", "SHLVL", "_", "LC_CTYPE"} for c in recorded)
    assert has_changes and "Plan: 1 to add" in result.stdout and "Plan: 1 to add" in lines


def test_plan_without_changes_and_failures(tmp_path, fake_terraform):
    runner = TerraformRunner(tmp_path, fake_terraform, {"PATH": "/usr/bin:/bin", "FAKE_PLAN_RC": "0"})
    assert runner.plan(tmp_path / "p")[0] is False
    failing = TerraformRunner(tmp_path, fake_terraform, {"PATH": "/usr/bin:/bin", "FAKE_PLAN_RC": "1"})
    with pytest.raises(TerraformError, match="terraform plan failed"):
        failing.plan(tmp_path / "p")
    locked = TerraformRunner(tmp_path, fake_terraform, {"PATH": "/usr/bin:/bin", "FAKE_LOCKED": "1"})
    with pytest.raises(TerraformError, match="the state is locked by another run"):
        locked.apply(tmp_path / "p")


def test_parallel_inits_on_a_new_toolchain_all_install_the_provider(tmp_path):
    """Backfills init many partitions at once: none may fail on the shared plugin cache."""
    from concurrent.futures import ThreadPoolExecutor

    from manager_pipeline.terraform import ensure_toolchain

    toolchain = ensure_toolchain(tmp_path / "tools")
    module = (
        'terraform {\n  backend "local" {}\n  required_providers {\n'
        '    aws = { source = "hashicorp/aws", version = "3.39.0" }\n  }\n}\n'
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)} | toolchain.env()

    def init(index: int) -> str | None:
        workdir = tmp_path / f"w{index}"
        workdir.mkdir()
        (workdir / "main.tf").write_text(module)
        (workdir / "backend.hcl").write_text("")
        try:
            TerraformRunner(workdir, toolchain.terraform, env).init(workdir / "backend.hcl")
        except TerraformError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(12) as pool:
        failures = [failure for failure in pool.map(init, range(24)) if failure]
    assert failures == []
