"""Stage: the policy checks of the run's plan (pipeline/policy.py), between plan and approval_gate."""

import logging
from pathlib import Path

from dagster import MetadataValue, OpExecutionContext, op

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.defs.assets import POLICY, plan_materialization
from manager_pipeline.defs.assets import check as asset_check
from manager_pipeline.defs.resources import AwsResource, PlanStoreResource, TerraformResource
from manager_pipeline.defs.stage import failure_for, redacted_metadata, say
from manager_pipeline.defs.terraform import here
from manager_pipeline.errors import ManagerError
from manager_pipeline.pipeline.policy import PolicyFailed, check_policy
from manager_pipeline.plans import Plan
from manager_pipeline.policy import PolicyConfigError, PolicyResult, environment_policy, installed_checkov
from manager_pipeline.redact import redact_text
from manager_pipeline.settings import Settings
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform import Workdir
from manager_pipeline.yamlfile import parse_yaml

_log = logging.getLogger(__name__)


def _table(result: PolicyResult) -> str:
    rows = ["| verdict | check | resource | what |", "|---|---|---|---|"]
    for finding in (*result.failures, *result.warnings, *result.skipped):
        rows.append(f"| {finding.verdict} | {finding.check_id} | `{finding.resource}` | {finding.name} |")
    return "\n".join(rows) if len(rows) > 2 else "every check passed"


@op(
    description="Check the saved plan against the environment's policy (checkov on its JSON, in a private file "
    "deleted after): an enforced failure makes it policy-failed, which nothing approves or applies."
)
def policy(
    context: OpExecutionContext,
    aws: AwsResource,
    terraform: TerraformResource,
    plans: PlanStoreResource,
    request: ResolvedRequest,
    document: VariablesDocument,
    workdir: Workdir,
    plan: Plan,
) -> Plan:
    store = plans.plans()
    environment = request.event.environment
    try:
        checkov = terraform.checkov()
        loaded = environment_policy(
            environment,
            request.policy.checks,
            # manager.yaml's loader made the custom policy folder absolute.
            root=request.terraform_dir.parent,
            module_dir=request.terraform_dir,
            known=checkov.checks,
            keep=Path(terraform.kept_policies) if terraform.kept_policies else None,
        )
        plan_policy = loaded.policy
        if loaded.kept_because:
            say(context, "policy", loaded.kept_because, warning=True)
        target = aws.target(environment, request.policy.aws)
        workdir = here(context, terraform, target, workdir, "policy")
        result = check_policy(
            terraform, target, workdir, plan, plan_policy, checkov, store, document, request.terraform_dir
        )
    except PolicyFailed as exc:
        say(context, "policy", exc.result.headline())
        context.log_event(asset_check(POLICY, context.partition_key, False, exc.result.headline()))
        context.log_event(plan_materialization(store.get(plan.plan_id), "policy-failed", exc.result.headline()))
        raise failure_for(exc, context) from None
    except ManagerError as exc:
        raise failure_for(exc, context) from None
    say(context, "policy", result.headline())
    for finding in result.warnings:
        say(context, "policy", f"WARNING: {finding.line()}")
    context.log_event(
        asset_check(POLICY, context.partition_key, not result.warnings, result.headline(), warn=True)
    )
    context.add_output_metadata(
        redacted_metadata(
            {
                "verdict": result.headline(),
                "failures": len(result.failures),
                "warnings": len(result.warnings),
                "skipped": len(result.skipped),
                "passed": result.passed,
                "findings": MetadataValue.md(_table(result)),
                "engine": result.engine,
                "policy": "the last good policy (the files are not valid)" if loaded.kept_because else "as written",
            }
        )
    )
    return plan


def check_policies_at_start(config: ManagerConfig, settings: Settings) -> list[str]:
    """At start-up (the code location loading): each environment's policy files checked, a good policy kept,
    and for each bad one a warning naming every problem at file:line, and whether the last good policy
    stands in (else the environment's policy stage fails until they are fixed). The warnings, logged."""
    checkov = installed_checkov(settings.tools_dir)
    document = None
    if checkov is not None:  # ids are checked only against the engine's: then a bad one is placed at its line
        try:
            document = parse_yaml(config.path.read_text(), str(config.path))
        except (OSError, ManagerError):
            document = None  # load_config read it a moment ago: a race with an edit, said by the next load
    warnings = []
    for name in config.environments:
        try:
            loaded = environment_policy(
                name,
                config.policy(name).checks,
                root=config.path.parent,
                module_dir=config.terraform_dir,
                known=checkov.checks if checkov else None,
                keep=settings.kept_policies_dir,
                document=document,
                origin=str(config.path),
            )
        except PolicyConfigError as exc:
            warnings.append(str(exc))
            continue
        except OSError as exc:  # the home not writable: said here, and by the environment's next policy stage
            warnings.append(f"the policy of {name} could not be kept in {settings.kept_policies_dir}: {exc}")
            continue
        if loaded.kept_because:
            warnings.append(loaded.kept_because)
    for warning in warnings:
        _log.warning(redact_text(warning))
    return warnings
