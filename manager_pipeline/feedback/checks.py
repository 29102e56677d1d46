"""Check runs, when the manager is a GitHub App: what a run tells its commit in the Checks tab.

One check run per run of a partition on a commit, named as the commit status would be
(``manager-pipeline/<environment>``) and found again by its ``external_id``
(``manager-pipeline:<source>:<environment>:<run id>``): created ``in_progress`` when the run starts
planning, completed with the plan summary (counts, destroys first), a link to the Dagster run, a
conclusion that says what happens next, and an annotation at the line of the variables file for
each problem the run found there. A new run makes a new check run rather than reopening the last
one: GitHub adds annotations to those a check run has, so a re-plan would keep the old ones.

Each item carries the commit status it stands for: a GitHub App without ``checks: write`` gets a
403, and the status is sent instead (``send`` says so), so no feedback is lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from manager_pipeline.contract import parse_variables
from manager_pipeline.errors import ContractError, ManagerError, Problem, TerraformError
from manager_pipeline.feedback.outbox import FeedbackItem
from manager_pipeline.feedback.report import render_report
from manager_pipeline.github.client import CheckRun, GitHubError
from manager_pipeline.outcome import Outcome, OutcomeStatus
from manager_pipeline.redact import known_secrets, redact
from manager_pipeline.sources import VariablesDocument

KIND = "check_run"
EXTERNAL_ID = "manager-pipeline:{source}:{environment}:{run_id}"
# GitHub takes at most 50 annotations per request, and output texts of at most 65,535 characters.
ANNOTATIONS_PER_REQUEST = 50
OUTPUT_LIMIT = 65_535
PLAN_AGAIN = "plan-again"
# What the button does, within GitHub's limits (label and identifier 20, description 40 characters).
ACTIONS = [{"label": "Plan again", "description": "Plan this commit again; applies nothing", "identifier": PLAN_AGAIN}]
_CONCLUSION = {
    OutcomeStatus.APPLIED: "success",
    OutcomeStatus.NO_CHANGES: "success",
    OutcomeStatus.PLAN_ONLY: "success",
    OutcomeStatus.AWAITING_APPROVAL: "action_required",
    OutcomeStatus.SUPERSEDED: "neutral",  # nothing happens: a newer change took over
    OutcomeStatus.FAILED: "failure",
}
_LEVELS = ("failure", "warning", "notice")


class GitHubChecks(Protocol):
    def check_runs(self, repo: str, sha: str, name: str) -> list[CheckRun]: ...
    def create_check_run(self, repo: str, body: dict[str, Any]) -> CheckRun: ...
    def update_check_run(self, repo: str, check_run_id: int, body: dict[str, Any]) -> None: ...
    def create_status(
        self, repo: str, sha: str, context: str, state: str, description: str, target_url: str
    ) -> None: ...


def external_id(source: str, environment: str, run_id: str) -> str:
    return EXTERNAL_ID.format(source=source, environment=environment, run_id=run_id)


def parse_external_id(value: Any) -> tuple[str, str, str] | None:
    """(source, environment, run id) of a check run this manager made; None for any other."""
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 4 or parts[0] != "manager-pipeline" or not all(parts[1:]):
        return None
    return parts[1], parts[2], parts[3]


def _cut(text: str, secrets: list[str]) -> str:
    text = redact(text, secrets)
    return text if len(text) <= OUTPUT_LIMIT else text[: OUTPUT_LIMIT - 1] + "…"


def repo_path(origin: str) -> str:
    """The path in the repository of a problem's file (``owner/name@sha:infra/variables.yml``)."""
    head, sep, tail = origin.partition(":")
    return tail if sep and "@" in head else origin


def annotation(problem: Mapping[str, Any]) -> dict[str, Any]:
    """A GitHub annotation of one problem (``Problem.to_dict()`` data, with an optional ``level``) at its
    line; a problem with no line is put on the first one (GitHub needs one)."""
    line = problem.get("line") or 1
    level = problem.get("level") if problem.get("level") in _LEVELS else "failure"
    found = {
        "path": repo_path(str(problem.get("file") or "")),
        "start_line": int(line),
        "end_line": int(line),
        "annotation_level": level,
        "title": str(problem.get("path") or "")[:255],
        "message": str(problem.get("message") or ""),
    }
    if problem.get("column") and problem.get("line"):
        found["start_column"] = found["end_column"] = int(problem["column"])
    return found


def problems_of(problems: Iterable[Problem], level: str = "failure") -> tuple[dict[str, Any], ...]:
    """``Problem``s (a ``ContractError``'s, a policy failure's) as an outcome's annotations."""
    return tuple(problem.to_dict() | {"level": level} for problem in problems)


def _item(status: FeedbackItem, body: dict[str, Any], extra_secrets: Sequence[str]) -> FeedbackItem:
    """The check run standing for commit status ``status`` (``feedback/github_items.py``): its name is the
    status's context, and the status is what is sent if GitHub refuses the check run."""
    payload = {"sha": status.payload["sha"], "name": status.payload["context"], **body, "fallback": status.payload}
    return FeedbackItem(status.repo, KIND, redact(payload, known_secrets(extra_secrets)))


def queued(status: FeedbackItem, source: str, environment: str, delivery_id: str, runs_url: str) -> FeedbackItem:
    """Said by the receiver the moment a delivery is stored (``status``: its queued status): a check run,
    queued, that the delivery's run takes over when it starts (its ``adopt``)."""
    body = {
        "external_id": external_id(source, environment, f"delivery-{delivery_id}"),
        "details_url": runs_url,
        "status": "queued",
        "output": {"title": status.payload["description"],
                   "summary": f"A run plans {source} for {environment} shortly."},
        "annotations": [],
    }
    return _item(status, body, ())


def started(
    status: FeedbackItem, source: str, environment: str, run_id: str, run_url: str, delivery_id: str | None = None
) -> FeedbackItem:
    """The run's check run, in progress (``status``: its pending status): it plans now (the queued one of
    its delivery, if there is one)."""
    body = {
        "adopt": external_id(source, environment, f"delivery-{delivery_id}") if delivery_id else None,
        "external_id": external_id(source, environment, run_id),
        "details_url": run_url,
        "status": "in_progress",
        "output": {"title": status.payload["description"],
                   "summary": f"Run [{run_id[:8]}]({run_url}) plans {source} for {environment}."},
        "annotations": [],
    }
    return _item(status, body, ())


def completed(
    status: FeedbackItem, outcome: Outcome, run_id: str, run_url: str, extra_secrets: Sequence[str] = ()
) -> FeedbackItem:
    """The run's check run, completed (``status``: the outcome's status): the plan summary (the report
    without the plan's text), the conclusion, an annotation per problem in the variables file, and the
    "Plan again" button."""
    event = outcome.event
    secrets = known_secrets(extra_secrets)
    body = {
        "external_id": external_id(event.source, event.environment, run_id),
        "details_url": run_url,
        "status": "completed",
        "conclusion": _CONCLUSION[outcome.status],
        "output": {
            "title": status.payload["description"],
            "summary": _cut(render_report(outcome, run_id, run_url, plan_text="", secrets=secrets), secrets),
        },
        "annotations": [annotation(problem) for problem in outcome.annotations],
        "actions": ACTIONS,
    }
    return _item(status, body, extra_secrets)


def _refused(exc: GitHubError) -> bool:
    """A 403 that says the App may not write checks (not a rate limit, which is tried again later)."""
    return exc.status == 403 and "rate limit" not in exc.reason.lower()


def send(github: GitHubChecks, item: FeedbackItem) -> str | None:
    """Create or complete the check run of ``item``; refused (403), send its commit status instead and
    return a line saying so (None when the check run went through).

    Safe to repeat: the check run is looked up by its external id first, so a retry whose first attempt
    GitHub took updates it rather than making a second one."""
    payload = item.payload
    annotations = list(payload.get("annotations") or [])
    first, rest = annotations[:ANNOTATIONS_PER_REQUEST], annotations[ANNOTATIONS_PER_REQUEST:]
    body = {key: payload[key] for key in ("external_id", "details_url", "status", "conclusion", "actions")
            if key in payload}
    body["output"] = {**payload["output"], **({"annotations": first} if first else {})}
    try:
        runs = github.check_runs(item.repo, payload["sha"], payload["name"])
        found = next((run for run in runs if run.external_id == payload["external_id"]), None)
        if found is None and payload.get("adopt"):
            found = next((run for run in runs if run.external_id == payload["adopt"] and run.status == "queued"), None)
        if found is None:
            found = github.create_check_run(item.repo, {"name": payload["name"], "head_sha": payload["sha"], **body})
        else:
            github.update_check_run(item.repo, found.id, body)
    except GitHubError as exc:
        if not _refused(exc):
            raise
        status = payload["fallback"]
        github.create_status(
            item.repo, status["sha"], status["context"], status["state"], status["description"], status["target_url"]
        )
        return (
            f"GitHub refused check runs on {item.repo} ({exc.status}: {exc.reason}): sent the commit status "
            f"{status['context']} instead; give the GitHub App `checks: write` for check runs"
        )
    for start in range(0, len(rest), ANNOTATIONS_PER_REQUEST):
        batch = rest[start : start + ANNOTATIONS_PER_REQUEST]
        github.update_check_run(item.repo, found.id, {"output": {**payload["output"], "annotations": batch}})
    return None


# --- what a failure points at in the variables file --------------------------------------------

# How Terraform names an input variable in its diagnostics: `var.networking.cidr`, `variable "networking"`.
_TERRAFORM_VARIABLE = re.compile(r'var\.([A-Za-z_][\w-]*)((?:\.[A-Za-z_][\w-]*)*)|variable "([A-Za-z_][\w-]*)"')
_TRACED = re.compile(r"^(?P<file>.*):(?P<line>\d+): `(?P<section>[^`]*)`$")


def annotations_of(exc: Exception, document: VariablesDocument | None = None) -> tuple[dict[str, Any], ...]:
    """Where in the variables file a failure is: every problem of a ``ContractError``; each enforced
    policy failure traced to the section that builds its resource (``PolicyFailed.lines``); each
    variable a Terraform error names, at its key in ``document``."""
    if isinstance(exc, ContractError):
        return problems_of(exc.problems)
    result, traced = getattr(exc, "result", None), getattr(exc, "lines", None)
    if result is not None and isinstance(traced, Mapping):
        found = []
        for finding in getattr(result, "failures", ()):
            where = _TRACED.match(str(traced.get(finding.resource, "")))
            if where:
                message = f"{finding.check_id} {finding.resource}: {finding.name}"
                message += f" ({finding.guideline})" if finding.guideline else ""
                found.append({"file": where["file"], "line": int(where["line"]), "column": None,
                              "path": finding.field or where["section"], "message": message, "level": "failure"})
        return tuple(found)
    if isinstance(exc, TerraformError) and document is not None:
        return _terraform_annotations(str(exc), document)
    return ()


def _terraform_annotations(error: str, document: VariablesDocument) -> tuple[dict[str, Any], ...]:
    try:
        parsed = parse_variables(document.text, document.location)
    except ManagerError:
        return ()
    message = "\n".join(line for line in error.strip().splitlines()[:12] if line.strip())[:1000]
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for match in _TERRAFORM_VARIABLE.finditer(error):
        path = [match[1] or match[3], *[p for p in (match[2] or "").split(".") if p]]
        while path:
            place = parsed.place(path, key=True)
            if place is not None:
                found.setdefault(tuple(path), {"file": document.location, "line": place.line, "column": place.column,
                                               "path": ".".join(path), "message": message, "level": "failure"})
                break
            path = path[:-1]
    return tuple(found.values())
