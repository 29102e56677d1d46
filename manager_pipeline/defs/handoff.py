"""The IO manager: how an op's values reach the next op. In one process (the default) they stay in
memory; with steps on other machines (MANAGER_EXECUTOR=celery) they wait in the manager's database or
the artifact bucket, without secrets, and documents and plans are taken again where they are needed
(handoff/values.py). It is given the resources it reads from (defs/location.py puts it beside them)."""

from __future__ import annotations

from dagster import ConfigurableIOManager, Failure, InputContext, IOManagerDefinition, OutputContext, mem_io_manager

from manager_pipeline.config.model import SourceSpec
from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.defs.resources import ManagerConfigResource, PlanStoreResource, SourcesResource
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.handoff.values import (
    DatabaseStash,
    DocumentRef,
    HandoffError,
    S3Stash,
    Stash,
    dumps,
    loads,
    resolve_again,
    seal,
    unseal,
)
from manager_pipeline.plans import Plan
from manager_pipeline.settings import CelerySettings, Settings
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.signing import KEY_FILE


class HandoffIOManager(ConfigurableIOManager):
    """Op values for any machine: as signed JSON in ``where`` (``database``: the manager's database, ``s3``:
    the artifact bucket), never with a secret the process knows in them."""

    where: str
    manager: ManagerConfigResource
    plans: PlanStoreResource
    sources: SourcesResource

    @staticmethod
    def _key() -> bytes:
        # From this process's own settings, never from run config (which the launchpad writes).
        key = CelerySettings.from_env().handoff_key
        if key is None:
            raise Failure(description="MANAGER_HANDOFF_KEY is not set on this machine: values are not handed on")
        return key.get_secret_value().encode("utf-8")

    def _stash(self) -> Stash:
        if self.where == "s3":
            bucket = self.plans.artifact_bucket
            assert bucket, "MANAGER_HANDOFF=s3 needs PLAN_ARTIFACT_BUCKET (settings.py checks it)"
            target = self.plans.aws.target()
            target.ensure_bucket(bucket)
            return S3Stash(target.client("s3"), bucket)
        return DatabaseStash(self.plans.database_url)

    def handle_output(self, context: OutputContext, obj) -> None:
        name = "/".join(context.get_identifier())
        try:
            body = dumps(obj, f"the output `{context.name}` of {context.step_key}")
        except ManagerError as exc:
            raise Failure(description=str(exc)) from None
        self._stash().put(name, seal(body, self._key(), name))

    def load_input(self, context: InputContext):
        upstream = context.upstream_output
        assert upstream is not None
        name = "/".join(upstream.get_identifier())
        row = self._stash().get(name)
        if row is None:
            raise Failure(
                description=f"the output `{upstream.name}` of {upstream.step_key} (run {upstream.run_id}) was never "
                f"handed on ({self.where}): re-execute the run from {upstream.step_key}"
            )
        try:
            return loads(unseal(row, self._key(), name), _Here(self.manager, self.plans, self.sources))
        except ManagerError as exc:
            raise Failure(description=str(exc)) from None


class _Here:
    """What a value needs from this machine: the source read again, the plan's files from the plan store."""

    def __init__(self, manager: ManagerConfigResource, plans: PlanStoreResource, sources: SourcesResource):
        self._manager, self._plans, self._sources = manager, plans, sources

    def request(self, event: DispatchEvent, manager_digest: str, recorded: SourceSpec | None) -> ResolvedRequest:
        return resolve_again(self._manager.load(), event, manager_digest, recorded)

    def document(self, ref: DocumentRef) -> VariablesDocument:
        # The same commit (or the working tree of a checkout without one): the sha256 says if it is the same.
        event = DispatchEvent(source=ref.source, environment="", sha=ref.sha, branch=ref.branch)
        return ref.restore(self._sources.fetch(ref.spec, event).text)

    def plan(self, plan_id: str) -> Plan:
        plan = self._plans.plans().get(plan_id)
        if not plan.plan_file.is_file():
            raise HandoffError(
                f"the files of plan {plan_id} are not on this machine ({plan.directory}) and no artifact bucket "
                "holds them: set PLAN_ARTIFACT_BUCKET for the code location and every worker"
            )
        return plan


def io_manager_for(
    settings: Settings, plans: PlanStoreResource, sources: SourcesResource
) -> IOManagerDefinition | HandoffIOManager:
    if settings.handoff == "memory":
        # One process runs the whole job: the variables file, which may hold a source's Slack webhook,
        # is never pickled anywhere.
        return mem_io_manager
    manager = ManagerConfigResource(
        config_path=str(settings.config_path), run_tag_key_file=str(settings.dagster_home / KEY_FILE)
    )
    return HandoffIOManager(where=settings.handoff, manager=manager, plans=plans, sources=sources)
