"""Stage: the working directory of one partition, ready to plan: the state bucket, the backend keyed
by partition, what the module takes from the previous state, ``terraform init``, and the push of any
state a failed apply could not save (before any plan, or the plan would re-create what exists)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from manager_pipeline.aws.target import AwsTarget
from manager_pipeline.contract import DeployConfig
from manager_pipeline.terraform import BackendSettings, TerraformRunner, Toolchain, Workdir, prepare_workdir
from manager_pipeline.terraform.errored import SharedStates, push_errored_states
from manager_pipeline.terraform.lock import check_module_admits_lock
from manager_pipeline.terraform.runner import LineSink
from manager_pipeline.terraform.workdir import copy_module, read_previous_state


class Terraform(Protocol):
    """What the Terraform resource gives the stages: sessions of commands, and where kept states wait."""

    @property
    def errored_states(self) -> Path: ...

    def shared_states(self, aws: AwsTarget) -> SharedStates | None: ...

    def session(
        self, working_dir: Path, aws: AwsTarget, on_line: LineSink | None = None
    ) -> AbstractContextManager[tuple[TerraformRunner, Toolchain]]: ...


@dataclass(frozen=True)
class Prepared:
    workdir: Workdir
    terraform_version: str
    # The kept states of failed applies pushed into the state before planning.
    pushed: list[Path] = field(default_factory=list)

    @property
    def state(self) -> str:
        return f"s3://{self.workdir.backend.bucket}/{self.workdir.backend.key}"


def module_workdir(path: Path, module_dir: Path, target: AwsTarget, source: str, environment: str) -> BackendSettings:
    """A copy of the module in ``path`` set up for the partition's state backend, with no inputs: for
    commands on the state alone (unlock). The backend it is set up for."""
    backend = BackendSettings.of_partition(target, source, environment)
    copy_module(path, module_dir, backend, target.endpoint_url)
    return backend


def prepare(
    terraform: Terraform,
    target: AwsTarget,
    path: Path,
    module_dir: Path,
    config: DeployConfig,
    *,
    shared_target: AwsTarget | None = None,
    on_line: LineSink | None = None,
) -> Prepared:
    """The partition's working directory in ``path``, initialised (``target``: the environment's AWS,
    with its own credentials; ``shared_target``: the manager's, where kept states are shared)."""
    check_module_admits_lock(module_dir)
    target.ensure_state_bucket()
    source, environment = config.source_name, config.environment
    backend = BackendSettings.of_partition(target, source, environment)
    workdir = prepare_workdir(path, module_dir, config, backend, target.endpoint_url)
    # What the module takes from the state the previous run left (the backup copy vault's region).
    read_previous_state(workdir.path, target.client("s3"), backend)
    shared = terraform.shared_states(shared_target or target)
    with terraform.session(workdir.path, target, on_line) as (runner, toolchain):
        runner.init(workdir.backend_file)
        pushed = push_errored_states(runner, terraform.errored_states, source, environment, shared)
    return Prepared(workdir=workdir, terraform_version=toolchain.version, pushed=list(pushed))
