"""The jobs' shape: manager.yaml is read once per run, and every later stage decides on that snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from manager_pipeline.config.file import parse_config
from manager_pipeline.defs.jobs import apply_job, deploy_job
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.config.request import ResolvedRequest

MANAGER_YAML = """
sources:
  - name: app
    path: ../app
    environments: [staging]
environments:
  staging: {auto_apply: true}
  production: {required_approvals: 1, approvers: [alice]}
"""


@pytest.mark.parametrize(
    ("job", "reader"), [(deploy_job(["staging"]), "fetch_variables"), (apply_job(["staging"]), "check_plan")]
)
def test_only_the_first_stage_of_a_run_reads_manager_yaml(job, reader):
    readers = [node.name for node in job.graph.node_defs if "manager" in node.required_resource_keys]
    assert readers == [reader]
    takes_request = {node.name for node in job.graph.node_defs if "request" in node.input_dict}
    # Everything downstream that needs the policy, the source or the module gets the snapshot.
    assert {"init", "feedback"} <= takes_request


def test_a_request_holds_the_source_policy_and_which_manager_yaml_it_came_from(tmp_path: Path):
    config = parse_config(MANAGER_YAML, tmp_path / "manager.yaml")
    request = ResolvedRequest.resolve(config, DispatchEvent("app", "staging", sha="a" * 40))
    assert request.source.name == "app" and request.policy.auto_apply
    assert request.environments == ("staging", "production")
    edited = parse_config(MANAGER_YAML.replace("auto_apply: true", "auto_apply: false"), tmp_path / "manager.yaml")
    assert edited.digest != config.digest == request.manager_digest
    assert ResolvedRequest.resolve(edited, request.event).policy.auto_apply is False


def test_a_request_for_an_environment_the_source_does_not_deploy_to_says_what_to_add(tmp_path: Path):
    config = parse_config(MANAGER_YAML, tmp_path / "manager.yaml")
    with pytest.raises(ManagerError, match="does not deploy to `production`.*add it under the source"):
        ResolvedRequest.resolve(config, DispatchEvent("app", "production"))
