"""ResolvedRequest: what a run was asked to do, resolved against manager.yaml once, at its start.

A run reads manager.yaml once. Every later stage takes the source, the environment's policy, the
declared environments and the Terraform module from this snapshot, so an edit to manager.yaml
while a run is going changes the next run, never half of this one (a gate deciding on a policy
the plan was not made under). It travels between ops as an op output, so it holds no secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from manager_pipeline.config.model import EnvironmentPolicy, ManagerConfig, SourceSpec
from manager_pipeline.events import DispatchEvent


@dataclass(frozen=True)
class ResolvedRequest:
    event: DispatchEvent
    source: SourceSpec
    policy: EnvironmentPolicy
    environments: tuple[str, ...]
    terraform_dir: Path
    # sha256 of manager.yaml as read: which version of it the run was decided under.
    manager_digest: str

    @property
    def repo(self) -> str | None:
        return self.source.repo

    @classmethod
    def resolve(
        cls, config: ManagerConfig, event: DispatchEvent, recorded: SourceSpec | None = None
    ) -> ResolvedRequest:
        """The request of ``event`` under ``config``; an unknown source or environment is a ConfigError
        that says what to add to manager.yaml.

        A destroy takes the environment's policy in its destroy form, and may be of a source (or an
        environment of it) that left manager.yaml: ``recorded`` is then the source as its plans knew it."""
        if event.destroy:
            spec = config.sources.get(event.source) or recorded or config.source(event.source)
        else:
            spec = config.check_partition(event.source, event.environment)
        return cls(
            event=event,
            source=spec,
            policy=config.policy(event.environment, destroy=event.destroy),
            environments=tuple(config.environments),
            terraform_dir=config.terraform_dir,
            manager_digest=config.digest,
        )
