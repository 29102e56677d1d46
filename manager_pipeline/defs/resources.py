"""Resources: the only code that talks to the outside world, one per outside system."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from dagster import ConfigurableResource, EnvVar, IOManagerDefinition
from pydantic import PrivateAttr

from manager_pipeline.aws import STAND_IN_CREDENTIALS, AwsTarget, environment_target
from manager_pipeline.config import AwsAccess, ManagerConfig, SourceSpec, load_config
from manager_pipeline.errors import ConfigError, ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import LocalReportSink, Outcome, github_items, render_report, trigger_status
from manager_pipeline.feedback.delivery import DeliveryReport, deliver
from manager_pipeline.feedback.outbox import Outbox
from manager_pipeline.feedback.redact import register_secret
from manager_pipeline.feedback.slack import NotifySettings, SlackSink, slack_message
from manager_pipeline.github import DEFAULT_API_URL, GitHubClient, GitHubSource
from manager_pipeline.github.trigger import trigger_commit
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.local_aws import LocalAws
from manager_pipeline.plans import Plans, S3PlanFiles
from manager_pipeline.settings import AwsSettings, Settings
from manager_pipeline.sources import LocalSource, VariablesDocument
from manager_pipeline.terraform import TerraformRunner, Toolchain, ensure_toolchain
from manager_pipeline.terraform.errored import SharedStates
from manager_pipeline.terraform.runner import LineSink
from manager_pipeline.terraform.provider_server import provider_servers
from manager_pipeline.terraform.workdir import (
    TFVARS_FILE,
    Workdir,
    built_at,
    copy_region_of,
    prune_workdirs,
    rebuild_workdir,
)


class ManagerConfigResource(ConfigurableResource):
    """manager.yaml, read afresh by each run so an edit needs no restart."""

    config_path: str

    def load(self) -> ManagerConfig:
        return load_config(Path(self.config_path))


class GitHubResource(ConfigurableResource):
    """GitHub through ``GitHubClient``: a token or a GitHub App installation, any API base URL.

    These fields are the GitHub settings, the only declaration of them; ``github_resource()``
    fills them from the environment. The secrets are Dagster ``EnvVar``s: the UI shows the
    variable's name, never its value.
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
    # PyGithub's pacing between requests and writes, which GitHub asks integrations to keep; off for stand-ins.
    throttle: bool = True

    def _secret(self, name: str) -> str | None:
        # Outside a run (the CLI) a field given as EnvVar is still the reference: read its value.
        value = getattr(self, name)
        value = value.get_value() if isinstance(value, EnvVar) else value
        register_secret(value)  # known to every sink of this process from now on (feedback/redact.py)
        return value

    @property
    def configured(self) -> bool:
        token, key = self._secret("token"), self._secret("app_private_key")
        return GitHubClient.credentials(token, self.app_id, key, self.installation_id) is not None

    def client(self, quick: bool = False) -> GitHubClient:
        """``quick``: one retry and a short timeout, for an attempt inside a run (the outbox keeps the rest)."""
        return GitHubClient(
            api_url=self.api_url,
            token=self._secret("token"),
            app_id=self.app_id,
            app_private_key=self._secret("app_private_key"),
            installation_id=self.installation_id,
            timeout=min(self.timeout, 10.0) if quick else self.timeout,
            retries=1 if quick else self.retries,
            backoff=self.backoff,
            max_rate_limit_wait=min(self.max_rate_limit_wait, 5.0) if quick else self.max_rate_limit_wait,
            throttle=self.throttle,
        )


class SourcesResource(ConfigurableResource):
    """Reads a source's variables file: from its folder (through git), or from GitHub at a commit."""

    github: GitHubResource

    def fetch(self, spec: SourceSpec, event: DispatchEvent) -> VariablesDocument:
        if spec.path is not None:
            return LocalSource(spec).fetch(event)
        return GitHubSource(spec, self.github.client()).fetch(event)

    def trigger_commit(self, event: DispatchEvent) -> DispatchEvent:
        """``event`` with its trigger repository's commit, asked of GitHub for a release (which names a tag only)."""
        return trigger_commit(event, self.github.client())


class AwsResource(ConfigurableResource):
    """Which AWS runs talk to. In ``local`` mode the embedded moto server is started on demand, by
    the resource on its first use in a process (a run, a sensor tick), not by each stage that needs it;
    a sensor tick that never touches AWS starts nothing."""

    mode: str
    region: str
    state_bucket: str
    manager_home: str
    endpoint_url: str | None = None
    # A Celery worker's environments (MANAGER_WORKER_ENVIRONMENTS): it acts for no other. None: any.
    worker_environments: list[str] | None = None
    _target: AwsTarget | None = PrivateAttr(default=None)
    _environment_targets: dict = PrivateAttr(default_factory=dict)

    def target(self, environment: str | None = None, access: AwsAccess | None = None) -> AwsTarget:
        """The manager's target; for ``environment``, with its own credentials when ``access`` (its
        policy's ``aws:``) names some. A worker acts only for its own environments: asked for another,
        it refuses in one line (its steps belong on that environment's queue)."""
        if self._target is None:
            self._target = self._resolve()
        if environment is None:
            return self._target
        if self.worker_environments is not None and environment not in self.worker_environments:
            mine = ", ".join(self.worker_environments) or "none"
            raise ManagerError(
                f"this worker acts for {mine}, not {environment}: it holds no credentials for {environment}, whose "
                f"steps go to the `{environment}` queue of workers started with --environments {environment}"
            )
        if access is None:
            return self._target
        cached = self._environment_targets.get((environment, access))
        if cached is None or cached.expiring():
            cached = self._environment_targets[(environment, access)] = environment_target(
                self._target, environment, access
            )
        return cached

    def _resolve(self) -> AwsTarget:
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
    # Working directories hold the values Terraform was given: kept this long, then removed.
    workdir_retention_hours: float = 7 * 24
    # PLAN_ARTIFACT_BUCKET: where a state a failed apply could not save is kept for any machine, too.
    artifact_bucket: str | None = None

    def toolchain(self) -> Toolchain:
        return ensure_toolchain(
            Path(self.tools_dir),
            Path(self.terraform_bin) if self.terraform_bin else None,
            self.providers,  # type: ignore[arg-type]
        )

    @property
    def errored_states(self) -> Path:
        """Where the state a failed apply could not save waits for the partition's next init."""
        return Path(self.workdirs).parent / "errored-state"

    def shared_states(self, aws: AwsTarget) -> SharedStates | None:
        """The kept states in the artifact bucket (``aws``: the manager's target), when there is one."""
        if not self.artifact_bucket:
            return None
        aws.ensure_bucket(self.artifact_bucket)
        return SharedStates(aws.client("s3"), self.artifact_bucket)

    def share_kept_state(self, aws: AwsTarget, kept: Path, source: str, environment: str) -> str:
        """Move a kept state to the artifact bucket, for the next init on any machine; where it is kept."""
        try:
            shared = self.shared_states(aws)
            if shared is None:
                return str(kept)
            where = shared.share(kept, source, environment)
        except Exception as exc:  # noqa: BLE001 - AWS may be what failed the apply: the local copy stays
            cause = (str(exc) or type(exc).__name__).splitlines()[0][:200]
            return f"{kept} (on this machine only: the artifact bucket did not take it: {cause})"
        # One copy, one truth: the next init anywhere (this machine too) takes it from the bucket.
        kept.unlink()
        return where

    def workdir_here(self, workdir: Workdir, run_id: str) -> tuple[Workdir, bool]:
        """``workdir`` on this machine: as init left it here, or built again in this machine's own folder
        from what travelled (True: it needs ``terraform init``). Never another machine's folder."""
        target = self.workdir_for(run_id)
        if built_at(workdir, target):
            return replace(workdir, path=target), False
        return rebuild_workdir(workdir, target), True

    def workdir_for(self, run_id: str) -> Path:
        """A run's working directory, under a root only the manager can enter; old ones are pruned."""
        root = Path(self.workdirs)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        root.chmod(0o700)
        prune_workdirs(root, self.workdir_retention_hours * 3600, keep=run_id)
        return root / run_id

    @contextmanager
    def session(
        self, working_dir: Path, aws: AwsTarget, on_line: LineSink | None = None
    ) -> Iterator[tuple[TerraformRunner, Toolchain]]:
        """A runner for ``working_dir``; mirror providers run once for all of its commands. ``on_line``
        gets each line Terraform prints as it prints it (not the data commands' JSON)."""
        toolchain = self.toolchain()
        env = aws.process_env() | toolchain.env()
        servers = toolchain.mirror_providers if self.provider_server and _one_region(working_dir) else {}
        with provider_servers(servers, env) as reattach:
            yield (
                TerraformRunner(
                    working_dir, toolchain.terraform, env | reattach, on_line=on_line, lock_timeout=self.lock_timeout
                ),
                toolchain,
            )


def _one_region(working_dir: Path) -> bool:
    """Whether one shared provider process can serve the run: it holds one region, so a backup copy
    to another region (an aliased provider in another region) needs Terraform's own processes, also
    when the copy vault is only in the state (the run destroys it in its region)."""
    if copy_region_of(working_dir):
        return False
    try:
        tfvars = json.loads((working_dir / TFVARS_FILE).read_text())
    except (OSError, ValueError):
        return True
    return not (tfvars.get("backup") or {}).get("cross_region_copy")


class PlanStoreResource(ConfigurableResource):
    """Saved plans: files under the instance (and in S3 through dagster-aws when a bucket is set),
    their row, state and approvals in the manager's database."""

    root: str
    database_url: str
    artifact_bucket: str | None = None
    aws: AwsResource
    # The files of a plan that can never be applied again: kept this long after its last change.
    plan_retention_hours: float = 30 * 24

    def plans(self) -> Plans:
        retention_s = self.plan_retention_hours * 3600
        if not self.artifact_bucket:
            return Plans(self.database_url, Path(self.root), retention_s=retention_s)
        target = self.aws.target()
        # dagster-aws costs most of a second to import: only set-ups with an artifact bucket pay it.
        from dagster_aws.s3 import S3Resource

        s3 = S3Resource(
            region_name=target.state_region,
            endpoint_url=target.endpoint_url,
            aws_access_key_id=target.credentials.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=target.credentials.get("AWS_SECRET_ACCESS_KEY"),
        )
        target.ensure_bucket(self.artifact_bucket)
        return Plans(
            self.database_url,
            Path(self.root),
            S3PlanFiles(s3.get_client(), self.artifact_bucket),
            retention_s=retention_s,
        )


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
        """Write the report; post to Slack when asked; queue and try to send a GitHub source's feedback.

        Every text is redacted as it is made (``feedback/redact.py``): the webhook of ``notify`` and
        the GitHub credentials are registered first, so each sink masks them."""
        notify = notify or NotifySettings()
        self.github.configured  # noqa: B018 - reads (and so registers) the GitHub token or App key
        url = self.run_url(run_id)
        markdown = render_report(outcome, run_id, url, secrets=notify.secrets)
        path = LocalReportSink(Path(self.reports_dir)).write(
            outcome.event.source, outcome.event.environment, run_id, markdown
        )
        slack_problem = None
        if notify.slack_webhook and notify.wants(outcome):
            message = slack_message(outcome, url, notify.slack_channel, notify.secrets)
            slack_problem = SlackSink().post(notify.slack_webhook, message)
        sha = outcome.sha or (outcome.plan.sha if outcome.plan else None) or outcome.event.sha
        items = github_items.items_for(outcome, repo, sha, pr, run_id, url, notify) if repo and sha else []
        # A run a trigger repository started tells the application commit too.
        items += trigger_status.items_for(outcome, url, notify.secrets)
        if not items:
            return Published(markdown, path, DeliveryReport(), slack_problem)
        self.outbox().add(items, run_id)
        return Published(markdown, path, self.deliver(quick=True), slack_problem)

    def started(
        self, repo: str, sha: str, environment: str, run_id: str, event: DispatchEvent | None = None
    ) -> DeliveryReport:
        """``event``: the run's, when a trigger repository's commit is to hear it too."""
        url = self.run_url(run_id)
        items = [github_items.started(repo, sha, environment, url)]
        self.outbox().add(items + (trigger_status.started(event, url) if event else []), run_id)
        return self.deliver(quick=True)

    def deliver(self, quick: bool = False) -> DeliveryReport:
        """Send what the outbox holds; GitHub being down leaves it there for the delivery sensor.

        A failing item backs off and, after its last attempt, is parked as dead: listed by
        ``manager-pipeline feedback --dead``, re-queued by ``manager-pipeline feedback --retry ID``."""
        if not self.github.configured:
            return DeliveryReport()
        return deliver(self.outbox(), self.github.client(quick), deadline_s=20 if quick else 120)


@dataclass(frozen=True)
class Published:
    markdown: str
    report_file: Path
    delivery: DeliveryReport
    slack_problem: str | None = None


# Environment variable -> GitHubResource field: (field, type, smallest value, what to put there).
_GITHUB_NUMBERS = {
    "GITHUB_APP_INSTALLATION_ID": ("installation_id", int, 1, "the GitHub App installation's id, e.g. 12345678"),
    "GITHUB_TIMEOUT": ("timeout", float, 0.001, "a number of seconds, e.g. 15 (no unit)"),
    "GITHUB_RETRIES": ("retries", int, 0, "a whole number of retries, e.g. 5 (0: none)"),
    "GITHUB_RETRY_BACKOFF": ("backoff", float, 0, "a number of seconds, e.g. 0.5 (no unit)"),
    "GITHUB_MAX_RATE_LIMIT_WAIT": ("max_rate_limit_wait", float, 0, "a number of seconds, e.g. 300 (no unit)"),
}
_SWITCH = {"on": True, "1": True, "true": True, "yes": True, "off": False, "0": False, "false": False, "no": False}


def _not_valid(name: str, raw: str, what: str) -> ConfigError:
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    return ConfigError(f"{name}={shown!r} is not valid: set it to {what}, or leave it unset")


def github_resource(env: Mapping[str, str] | None = None) -> GitHubResource:
    """The GitHub settings from the environment, read here and nowhere else.

    Unset variables leave the resource's defaults; secrets stay ``EnvVar`` references. A malformed
    value is a ``ConfigError`` of one line naming the variable and what to put there.
    """
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    if env.get("GITHUB_API_URL"):
        values["api_url"] = env["GITHUB_API_URL"]
    if env.get("GITHUB_APP_ID"):
        values["app_id"] = env["GITHUB_APP_ID"]
    for name, field in (("GITHUB_TOKEN", "token"), ("GITHUB_APP_PRIVATE_KEY", "app_private_key")):
        if env.get(name):
            values[field] = EnvVar(name)
    for name, (field, kind, minimum, what) in _GITHUB_NUMBERS.items():
        raw = (env.get(name) or "").strip()
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise _not_valid(name, raw, what) from None
        if not math.isfinite(value) or value < minimum:
            raise _not_valid(name, raw, what)
        values[field] = value
    throttle = (env.get("GITHUB_THROTTLE") or "").strip()
    if throttle:
        if throttle.lower() not in _SWITCH:
            raise _not_valid("GITHUB_THROTTLE", throttle, "on or off (off only for a stand-in)")
        values["throttle"] = _SWITCH[throttle.lower()]
    return GitHubResource(**values)


def build_resources(settings: Settings) -> dict[str, ConfigurableResource | IOManagerDefinition]:
    github = github_resource()
    aws = AwsResource(
        mode=settings.aws.mode,
        region=settings.aws.region,
        state_bucket=settings.aws.state_bucket,
        manager_home=str(settings.home),
        endpoint_url=settings.aws.endpoint_url,
        worker_environments=list(settings.worker_environments) if settings.worker_environments is not None else None,
    )
    resources: dict[str, ConfigurableResource | IOManagerDefinition] = {
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
            workdir_retention_hours=settings.workdir_retention_hours,
            lock_timeout=settings.lock_timeout,
            artifact_bucket=settings.artifact_bucket,
        ),
        "plans": PlanStoreResource(
            root=str(settings.plans_dir),
            database_url=settings.database_url,
            artifact_bucket=settings.artifact_bucket,
            aws=aws,
            plan_retention_hours=settings.plan_retention_hours,
        ),
        "inbox": InboxResource(database_url=settings.database_url),
        "feedback": FeedbackResource(
            reports_dir=str(settings.reports_dir),
            webserver_url=settings.webserver_url,
            database_url=settings.database_url,
            github=github,
        ),
    }
    # How ops hand each other their values: in memory (the default), or for any machine (defs/handoff.py).
    from manager_pipeline.defs.handoff import io_manager_for

    resources["io_manager"] = io_manager_for(settings, resources["plans"], resources["sources"])  # type: ignore[arg-type]
    return resources
