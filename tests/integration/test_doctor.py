"""`manager-pipeline doctor` as a process, against the AWS stand-in (moto) and the GitHub stand-in: it
passes on the demo set-up, and each fault made on purpose fails the check it belongs to, with its line.
No check changes anything, and no secret is ever in what it prints."""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from manager_pipeline.db.migrate import HEAD
from manager_pipeline.doctor.providers import LOCK_FILE
from tests.support import EXAMPLE_VARIABLES, REPO, manager_config

FULL_APP_PERMISSIONS = {
    "metadata": "read",
    "contents": "read",
    "statuses": "write",
    "pull_requests": "write",
    "issues": "write",
    "repository_hooks": "write",
}


@pytest.fixture
def migrated(manager):
    """The manager of the `manager` fixture, its database migrated (as `manager-pipeline setup` leaves it)."""
    from manager_pipeline.db.migrate import upgrade

    upgrade(manager.settings().database_url)
    return manager


def doctor(manager, *secrets: str, **env: str) -> tuple[int, dict[str, dict]]:
    """(exit code, check name -> result) of `doctor --format json` with ``env`` added; no ``secrets`` printed."""
    manager.env.update(env)
    done = manager.cli("doctor", "--format", "json", timeout=120)
    for secret in secrets:
        assert secret not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is (done.returncode == 0)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, {check["name"]: check for check in report["checks"]}


def not_passed(checks: dict[str, dict]) -> dict[str, str]:
    return {name: check["line"] for name, check in checks.items() if check["status"] != "ok"}


def test_doctor_passes_on_the_demo_setup_once_its_database_is_migrated(manager):
    code, checks = doctor(manager)
    assert code == 1 and list(not_passed(checks)) == ["database"]
    assert "is not migrated (no revision; this release's is " in checks["database"]["line"]
    assert "run `manager-pipeline setup`" in checks["database"]["line"]
    assert "not there yet: the manager creates it on the stand-in" in checks["state bucket"]["line"]
    # Read-only: neither the bucket nor the database file was made.
    assert manager.bucket not in {b["Name"] for b in manager.s3().list_buckets()["Buckets"]}
    assert not (manager.dagster_home / "manager.db").exists()

    done = manager.cli("run", "--source", "app", "--env", "staging", "--plan-only")  # migrates, makes the bucket
    assert done.returncode == 0, done.stdout + done.stderr
    code, checks = doctor(manager)
    assert code == 0, not_passed(checks)
    assert checks["state bucket"]["line"].startswith(f"{manager.bucket}: versioned")
    assert checks["database"]["line"].endswith(f"answers, migrated (revision {HEAD})")
    assert checks["provider lock"]["line"].startswith("hashicorp/aws 3.39.0 from the mirror")


def test_a_state_bucket_without_versioning(migrated, manager):
    manager.s3().create_bucket(Bucket=manager.bucket)
    code, checks = doctor(manager)
    assert code == 1
    assert not_passed(checks) == {"state bucket": checks["state bucket"]["line"]}
    line = checks["state bucket"]["line"]
    assert "versioning is off" in line and f"put-bucket-versioning --bucket {manager.bucket}" in line
    assert manager.s3().get_bucket_versioning(Bucket=manager.bucket).get("Status") is None  # left as it was


def test_credentials_of_one_environment_that_do_not_work(migrated, manager, source_repo, tmp_path):
    aws_config = tmp_path / "aws-config"
    aws_config.write_text("[profile staging-deployer]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    config = manager_config({"app": source_repo}).replace(
        "  production:\n    auto_apply: false\n",
        "  production:\n    auto_apply: false\n    aws: {profile: prod-deployer}\n",
    )
    manager.write_config(config)
    code, checks = doctor(manager, AWS_CONFIG_FILE=str(aws_config))
    assert code == 1
    assert list(not_passed(checks)) == ["aws production"]
    assert "this machine cannot act for production (profile `prod-deployer`)" in checks["aws production"]["line"]
    assert "is not in" in checks["aws production"]["line"]
    assert checks["aws staging"]["line"].startswith("acts as arn:aws:")


def test_a_database_not_migrated(manager):
    database = manager.dagster_home / "manager.db"
    database.parent.mkdir(parents=True)
    with sqlite3.connect(database) as connection:  # a release's tables from before migrations: no revision
        connection.execute("CREATE TABLE plan_records (plan_id VARCHAR(32) PRIMARY KEY, source VARCHAR(100))")
    code, checks = doctor(manager)
    assert code == 1
    assert list(not_passed(checks)) == ["database"]
    assert checks["database"]["line"] == (
        f"sqlite:///{database} is not migrated (no revision; this release's is {HEAD}): run "
        "`manager-pipeline setup`, which creates and migrates it"
    )
    with sqlite3.connect(database) as connection:  # left as it was
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"plan_records"}


def test_a_database_that_does_not_answer_is_named_without_its_password(migrated, manager):
    code, checks = doctor(manager, "hunter2pw", MANAGER_DATABASE_URL="postgresql://manager:hunter2pw@127.0.0.1:1/manager")
    assert code == 1
    line = checks["database"]["line"]
    assert line.startswith("the manager's database does not answer (postgresql://manager:***@127.0.0.1:1/manager)")


def _module_copy(manager, source_repo, tmp_path, edit):
    module = tmp_path / "module"
    shutil.copytree(REPO / "terraform", module, ignore=shutil.ignore_patterns(".terraform"))
    edit(module)
    manager.write_config(
        manager_config({"app": source_repo}).replace(f"terraform_dir: {REPO / 'terraform'}", f"terraform_dir: {module}")
    )


def test_a_lock_file_pinning_another_provider_version(migrated, manager, source_repo, tmp_path):
    def another_version(module):
        lock = module / LOCK_FILE
        lock.write_text(lock.read_text().replace('version     = "3.39.0"', 'version     = "3.74.0"'))

    _module_copy(manager, source_repo, tmp_path, another_version)
    code, checks = doctor(manager)
    assert code == 1 and list(not_passed(checks)) == ["provider lock"]
    assert "the lock file pins hashicorp/aws 3.74.0 but the mirror holds 3.39.0" in checks["provider lock"]["line"]


def test_a_module_asking_for_another_major_than_the_lock(migrated, manager, source_repo, tmp_path):
    def ask_for_4(module):
        main = module / "main.tf"
        main.write_text(main.read_text().replace('version = "~> 3.39"', 'version = "~> 4.0"'))

    _module_copy(manager, source_repo, tmp_path, ask_for_4)
    code, checks = doctor(manager)
    assert code == 1 and list(not_passed(checks)) == ["provider lock"]
    assert "asks for hashicorp/aws ~> 4.0 but the lock file pins 3.39.0" in checks["provider lock"]["line"]


def test_a_ui_served_to_others_without_a_login(migrated, manager):
    code, checks = doctor(manager, DAGSTER_WEBSERVER_URL="https://manager.example.com")
    assert code == 1 and list(not_passed(checks)) == ["ui exposure"]
    assert "MANAGER_UI_AUTH=proxy" in checks["ui exposure"]["line"]
    code, checks = doctor(manager, MANAGER_UI_AUTH="proxy")  # the proxy's address does not answer here
    assert code == 0, not_passed(checks)


# --- GitHub ------------------------------------------------------------------------------


@pytest.fixture
def on_github(migrated, github_source, tmp_path):
    """The `github_source` set-up, its module copy with the committed lock file (the fixture leaves it out)."""
    shutil.copy(REPO / "terraform" / LOCK_FILE, tmp_path / "terraform" / LOCK_FILE)
    return github_source


def _github_env(github_standin, **values) -> dict[str, str]:
    return {
        "GITHUB_API_URL": github_standin.url,
        "GITHUB_TIMEOUT": "2",
        "GITHUB_RETRIES": "0",
        "GITHUB_THROTTLE": "off",
        "GITHUB_WEBHOOK_SECRET": "whsec-doctor-0b5e",
        **values,
    }


def _second_source(manager, on_github, github_standin, accessible: bool) -> str:
    other = f"acme/api-{uuid.uuid4().hex[:8]}"
    head = "b" * 40
    github_standin.repo(
        other, commits={head: {"infra/variables.yml": EXAMPLE_VARIABLES.read_text()}}, branches={"main": head},
        accessible=accessible,
    )
    text = manager.config_path.read_text().replace(
        f"    repo: {on_github['name']}\n",
        f"    repo: {on_github['name']}\n  - name: api\n    repo: {other}\n",
    )
    manager.write_config(text)
    return other


def test_github_sources_pass_with_a_token_that_reaches_them(on_github, manager, github_standin):
    _second_source(manager, on_github, github_standin, accessible=True)
    env = _github_env(github_standin, GITHUB_TOKEN=on_github["token"])
    code, checks = doctor(manager, on_github["token"], env["GITHUB_WEBHOOK_SECRET"], **env)
    assert code == 0, not_passed(checks)
    assert checks["github credentials"]["line"] == "a token of `manager-bot`"
    assert checks["source app"]["line"].startswith(f"{on_github['name']}@main ({on_github['head'][:7]})")
    assert checks["webhook secret api"]["line"].startswith("GITHUB_WEBHOOK_SECRET is set")


def test_a_token_without_access_to_a_source(on_github, manager, github_standin):
    other = _second_source(manager, on_github, github_standin, accessible=False)
    env = _github_env(github_standin, GITHUB_TOKEN=on_github["token"])
    code, checks = doctor(manager, on_github["token"], **env)
    assert code == 1 and list(not_passed(checks)) == ["source api"]
    assert checks["source api"]["line"] == (
        f"{other}: not readable with these credentials (GitHub answered 404): give the token access to it, or "
        "install the App on it"
    )


def test_a_missing_webhook_secret_and_an_unreachable_github(on_github, manager, github_standin):
    env = _github_env(github_standin, GITHUB_TOKEN=on_github["token"], GITHUB_WEBHOOK_SECRET="")
    code, checks = doctor(manager, on_github["token"], **env)
    assert code == 1 and list(not_passed(checks)) == ["webhook secret app"]
    assert "set GITHUB_WEBHOOK_SECRET" in checks["webhook secret app"]["line"]

    code, checks = doctor(manager, on_github["token"], GITHUB_API_URL="http://127.0.0.1:1", GITHUB_RETRIES="0")
    assert code == 1
    assert checks["github credentials"]["status"] == "could-not-run"
    assert checks["github credentials"]["line"].startswith("cannot reach GitHub")
    assert checks["source app"]["status"] == "could-not-run"


def _app(github_standin, permissions: dict[str, str]) -> tuple[str, dict[str, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    # The stand-in's app control takes the installation's permissions too (they come with its tokens).
    github_standin._call(
        "POST", "app", {"app_id": 4343, "public_key": public, "installation_id": 77, "permissions": permissions}
    )
    return private, {"GITHUB_APP_ID": "4343", "GITHUB_APP_PRIVATE_KEY": private, "GITHUB_APP_INSTALLATION_ID": "77"}


@pytest.mark.parametrize("missing", [None, "statuses"], ids=["all-granted", "no-statuses"])
def test_a_github_app_and_its_installation_permissions(on_github, manager, github_standin, missing):
    permissions = {k: v for k, v in FULL_APP_PERMISSIONS.items() if k != missing}
    if missing:
        permissions["checks"] = "write"  # checks alone: the manager posts commit statuses
    private, app_env = _app(github_standin, permissions)
    manager.env.pop("GITHUB_TOKEN", None)
    env = _github_env(github_standin, GITHUB_TOKEN="") | app_env
    code, checks = doctor(manager, private.splitlines()[1], on_github["token"], **env)
    assert checks["github credentials"]["line"] == "GitHub App 4343, installation 77"
    assert checks["source app"]["status"] == "ok"  # read with the installation's token
    if missing is None:
        assert code == 0, not_passed(checks)
        return
    assert code == 1 and list(not_passed(checks)) == ["github permissions"]
    line = checks["github permissions"]["line"]
    assert line.startswith("the App's installation lacks statuses: write (to post commit statuses")
    assert "checks: write alone does not do" in line
