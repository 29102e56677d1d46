"""Stage: the policy checks of a saved plan, between ``make_plan`` and ``gate``.

The plan's JSON holds sensitive values in clear: it is made again here from the saved plan file, handed
to the engine in a private temporary file (policy/engine.py) and never kept; what is kept beside the
plan is the verdict (check ids, resource addresses). An enforced failure makes the plan
``policy-failed``, which nothing approves or applies (plans/requirements.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from manager_pipeline.aws.target import AwsTarget
from manager_pipeline.contract import parse_variables
from manager_pipeline.errors import ManagerError
from manager_pipeline.pipeline.prepare import Terraform
from manager_pipeline.plans import Plan, Plans, PlanState
from manager_pipeline.policy import Checkov, Finding, PlanPolicy, PolicyResult, scan
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform import Workdir

_RESOURCE = re.compile(r'^resource\s+"([^"]+)"\s+"([^"]+)"', re.M)


class PolicyFailed(ManagerError):
    """Enforced policy checks failed: the plan is ``policy-failed``; the message lists each."""

    def __init__(self, result: PolicyResult, lines: dict[str, str]):
        self.result = result
        self.lines = lines  # resource -> `file:line: `section``: where a check run annotates the failure
        listed = [
            f"- {f.check_id} `{f.resource}`: {f.name}"
            + (f" ({lines[f.resource]})" if f.resource in lines else "")
            + (f" — {f.guideline}" if f.guideline else "")
            for f in result.failures
        ]
        super().__init__(
            f"{result.headline()}; the plan can never be approved or applied: change the variables, or skip a "
            "check with a reason in manager.yaml (docs/policies.md), and re-plan\n" + "\n".join(listed)
        )


def traced_lines(findings: tuple[Finding, ...], module_dir: Path, document: VariablesDocument) -> dict[str, str]:
    """For each finding's resource, the line of ``variables.yml`` whose section builds it, where it can be
    traced: the module declares the resource in ``terraform/<section>.tf``, and the document has that section."""
    declared: dict[tuple[str, str], str] = {}
    for path in sorted(module_dir.glob("*.tf")):
        for kind, name in _RESOURCE.findall(path.read_text()):
            declared[(kind, name)] = path.stem
    try:
        parsed = parse_variables(document.text, document.location)
    except ManagerError:
        return {}
    lines = {}
    for finding in findings:
        parts = [p for p in re.sub(r"\[[^\]]*\]", "", finding.resource).split(".") if p]
        while len(parts) > 2 and parts[0] == "module":
            parts = parts[2:]
        section = declared.get((parts[0], parts[1])) if len(parts) >= 2 else None
        place = parsed.place([section], key=True) if section else None
        if place is not None:
            lines[finding.resource] = f"{document.location}:{place.line}: `{section}`"
    return lines


def check_policy(
    terraform: Terraform,
    target: AwsTarget,
    workdir: Workdir,
    plan: Plan,
    policy: PlanPolicy,
    checkov: Checkov,
    store: Plans,
    document: VariablesDocument | None = None,
    module_dir: Path | None = None,
) -> PolicyResult:
    """The verdict of ``policy`` on ``plan``, kept beside it; ``PolicyFailed`` (the plan now
    ``policy-failed``) when an enforced check failed. An engine that crashes or times out raises
    ``PolicyEngineError``: the stage fails, never passes."""
    with terraform.session(workdir.path, target) as (runner, _):
        plan_json = runner.show_json(plan.plan_file)
    result = scan(plan_json, policy, checkov=checkov, source=plan.source)
    del plan_json
    store.attach_policy(plan.plan_id, result.to_dict())
    if not result.blocked:
        return result
    note = "policy: " + ", ".join(f"{f.check_id} {f.resource}" for f in result.failures)
    store.transition(plan.plan_id, PlanState.POLICY_FAILED, note=note[:1000])
    lines = traced_lines(result.failures, module_dir, document) if document and module_dir else {}
    raise PolicyFailed(result, lines)
