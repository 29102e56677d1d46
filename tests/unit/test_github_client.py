"""The GitHub client's settings (one source: GitHubResource, filled from the environment in one place),
status descriptions redacted before they are cut, and delivery's idempotent writes (against a fake client).

The wire itself (PyGithub against the stand-in) is tests/integration/test_github.py."""

from __future__ import annotations

import pytest
from dagster import EnvVar

from manager_pipeline.cli import main
from manager_pipeline.defs.resources import GitHubResource, github_resource
from manager_pipeline.errors import ConfigError
from manager_pipeline.feedback import github_items
from manager_pipeline.feedback.comments import split_comment
from manager_pipeline.feedback.delivery import post_once, send, upsert_comment
from manager_pipeline.feedback.outbox import FeedbackItem
from manager_pipeline.redact import MASK
from manager_pipeline.github import Comment, GitHubClient, GitHubNotConfigured
from manager_pipeline.github.client import STATUS_DESCRIPTION_LIMIT

# --- settings from the environment ---------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, hint",
    [
        ("GITHUB_TIMEOUT", "15s", "a number of seconds, e.g. 15 (no unit)"),
        ("GITHUB_TIMEOUT", "0", "a number of seconds"),
        ("GITHUB_APP_INSTALLATION_ID", "abc", "the GitHub App installation's id, e.g. 12345678"),
        ("GITHUB_APP_INSTALLATION_ID", "12.5", "installation's id"),
        ("GITHUB_RETRIES", "x", "a whole number of retries, e.g. 5"),
        ("GITHUB_RETRIES", "-1", "a whole number of retries"),
        ("GITHUB_RETRY_BACKOFF", "fast", "a number of seconds"),
        ("GITHUB_MAX_RATE_LIMIT_WAIT", "5m", "a number of seconds"),
        ("GITHUB_MAX_RATE_LIMIT_WAIT", "inf", "a number of seconds"),
        ("GITHUB_THROTTLE", "maybe", "on or off"),
    ],
)
def test_a_malformed_github_variable_is_one_line_naming_it_and_what_to_put_there(name, value, hint):
    with pytest.raises(ConfigError) as caught:
        github_resource({"GITHUB_TOKEN": "ghp_secret_value", name: value})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{name}={value!r} is not valid: set it to ") and hint in message
    assert "ghp_secret_value" not in message


def test_unset_variables_keep_the_resources_defaults_and_secrets_stay_references():
    resource = github_resource({"GITHUB_TOKEN": "ghp_x", "GITHUB_APP_PRIVATE_KEY": "-----BEGIN KEY-----"})
    assert resource == GitHubResource(token=EnvVar("GITHUB_TOKEN"), app_private_key=EnvVar("GITHUB_APP_PRIVATE_KEY"))
    assert isinstance(resource.token, EnvVar) and resource.token.env_var_name == "GITHUB_TOKEN"


def test_well_formed_variables_fill_the_resources_fields():
    resource = github_resource(
        {
            "GITHUB_API_URL": "https://ghe.example/api/v3",
            "GITHUB_APP_ID": "4242",
            "GITHUB_APP_INSTALLATION_ID": " 99 ",
            "GITHUB_TIMEOUT": "2.5",
            "GITHUB_RETRIES": "0",
            "GITHUB_RETRY_BACKOFF": "0.05",
            "GITHUB_MAX_RATE_LIMIT_WAIT": "30",
            "GITHUB_THROTTLE": "Off",
        }
    )
    assert (resource.api_url, resource.app_id, resource.installation_id) == ("https://ghe.example/api/v3", "4242", 99)
    assert (resource.timeout, resource.retries, resource.backoff, resource.max_rate_limit_wait) == (2.5, 0, 0.05, 30)
    assert resource.throttle is False and resource.token is None and not resource.configured


def test_the_cli_says_one_line_for_a_malformed_github_variable(tmp_path, monkeypatch, capsys):
    (tmp_path / "manager.yaml").write_text("sources:\n  - {name: api, repo: acme/api}\n")
    monkeypatch.setenv("MANAGER_CONFIG", str(tmp_path / "manager.yaml"))
    monkeypatch.setenv("MANAGER_HOME", str(tmp_path / ".manager"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / ".manager" / "dagster"))
    monkeypatch.setenv("GITHUB_TIMEOUT", "15s")
    assert main(["plans"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "error: GITHUB_TIMEOUT='15s' is not valid: set it to a number of seconds, e.g. 15 (no unit), or leave it unset"
    ]
    assert "Traceback" not in captured.err + captured.out


def test_secrets_given_as_env_vars_are_read_when_the_client_is_built(monkeypatch):
    resource = GitHubResource(api_url="http://127.0.0.1:9", token=EnvVar("MANAGER_TEST_GITHUB_TOKEN"))
    monkeypatch.delenv("MANAGER_TEST_GITHUB_TOKEN", raising=False)
    assert not resource.configured
    with pytest.raises(GitHubNotConfigured, match="set GITHUB_TOKEN"):
        resource.client()
    monkeypatch.setenv("MANAGER_TEST_GITHUB_TOKEN", "ghp_from_the_environment")
    assert resource.configured
    assert isinstance(resource.client(quick=True), GitHubClient)  # lazy: no request is made


def test_credentials_are_a_token_first_then_a_complete_app_installation():
    assert GitHubClient.credentials(None, "1", "key", None) is None
    assert GitHubClient.credentials(None, None, None, None) is None
    assert GitHubClient.credentials("ghp_x", None, None, None) is not None
    assert GitHubClient.credentials(None, "1", "key", 5) is not None


# --- status descriptions: redacted, then cut ------------------------------------------------


def test_a_secret_across_the_status_cut_never_leaves_as_a_prefix(monkeypatch):
    secret = "s3cr3t-" + "k" * 30
    monkeypatch.setenv("MANAGER_TEST_DB_PASSWORD", secret)
    description = "Failed at apply: " + "x" * (STATUS_DESCRIPTION_LIMIT - 30) + secret + " and more" * 5
    start = description.index(secret)
    assert start < STATUS_DESCRIPTION_LIMIT - 1 < start + len(secret)  # the cut falls inside the secret
    item = github_items.status("acme/app", "a" * 40, "staging", "failure", description, "http://ui")
    sent = item.payload["description"]
    assert len(sent) <= STATUS_DESCRIPTION_LIMIT
    assert secret[:6] not in sent and MASK in sent
    assert sent.endswith("…")


def test_a_sources_own_secret_is_masked_in_the_status_before_the_cut():
    webhook = "https://hooks.slack.com/services/T000/B000/" + "z" * 24
    description = "y" * (STATUS_DESCRIPTION_LIMIT - 20) + webhook
    item = github_items.status("acme/app", "a" * 40, "staging", "failure", description, "http://ui", [webhook])
    assert "hooks.slack" not in item.payload["description"] and MASK in item.payload["description"]


# --- delivery's writes are safe to repeat ---------------------------------------------------


class FakeGitHub:
    """The part of GitHubClient that delivery uses, in memory; records every write."""

    def __init__(self, pulls: list[int] | None = None):
        self.issue: dict[int, list[Comment]] = {}
        self.commit: dict[str, list[Comment]] = {}
        self.pulls = pulls or []
        self.writes: list[tuple] = []
        self.next_id = 1

    def _new(self, body: str) -> Comment:
        self.next_id += 1
        return Comment(self.next_id, "manager", body, 0.0, False)

    def own_login(self):
        return "manager"

    def create_status(self, repo, sha, context, state, description, target_url):
        self.writes.append(("status", sha, context, state, description))

    def issue_comments(self, repo, number):
        return list(self.issue.get(number, []))

    def commit_comments(self, repo, sha):
        return list(self.commit.get(sha, []))

    def create_issue_comment(self, repo, number, body):
        self.writes.append(("create", number))
        self.issue.setdefault(number, []).append(self._new(body))

    def create_commit_comment(self, repo, sha, body):
        self.writes.append(("commit-comment", sha))
        self.commit.setdefault(sha, []).append(self._new(body))

    def edit_issue_comment(self, repo, comment_id, body):
        self.writes.append(("edit", comment_id))
        for comments in self.issue.values():
            comments[:] = [Comment(c.id, c.login, body, 0.0, True) if c.id == comment_id else c for c in comments]

    def delete_issue_comment(self, repo, comment_id):
        self.writes.append(("delete", comment_id))
        for comments in self.issue.values():
            comments[:] = [c for c in comments if c.id != comment_id]

    def pulls_of_commit(self, repo, sha):
        return list(self.pulls)


def test_sticky_comment_parts_are_created_edited_unchanged_and_removed():
    github, key = FakeGitHub(), "plan:app:staging"
    long_parts = split_comment("\n".join("line " + "x" * 80 for _ in range(2000)), key)
    assert len(long_parts) >= 3
    upsert_comment(github, "acme/app", 7, key, long_parts)
    assert [w[0] for w in github.writes] == ["create"] * len(long_parts)
    github.writes.clear()
    upsert_comment(github, "acme/app", 7, key, long_parts)
    assert github.writes == []  # nothing changed: nothing written
    upsert_comment(github, "acme/app", 7, key, split_comment("short", key))
    assert [w[0] for w in github.writes] == ["edit"] + ["delete"] * (len(long_parts) - 1)
    assert [c.body for c in github.issue[7]] == split_comment("short", key)


def test_notifications_are_posted_once_on_the_commits_pull_request_or_the_commit():
    github = FakeGitHub(pulls=[7])
    payload = {"pr": None, "sha": "c1", "marker": "<!-- m -->", "body": "<!-- m -->\nok"}
    item = FeedbackItem("acme/app", "notification", payload)
    send(github, item)
    send(github, item)
    assert github.writes == [("create", 7)]
    alone = FakeGitHub()
    post_once(alone, "acme/app", None, "c2", "<!-- n -->", "<!-- n -->\nok")
    post_once(alone, "acme/app", None, "c2", "<!-- n -->", "<!-- n -->\nok")
    assert alone.writes == [("commit-comment", "c2")]
