"""The Terraform engine: toolchain, working directories, commands and plan summaries."""

from manager_pipeline.terraform.plan import PlanSummary, mask_outputs, planned_outputs, summarize
from manager_pipeline.terraform.runner import CommandResult, TerraformRunner
from manager_pipeline.terraform.toolchain import Toolchain, ensure_toolchain
from manager_pipeline.terraform.workdir import BackendSettings, Workdir, module_digest, prepare_workdir, state_key

__all__ = [
    "BackendSettings",
    "CommandResult",
    "PlanSummary",
    "TerraformRunner",
    "Toolchain",
    "Workdir",
    "ensure_toolchain",
    "mask_outputs",
    "module_digest",
    "planned_outputs",
    "prepare_workdir",
    "state_key",
    "summarize",
]
