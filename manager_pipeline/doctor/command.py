"""`manager-pipeline doctor [--format text|json]`: exit 0 when every check passes, 1 otherwise."""

from __future__ import annotations

import argparse
import json

from manager_pipeline.doctor.checks import run_checks
from manager_pipeline.doctor.result import CheckResult, Status

EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    doctor = subparsers.add_parser(
        "doctor", help="check, read-only, what a real set-up needs (GitHub, AWS, database, provider, UI)"
    )
    doctor.add_argument("--format", choices=("text", "json"), default="text")
    doctor.set_defaults(func=run)
    return doctor


def render_text(results: list[CheckResult]) -> str:
    width = max(len(result.name) for result in results)
    lines = [f"{result.status.value:<13} {result.name:<{width}}  {result.line}" for result in results]
    bad = [result for result in results if not result.passed]
    lines.append(
        f"all {len(results)} checks passed"
        if not bad
        else f"{len(bad)} of {len(results)} checks did not pass "
        f"({sum(r.status is Status.COULD_NOT_RUN for r in bad)} could not run)"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    results = run_checks()
    passed = all(result.passed for result in results)
    if args.format == "json":
        print(json.dumps({"ok": passed, "checks": [result.to_json() for result in results]}, indent=2))
    else:
        print(render_text(results))
    return EXIT_OK if passed else EXIT_FAILED
