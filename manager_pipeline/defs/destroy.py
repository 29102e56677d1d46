"""Stage: the start of a destroy run - what it destroys with, from the partition's last applied plan
(decommission.py); init, plan, the gate and feedback are the deploy job's own."""

import os
import socket
from dataclasses import replace

from dagster import OpExecutionContext, Out, Output, op

from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.contract import DeployConfig
from manager_pipeline.defs.resources import AwsResource, ManagerConfigResource, PlanStoreResource
from manager_pipeline.defs.stage import WORKER_TAG, current_event, failure_for, say
from manager_pipeline.destroy.inputs import check_state_versioned, destroy_inputs
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import BRANCH_TAG, COMMIT_TAG, DESTROY_TAG, SHA_TAG
from manager_pipeline.sources import VariablesDocument


@op(
    description="Resolve the destroy against manager.yaml (once per run) and the partition's last applied plan: "
    "the variables, commit and repository it destroys with. The state bucket must be versioned.",
    out={"request": Out(ResolvedRequest), "document": Out(VariablesDocument), "deploy_config": Out(DeployConfig)},
)
def load_destroy(
    context: OpExecutionContext, manager: ManagerConfigResource, plans: PlanStoreResource, aws: AwsResource
):
    # A run of this job destroys, whatever tags it was launched with (the UI's launchpad sets none).
    try:
        event = replace(current_event(context, manager.run_tag_key()), destroy=True)
        # The one read of manager.yaml in a destroy run.
        inputs = destroy_inputs(manager.load(), plans.plans(), event)
        target = aws.target()
        target.ensure_state_bucket()
        check_state_versioned(target)
    except ManagerError as exc:
        raise failure_for(exc) from None
    built_by = inputs.built_by
    tags = {
        SHA_TAG: built_by.sha,
        COMMIT_TAG: built_by.sha[:12] if built_by.sha else None,
        BRANCH_TAG: built_by.branch,
        DESTROY_TAG: "true",
    }
    tags = {key: value for key, value in tags.items() if value and key not in context.run.tags}
    tags[WORKER_TAG] = f"{socket.gethostname()}:{os.getpid()}"
    context.instance.add_run_tags(context.run_id, tags)
    say(
        context,
        "destroy",
        f"destroys what plan {built_by.plan_id} built (commit {(built_by.sha or 'working tree')[:12]} on "
        f"{built_by.branch}), with its variables",
    )
    request = inputs.request
    yield Output(request, "request", metadata={"manager.yaml sha256": request.manager_digest})
    yield Output(
        inputs.document,
        "document",
        metadata={"built by plan": built_by.plan_id, "commit": built_by.sha or "(not in git)"},
    )
    yield Output(
        inputs.deploy_config,
        "deploy_config",
        metadata={"digest": inputs.deploy_config.digest, "region": inputs.deploy_config.region},
    )
