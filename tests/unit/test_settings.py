"""The settings: one object read from the environment (settings.py) and nowhere else, its groups, one
duration grammar shared with manager.yaml, one switch, secrets that never show, and one line for a
value that does not fit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import SecretStr

from manager_pipeline import durations
from manager_pipeline.config.file import parse_config
from manager_pipeline.errors import ConfigError
from manager_pipeline.settings import (
    GitHubSettings,
    NamedSecrets,
    OidcSettings,
    Settings,
    SettingsError,
)

PACKAGE = Path(__file__).resolve().parents[2] / "manager_pipeline"

# The modules that touch the process's environment, and why that is not reading the manager's settings.
MAY_TOUCH_THE_ENVIRONMENT = {
    "settings.py": "the one reader of the manager's settings",
    "redact.py": "masks the value of every variable whose name says secret, the manager's and any other "
    "(AWS_SECRET_ACCESS_KEY, DAGSTER_PG_PASSWORD, the secrets manager.yaml names): not a setting",
    "aws/target.py": "hands Terraform a curated child environment (system and AWS variables only) and names "
    "AWS_CONFIG_FILE as boto3 reads it",
    "terraform/toolchain.py": "PATH for the `terraform version` child process",
    "policy/install.py": "PATH in the curated environment checkov runs with",
    "defs/instance.py": "writes DAGSTER_HOME, Dagster's own variable, for Dagster to read",
    "cli/ui.py": "starts the Dagster webserver and daemon with this process's environment: they load the code "
    "location, which reads the settings itself",
}


def _environment_uses(tree: ast.AST) -> list[int]:
    """Lines that touch ``os.environ``/``os.environb``/``os.getenv``/``os.putenv``/``os.unsetenv``, or import them."""
    names = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name in names for a in node.names):
            lines.append(node.lineno)
    return sorted(lines)


def test_no_module_but_the_allowed_ones_touches_the_environment():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = _environment_uses(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if lines:
            found[path.relative_to(PACKAGE).as_posix()] = lines
    readers = {f"manager_pipeline/{m}:{','.join(map(str, lines))}" for m, lines in found.items()}
    unexpected = sorted(
        r for r in readers if r.split(":")[0].removeprefix("manager_pipeline/") not in MAY_TOUCH_THE_ENVIRONMENT
    )
    assert not unexpected, (
        f"{', '.join(unexpected)} read the environment: take the value from the settings (a field of a group in "
        "manager_pipeline/settings.py), or add the module to MAY_TOUCH_THE_ENVIRONMENT with the reason it is no setting"
    )
    stale = sorted(set(MAY_TOUCH_THE_ENVIRONMENT) - set(found))
    assert not stale, f"{', '.join(stale)} no longer touch the environment: take them off MAY_TOUCH_THE_ENVIRONMENT"


def test_the_check_sees_every_spelling_of_a_read():
    source = "import os\nfrom os import getenv\na = os.environ['X']\nb = os.getenv('Y')\nc = os.environ.get('Z')\n"
    assert _environment_uses(ast.parse(source)) == [2, 3, 4, 5]


# --- the groups ------------------------------------------------------------------------------------

EVERYTHING = {
    "MANAGER_CONFIG": "/srv/manager/manager.yaml",
    "MANAGER_TOOLS_DIR": "/opt/tools",
    "TERRAFORM_BIN": "/usr/bin/terraform",
    "DAGSTER_WEBSERVER_URL": "https://manager.example.com/",
    "MANAGER_PROVIDERS": "registry",
    "MANAGER_PROVIDER_SERVER": "off",
    "MANAGER_DATABASE_URL": "postgresql://manager:db-password-123@db/manager",
    "MANAGER_POLLING": "yes",
    "MANAGER_LOCK_TIMEOUT": "5m",
    "MANAGER_AWS": "aws",
    "TF_STATE_BUCKET": "acme-state",
    "TF_STATE_REGION": "eu-west-1",
    "AWS_REGION": "us-west-2",
    "PLAN_ARTIFACT_BUCKET": "acme-plans",
    "GITHUB_API_URL": "https://ghe.example/api/v3",
    "GITHUB_TOKEN": "ghp_token_value_123",
    "GITHUB_APP_ID": "4242",
    "GITHUB_APP_PRIVATE_KEY": "-----BEGIN KEY-----secret-key-body",
    "GITHUB_APP_INSTALLATION_ID": "99",
    "GITHUB_TIMEOUT": "2.5",
    "GITHUB_RETRIES": "0",
    "GITHUB_RETRY_BACKOFF": "0.05",
    "GITHUB_MAX_RATE_LIMIT_WAIT": "30",
    "GITHUB_THROTTLE": "Off",
    "GITHUB_WEBHOOK_SECRET": "webhook-secret-value",
    "MANAGER_WEBHOOK_URL": "https://manager.example.com",
    "MANAGER_OIDC_ISSUER": "https://issuer.example",
    "MANAGER_OIDC_AUDIENCE": "acme-manager",
    "MANAGER_EXECUTOR": "celery",
    "MANAGER_CELERY_BROKER": "pyamqp://mq//",
    "MANAGER_CELERY_BACKEND": "redis://cache/1",
    "MANAGER_HANDOFF_KEY": "handoff-key-value-789",
    "MANAGER_WORKER_ENVIRONMENTS": "staging,production",
    "MANAGER_WORKDIR_RETENTION": "36h",
    "MANAGER_PLAN_RETENTION": "2d",
    "MANAGER_APPROVER_TOKEN": "ghp_approver_value_456",
}
SECRETS = (
    "ghp_token_value_123",
    "secret-key-body",
    "webhook-secret-value",
    "ghp_approver_value_456",
    "db-password",
    "handoff-key-value-789",
)


def test_every_variable_lands_in_its_group():
    s = Settings.from_env(EVERYTHING)
    assert (s.config_path, s.home, s.dagster_home) == (
        Path("/srv/manager/manager.yaml"),
        Path("/srv/manager/.manager"),
        Path("/srv/manager/.manager/dagster"),
    )
    assert (s.tools_dir, s.terraform_bin, s.webserver_url) == (
        Path("/opt/tools"),
        Path("/usr/bin/terraform"),
        "https://manager.example.com",
    )
    assert (s.providers, s.provider_server, s.polling, s.lock_timeout) == ("registry", False, True, "5m")
    assert s.database_url == EVERYTHING["MANAGER_DATABASE_URL"]
    assert (s.aws.mode, s.aws.state_bucket, s.aws.region, s.aws.artifact_bucket) == (
        "aws",
        "acme-state",
        "eu-west-1",
        "acme-plans",
    )
    g = s.github
    assert (g.api_url, g.app_id, g.installation_id, g.timeout, g.retries, g.backoff, g.max_rate_limit_wait) == (
        "https://ghe.example/api/v3",
        "4242",
        99,
        2.5,
        0,
        0.05,
        30,
    )
    assert g.throttle is False and g.webhook_url == "https://manager.example.com"
    assert g.token.get_secret_value() == "ghp_token_value_123"
    assert g.webhook_secret.get_secret_value() == "webhook-secret-value"
    assert (s.oidc.issuer, s.oidc.audience) == ("https://issuer.example", "acme-manager")
    c = s.celery
    assert (c.executor, c.handoff, c.broker, c.backend, c.worker_environments) == (
        "celery",
        "database",
        "pyamqp://mq//",
        "redis://cache/1",
        ("staging", "production"),
    )
    assert (s.retention.workdir_hours, s.retention.plan_hours) == (36, 48)
    assert s.approvers.token.get_secret_value() == "ghp_approver_value_456"
    # The names callers used before the groups.
    assert (s.executor, s.handoff, s.celery_broker, s.worker_environments) == (
        "celery",
        "database",
        "pyamqp://mq//",
        ("staging", "production"),
    )
    assert (s.artifact_bucket, s.workdir_retention_hours, s.plan_retention_hours) == ("acme-plans", 36, 48)


def test_the_defaults_make_the_embedded_set_up_and_leave_unset_what_others_default():
    s = Settings.from_env({"MANAGER_CONFIG": "/srv/m/manager.yaml", "XDG_CACHE_HOME": "/cache"})
    assert s.database_url == "sqlite:////srv/m/.manager/dagster/manager.db"
    assert s.tools_dir == Path("/cache/manager-pipeline") and s.terraform_bin is None
    assert (s.aws.mode, s.aws.region, s.aws.state_bucket) == ("local", "us-east-1", "manager-pipeline-state")
    assert (s.providers, s.provider_server, s.polling) == ("mirror", True, False)
    assert (s.retention.workdir_hours, s.retention.plan_hours) == (7 * 24, 30 * 24)
    # The GitHub resource and the OIDC verifier keep the only declaration of their defaults.
    assert s.github == GitHubSettings() and s.oidc == OidcSettings()
    assert s.celery.worker_environments is None and s.approvers.token is None


def test_an_empty_variable_is_an_unset_one():
    s = Settings.from_env({"MANAGER_CONFIG": "/m/manager.yaml", "MANAGER_DATABASE_URL": "", "GITHUB_TOKEN": ""})
    assert s.database_url.startswith("sqlite:///") and s.github.token is None


def test_a_mapping_is_read_alone_not_over_the_process_environment(monkeypatch):
    monkeypatch.setenv("MANAGER_POLLING", "on")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_from_the_process")
    assert Settings.from_env().polling is True
    given = Settings.from_env({})
    assert given.polling is False and given.github.token is None


def test_a_worker_of_some_environments():
    worker = Settings.from_env({}).for_worker(["staging"])
    assert worker.worker_environments == ("staging",) and Settings.from_env({}).worker_environments is None


# --- secrets ---------------------------------------------------------------------------------------


def test_secrets_never_show_in_a_repr_or_text():
    s = Settings.from_env(EVERYTHING)
    assert isinstance(s.github.token, SecretStr) and isinstance(s.approvers.token, SecretStr)
    shown = repr(s) + str(s) + repr(s.github) + repr(s.named_secrets) + str(s.model_dump())
    for secret in SECRETS:
        assert secret not in shown


def test_a_bad_value_next_to_secrets_names_the_variable_and_never_a_secret():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(EVERYTHING | {"GITHUB_RETRIES": "many"})
    message = str(raised.value)
    assert message == (
        "GITHUB_RETRIES='many' is not valid: set it to a whole number of retries, e.g. 5 (0: none), or leave it unset"
    )
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, ConfigError)
    for secret in SECRETS:
        assert secret not in message


def test_the_secrets_manager_yaml_names_are_looked_up_where_the_settings_were_read():
    secrets = Settings.from_env({"API_WEBHOOK_SECRET": "source-own-secret"}).named_secrets
    assert isinstance(secrets, NamedSecrets)
    assert secrets.get("API_WEBHOOK_SECRET") == "source-own-secret" and secrets.get("OTHER") is None
    assert "source-own-secret" not in repr(secrets)


# --- one line for a value that does not fit --------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"MANAGER_AWS": "prod"}, "MANAGER_AWS must be 'local' or 'aws', not 'prod'"),
        ({"MANAGER_AWS": "aws"}, "MANAGER_AWS=aws needs TF_STATE_BUCKET: the S3 bucket that holds Terraform state"),
        ({"MANAGER_PROVIDERS": "cache"}, "MANAGER_PROVIDERS must be 'mirror' or 'registry', not 'cache'"),
        ({"MANAGER_HANDOFF": "disk"}, "MANAGER_HANDOFF must be 'memory' or 'database' or 's3', not 'disk'"),
        (
            {"MANAGER_POLLING": "sometimes"},
            "MANAGER_POLLING='sometimes' is not valid: set it to on or off, or leave it unset",
        ),
        (
            {"MANAGER_PROVIDER_SERVER": "maybe"},
            "MANAGER_PROVIDER_SERVER='maybe' is not valid: set it to on or off, or leave it unset",
        ),
        (
            {"GITHUB_THROTTLE": "x"},
            "GITHUB_THROTTLE='x' is not valid: set it to on or off (off only for a stand-in), or leave it unset",
        ),
        (
            {"MANAGER_WORKDIR_RETENTION": "forever"},
            "MANAGER_WORKDIR_RETENTION='forever' is not a duration: give hours or days above zero, e.g. 12h or 7d",
        ),
    ],
)
def test_a_value_that_does_not_fit_is_one_line_naming_the_variable_and_what_to_put_there(env, says):
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert str(raised.value) == says


def test_several_values_that_do_not_fit_are_one_line_too():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"MANAGER_POLLING": "x", "GITHUB_TIMEOUT": "soon"})
    message = str(raised.value)
    assert "\n" not in message and "MANAGER_POLLING='x'" in message and "GITHUB_TIMEOUT='soon'" in message


def test_a_group_alone_says_the_same():
    with pytest.raises(SettingsError, match=r"^GITHUB_TIMEOUT='0' is not valid: set it to a number of seconds"):
        GitHubSettings.from_env({"GITHUB_TIMEOUT": "0"})


# --- one switch, one duration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "on"),
    [(w, True) for w in ("on", "1", "true", "yes", "ON", " Yes ")]
    + [(w, False) for w in ("off", "0", "false", "no", "No")],
)
def test_one_switch_for_every_on_off_setting(written, on):
    s = Settings.from_env({"MANAGER_POLLING": written, "MANAGER_PROVIDER_SERVER": written, "GITHUB_THROTTLE": written})
    assert s.polling is on and s.provider_server is on and s.github.throttle is on


@pytest.mark.parametrize(
    ("written", "hours"),
    [("12h", 12), ("7d", 168), ("1.5d", 36), ("30m", 0.5), ("90s", 0.025), ("12 h", 12), ("7D", 168), (".5d", 12)],
)
def test_one_duration_grammar_for_manager_yaml_and_the_environment(tmp_path, written, hours):
    assert durations.hours(written) == pytest.approx(hours)
    assert Settings.from_env({"MANAGER_PLAN_RETENTION": written}).plan_retention_hours == pytest.approx(hours)
    config = parse_config(
        f"sources: []\nenvironments:\n  production: {{max_plan_age: '{written}', approvers: [alice]}}\n",
        tmp_path / "manager.yaml",
    )
    assert config.policy("production").max_plan_age_hours == pytest.approx(hours)


def test_a_bare_number_is_hours_in_the_environment_only(tmp_path):
    assert Settings.from_env({"MANAGER_WORKDIR_RETENTION": "2"}).workdir_retention_hours == 2
    with pytest.raises(durations.DurationError):
        durations.hours("2")
    with pytest.raises(ConfigError, match="expected hours or days such as `12h` or `7d`, got '2'"):
        parse_config(
            "sources: []\nenvironments:\n  production: {max_plan_age: '2', approvers: [alice]}\n",
            tmp_path / "manager.yaml",
        )


@pytest.mark.parametrize("written", ["0h", "-1d", "nan", "inf", "1e2h", "7w", "", "h"])
def test_what_is_no_duration(written):
    with pytest.raises(durations.DurationError):
        durations.hours(written, bare_hours=True)
