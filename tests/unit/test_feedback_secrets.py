"""Issue 10 #13: known secrets are masked before any cut, by every sink a run's text leaves through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import MetadataValue

from manager_pipeline.defs.stage import failure_for, redacted_metadata
from manager_pipeline.defs.resources import FeedbackResource, GitHubResource
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import Outcome, OutcomeStatus, github_items, render_report
from manager_pipeline.feedback.comments import COMMENT_LIMIT, fit_plan, split_comment
from manager_pipeline.redact import (
    MASK,
    forget_registered_secrets,
    known_secrets,
    redact,
    redact_text,
    register_secret,
)
from manager_pipeline.feedback.slack import NotifySettings
from manager_pipeline.plans import Plan, PlanState
from manager_pipeline.terraform.plan import PlanSummary

WEBHOOK = "https://hooks.slack.example/services/T0AAAA/B0BBBB/zXq81LmN0pQrStUv"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx1y2z3abcdefghij\nKLMNOPQRSTUVWXYZ0123456789abcdef\n-----END RSA PRIVATE KEY-----"


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch):
    for name in ("GITHUB_TOKEN", "GITHUB_APP_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    forget_registered_secrets()
    yield
    forget_registered_secrets()


def leaked(secret: str, text: str) -> bool:
    """Any 12-character piece of ``secret`` in ``text`` (a prefix left by a cut counts)."""
    return any(secret[i : i + 12] in text for i in range(len(secret) - 11))


def plan_with_text(tmp_path: Path, text: str) -> Plan:
    (tmp_path / "plan.txt").write_text(text)
    summary = PlanSummary(to_add=("aws_vpc.a",))
    return Plan(
        plan_id="abc123def456",
        source="web",
        environment="staging",
        sha="f" * 40,
        branch="main",
        pr=3,
        author=None,
        repo="acme/web",
        created_at=1_000_000.0,
        plan_sha256="0" * 64,
        variables_digest="v",
        module_digest="m",
        terraform_version="1.15.5",
        has_changes=True,
        summary=summary,
        state=PlanState.PREVIEW,
        directory=tmp_path,
    )


# --- the registry --------------------------------------------------------------------------


def test_registered_values_are_masked_not_only_values_of_secret_looking_variable_names(monkeypatch):
    monkeypatch.setenv("NOTE", "not-a-secret-by-name-1234")
    assert redact_text("x not-a-secret-by-name-1234 y") == "x not-a-secret-by-name-1234 y"
    register_secret("not-a-secret-by-name-1234")
    assert redact_text("x not-a-secret-by-name-1234 y") == f"x {MASK} y"
    assert redact({"a": ["not-a-secret-by-name-1234"]}) == {"a": [MASK]}


def test_a_key_is_masked_whole_line_by_line_and_json_escaped_and_short_or_public_values_are_not_registered():
    register_secret(KEY)
    assert MASK in redact_text(f"key: {KEY}") and not leaked(KEY, redact_text(f"key: {KEY}"))
    # A line of the key on its own (a cut between lines), and the key inside a JSON body.
    assert redact_text("MIIEowIBAAKCAQEAx1y2z3abcdefghij") == MASK
    assert not leaked(KEY, redact_text(json.dumps({"body": KEY})))
    register_secret("abc")
    register_secret("testing")  # the AWS stand-in's public credentials
    assert redact_text("abc testing") == "abc testing"


def test_the_code_registers_what_it_learns_webhook_github_token_and_app_key():
    NotifySettings.of({"on_success": True}, WEBHOOK)
    GitHubResource(token="ghp_tokenvalue0123456789")._secret("token")
    GitHubResource(app_id="1", app_private_key=KEY, installation_id=2)._secret("app_private_key")
    secrets = known_secrets()
    assert WEBHOOK in secrets and "ghp_tokenvalue0123456789" in secrets and KEY in secrets


# --- redaction before each cut -------------------------------------------------------------


def test_a_status_description_is_redacted_before_the_140_character_cut():
    register_secret(WEBHOOK)
    description = github_items.status_description("Failed at plan: " + "x" * 110 + WEBHOOK)
    assert len(description) <= 140 and not leaked(WEBHOOK, description)


def test_an_over_long_comment_line_is_redacted_before_it_is_cut(tmp_path):
    longest = (COMMENT_LIMIT - 120) // 4
    # The line is cut 20 characters before `longest`: the webhook straddles the cut.
    line = "x" * (longest - 40) + WEBHOOK + "y" * 100
    plan = plan_with_text(tmp_path, f"Plan: 1 to add\n{line}\n")
    outcome = Outcome(DispatchEvent("web", "staging", pr=3), OutcomeStatus.PLAN_ONLY, "plan only", plan=plan)
    notify = NotifySettings.of(None, WEBHOOK)
    forget_registered_secrets()  # only what the run hands over: the settings themselves
    items = github_items.items_for(outcome, "acme/web", "f" * 40, 3, "run-1", "http://ui/runs/run-1", notify)
    comment = next(item for item in items if item.kind == "comment")
    assert "(line cut)" in "".join(comment.payload["parts"])
    assert not any(leaked(WEBHOOK, part) for part in comment.payload["parts"])


def test_split_and_fit_redact_first():
    register_secret(WEBHOOK)
    parts = split_comment("a\n" + "z" * 600 + WEBHOOK + "\nb", "k", limit=1000)
    assert not any(leaked(WEBHOOK, part) for part in parts)
    fitted = fit_plan(("line\n" * 200) + WEBHOOK * 3, 700, "http://ui")
    assert not leaked(WEBHOOK, fitted)


def test_the_run_report_masks_a_secret_before_a_code_span_reshapes_it(tmp_path):
    spaced = "pass  phrase  of  the  admin"  # a code span collapses the double spaces
    register_secret(spaced)
    register_secret(WEBHOOK)
    outcome = Outcome(
        DispatchEvent("web", "staging"),
        OutcomeStatus.APPLIED,
        "applied",
        outputs={"note": spaced, "hook": WEBHOOK},
    )
    report = render_report(outcome, "run-1", "http://ui/runs/run-1")
    assert "pass phrase" not in report and not leaked(WEBHOOK, report)


def test_published_report_and_failure_messages_mask_registered_secrets(tmp_path):
    register_secret(WEBHOOK)
    failure = failure_for(ManagerError(f"terraform plan failed: bad tag value {WEBHOOK}"))
    assert not leaked(WEBHOOK, failure.description) and MASK in failure.description
    resource = FeedbackResource(
        reports_dir=str(tmp_path / "reports"),
        webserver_url="http://ui",
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        github=GitHubResource(),
    )
    outcome = Outcome(
        DispatchEvent("web", "staging"),
        OutcomeStatus.FAILED,
        "The run failed at plan.",
        failed_stage="plan",
        error=f"Error: {WEBHOOK}",
    )
    published = resource.publish(outcome, "run-1", None, None)
    assert not leaked(WEBHOOK, published.markdown)
    assert not leaked(WEBHOOK, published.report_file.read_text())


def test_run_metadata_is_redacted():
    register_secret(WEBHOOK)
    metadata = redacted_metadata(
        {
            "text": f"x {WEBHOOK}",
            "report": MetadataValue.md(f"# r\n{WEBHOOK}"),
            "resolved": MetadataValue.json({"tags": {"note": WEBHOOK}}),
            "count": 3,
        }
    )
    shown = json.dumps({k: str(getattr(v, "md_str", None) or getattr(v, "data", None) or v) for k, v in metadata.items()})
    assert not leaked(WEBHOOK, shown) and metadata["count"] == 3


def test_the_plan_comment_is_sent_before_the_status_that_says_the_run_ended(tmp_path):
    """What a person waits for goes first: GitHub asks for a second between writes, so the status waits."""
    plan = plan_with_text(tmp_path, "Plan: 1 to add\n")
    outcome = Outcome(DispatchEvent("web", "staging", pr=3), OutcomeStatus.PLAN_ONLY, "plan only", plan=plan)
    items = github_items.items_for(outcome, "acme/web", "f" * 40, 3, "run-1", "http://ui/runs/run-1")
    assert [item.kind for item in items][:2] == ["comment", "status"]
