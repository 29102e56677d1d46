"""Beyond one machine, without one: the settings that send steps to Celery workers, the values handed
between steps (never a secret), the working directory built again from what travels, and each
environment's own AWS credentials."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from dagster import in_process_executor

from manager_pipeline.aws.target import AwsTarget, environment_target
from manager_pipeline.config.file import parse_config
from manager_pipeline.config.model import AwsAccess, SourceSpec
from manager_pipeline.contract import DeployConfig, load_variables, resolve
from manager_pipeline.defs.celery import queue_for
from manager_pipeline.defs.executor import executor_for
from manager_pipeline.defs.resources import AwsResource
from manager_pipeline.errors import ConfigError, ManagerError
from manager_pipeline.handoff.values import DatabaseStash, DocumentRef, HandoffError, dumps, loads
from manager_pipeline.plans import Plan, PlanState
from manager_pipeline.redact import forget_registered_secrets, redact_text, register_secret
from manager_pipeline.settings import AwsSettings, Settings
from manager_pipeline.sources import VariablesDocument
from manager_pipeline.terraform.errored import SharedStates, keep_errored_state, push_errored_states
from manager_pipeline.terraform.plan import PlanSummary
from manager_pipeline.terraform.workdir import (
    BACKEND_FILE,
    TFVARS_FILE,
    BackendSettings,
    built_at,
    portable,
    prepare_workdir,
    rebuild_workdir,
)
from tests.unit.test_workdir import CONFIG

WEBHOOK = "https://hooks.slack.com/services/T00/B00/handoff-unit-secret"
VARIABLES = f"""
project_name: web
environments:
  staging: {{region: us-east-1, instance_type: t3.micro, min_instances: 1, max_instances: 2}}
notifications:
  slack_webhook: {WEBHOOK}
"""
CELERY = {
    "MANAGER_EXECUTOR": "celery",
    "MANAGER_DATABASE_URL": "postgresql://postgres@db.internal/manager",
    "PLAN_ARTIFACT_BUCKET": "acme-plans",
    "AWS_ENDPOINT_URL": "http://aws.internal:5000",
    "MANAGER_HANDOFF_KEY": "handoff-unit-key",
}


@pytest.fixture(autouse=True)
def no_registered_secrets():
    forget_registered_secrets()
    yield
    forget_registered_secrets()


# --- settings and the executor -------------------------------------------------------------------


def test_the_default_runs_in_process_and_hands_values_in_memory():
    settings = Settings.from_env({})
    assert (settings.executor, settings.handoff, settings.worker_environments) == ("in_process", "memory", None)
    assert executor_for(settings) is in_process_executor


def test_celery_hands_values_through_the_database_and_sends_steps_to_their_environments_queue():
    settings = Settings.from_env(CELERY | {"MANAGER_WORKER_ENVIRONMENTS": "staging, production"})
    assert (settings.executor, settings.handoff) == ("celery", "database")
    assert settings.worker_environments == ("staging", "production")
    assert settings.celery_broker.startswith("pyamqp://") and settings.celery_backend.startswith("redis://")
    assert executor_for(settings).name == "celery"
    assert queue_for("production") == "production"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"MANAGER_EXECUTOR": "k8s"}, "MANAGER_EXECUTOR must be 'in_process' or 'celery', not 'k8s'"),
        (CELERY | {"MANAGER_DATABASE_URL": ""}, "set MANAGER_DATABASE_URL to a database every worker reaches"),
        (CELERY | {"PLAN_ARTIFACT_BUCKET": ""}, "set PLAN_ARTIFACT_BUCKET, the S3 bucket through which saved plans"),
        (CELERY | {"AWS_ENDPOINT_URL": ""}, "the embedded AWS stand-in is this machine's own"),
        (CELERY | {"MANAGER_HANDOFF": "memory"}, "MANAGER_HANDOFF=memory cannot reach them"),
        ({"MANAGER_HANDOFF": "s3"}, "MANAGER_HANDOFF=s3 keeps values in PLAN_ARTIFACT_BUCKET: set it"),
    ],
)
def test_a_set_up_that_cannot_run_steps_elsewhere_is_one_line_that_says_what_to_set(env, says):
    with pytest.raises(ValueError) as raised:
        Settings.from_env(env)
    assert says in str(raised.value) and "\n" not in str(raised.value)


# --- handed values -----------------------------------------------------------------------------------


class Here:
    """The receiving machine: the source as it is now, the plan store."""

    def __init__(self, text: str, plans: dict | None = None):
        self.text, self.plans, self.read = text, plans or {}, []

    def document(self, ref: DocumentRef) -> VariablesDocument:
        self.read.append(ref.sha)
        return ref.restore(self.text)

    def plan(self, plan_id: str) -> Plan:
        return self.plans[plan_id]


SPEC = SourceSpec(name="web", environments=("staging",), repo="acme/web")


def document(text: str = VARIABLES) -> VariablesDocument:
    return VariablesDocument("web", text, "acme/web@abc:infra/variables.yml", "a" * 40, "main", True, spec=SPEC)


def config_of(doc: VariablesDocument) -> DeployConfig:
    data = load_variables(doc.text, ["staging"], doc.location)
    return replace(resolve(data, "staging", "web", doc.location), origin=doc)


def test_a_document_travels_as_where_it_was_read_and_is_read_again_there():
    doc = document()
    body = dumps({"document": doc}, "the output `document` of fetch_variables")
    assert WEBHOOK.encode() not in body and b"project_name" not in body
    here = Here(VARIABLES)
    taken = loads(body, here)["document"]
    assert taken == doc and taken.spec == SPEC and here.read == ["a" * 40]
    with pytest.raises(HandoffError, match="changed since this run read it .*nothing was applied; start it again"):
        loads(body, Here(VARIABLES.replace("web", "shop", 1)))


def test_a_deploy_config_travels_without_its_webhook_and_gets_it_back_from_its_document():
    config = config_of(document())
    assert config.slack_webhook == WEBHOOK
    body = dumps(config, "the output `result` of validate")
    assert WEBHOOK.encode() not in body
    taken = loads(body, Here(VARIABLES))
    assert taken == config and taken.slack_webhook == WEBHOOK and taken.digest == config.digest
    # Read again, the webhook is a secret of the receiving process too.
    assert redact_text(f"posting to {WEBHOOK}") == "posting to ***"
    # A config made from a plan's record (no document) travels as its tfvars, and needs no read of a source.
    quiet, bare = Here(VARIABLES), replace(config, slack_webhook=None, origin=None)
    assert loads(dumps(bare, "x"), quiet) == bare and quiet.read == []


def test_a_secret_the_process_knows_is_never_handed_on():
    register_secret("ghp_token-of-the-manager-1234")
    with pytest.raises(HandoffError) as raised:
        dumps({"note": "made with ghp_token-of-the-manager-1234"}, "the output `result` of feedback")
    assert str(raised.value).startswith("the output `result` of feedback holds a secret the manager knows")
    assert "ghp_" not in str(raised.value)
    with pytest.raises(HandoffError, match="holds a Slack webhook and no document"):
        dumps(replace(config_of(document()), origin=None), "x")


def test_a_plan_travels_as_its_id_and_comes_with_this_machines_files(tmp_path):
    plan = Plan(
        plan_id="abc123",
        created_at=0.0,
        plan_sha256="0" * 64,
        state=PlanState.PLANNED,
        directory=tmp_path / "elsewhere" / "abc123",
        source="web",
        environment="staging",
        sha=None,
        branch="main",
        variables_digest="v",
        module_digest="m",
        terraform_version="1.15.0",
        has_changes=True,
        summary=PlanSummary(),
    )
    here_copy = replace(plan, directory=tmp_path / "here" / "abc123")
    body = dumps([plan], "the output `approved` of approval_gate")
    assert str(tmp_path).encode() not in body
    assert loads(body, Here(VARIABLES, {"abc123": here_copy})) == [here_copy]


def test_the_database_stash_keeps_the_newest_value_per_key(tmp_path):
    stash = DatabaseStash(f"sqlite:///{tmp_path / 'manager.db'}")
    assert stash.get("run/init/result") is None
    stash.put("run/init/result", b"first")
    stash.put("run/init/result", b"retried")
    assert stash.get("run/init/result") == b"retried"


# --- the working directory, built again on another machine ----------------------------------------


def test_init_hands_on_what_builds_its_working_directory_again_elsewhere(tmp_path):
    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    backend = BackendSettings(bucket="b", region="us-east-1", key="web/staging/terraform.tfstate")
    access = AwsAccess(role_arn="arn:aws:iam::123456789012:role/deployer")
    made = prepare_workdir(tmp_path / "init-host" / "run", module, CONFIG, backend, "http://aws.internal:5000")
    travelling = portable(made, module, access)
    assert set(travelling.files) == {BACKEND_FILE, TFVARS_FILE, "zz_manager_endpoint_override.tf"}
    assert travelling.access == access
    (made.path / ".terraform").mkdir()
    assert built_at(travelling, made.path)
    elsewhere = rebuild_workdir(travelling, tmp_path / "plan-host" / "run")
    assert elsewhere.path == tmp_path / "plan-host" / "run" and not built_at(elsewhere, elsewhere.path)
    assert json.loads((elsewhere.path / TFVARS_FILE).read_text()) == CONFIG.to_tfvars()
    assert (elsewhere.path / "main.tf").read_text() == (module / "main.tf").read_text()
    (module / "main.tf").write_text("# changed on this worker\n")
    with pytest.raises(ManagerError, match="is not the one init used .*run the same manager version on every worker"):
        rebuild_workdir(travelling, tmp_path / "plan-host" / "run")


# --- each environment's own credentials ------------------------------------------------------------


def test_an_environment_names_its_credentials_in_manager_yaml(tmp_path):
    role = "arn:aws:iam::123456789012:role/d"
    text = (
        "sources: []\nenvironments:\n  staging: {auto_apply: true}\n"
        f"  production:\n    approvers: [alice]\n    aws: {{profile: prod, role_arn: '{role}'}}\n"
    )
    path = tmp_path / "manager.yaml"
    config = parse_config(text, path)
    assert config.policy("production").aws == AwsAccess(profile="prod", role_arn=role)
    assert config.policy("staging").aws is None
    with pytest.raises(ConfigError, match=r"manager.yaml:6:10: environments.production.aws: give a `profile`"):
        parse_config(text.replace(f"profile: prod, role_arn: '{role}'", ""), path)
    with pytest.raises(ConfigError, match=r"aws.role_arn: expected an IAM role ARN"):
        parse_config(text.replace(role, "deployer"), path)


def aws_resource(**fields) -> AwsResource:
    return AwsResource(mode="aws", region="eu-west-1", state_bucket="state", manager_home="/nowhere", **fields)


def test_a_worker_refuses_the_steps_of_an_environment_it_was_not_started_for():
    aws = aws_resource(worker_environments=["staging"])
    assert aws.target("staging").environment is None
    with pytest.raises(ManagerError) as raised:
        aws.target("production")
    assert str(raised.value) == (
        "this worker acts for staging, not production: it holds no credentials for production, whose steps go to "
        "the `production` queue of workers started with --environments production"
    )
    # Not a worker (the daemon's run, the CLI): any environment.
    assert aws_resource().target("production").state_bucket == "state"


def test_a_profile_gives_terraform_its_keys_and_none_of_the_managers(tmp_path, monkeypatch):
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile prod]\naws_access_key_id = AKIAPRODUCTION000001\naws_secret_access_key = prod-secret-access-key-1\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    base = AwsTarget(settings=AwsSettings(mode="aws", region="eu-west-1", state_bucket="state"), endpoint_url=None)
    target = environment_target(base, "production", AwsAccess(profile="prod"))
    env = target.process_env(
        {"PATH": "/bin", "AWS_ACCESS_KEY_ID": "AKIAMANAGER", "AWS_PROFILE": "manager", "AWS_REGION": "eu-west-1"}
    )
    assert env == {
        "PATH": "/bin",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "AKIAPRODUCTION000001",
        "AWS_SECRET_ACCESS_KEY": "prod-secret-access-key-1",
    }
    # The manager's own target still passes its environment's AWS settings through.
    assert base.process_env({"AWS_PROFILE": "manager"}) == {"AWS_PROFILE": "manager"}
    assert redact_text("key prod-secret-access-key-1") == "key ***"
    with pytest.raises(ManagerError) as raised:
        environment_target(base, "production", AwsAccess(profile="missing"))
    assert str(raised.value) == (
        f"this machine cannot act for production (profile `missing`): AWS profile `missing` is not in {config}; "
        "add it, or run production's steps on a worker that has it"
    )


class Bucket:
    """The artifact bucket, as much of boto3's S3 client as kept states use."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def upload_file(self, path, bucket, key):
        self.objects[key] = Path(path).read_bytes()

    def list_objects_v2(self, Bucket, Prefix):  # noqa: N803 - boto3's names
        return {"Contents": [{"Key": key} for key in sorted(self.objects) if key.startswith(Prefix)]}

    def download_file(self, bucket, key, path):
        Path(path).write_bytes(self.objects[key])

    def delete_object(self, Bucket, Key):  # noqa: N803
        self.objects.pop(Key, None)


class Pushes:
    def __init__(self):
        self.states: list[bytes] = []

    def state_push(self, path: Path) -> None:
        self.states.append(path.read_bytes())


def test_a_state_a_failed_apply_could_not_save_is_pushed_by_the_next_init_on_any_machine(tmp_path):
    bucket = Bucket()
    shared = SharedStates(bucket, "acme-plans")
    workdir = tmp_path / "worker-a" / "run"
    workdir.mkdir(parents=True)
    (workdir / "errored.tfstate").write_text('{"serial": 7}')
    kept = keep_errored_state(workdir, tmp_path / "worker-a" / "errored-state", "web", "staging")
    assert shared.share(kept, "web", "staging") == f"s3://acme-plans/errored-state/web/staging/{kept.name}"
    kept.unlink()  # as TerraformResource.share_kept_state does: the bucket's copy is the one
    runner = Pushes()
    pushed = push_errored_states(runner, tmp_path / "worker-b" / "errored-state", "web", "staging", shared)
    assert runner.states == [b'{"serial": 7}'] and [path.name for path in pushed] == [kept.name]
    assert bucket.objects == {}
    # Pushed once: neither machine pushes it again.
    for worker in ("worker-a", "worker-b"):
        assert push_errored_states(Pushes(), tmp_path / worker / "errored-state", "web", "staging", shared) == []
