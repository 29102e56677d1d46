"""The doctor's checks that need no service: the lock file and constraints, the registry's answer, the
UI setting, webhook secrets, the App's permissions, and what a result may print."""

from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path

import pytest

from manager_pipeline.config.file import parse_config
from manager_pipeline.config.model import SourceSpec, TriggerSpec
from manager_pipeline.doctor import github, providers, ui
from manager_pipeline.doctor.command import render_text
from manager_pipeline.doctor.result import Status, could_not_run, failed, ok
from manager_pipeline.redact import forget_registered_secrets, register_secret
from tests.support import REPO

ZIP_SHA = "4b75e0a259b56d97e66b7d69f3f25bd4cc7be2440c0fe35529f46de7d40a49d3"


@pytest.mark.parametrize(
    "constraint, version, admitted",
    [
        ("~> 3.39", "3.39.0", True),
        ("~> 3.39", "3.74.1", True),
        ("~> 3.39", "4.0.0", False),
        ("~> 3.39", "3.38.0", False),
        ("~> 3.39.0", "3.39.5", True),
        ("~> 3.39.0", "3.40.0", False),
        ("~> 4.0", "3.39.0", False),
        (">= 3.39", "6.2.0", True),
        (">= 3, < 4", "3.9.1", True),
        (">= 3, < 4", "4.0.0", False),
        ("3.39.0", "3.39.0", True),
        ("!= 3.39.0", "3.39.0", False),
        ("latest", "3.39.0", False),
    ],
)
def test_version_constraints_as_terraform_reads_them(constraint, version, admitted):
    assert providers.admits(constraint, version) is admitted


def test_the_shipped_module_and_its_lock_agree():
    lock = providers.read_lock(REPO / "terraform")[providers.AWS]
    assert lock.version == "3.39.0" and f"zh:{ZIP_SHA}" in lock.hashes
    assert any(h.startswith("h1:") for h in lock.hashes)
    assert providers.module_constraint(REPO / "terraform") == "~> 3.39" == lock.constraints
    assert providers.admits(lock.constraints, lock.version)


def test_package_hash_is_terraforms_h1_of_a_folder(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a.txt").write_bytes(b"one")
    (tmp_path / "b" / "c.bin").write_bytes(b"two")
    # Go's dirhash.Hash1: sha256 over "<sha256 hex>  <slash path>\n" per file, sorted by path, base64.
    import base64

    lines = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in (("a.txt", b"one"), ("b/c.bin", b"two"))
    )
    expected = "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()
    assert providers.package_hash(tmp_path) == expected


def _module(tmp_path: Path, constraint: str | None = "~> 3.39", lock: bool = True) -> Path:
    module = tmp_path / "module"
    module.mkdir(parents=True)
    version = f'\n      version = "{constraint}"' if constraint else ""
    (module / "main.tf").write_text(
        'terraform {\n  required_providers {\n    aws = {\n      source = "hashicorp/aws"'
        f"{version}\n    }}\n  }}\n}}\n"
    )
    if lock:
        (module / providers.LOCK_FILE).write_text((REPO / "terraform" / providers.LOCK_FILE).read_text())
    return module


def test_a_missing_lock_file_or_constraint_fails_before_any_mirror_is_asked(tmp_path):
    result = providers.check_mirror(_module(tmp_path, lock=False), tmp_path / "no-tools")
    assert result.status is Status.FAILED and "pins no hashicorp/aws: restore the committed lock file" in result.line
    result = providers.check_mirror(_module(tmp_path / "x", constraint=None), tmp_path / "no-tools")
    assert result.status is Status.FAILED and "no version constraint: require `~> 3.39`" in result.line


def test_no_mirror_says_to_run_setup(tmp_path):
    result = providers.check_mirror(_module(tmp_path), tmp_path / "no-tools")
    assert result.status is Status.FAILED and "run `manager-pipeline setup`" in result.line


@pytest.mark.parametrize(
    "answer, status, says",
    [
        ({"shasum": ZIP_SHA}, Status.OK, "hashicorp/aws 3.39.0 from the registry, as the lock file pins"),
        ({"shasum": "0" * 64}, Status.FAILED, "is not one the lock file pins"),
        (urllib.error.HTTPError("u", 404, "Not Found", {}, None), Status.FAILED, "has no hashicorp/aws 3.39.0"),
        (OSError("no route to host"), Status.COULD_NOT_RUN, "cannot reach the provider registry"),
    ],
    ids=["same-zip", "other-zip", "no-such-version", "unreachable"],
)
def test_the_registry_is_asked_for_the_locked_zip(tmp_path, answer, status, says):
    asked = []

    def get(url):
        asked.append(url)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    result = providers.check_registry(_module(tmp_path), "https://registry.example", get)
    assert asked == ["https://registry.example/v1/providers/hashicorp/aws/3.39.0/download/linux/amd64"]
    assert result.status is status and says in result.line


@pytest.mark.parametrize(
    "url, env, answers, status, says",
    [
        ("http://127.0.0.1:3000", {}, None, Status.OK, "the UI is on 127.0.0.1 only"),
        ("http://localhost:3000", {}, None, Status.OK, "on localhost only"),
        ("https://manager.example.com", {}, None, Status.FAILED, "set MANAGER_UI_AUTH=proxy"),
        ("https://manager.example.com", {"MANAGER_UI_AUTH": "proxy"}, False, Status.OK, "behind an authenticating"),
        ("https://manager.example.com", {"MANAGER_UI_AUTH": "proxy"}, True, Status.FAILED, "lets anyone through"),
        ("https://manager.example.com", {"MANAGER_UI_AUTH": "yes"}, None, Status.FAILED, "is not known"),
    ],
)
def test_the_ui_is_served_to_others_only_behind_a_login(url, env, answers, status, says):
    result = ui.check_ui(url, env, probe=lambda _url: answers)
    assert result.status is status and says in result.line


def _spec(**fields) -> SourceSpec:
    return SourceSpec(name="web", environments=("staging",), repo="acme/web", **fields)


@pytest.mark.parametrize(
    "spec, env, polling, status, says",
    [
        (_spec(), {"GITHUB_WEBHOOK_SECRET": "s"}, False, Status.OK, "GITHUB_WEBHOOK_SECRET is set"),
        (_spec(), {}, False, Status.FAILED, "set GITHUB_WEBHOOK_SECRET"),
        (_spec(), {}, True, Status.OK, "MANAGER_POLLING=on polls GitHub instead"),
        (_spec(auth="oidc"), {}, False, Status.OK, "auth: oidc"),
        (_spec(webhook_secret_env="WEB_SECRET"), {"GITHUB_WEBHOOK_SECRET": "s"}, False, Status.FAILED,
         "names WEB_SECRET, which is not set"),
        (_spec(webhook_secret_env="WEB_SECRET"), {"WEB_SECRET": "s"}, False, Status.OK, "WEB_SECRET is set"),
        (_spec(triggers=(TriggerSpec(repo="acme/app", branches=("main",), webhook_secret_env="APP_SECRET"),)),
         {"GITHUB_WEBHOOK_SECRET": "s"}, False, Status.FAILED, "trigger acme/app: webhook_secret_env names APP_SECRET"),
    ],
    ids=["organisation", "none", "polling", "oidc", "own-unset", "own-set", "trigger-unset"],
)
def test_webhook_secrets_per_source(spec, env, polling, status, says):
    result = github.check_webhook_secret(spec, env, polling)
    assert result.status is status and says in result.line
    assert "s" not in result.line.split()  # the value is never shown, only the variable's name


class _App:
    """A GitHubResource in App mode, for the permission check (which reads only these fields)."""

    configured = True
    app_id = "4242"
    installation_id = 7

    def _secret(self, name):
        return None if name == "token" else "key"


def _config(approvers: str = "[alice]"):
    return parse_config(
        f"sources:\n  - name: web\n    repo: acme/web\nenvironments:\n  staging: {{auto_apply: true}}\n"
        f"  production:\n    approvers: {approvers}\n",
        Path("manager.yaml"),
    )


def test_the_app_needs_statuses_write_and_members_read_only_for_team_approvers(monkeypatch):
    granted = {"contents": "read", "statuses": "write", "pull_requests": "write", "issues": "write",
               "repository_hooks": "write", "metadata": "read"}
    monkeypatch.setattr(github, "app_permissions", lambda resource: dict(granted))
    assert github.check_permissions(_App(), _config()).status is Status.OK
    result = github.check_permissions(_App(), _config("[acme/platform]"))
    assert result.status is Status.FAILED and "lacks members: read (to check `org/team` approvers)" in result.line
    granted["statuses"], granted["checks"] = "read", "write"
    result = github.check_permissions(_App(), _config())
    assert result.status is Status.FAILED
    assert "statuses: write (to post commit statuses (the manager posts statuses; checks: write alone" in result.line


def test_a_result_is_one_line_and_never_shows_a_registered_secret():
    register_secret("ghp_supersecretvalue123")
    try:
        result = failed("github credentials", "GitHub said\nghp_supersecretvalue123 is bad")
    finally:
        forget_registered_secrets()
    assert "\n" not in result.line and "ghp_supersecretvalue123" not in result.line


def test_the_text_report_counts_what_did_not_pass():
    text = render_text([ok("a", "fine"), failed("bb", "broken: fix it"), could_not_run("c", "no network")])
    lines = text.splitlines()
    assert lines[0].split() == ["ok", "a", "fine"]
    assert lines[1].startswith("failed") and lines[2].startswith("could-not-run")
    assert lines[-1] == "2 of 3 checks did not pass (1 could not run)"
    assert render_text([ok("a", "fine")]).splitlines()[-1] == "all 1 checks passed"
