"""checkov on the production plans of the example files, minus the reviewed skips (terraform/policy-skips.yaml).

    .venv/bin/python scripts/checkov_plans.py [--checkov /tmp/checkov-venv/bin/checkov] [FILE.yml ...]

Each file is planned for production as a run plans it (contract -> tfvars -> the whole module, the
stand-in's gaps included) against a moto server of its own, and `terraform show -json` of the plan
is scanned with checkov (framework terraform_plan). A failure is skipped when policy-skips.yaml
names its check id and its resource address (an address without an instance key names every
instance). Prints, per file, the failures before and after the skips and each one left; exits 1
when any is left. The plan JSON may hold sensitive values: it lives in a private temporary folder,
removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import yaml

from manager_pipeline.aws.standin import endpoint_answers, free_port, moto_server_command
from manager_pipeline.contract import load_variables, resolve
from manager_pipeline.settings import Settings
from manager_pipeline.terraform import BackendSettings, ensure_toolchain, state_key
from manager_pipeline.terraform.runner import TerraformRunner
from manager_pipeline.terraform.workdir import (
    ENDPOINT_OVERRIDE_FILE,
    PLAN_FILE,
    TFVARS_FILE,
    copy_module,
    endpoint_override,
    provider_aliases,
)

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "terraform"
SKIPS = MODULE / "policy-skips.yaml"
EXAMPLES = [REPO / "examples" / "variables.full.yml", REPO / "examples" / "original_pipeline" / "variables.extended.yml"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
CHECKOV_TIMEOUT_S = 120


def load_skips(path: Path = SKIPS) -> list[dict]:
    entries = (yaml.safe_load(path.read_text()) or {}).get("skips") or []
    for entry in entries:
        if not (entry.get("check") and entry.get("resources") and str(entry.get("reason", "")).strip()):
            raise SystemExit(f"{path}: every skip needs check, resources and reason: {entry}")
    return entries


def skipped(check_id: str, address: str, skips: list[dict]) -> bool:
    return any(
        entry["check"] == check_id
        and any(address == name or address.startswith(name + "[") for name in entry["resources"])
        for entry in skips
    )


def plan_json(example: Path, workdir: Path, endpoint: str, toolchain) -> Path:
    """The production plan of ``example`` as JSON, in ``workdir``."""
    data = load_variables(example.read_text(), ["staging", "production"], origin=str(example))
    config = resolve(data, "production", "example")
    bucket = f"checkov-{os.getpid()}-{example.stem.replace('.', '-')}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    backend = BackendSettings(bucket=bucket, region="us-east-1", key=state_key("example", "production"), endpoint_url=endpoint)
    copy_module(workdir, MODULE, backend, endpoint)
    # The whole module: the plan a real production run makes, not the stand-in's subset.
    (workdir / ENDPOINT_OVERRIDE_FILE).write_text(endpoint_override(endpoint, provider_aliases(workdir)))
    (workdir / TFVARS_FILE).write_text(json.dumps(config.to_tfvars()))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), **CREDENTIALS, **toolchain.env()}
    runner = TerraformRunner(workdir, toolchain.terraform, env)
    runner.init(workdir / "backend.hcl")
    runner.plan(workdir / PLAN_FILE)
    out = workdir / "plan.json"
    out.write_text(json.dumps(runner.show_json(workdir / PLAN_FILE)))
    out.chmod(0o600)
    return out


def scan(checkov: str, plan: Path) -> list[tuple[str, str, str]]:
    """(check id, resource address, check name) of every failed check."""
    command = [checkov, "-f", str(plan), "--framework", "terraform_plan", "-o", "json", "--quiet", "--compact"]
    # A value known only after apply (the ARN of a key the same plan creates) counts as set, not as missing.
    env = {**os.environ, "EVAL_TF_PLAN_AFTER_UNKNOWN": "true"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=CHECKOV_TIMEOUT_S, env=env)
    if result.returncode not in (0, 1):
        raise SystemExit(f"checkov failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    reports = json.loads(result.stdout or "[]")
    reports = reports if isinstance(reports, list) else [reports]
    return sorted(
        (check["check_id"], check.get("resource_address") or check["resource"], check.get("check_name", ""))
        for report in reports
        for check in (report.get("results") or {}).get("failed_checks", [])
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkov", default="/tmp/checkov-venv/bin/checkov")
    parser.add_argument("examples", nargs="*", type=Path, default=EXAMPLES)
    args = parser.parse_args()
    skips = load_skips()
    toolchain = ensure_toolchain(Settings.from_env({k: v for k, v in os.environ.items() if k != "TERRAFORM_BIN"}).tools_dir)
    left_total = 0
    with tempfile.TemporaryDirectory(prefix="checkov-plans-") as folder:
        os.chmod(folder, 0o700)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        with open(Path(folder) / "moto.log", "wb") as log:
            moto = subprocess.Popen(moto_server_command(port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while not endpoint_answers(endpoint, timeout=0.5):
                if moto.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the moto server did not start")
                time.sleep(0.2)
            for example in args.examples:
                plan = plan_json(example, Path(folder) / example.stem, endpoint, toolchain)
                failed = scan(args.checkov, plan)
                left = [f for f in failed if not skipped(f[0], f[1], skips)]
                left_total += len(left)
                print(f"{example.relative_to(REPO) if example.is_relative_to(REPO) else example}: "
                      f"{len(failed)} failed, {len(failed) - len(left)} skipped by {SKIPS.name}, {len(left)} left")
                for check_id, address, name in left:
                    print(f"  {check_id:<14} {address:<60} {name}")
        finally:
            moto.terminate()
            moto.wait(timeout=10)
    return 1 if left_total else 0


if __name__ == "__main__":
    sys.exit(main())
