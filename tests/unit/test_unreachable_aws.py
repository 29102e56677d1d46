"""One line for a Terraform command that failed because AWS did not answer (terraform/runner.py): the
endpoint is named as it was set, whichever of Go's two forms the error took."""

from __future__ import annotations

from pathlib import Path

import pytest

from manager_pipeline.errors import TerraformError
from manager_pipeline.terraform.runner import TerraformRunner

ENDPOINT = "http://127.0.0.1:45323"


def failure(tmp_path: Path, what: str, stderr: str, env: dict[str, str], endpoint_url: str | None = None) -> str:
    runner = TerraformRunner(tmp_path, Path("/nonexistent/terraform"), env, endpoint_url=endpoint_url)
    with pytest.raises(TerraformError) as raised:
        runner._check(what, (1, "", stderr))
    return str(raised.value)


@pytest.mark.parametrize(
    "stderr",
    [
        # A request's error: Go names the URL it asked.
        'Error: saving state: Put "http://127.0.0.1:45323/tfstate/app/staging": dial tcp 127.0.0.1:45323: '
        "connect: connection refused",
        # Not a request's: only the address (the form the last CI's apply outage took).
        "Error: Failed to save state: dial tcp 127.0.0.1:45323: connect: connection refused",
    ],
)
def test_the_endpoint_is_named_as_it_was_set(tmp_path, stderr):
    line = failure(tmp_path, "apply", stderr, {"AWS_ENDPOINT_URL": ENDPOINT})
    assert line.startswith(f"terraform apply: AWS did not answer at {ENDPOINT} (connection refused)"), line
    assert line.endswith("re-plan once the endpoint answers")


def test_a_service_endpoint_of_its_own_is_named_too(tmp_path):
    stderr = "Error: error releasing the state lock: dial tcp 10.0.0.7:9000: i/o timeout"
    env = {"AWS_ENDPOINT_URL": ENDPOINT, "AWS_ENDPOINT_URL_S3": "https://10.0.0.7:9000/"}
    line = failure(tmp_path, "plan", stderr, env)
    assert line.startswith("terraform plan: AWS did not answer at https://10.0.0.7:9000 (i/o timeout); nothing"), line


def test_an_address_of_no_endpoint_setting_is_named_as_go_said(tmp_path):
    stderr = "Error: dial tcp 192.0.2.1:443: connect: no route to host"
    line = failure(tmp_path, "plan", stderr, {"AWS_ENDPOINT_URL": ENDPOINT})
    assert "AWS did not answer at 192.0.2.1:443 (no route to host)" in line


def test_credentials_in_an_endpoint_setting_are_never_named(tmp_path):
    stderr = "Error: Failed to save state: dial tcp proxy.internal:8443: connect: connection refused"
    env = {"AWS_ENDPOINT_URL": "https://svc-user:s3cr3t-in-url@proxy.internal:8443"}
    line = failure(tmp_path, "apply", stderr, env)
    assert "AWS did not answer at https://proxy.internal:8443 (connection refused)" in line, line
    assert "s3cr3t-in-url" not in line and "svc-user" not in line


def test_a_stand_ins_endpoint_is_named_though_terraform_has_no_aws_variable(tmp_path):
    """With a stand-in the endpoint is in the working directory's HCL, and Terraform's environment holds none
    of the AWS_* variables (aws/target.py): the runner is told it (what the apply-outage fault test met)."""
    stderr = "Error: Failed to save state: dial tcp 127.0.0.1:45323: connect: connection refused"
    line = failure(tmp_path, "apply", stderr, {"PATH": "/usr/bin"}, endpoint_url=ENDPOINT)
    assert line.startswith(f"terraform apply: AWS did not answer at {ENDPOINT} (connection refused)"), line
