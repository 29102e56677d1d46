"""The policy stage: checkov on a plan's JSON, decided by each environment's policy.

- ``install``: checkov in a virtualenv of its own beside the Terraform toolchain (``ensure_checkov``).
- ``rules``: what an environment enforces, warns about or skips (``PlanPolicy``, ``resolve_policy``),
  the module's reviewed skip file and the platform team's custom policies.
- ``last_good``: ``environment_policy``, which keeps each environment's last good policy and stands it in
  for policy files that went bad (never no policy).
- ``engine``: ``scan`` (one plan) and ``scan_many`` (many plans, one engine call) -> ``PolicyResult``.
"""

from manager_pipeline.policy.engine import (
    Finding,
    PlanToScan,
    PolicyEngineError,
    PolicyResult,
    plan_secrets,
    prestart,
    scan,
    scan_many,
)
from manager_pipeline.policy.install import (
    CHECKOV_VERSION,
    Checkov,
    CheckovInstallError,
    ensure_checkov,
    installed_checkov,
)
from manager_pipeline.policy.last_good import LoadedPolicy, environment_policy
from manager_pipeline.policy.rules import (
    SKIP_FILE,
    ChecksFile,
    CustomPolicy,
    PlanPolicy,
    PolicyConfigError,
    Skip,
    check_checks_document,
    check_skip_ids,
    load_custom_policies,
    load_reviewed_skips,
    resolve_policy,
    unknown_check_ids,
)

__all__ = [
    "CHECKOV_VERSION",
    "SKIP_FILE",
    "Checkov",
    "CheckovInstallError",
    "ChecksFile",
    "CustomPolicy",
    "Finding",
    "LoadedPolicy",
    "PlanPolicy",
    "PlanToScan",
    "PolicyConfigError",
    "PolicyEngineError",
    "PolicyResult",
    "Skip",
    "check_checks_document",
    "check_skip_ids",
    "ensure_checkov",
    "environment_policy",
    "installed_checkov",
    "load_custom_policies",
    "load_reviewed_skips",
    "plan_secrets",
    "prestart",
    "resolve_policy",
    "scan",
    "scan_many",
    "unknown_check_ids",
]
