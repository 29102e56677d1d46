"""Resources: the only code that talks to the outside world, one per outside system."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource

from manager_pipeline.artifacts import PlanStore
from manager_pipeline.aws import STAND_IN_CREDENTIALS, AwsTarget
from manager_pipeline.config import ManagerConfig, SourceSpec, load_config
from manager_pipeline.errors import SourceError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import LocalReportSink, Outcome, render_report
from manager_pipeline.local_aws import LocalAws
from manager_pipeline.settings import AwsSettings, Settings
from manager_pipeline.sources import LocalSource, VariablesDocument
from manager_pipeline.terraform import TerraformRunner, Toolchain, ensure_toolchain
from manager_pipeline.terraform.provider_server import provider_servers


class ManagerConfigResource(ConfigurableResource):
    """manager.yaml, read afresh by each run so an edit needs no restart."""

    config_path: str

    def load(self) -> ManagerConfig:
        return load_config(Path(self.config_path))


class SourcesResource(ConfigurableResource):
    """Reads a source's variables file: from its folder, or (with a commit) through git."""

    def fetch(self, spec: SourceSpec, event: DispatchEvent) -> VariablesDocument:
        if spec.path is None:
            raise SourceError(f"source `{spec.name}`: GitHub sources ({spec.repo}) are not supported by this build yet")
        return LocalSource(spec).fetch(event)


class AwsResource(ConfigurableResource):
    """Which AWS runs talk to. In ``local`` mode the embedded moto server is started on demand."""

    mode: str
    region: str
    state_bucket: str
    manager_home: str
    endpoint_url: str | None = None

    def target(self) -> AwsTarget:
        settings = AwsSettings(
            mode=self.mode,
            endpoint_url=self.endpoint_url,
            region=self.region,  # type: ignore[arg-type]
            state_bucket=self.state_bucket,
        )
        if self.mode == "aws":
            return AwsTarget(settings=settings, endpoint_url=None)
        endpoint = self.endpoint_url
        if self.mode == "local":
            endpoint = LocalAws(Path(self.manager_home)).ensure_running().endpoint_url
        return AwsTarget(settings=settings, endpoint_url=endpoint, credentials=dict(STAND_IN_CREDENTIALS))


class TerraformResource(ConfigurableResource):
    """The Terraform toolchain (built on first use) and sessions of commands in a working directory."""

    tools_dir: str
    workdirs: str
    terraform_bin: str | None = None
    providers: str = "mirror"
    provider_server: bool = True

    def toolchain(self) -> Toolchain:
        return ensure_toolchain(
            Path(self.tools_dir),
            Path(self.terraform_bin) if self.terraform_bin else None,
            self.providers,  # type: ignore[arg-type]
        )

    def workdir_for(self, run_id: str) -> Path:
        return Path(self.workdirs) / run_id

    @contextmanager
    def session(self, working_dir: Path, aws: AwsTarget) -> Iterator[tuple[TerraformRunner, Toolchain]]:
        """A runner for ``working_dir``; mirror providers run once for all of its commands."""
        toolchain = self.toolchain()
        env = aws.process_env() | toolchain.env()
        servers = toolchain.mirror_providers if self.provider_server else {}
        with provider_servers(servers, env) as reattach:
            yield TerraformRunner(working_dir, toolchain.terraform, env | reattach), toolchain


class PlanStoreResource(ConfigurableResource):
    """Saved plans and their metadata, under the Dagster instance."""

    root: str

    def store(self) -> PlanStore:
        return PlanStore(Path(self.root))


class FeedbackResource(ConfigurableResource):
    """Where run reports go: a markdown file per run under the instance."""

    reports_dir: str
    webserver_url: str

    def run_url(self, run_id: str) -> str:
        return f"{self.webserver_url}/runs/{run_id}"

    def publish(self, outcome: Outcome, run_id: str) -> tuple[str, Path]:
        markdown = render_report(outcome, run_id, self.run_url(run_id))
        path = LocalReportSink(Path(self.reports_dir)).write(
            outcome.event.source, outcome.event.environment, run_id, markdown
        )
        return markdown, path


def build_resources(settings: Settings) -> dict[str, ConfigurableResource]:
    return {
        "manager": ManagerConfigResource(config_path=str(settings.config_path)),
        "sources": SourcesResource(),
        "aws": AwsResource(
            mode=settings.aws.mode,
            region=settings.aws.region,
            state_bucket=settings.aws.state_bucket,
            manager_home=str(settings.home),
            endpoint_url=settings.aws.endpoint_url,
        ),
        "terraform": TerraformResource(
            tools_dir=str(settings.tools_dir),
            workdirs=str(settings.workdirs),
            terraform_bin=str(settings.terraform_bin) if settings.terraform_bin else None,
            providers=settings.providers,
            provider_server=settings.provider_server,
        ),
        "plans": PlanStoreResource(root=str(settings.plans_dir)),
        "feedback": FeedbackResource(reports_dir=str(settings.reports_dir), webserver_url=settings.webserver_url),
    }
