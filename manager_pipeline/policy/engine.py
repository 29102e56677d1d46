"""The policy stage's one boundary with checkov: plan JSON in, typed results out.

A plan's JSON holds sensitive values in clear. It is written only to a private temporary file
(0600, in a 0700 folder on /dev/shm where there is one, so it never reaches a disk), read there by
checkov as a subprocess with a hard timeout, and removed in a ``finally`` whatever happened. Only
check ids, resource addresses and check names come back, and they pass the redaction (the
process's known secrets plus every value the plan marks sensitive) before anything keeps them.

checkov spends ~2.5 s of CPU importing itself before it looks at a file. The checkov that `setup`
installed is served (policy/server.py): a server of its own imports it once and forks a child per
scan, so a scan pays only the scan. Where no server can take a scan (or for another engine), each
scan is a process of its own; ``prestart`` starts one early (e.g. when the plan starts): it imports
itself and waits on stdin for what to scan, and the next scan takes it.

The engine failing in any way (exit code, timeout, output that is not its JSON report) is a
``PolicyEngineError`` with one line naming the cause: a plan is never passed unchecked.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manager_pipeline.errors import ManagerError
from manager_pipeline.policy import server
from manager_pipeline.policy.install import CheckInfo, Checkov, engine_env
from manager_pipeline.policy.rules import PlanPolicy, Verdict
from manager_pipeline.redact import redact_text

# Imports checkov and loads its built-in graph checks (a registry of its own, loaded once a process),
# the slow parts, then waits for one request: {"argv": [...], "cwd": "..."}. An empty line or end of
# input (its parent is gone) ends it without scanning anything.
DRIVER = (
    "import json, os, sys, warnings\n"
    "warnings.simplefilter('ignore')\n"
    "from checkov.main import Checkov\n"
    "from checkov.common.checks_infra.registry import get_graph_checks_registry\n"
    "get_graph_checks_registry('terraform').load_checks()\n"
    "line = sys.stdin.readline()\n"
    "if not line.strip():\n"
    "    sys.exit(0)\n"
    "request = json.loads(line)\n"
    "os.chdir(request['cwd'])\n"
    "sys.exit(Checkov(request['argv']).run())\n"
)
# What checkov 3.3.30's plan parser reads of `terraform show -json` (checkov/terraform/plan_parser.py).
# Only these are written for it: less to parse (it reads the file with a pure-Python YAML parser, the
# bulk of a scan), and the inputs' values, the outputs and the prior state never reach the disk.
ENGINE_KEYS = ("format_version", "terraform_version", "planned_values", "resource_changes", "configuration")
# checkov holds every plan of a call in memory (~12 MB a plan of the full example, on ~200 MB of its own).
MAX_PLANS_PER_CALL = 50
# More plans in one call take longer: the hard timeout of a call is the policy's plus this per plan.
PER_PLAN_TIMEOUT_S = 10.0


class PolicyEngineError(ManagerError):
    """The policy engine did not give a verdict (crashed, timed out, printed no report): the plan is
    not checked, so the stage fails. One line, redacted."""


@dataclass(frozen=True)
class Finding:
    """One failed check on one resource, and what the environment's policy makes of it."""

    check_id: str
    resource: str
    name: str
    guideline: str
    verdict: Verdict
    reason: str = ""  # a skip's reason
    field: str = ""  # a skip's variables.yml field, where a source's choice makes the check fail

    def line(self) -> str:
        text = f"{self.check_id} {self.resource}: {self.name}"
        if self.reason:
            text += f" (skipped: {self.reason})"
        return text


@dataclass(frozen=True)
class PolicyResult:
    """The verdict on one plan. ``failures`` block approval; ``warnings`` and ``skipped`` never do."""

    environment: str
    failures: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    skipped: tuple[Finding, ...]
    passed: int
    engine: str
    seconds: float

    @property
    def blocked(self) -> bool:
        return bool(self.failures)

    def headline(self) -> str:
        """One line for a status, a run's failure or a log."""
        if self.failures:
            named = ", ".join(f"{f.check_id} {f.resource}" for f in self.failures[:5])
            more = f" and {len(self.failures) - 5} more" if len(self.failures) > 5 else ""
            lead = f"policy failed: {len(self.failures)} enforced check(s) failed ({named}{more})"
        else:
            lead = "policy passed"
        counts = f"{len(self.warnings)} warning(s), {len(self.skipped)} skipped, {self.passed} passed"
        return f"{lead}; {counts} ({self.environment})"

    def to_dict(self) -> dict[str, Any]:
        def findings(items: tuple[Finding, ...]) -> list[dict[str, str]]:
            return [
                {
                    "check_id": f.check_id,
                    "resource": f.resource,
                    "name": f.name,
                    "guideline": f.guideline,
                    "verdict": f.verdict,
                    "reason": f.reason,
                    "field": f.field,
                }
                for f in items
            ]

        return {
            "environment": self.environment,
            "failures": findings(self.failures),
            "warnings": findings(self.warnings),
            "skipped": findings(self.skipped),
            "passed": self.passed,
            "engine": self.engine,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyResult:
        def findings(key: str) -> tuple[Finding, ...]:
            return tuple(Finding(**{k: str(v) for k, v in item.items()}) for item in data.get(key, ()))  # type: ignore[arg-type]

        return cls(
            environment=str(data["environment"]),
            failures=findings("failures"),
            warnings=findings("warnings"),
            skipped=findings("skipped"),
            passed=int(data["passed"]),
            engine=str(data["engine"]),
            seconds=float(data["seconds"]),
        )


@dataclass(frozen=True)
class PlanToScan:
    """One plan of a call that scans many: its JSON, the policy of its environment, its source."""

    plan: Mapping[str, Any]
    policy: PlanPolicy
    source: str | None = None


# --- sensitive values of a plan ------------------------------------------------------------------


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def _masked(value: Any, mask: Any) -> Iterator[str]:
    """The values of ``value`` that Terraform's sensitivity ``mask`` (true, or a like-shaped tree) marks."""
    if mask is True:
        yield from _leaves(value)
    elif isinstance(mask, dict) and isinstance(value, dict):
        for key, sub in mask.items():
            yield from _masked(value.get(key), sub)
    elif isinstance(mask, list) and isinstance(value, list):
        for item, sub in zip(value, mask, strict=False):
            yield from _masked(item, sub)


def _module_resources(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from module.get("resources", ())
    for child in module.get("child_modules", ()):
        yield from _module_resources(child)


def plan_secrets(plan: Mapping[str, Any]) -> set[str]:
    """Every value ``plan`` (``terraform show -json``) marks sensitive: resource attributes before and
    after, outputs, and the root module's sensitive input variables."""
    found: set[str] = set()
    for change in plan.get("resource_changes", ()):
        body = change.get("change", {})
        found.update(_masked(body.get("before"), body.get("before_sensitive")))
        found.update(_masked(body.get("after"), body.get("after_sensitive")))
    for output in plan.get("output_changes", {}).values():
        found.update(_masked(output.get("before"), output.get("before_sensitive")))
        found.update(_masked(output.get("after"), output.get("after_sensitive")))
    for section in ("planned_values", "prior_state"):
        root = plan.get(section, {})
        root = root.get("values", root) if section == "prior_state" else root
        for resource in _module_resources(root.get("root_module", {})):
            found.update(_masked(resource.get("values"), resource.get("sensitive_values")))
        for output in root.get("outputs", {}).values():
            if output.get("sensitive"):
                found.update(_leaves(output.get("value")))
    declared = plan.get("configuration", {}).get("root_module", {}).get("variables", {})
    for name, variable in plan.get("variables", {}).items():
        if declared.get(name, {}).get("sensitive"):
            found.update(_leaves(variable.get("value")))
    return found


# --- the engine process -------------------------------------------------------------------------

_warm: dict[Path, subprocess.Popen] = {}
_warm_lock = threading.Lock()


def _spawn(checkov: Checkov) -> subprocess.Popen:
    home = checkov.python.parent.parent / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    return subprocess.Popen(
        [str(checkov.python), "-c", DRIVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=home,
        env=engine_env(home),
        start_new_session=True,
    )


def prestart(checkov: Checkov) -> None:
    """Start a checkov process now, importing itself while the caller does something else (plans);
    the next scan with ``checkov`` takes it. At most one waits per engine; it ends with this process."""
    if checkov.served and server.running_or_started(checkov):
        return
    with _warm_lock:
        waiting = _warm.get(checkov.python)
        if waiting is None or waiting.poll() is not None:
            _warm[checkov.python] = _spawn(checkov)


def _take(checkov: Checkov) -> subprocess.Popen:
    with _warm_lock:
        waiting = _warm.pop(checkov.python, None)
    if waiting is not None and waiting.poll() is None:
        return waiting
    return _spawn(checkov)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream:
            stream.close()


@atexit.register
def _stop_waiting() -> None:
    with _warm_lock:
        waiting = list(_warm.values())
        _warm.clear()
    for process in waiting:
        _kill(process)


def _scratch_root() -> str | None:
    """/dev/shm (memory) when it is usable, else the system's temporary folder."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _write_private(folder: Path, name: str, plan: Mapping[str, Any]) -> Path:
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({key: plan[key] for key in ENGINE_KEYS if key in plan}, handle)
    return path


def _one_line(text: str, secrets: set[str], limit: int = 200) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = redact_text(lines[-1] if lines else "no output", secrets)
    return last if len(last) <= limit else last[: limit - 3] + "..."


def _reports(stdout: str) -> list[Mapping[str, Any]]:
    """checkov's JSON report(s): one per check type, or a bare summary when nothing was scanned."""
    data = json.loads(stdout)
    items = data if isinstance(data, list) else [data]
    reports = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("a report is not a JSON object")
        if "results" in item:
            if not isinstance(item["results"], dict):
                raise ValueError("`results` is not a JSON object")
            reports.append(item)
        elif "passed" not in item:
            raise ValueError("neither results nor a summary")
    return reports


def _timed_out(checkov: Checkov, timeout_s: float) -> PolicyEngineError:
    return PolicyEngineError(
        f"policy engine checkov {checkov.version} did not finish within {timeout_s:g} s and was stopped; "
        "the plan is not checked"
    )


def _in_own_process(checkov: Checkov, argv: list[str], cwd: Path, timeout_s: float) -> tuple[int, str, str]:
    process = _take(checkov)
    request = json.dumps({"argv": argv, "cwd": str(cwd)}) + "\n"
    try:
        stdout, stderr = process.communicate(request, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise _timed_out(checkov, timeout_s) from None
    except BaseException:
        _kill(process)
        raise
    return process.returncode, stdout, stderr


def _run_engine(checkov: Checkov, argv: list[str], cwd: Path, timeout_s: float, secrets: set[str]) -> str:
    try:
        answered = server.ask(checkov, argv, cwd, timeout_s) if checkov.served else None
    except TimeoutError:
        raise _timed_out(checkov, timeout_s) from None
    code, stdout, stderr = answered or _in_own_process(checkov, argv, cwd, timeout_s)
    # 0: every check passed, 1: some failed; anything else is checkov's own failure, as is exit code 1
    # without a report (Python's own exit code for an uncaught exception).
    if code not in (0, 1) or not stdout.lstrip().startswith(("{", "[")):
        cause = _one_line(stderr or stdout, secrets)
        raise PolicyEngineError(f"policy engine checkov {checkov.version} failed (exit code {code}): {cause}")
    return stdout


def _guideline(check: Mapping[str, Any], policy: PlanPolicy, checks: Mapping[str, CheckInfo]) -> str:
    check_id = str(check.get("check_id", ""))
    if check.get("guideline"):
        return str(check["guideline"])
    if policy.custom and check_id in policy.custom:
        return policy.custom[check_id].guideline
    info = checks.get(check_id)
    return info.link if info else ""


@dataclass
class _Tally:
    findings: list[Finding] = field(default_factory=list)
    passed: int = 0


def read_report(
    stdout: str,
    items: Sequence[PlanToScan],
    files: Sequence[str],
    *,
    checks: Mapping[str, CheckInfo],
    engine: str,
    seconds: float = 0.0,
) -> list[PolicyResult]:
    """Each plan's verdict from checkov's JSON report of one call, in which plan ``items[i]`` was the
    file named ``files[i]``. Redacted: the process's secrets and each plan's sensitive values."""
    secrets = [plan_secrets(item.plan) for item in items]
    everything = set().union(*secrets)
    try:
        reports = _reports(stdout)
    except ValueError as exc:
        start = redact_text(stdout.strip()[:60], everything) or "nothing"
        raise PolicyEngineError(
            f"policy engine {engine} printed no JSON report ({redact_text(str(exc), everything)}; "
            f"it began with {start!r})"
        ) from None
    index_of = {name: index for index, name in enumerate(files)}
    tallies = [_Tally() for _ in items]

    def which(check: Mapping[str, Any]) -> int:
        name = os.path.basename(str(check.get("file_abs_path") or check.get("file_path") or ""))
        if name not in index_of:
            raise PolicyEngineError(f"policy engine {engine} reported on a file it was not given ({name or 'none'})")
        return index_of[name]

    for report in reports:
        results = report["results"]
        for check in results.get("passed_checks") or ():
            tallies[which(check)].passed += 1
        for check in results.get("failed_checks") or ():
            index = which(check)
            item, known = items[index], secrets[index]
            check_id = str(check.get("check_id") or "")
            resource = str(check.get("resource_address") or check.get("resource") or "")
            verdict, skip = item.policy.decide(check_id, resource, item.source)
            tallies[index].findings.append(
                Finding(
                    check_id=redact_text(check_id, known),
                    resource=redact_text(resource, known),
                    name=redact_text(" ".join(str(check.get("check_name") or "").split()), known),
                    guideline=redact_text(_guideline(check, item.policy, checks), known),
                    verdict=verdict,
                    reason=skip.reason if skip else "",
                    field=(skip.field or "") if skip else "",
                )
            )
    return [
        PolicyResult(
            environment=item.policy.environment,
            failures=_of(tally, "enforced"),
            warnings=_of(tally, "warning"),
            skipped=_of(tally, "skipped"),
            passed=tally.passed,
            engine=engine,
            seconds=seconds,
        )
        for item, tally in zip(items, tallies, strict=True)
    ]


def _of(tally: _Tally, verdict: Verdict) -> tuple[Finding, ...]:
    return tuple(sorted((f for f in tally.findings if f.verdict == verdict), key=lambda f: (f.check_id, f.resource)))


def scan_many(items: Sequence[PlanToScan], *, checkov: Checkov, timeout_s: float | None = None) -> list[PolicyResult]:
    """Each plan's verdict, in order; plans that share a custom policy folder share one engine call, up
    to MAX_PLANS_PER_CALL (the fleet planner's many partitions: checkov's ~2.5 s start is paid once a call)."""
    results: list[PolicyResult | None] = [None] * len(items)
    groups: dict[Path | None, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(item.policy.custom_policies, []).append(index)
    for folder, members in groups.items():
        for start in range(0, len(members), MAX_PLANS_PER_CALL):
            indexes = members[start : start + MAX_PLANS_PER_CALL]
            group = [items[i] for i in indexes]
            limit = timeout_s or max(item.policy.timeout_s for item in group) + PER_PLAN_TIMEOUT_S * (len(group) - 1)
            for index, result in zip(indexes, _scan_group(group, folder, checkov, limit), strict=True):
                results[index] = result
    return [result for result in results if result is not None]


def scan(
    plan: Mapping[str, Any],
    policy: PlanPolicy,
    *,
    checkov: Checkov,
    source: str | None = None,
    timeout_s: float | None = None,
) -> PolicyResult:
    """The verdict of ``policy`` on one plan (``terraform show -json``), or PolicyEngineError."""
    return scan_many([PlanToScan(plan, policy, source)], checkov=checkov, timeout_s=timeout_s or policy.timeout_s)[0]


def _scan_group(group: list[PlanToScan], folder: Path | None, checkov: Checkov, timeout_s: float) -> list[PolicyResult]:
    started = time.perf_counter()
    everything = set().union(*(plan_secrets(item.plan) for item in group))
    names = [f"plan-{index}.json" for index in range(len(group))]
    scratch = Path(tempfile.mkdtemp(prefix="manager-policy-", dir=_scratch_root()))
    try:
        os.chmod(scratch, 0o700)
        paths = [_write_private(scratch, name, item.plan) for name, item in zip(names, group, strict=True)]
        # --compact: no code blocks (lines of the plan, values in clear) in the report.
        argv = ["-f", *map(str, paths), "--framework", "terraform_plan", "-o", "json", "--compact", "--skip-download"]
        if folder is not None:
            argv += ["--external-checks-dir", str(folder)]
        stdout = _run_engine(checkov, argv, scratch, timeout_s, everything)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return read_report(
        stdout,
        group,
        names,
        checks=checkov.checks,
        engine=f"checkov {checkov.version}",
        seconds=time.perf_counter() - started,
    )
