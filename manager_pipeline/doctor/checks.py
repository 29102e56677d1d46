"""Every check, for this manager.yaml and environment, in the order a set-up is done (docs/setup.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from manager_pipeline.config.file import load_config
from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.doctor import aws, database, github, providers, ui
from manager_pipeline.doctor.result import CheckResult, could_not_run, failed, ok
from manager_pipeline.errors import ManagerError
from manager_pipeline.settings import Settings


def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    """A check that breaks says so and does not pass; the others still run."""
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - any failure of a check is its result, never the command's end
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return could_not_run(name, f"the check itself failed ({type(exc).__name__}: {first})")


def _github_checks(config: ManagerConfig, env: Mapping[str, str], polling: bool) -> Iterator[CheckResult]:
    from manager_pipeline.defs.resources import github_resource

    try:
        resource = github_resource(env)
    except ManagerError as exc:
        yield failed(github.CREDENTIALS, str(exc))
        return
    credentials = _guarded(github.CREDENTIALS, lambda: github.check_credentials(resource, config))
    yield credentials
    yield _guarded(github.PERMISSIONS, lambda: github.check_permissions(resource, config))
    client = github.source_client(resource) if credentials.passed and resource.configured else None
    for spec in config.sources.values():
        yield _guarded(f"source {spec.name}", lambda spec=spec: github.check_source(client, spec))
    on_github = github.github_sources(config)
    for spec in on_github:
        yield _guarded(f"webhook secret {spec.name}", lambda spec=spec: github.check_webhook_secret(spec, env, polling))
    if not on_github:
        yield ok("webhook secret", "not needed: no source on GitHub")


def _aws_checks(settings: Settings, config: ManagerConfig) -> Iterator[CheckResult]:
    target = _guarded("aws", lambda: aws.base_target(settings))
    if isinstance(target, CheckResult):
        yield target
        return
    for policy in config.environments.values():
        yield _guarded(f"aws {policy.name}", lambda policy=policy: aws.check_environment(target, policy))
    yield _guarded(aws.STATE_BUCKET, lambda: aws.check_state_bucket(target))
    yield _guarded(aws.ARTIFACT_BUCKET, lambda: aws.check_artifact_bucket(target, settings))


def _provider_check(settings: Settings, config: ManagerConfig) -> CheckResult:
    if settings.providers == "registry":
        return providers.check_registry(config.terraform_dir)
    return providers.check_mirror(config.terraform_dir, settings.tools_dir)


def run_checks(env: Mapping[str, str] | None = None) -> list[CheckResult]:
    """The results of every check; none of them changes anything."""
    try:
        settings = Settings.from_env(env)
    except ValueError as exc:
        return [failed("settings", str(exc))]
    # The variables the settings were read from: the secrets manager.yaml names, MANAGER_UI_AUTH.
    env = settings.named_secrets
    try:
        config = load_config(settings.config_path)
    except ManagerError as exc:
        return [ok("settings", "the environment's settings are valid"), failed("manager.yaml", str(exc))]
    results = [ok("settings", "the environment's settings are valid"), ok("manager.yaml", f"{settings.config_path}")]
    results += _github_checks(config, env, settings.polling)
    results += _aws_checks(settings, config)
    results.append(_guarded(database.NAME, lambda: database.check_database(settings.database_url)))
    results.append(_guarded(providers.NAME, lambda: _provider_check(settings, config)))
    results.append(_guarded(ui.NAME, lambda: ui.check_ui(settings.webserver_url, env)))
    return results
