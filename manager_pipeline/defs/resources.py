"""Resources: the only code that talks to the outside world, one per outside system."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from dagster_aws.s3 import S3Resource
from github import Github

from manager_pipeline.approvals.records import Records
from manager_pipeline.artifacts import PlanStore, S3PlanFiles
from manager_pipeline.aws import STAND_IN_CREDENTIALS, AwsTarget
from manager_pipeline.config import ManagerConfig, SourceSpec, load_config
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import LocalReportSink, Outcome, github_items, render_report
from manager_pipeline.feedback.delivery import DeliveryReport, deliver
from manager_pipeline.feedback.outbox import Outbox
from manager_pipeline.feedback.redact import redact, secret_values
from manager_pipeline.feedback.slack import NotifySettings, SlackSink, slack_message
from manager_pipeline.github import GitHubPublisher, GitHubSettings, GitHubSource, connect
from manager_pipeline.github.client import DEFAULT_API_URL
from manager_pipeline.intake.inbox import Inbox
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


class GitHubResource(ConfigurableResource):
    """GitHub through PyGithub: a token or a GitHub App installation, any API base URL.

    The secrets are Dagster ``EnvVar``s: the UI shows the variable's name, never its value.
    """

    api_url: str = DEFAULT_API_URL
    token: str | None = None
    app_id: str | None = None
    app_private_key: str | None = None
    installation_id: int | None = None
    timeout: float = 15.0
    retries: int = 5
    backoff: float = 0.5
    max_rate_limit_wait: float = 300.0
    throttle: bool = True

    def settings(self, quick: bool = False) -> GitHubSettings:
        """``quick``: one retry and a short timeout, for an attempt inside a run (the outbox keeps the rest)."""
        settings = GitHubSettings(**{field.name: getattr(self, field.name) for field in fields(GitHubSettings)})
        if quick:
            settings = replace(
                settings,
                timeout=min(self.timeout, 10.0),
                retries=1,
                max_rate_limit_wait=min(self.max_rate_limit_wait, 5.0),
            )
        return settings

    @property
    def configured(self) -> bool:
        return self.settings().configured

    def client(self, quick: bool = False) -> Github:
        return connect(self.settings(quick))


class SourcesResource(ConfigurableResource):
    """Reads a source's variables file: from its folder (through git), or from GitHub at a commit."""

    github: GitHubResource

    def fetch(self, spec: SourceSpec, event: DispatchEvent) -> VariablesDocument:
        if spec.path is not None:
            return LocalSource(spec).fetch(event)
        return GitHubSource(spec, self.github.client()).fetch(event)


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
    lock_timeout: str = "60s"

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
            yield (
                TerraformRunner(working_dir, toolchain.terraform, env | reattach, lock_timeout=self.lock_timeout),
                toolchain,
            )


class PlanStoreResource(ConfigurableResource):
    """Saved plans: files under the instance (and in S3 through dagster-aws when a bucket is set),
    their index and their approvals in the manager's database."""

    root: str
    database_url: str
    artifact_bucket: str | None = None
    aws: AwsResource

    def store(self) -> PlanStore:
        if not self.artifact_bucket:
            return PlanStore(Path(self.root))
        target = self.aws.target()
        s3 = S3Resource(
            region_name=target.state_region,
            endpoint_url=target.endpoint_url,
            aws_access_key_id=target.credentials.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=target.credentials.get("AWS_SECRET_ACCESS_KEY"),
        )
        target.ensure_bucket(self.artifact_bucket)
        return PlanStore(Path(self.root), S3PlanFiles(s3.get_client(), self.artifact_bucket))

    def records(self) -> Records:
        return Records(self.database_url)


class InboxResource(ConfigurableResource):
    """The inbox of webhook deliveries (and polled changes), in the manager's database."""

    database_url: str

    def inbox(self) -> Inbox:
        return Inbox(self.database_url)


class FeedbackResource(ConfigurableResource):
    """Where feedback goes: a report file per run, and for GitHub sources the outbox, then GitHub."""

    reports_dir: str
    webserver_url: str
    database_url: str
    github: GitHubResource

    def run_url(self, run_id: str) -> str:
        return f"{self.webserver_url}/runs/{run_id}"

    def outbox(self) -> Outbox:
        return Outbox(self.database_url)

    def publish(
        self, outcome: Outcome, run_id: str, repo: str | None, pr: int | None, notify: NotifySettings | None = None
    ) -> Published:
        """Write the report; post to Slack when asked; queue and try to send a GitHub source's feedback."""
        notify = notify or NotifySettings()
        url = self.run_url(run_id)
        markdown = redact(render_report(outcome, run_id, url), notify.secrets)
        path = LocalReportSink(Path(self.reports_dir)).write(
            outcome.event.source, outcome.event.environment, run_id, markdown
        )
        slack_problem = None
        if notify.slack_webhook and notify.wants(outcome):
            message = slack_message(outcome, url, notify.slack_channel, [*secret_values(), *notify.secrets])
            slack_problem = SlackSink().post(notify.slack_webhook, message)
        sha = outcome.sha or (outcome.plan.sha if outcome.plan else None) or outcome.event.sha
        if not repo or not sha:
            return Published(markdown, path, DeliveryReport(), slack_problem)
        self.outbox().add(github_items.items_for(outcome, repo, sha, pr, run_id, url, notify), run_id)
        return Published(markdown, path, self.deliver(quick=True), slack_problem)

    def started(self, repo: str, sha: str, environment: str, run_id: str) -> DeliveryReport:
        self.outbox().add([github_items.started(repo, sha, environment, self.run_url(run_id))], run_id)
        return self.deliver(quick=True)

    def deliver(self, quick: bool = False) -> DeliveryReport:
        """Send what the outbox holds; GitHub being down leaves it there for the delivery sensor."""
        if not self.github.configured:
            return DeliveryReport()
        return deliver(self.outbox(), GitHubPublisher(self.github.client(quick)), deadline_s=20 if quick else 120)


@dataclass(frozen=True)
class Published:
    markdown: str
    report_file: Path
    delivery: DeliveryReport
    slack_problem: str | None = None


def github_resource(env: Mapping[str, str] | None = None) -> GitHubResource:
    """GitHub settings from the environment; secrets stay EnvVar references."""
    env = os.environ if env is None else env

    def secret(name: str) -> EnvVar | None:
        return EnvVar(name) if env.get(name) else None

    return GitHubResource(
        api_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL,
        token=secret("GITHUB_TOKEN"),
        app_id=env.get("GITHUB_APP_ID") or None,
        app_private_key=secret("GITHUB_APP_PRIVATE_KEY"),
        installation_id=int(env["GITHUB_APP_INSTALLATION_ID"]) if env.get("GITHUB_APP_INSTALLATION_ID") else None,
        timeout=float(env.get("GITHUB_TIMEOUT") or 15),
        retries=int(env.get("GITHUB_RETRIES") or 5),
        backoff=float(env.get("GITHUB_RETRY_BACKOFF") or 0.5),
        max_rate_limit_wait=float(env.get("GITHUB_MAX_RATE_LIMIT_WAIT") or 300),
        throttle=(env.get("GITHUB_THROTTLE") or "on").lower() not in ("off", "0", "false", "no"),
    )


def build_resources(settings: Settings) -> dict[str, ConfigurableResource]:
    github = github_resource()
    aws = AwsResource(
        mode=settings.aws.mode,
        region=settings.aws.region,
        state_bucket=settings.aws.state_bucket,
        manager_home=str(settings.home),
        endpoint_url=settings.aws.endpoint_url,
    )
    return {
        "manager": ManagerConfigResource(config_path=str(settings.config_path)),
        "github": github,
        "sources": SourcesResource(github=github),
        "aws": aws,
        "terraform": TerraformResource(
            tools_dir=str(settings.tools_dir),
            workdirs=str(settings.workdirs),
            terraform_bin=str(settings.terraform_bin) if settings.terraform_bin else None,
            providers=settings.providers,
            provider_server=settings.provider_server,
            lock_timeout=settings.lock_timeout,
        ),
        "plans": PlanStoreResource(
            root=str(settings.plans_dir),
            database_url=settings.database_url,
            artifact_bucket=settings.artifact_bucket,
            aws=aws,
        ),
        "inbox": InboxResource(database_url=settings.database_url),
        "feedback": FeedbackResource(
            reports_dir=str(settings.reports_dir),
            webserver_url=settings.webserver_url,
            database_url=settings.database_url,
            github=github,
        ),
    }
