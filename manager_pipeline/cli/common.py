"""What every command group shares: the exit codes, the usage error, reading the settings and manager.yaml,
running a job in this process and printing its outcome, and who the operator is."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from manager_pipeline.config.file import load_config
from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import sign_author
from manager_pipeline.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# `drift` found drift (as `terraform plan -detailed-exitcode` says changes).
EXIT_DRIFT = 2


class UsageError(Exception):
    pass


def read_settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def read_manager_yaml(settings: Settings) -> ManagerConfig:
    try:
        return load_config(settings.config_path)
    except ManagerError as exc:
        raise UsageError(str(exc)) from None


def check_run_request(config: ManagerConfig, source: str, environment: str) -> None:
    """Everything that can be wrong with the request itself, checked before any run exists."""
    from manager_pipeline.sources import LocalSource

    try:
        spec = config.check_partition(source, environment)
        if spec.path is not None:
            LocalSource(spec).check_readable()
    except ManagerError as exc:
        raise UsageError(str(exc)) from None


def ui_command(settings: Settings) -> str:
    if (settings.config_path.parent / "Makefile").is_file() and Path.cwd() == settings.config_path.parent:
        return "make ui"
    return f"{shlex.quote(sys.argv[0])} ui"


def failure_message(result) -> str:
    """Where the run failed and why: the stage's own message, or the innermost cause of an
    unexpected error in one line (Dagster wraps it in "Error occurred while executing op ...")."""
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return f"{event.step_key}: {data.user_failure_data.description}"
            if data.error:
                error = data.error
                while error.cause is not None:
                    error = error.cause
                if error.cls_name == "DagsterExecutionInterruptedError":
                    return f"{event.step_key}: the run was stopped (interrupted) during this stage"
                first = (error.message.strip().splitlines() or [""])[0]
                return f"{event.step_key}: {first} (an unexpected error: the run's event log has the traceback)"
    return "the run failed; see the run's event log in the UI"


def redacted(line: str) -> str:
    """A line the CLI prints about a run, with every secret the process knows masked."""
    from manager_pipeline.redact import redact_text

    return redact_text(line)


def _print_outputs(outcome) -> None:
    from manager_pipeline.feedback.report import format_value

    if outcome.outputs:
        print("\nOutputs:")
        width = max(len(name) for name in outcome.outputs)
        for name, value in outcome.outputs.items():
            print(redacted(f"  {name:<{width}} = {format_value(value)}"))


def execute(settings: Settings, instance, job_name: str, source: str, environment: str, tags: dict, then=None) -> int:
    """Run a job for one partition in this process; print its outcome (``then(outcome)`` prints more about
    it), or where it failed and why."""
    from manager_pipeline.defs.location import build_definitions
    from manager_pipeline.defs.partitions import partition_key, partition_tags
    from manager_pipeline.signing import run_tag_key

    # Found where a person looks: the job's Partitions page and the partition's history count it. The
    # author this command was given (--author: the operator's word) is vouched for by the manager.
    tags = sign_author(partition_tags(job_name, source, environment) | tags, run_tag_key(settings))
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    if settings.executor == "celery":
        # This process orchestrates; the steps run on the workers of the environment's queue.
        from manager_pipeline.defs.celery import execute_on_workers

        result = execute_on_workers(job_name, instance, source, environment, tags, quiet)
    else:
        job = build_definitions(settings).resolve_job_def(job_name)
        result = job.execute_in_process(
            partition_key=partition_key(source, environment),
            instance=instance,
            tags=tags,
            run_config=quiet,
            raise_on_error=False,
        )
    url = f"{settings.webserver_url}/runs/{result.run_id}"
    if not result.success:
        print(redacted(f"error: run {result.run_id} failed at {failure_message(result)}"), file=sys.stderr)
        print(f"Run details: {ui_command(settings)}  ->  {url}", file=sys.stderr)
        return EXIT_FAILED
    outcome = result.output_for_node("feedback")
    _print_outputs(outcome)
    if then is not None:
        then(outcome)
    print(redacted(f"\nRun {result.run_id} finished: {outcome.status.value}. {outcome.headline}"))
    print(f"Open it in the Dagster UI: {ui_command(settings)}  ->  {url}")
    return EXIT_OK


def load_resources(settings: Settings):
    from manager_pipeline.defs.resources import build_resources
    from manager_pipeline.errors import ConfigError

    try:
        return build_resources(settings)
    except ConfigError as exc:
        # A setting the operator must fix (e.g. GITHUB_TIMEOUT=15s): nothing ran.
        raise UsageError(str(exc)) from None


def approver(github) -> tuple[str, str]:
    """Who approves, and how that is known: the login of the operator's own GitHub token
    (MANAGER_APPROVER_TOKEN, verified by GitHub), else the operating-system user the process runs as
    (from the kernel's uid, not USER/LOGNAME, which anyone can set). No flag can name someone else."""
    import os
    import pwd

    from manager_pipeline.redact import register_secret

    secret = read_settings().approvers.token
    if secret is not None:
        token = secret.get_secret_value()
        register_secret(token)
        client = github.model_copy(update={"token": token, "app_id": None, "app_private_key": None}).client(True)
        try:
            return client.token_login(), "verified by GitHub from MANAGER_APPROVER_TOKEN"
        except Exception as exc:  # noqa: BLE001 - any failure means the identity is not proven
            raise UsageError(f"MANAGER_APPROVER_TOKEN was not accepted by GitHub ({exc}); nothing was approved") from None
    return pwd.getpwuid(os.geteuid()).pw_name, "the operating-system user"
