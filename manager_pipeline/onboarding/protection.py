"""The command that makes a source's default branch wait for the manager: a repository ruleset whose
`required_status_checks` rule names the check (or status) of each of its environments,
`manager-pipeline/<env>`, so a pull request merges only once every plan succeeded.

Printed, not run: setting it needs administration of the repository, which the manager's credentials
do not (and should not) have. A ruleset is added beside whatever protection the branch has (a PUT of
the branch's protection would replace it all). With the GitHub App's id, only the App's check counts
(nobody else can post a passing `manager-pipeline/staging` status).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from manager_pipeline.feedback.github_items import STATUS_CONTEXT

RULESET_NAME = "manager-pipeline plans"


def ruleset(environments: Sequence[str], app_id: str | None = None) -> dict[str, Any]:
    """The body of `POST /repos/{owner}/{repo}/rulesets` (GitHub's repos/create-repo-ruleset)."""
    checks = []
    for environment in environments:
        check: dict[str, Any] = {"context": STATUS_CONTEXT.format(environment=environment)}
        if app_id and app_id.isdigit():
            check["integration_id"] = int(app_id)
        checks.append(check)
    return {
        "name": RULESET_NAME,
        "target": "branch",
        "enforcement": "active",
        "conditions": {"ref_name": {"include": ["~DEFAULT_BRANCH"], "exclude": []}},
        "rules": [
            {
                "type": "required_status_checks",
                "parameters": {"strict_required_status_checks_policy": False, "required_status_checks": checks},
            }
        ],
    }


def protection_lines(repo: str, branch: str, environments: Sequence[str], app_id: str | None = None) -> list[str]:
    """What add-source prints: why, and the `gh api` command (run by a repository admin)."""
    body = json.dumps(ruleset(environments, app_id), separators=(",", ":"))
    named = ", ".join(STATUS_CONTEXT.format(environment=e) for e in environments)
    return [
        f"To make `{branch}` of {repo} wait for a plan that succeeded ({named}), a repository admin runs:",
        f"  gh api --method POST repos/{repo}/rulesets --input - <<< {shlex.quote(body)}",
    ]
