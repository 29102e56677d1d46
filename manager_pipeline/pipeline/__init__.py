"""THE data path, as plain functions: every job, sensor and command walks it, nothing re-assembles it.

    read_config    variables.yml (a VariablesDocument) -> the validated DeployConfig of one environment
    prepare        the working directory: state bucket, backend, previous state, init, errored-state push
    make_plan      a saved plan, kept in the plan store
    gate           what a fresh plan becomes: applied now, awaiting approval, a preview
    check_apply    whether a saved plan may still be applied (untouched, newest, current, approved)
    apply_saved    exactly the saved plan, once

Each takes what it needs of the outside world as arguments (the Terraform sessions, an AWS target,
the plan store), so a unit test calls it without Dagster; the ops in ``defs/`` only call these, add
metadata and turn a ``ManagerError`` into a Dagster ``Failure``.
"""

from manager_pipeline.pipeline.apply import ApplyResult, Checked, apply_saved, check_apply
from manager_pipeline.pipeline.gate import GateResult, gate
from manager_pipeline.pipeline.plan import MadePlan, make_plan
from manager_pipeline.pipeline.prepare import Prepared, Terraform, module_workdir, prepare
from manager_pipeline.pipeline.read import current_variables, read_config

__all__ = [
    "ApplyResult",
    "Checked",
    "GateResult",
    "MadePlan",
    "Prepared",
    "Terraform",
    "apply_saved",
    "check_apply",
    "current_variables",
    "gate",
    "make_plan",
    "module_workdir",
    "prepare",
    "read_config",
]
