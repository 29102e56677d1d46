import re
from pathlib import Path

from manager_pipeline.plans import Plan, PlanState
from manager_pipeline.events import DispatchEvent
from manager_pipeline.feedback import Outcome, OutcomeStatus, render_report
from manager_pipeline.markdown import code_block
from manager_pipeline.terraform.plan import PlanSummary


def artifact(tmp_path: Path, summary: PlanSummary, text: str) -> Plan:
    (tmp_path / "plan.txt").write_text(text)
    return Plan(
        plan_id="abc123def456",
        source="web",
        environment="staging",
        sha="f" * 40,
        branch="main",
        pr=3,
        author=None,
        repo=None,
        created_at=1_000_000.0,
        plan_sha256="0" * 64,
        variables_digest="v",
        module_digest="m",
        terraform_version="1.15.5",
        has_changes=summary.has_changes,
        summary=summary,
        state=PlanState.PREVIEW,
        directory=tmp_path,
    )


def test_summary_and_destroy_warning_come_before_the_plan(tmp_path):
    summary = PlanSummary(to_add=("aws_vpc.a",), to_destroy=("aws_db.main",), to_replace=("aws_instance.web",))
    plan = artifact(tmp_path, summary, "Plan: 2 to add, 0 to change, 2 to destroy.\n```not a fence```\n")
    outcome = Outcome(
        event=DispatchEvent("web", "staging", pr=3),
        status=OutcomeStatus.PLAN_ONLY,
        headline="plan only",
        plan=plan,
    )
    report = render_report(outcome, "run-1234567890", "http://ui/runs/run-1234567890")
    lines = report.splitlines()
    assert lines[0] == "## 📝 web / staging: plan-only"
    assert "**2 to add, 0 to change, 2 to destroy** (plan `abc123def456`)" in report
    warning = report.index("destroys 2 resource(s)")
    assert warning < report.index("<details>")
    assert "`aws_db.main`" in report and "`aws_instance.web`" in report
    assert "[run-1234](http://ui/runs/run-1234567890)" in report
    # The plan's own backticks cannot close the fence early.
    assert "````diff" in report


def test_failures_say_where_and_why(tmp_path):
    outcome = Outcome(
        event=DispatchEvent("web", "staging"),
        status=OutcomeStatus.FAILED,
        headline="The run failed at validate.",
        failed_stage="validate",
        error="variables.yml: unknown key `netwroking`",
    )
    report = render_report(outcome)
    assert "❌" in report and "Failed at **validate**" in report and "netwroking" in report


def test_code_block_fence_outgrows_content():
    assert code_block("a ``` b").startswith("````\n")
    assert code_block("plain") == "```\nplain\n```"


def test_values_a_sender_controls_cannot_escape_their_code_span(tmp_path):
    hostile = "x` @acme/admins [click](http://evil.example) | injected"
    outcome = Outcome(
        event=DispatchEvent("web", "staging", branch=hostile, delivery_id="d`@acme/admins"),
        status=OutcomeStatus.PLAN_ONLY,
        headline="plan only",
    )
    report = render_report(outcome, "run-1", "http://ui/runs/run-1")
    row = next(line for line in report.splitlines() if line.startswith("| Source |"))
    assert "``x` @acme/admins [click](http://evil.example) \\| injected``" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 3  # the table keeps its two cells
    trigger = next(line for line in report.splitlines() if line.startswith("| Trigger |"))
    assert "``d`@acme/admins``" in trigger


def test_the_plan_keeps_terraforms_change_marks_in_the_first_column_for_diff_colouring():
    from manager_pipeline.feedback.report import diff_markers

    plan = (
        "  # aws_vpc.main will be created\n"
        '  + resource "aws_vpc" "main" {\n'
        '      + cidr_block = "10.0.0.0/16"\n'
        "    }\n"
        '  ~ resource "aws_subnet" "a" {\n'
        '-/+ resource "aws_route" "r" {\n'
        '  - resource "aws_eip" "nat" {\n'
        "Plan: 1 to add, 1 to change, 2 to destroy."
    )
    lines = diff_markers(plan).splitlines()
    assert [line[:2] for line in lines] == ["  ", "+ ", "+ ", "  ", "! ", "! ", "- ", "  "]
    # The text itself is whole after the mark: nothing Terraform said is lost.
    assert [line[2:] for line in lines] == plan.splitlines()
