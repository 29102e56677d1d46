"""The deploy job: fetch-variables -> validate -> init -> plan -> policy -> approval gate -> apply -> feedback; the
apply_plan job of an approved plan; the destroy job, whose plan always waits for approval."""

from __future__ import annotations

from typing import Iterable

from dagster import JobDefinition, graph

from manager_pipeline.defs.destroy import load_destroy
from manager_pipeline.defs.feedback import feedback, report_failure
from manager_pipeline.defs.fetch import fetch_variables, validate
from manager_pipeline.defs.partitions import deploy_partitions
from manager_pipeline.defs.plans import approval_gate, check_plan, load_plan
from manager_pipeline.defs.policy import policy
from manager_pipeline.defs.stage import APPLY_JOB, DEPLOY_JOB, DESTROY_JOB
from manager_pipeline.defs.terraform import apply, init, plan
from manager_pipeline.events import KIND_TAG

__all__ = ["APPLY_JOB", "DEPLOY_JOB", "DESTROY_JOB", "apply_job", "deploy_job", "destroy_job"]


@graph(description="Deploy one source repo to one environment from its variables.yml.")
def deploy():
    # The request (event, source, policy, manager.yaml snapshot) is resolved once and passed on.
    request, document = fetch_variables()
    deploy_config = validate(request, document)
    workdir = init(request, deploy_config)
    plan_artifact = plan(request, document, workdir)
    checked = policy(request, document, workdir, plan_artifact)
    approved, held = approval_gate(request, workdir, checked)
    applied = apply(workdir, approved)
    # Fan-in: feedback runs with whichever of the two arrived (apply, or the gate's reason).
    feedback(request, deploy_config, [applied, held])


def _partitioned_job(graph_def, name: str, kind: str, environments: Iterable[str]) -> JobDefinition:
    return graph_def.to_job(
        name=name,
        partitions_def=deploy_partitions(environments),
        # The executor is the code location's (defs/executor.py): in-process, or Celery workers.
        hooks={report_failure},
        tags={KIND_TAG: kind},
    )


def deploy_job(environments: Iterable[str]) -> JobDefinition:
    return _partitioned_job(deploy, DEPLOY_JOB, "deploy", environments)


@graph(description="Apply a saved, approved plan of one source and environment, after checking it still may be.")
def apply_approved_plan():
    plan = load_plan()
    request, deploy_config = check_plan(plan)
    workdir = init(request, deploy_config)
    feedback(request, deploy_config, [apply(workdir, plan)])


def apply_job(environments: Iterable[str]) -> JobDefinition:
    return _partitioned_job(apply_approved_plan, APPLY_JOB, "apply", environments)


@graph(
    description="Plan the destroy of everything one source has in one environment, with the variables of its last "
    "applied plan; the plan waits for approval in every environment and applies through apply_plan."
)
def destroy():
    request, document, deploy_config = load_destroy()
    workdir = init(request, deploy_config)
    plan_artifact = plan(request, document, workdir)
    checked = policy(request, document, workdir, plan_artifact)
    # A destroy plan is never approved at the gate: it waits (or there is nothing to destroy).
    _, held = approval_gate(request, workdir, checked)
    feedback(request, deploy_config, [held])


def destroy_job(environments: Iterable[str]) -> JobDefinition:
    return _partitioned_job(destroy, DESTROY_JOB, "destroy", environments)
