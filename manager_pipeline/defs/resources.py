"""Resources: the only code that talks to the outside world, one per outside system."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from dagster import ConfigurableResource, EnvVar, get_dagster_logger
from pydantic import PrivateAttr

from manager_pipeline.aws.standin import LocalAws
from manager_pipeline.aws.target import STAND_IN_CREDENTIALS, AwsTarget, environment_target
from manager_pipeline.config.file import load_config
from manager_pipeline.config.model import AwsAccess, ManagerConfig, SourceSpec
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import LocalReportSink, Outcome
from manager_pipeline.feedback.delivery import DeliveryReport, deliver
from manager_pipeline.feedback.outbox import Outbox
from manager_pipeline.feedback.publish import Published, publish, started
from manager_pipeline.feedback.slack import NotifySettings
from manager_pipeline.github import DEFAULT_API_URL, GitHubClient, GitHubSource
from manager_pipeline.github.trigger import trigger_commit
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.plans import Plans, S3PlanFiles
from manager_pipeline.policy import Checkov, installed_checkov
from manager_pipeline.redact import redact_text, register_secret
from manager_pipeline.settings import AwsSettings, CelerySettings, GitHubSettings, Settings
from manager_pipeline.signing import KEY_FILE, tag_key
from manager_pipeline.sources import LocalSource, VariablesDocument
from manager_pipeline.terraform import TerraformRunner, Toolchain, ensure_toolchain
from manager_pipeline.terraform.errored import SharedStates
from manager_pipeline.terraform.provider_server import provider_servers
from manager_pipeline.terraform.runner import LineSink
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
    # Where this machine's run tag key is kept when MANAGER_HANDOFF_KEY is not set (manager_pipeline.signing).
    run_tag_key_file: str = ""

    def load(self) -> ManagerConfig:
        return load_config(Path(self.config_path))

    def run_tag_key(self) -> bytes:
        """The key that signs (sensors) and checks (steps) the author on a run: never resource config."""
        # Unset (a resource built by hand): where the default layout keeps the Dagster home, beside manager.yaml.
        key_file = Path(self.run_tag_key_file or Path(self.config_path).parent / ".manager" / "dagster" / KEY_FILE)
        return tag_key(CelerySettings.from_env().handoff_key, key_file)


class GitHubResource(ConfigurableResource):
    """GitHub through ``GitHubClient``: a token or a GitHub App installation, any API base URL.

    Their defaults are declared here only; ``github_resource()`` fills the fields the GitHub settings
    (``GitHubSettings``) set. The secrets are Dagster ``EnvVar``s: the UI shows the variable's name,
    never its value.
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

    @property
    def is_app(self) -> bool:
        """The manager reaches GitHub as an App installation (no token, which would be used first): its
        runs report through check runs, which a token cannot create."""
        return self.configured and not self._secret("token")

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
    # Where each environment's last good policy is kept (policy/last_good.py); empty: none is kept, and a
    # bad policy file fails the policy stage.
    kept_policies: str = ""

    def checkov(self) -> Checkov:
        """The policy engine `manager-pipeline setup` installed beside the toolchain: a plan is never
        passed unchecked, so without it the stage fails in one line that says how to install it."""
        found = installed_checkov(Path(self.tools_dir))
        if found is None:
            raise ManagerError(
                f"the policy engine (checkov) is not installed in {self.tools_dir}: run `manager-pipeline setup`"
            )
        return found

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
                    working_dir,
                    toolchain.terraform,
                    env | reattach,
                    on_line=on_line,
                    lock_timeout=self.lock_timeout,
                    endpoint_url=aws.endpoint_url,
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
        """The run's feedback (feedback/publish.py) through this resource's sinks; the GitHub credentials
        are registered first, so every sink masks them."""
        self.github.configured  # noqa: B018 - reads (and so registers) the GitHub token or App key
        return publish(
            outcome,
            run_id,
            self.run_url(run_id),
            reports=LocalReportSink(Path(self.reports_dir)),
            outbox=self.outbox(),
            deliver=lambda: self._delivered_in_run(run_id),
            repo=repo,
            pr=pr,
            notify=notify or NotifySettings(),
            check_runs=self.github.is_app,
        )

    def started(
        self, repo: str, sha: str, environment: str, run_id: str, event: DispatchEvent | None = None
    ) -> DeliveryReport:
        """``event``: the run's, when a trigger repository's commit is to hear it too."""
        return started(
            repo,
            sha,
            environment,
            run_id,
            self.run_url(run_id),
            outbox=self.outbox(),
            deliver=lambda: self._delivered_in_run(run_id),
            event=event,
            check_runs=self.github.is_app,
        )

    def _delivered_in_run(self, run_id: str) -> DeliveryReport:
        """``deliver(quick=True)`` for a run; the first of its check runs GitHub refused is said once in
        its log (the status went instead; ``manager-pipeline sources`` says it too)."""
        report = self.deliver(quick=True)
        if report.fallbacks:
            first = self.outbox().first_fallback(run_id)
            if first in report.fallbacks:
                line = redact_text(f"feedback: {report.fallbacks[first]}")
                get_dagster_logger().warning(line)
                print(f"[feedback] {line.removeprefix('feedback: ')}", flush=True)
        return report

    def deliver(self, quick: bool = False) -> DeliveryReport:
        """Send what the outbox holds; GitHub being down leaves it there for the delivery sensor.

        A failing item backs off and, after its last attempt, is parked as dead: listed by
        ``manager-pipeline feedback --dead``, re-queued by ``manager-pipeline feedback --retry ID``."""
        if not self.github.configured:
            return DeliveryReport()
        return deliver(self.outbox(), self.github.client(quick), deadline_s=20 if quick else 120)


def github_resource(env: Mapping[str, str] | None = None) -> GitHubResource:
    """The resource of the GitHub settings (``GitHubSettings``) of ``env``, by default the process's.

    Unset settings leave the resource's defaults; secrets become ``EnvVar`` references, so the UI shows
    the variable's name, never its value. A malformed value is a ``SettingsError`` (a ``ConfigError``)
    of one line naming the variable and what to put there.
    """
    github = GitHubSettings.from_env(env)
    plain = ("api_url", "app_id", "installation_id", "timeout", "retries", "backoff", "max_rate_limit_wait", "throttle")
    values = {field: value for field in plain if (value := getattr(github, field)) is not None}
    for field, name in (("token", "GITHUB_TOKEN"), ("app_private_key", "GITHUB_APP_PRIVATE_KEY")):
        if getattr(github, field) is not None:
            values[field] = EnvVar(name)
    return GitHubResource(**values)


def build_resources(settings: Settings) -> dict[str, ConfigurableResource]:
    # From the process's environment, not ``settings.github``: Dagster resolves the resource's secrets
    # (EnvVar) there, and the rest must come from where they do (the same in a deployment).
    github = github_resource()
    aws = AwsResource(
        mode=settings.aws.mode,
        region=settings.aws.region,
        state_bucket=settings.aws.state_bucket,
        manager_home=str(settings.home),
        endpoint_url=settings.aws.endpoint_url,
        worker_environments=list(settings.worker_environments) if settings.worker_environments is not None else None,
    )
    resources: dict[str, ConfigurableResource] = {
        "manager": ManagerConfigResource(
            config_path=str(settings.config_path), run_tag_key_file=str(settings.dagster_home / KEY_FILE)
        ),
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
            kept_policies=str(settings.kept_policies_dir),
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
    return resources
