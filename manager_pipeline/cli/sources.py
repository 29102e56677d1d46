"""`sources`, `add-source`, `remove-source`, `feedback`: the registered sources, onboarding and removing
one, and the feedback waiting for GitHub."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from manager_pipeline.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    load_resources,
    read_manager_yaml,
    read_settings,
    redacted,
)
from manager_pipeline.cli.fleet import cmd_destroy
from manager_pipeline.errors import ManagerError
from manager_pipeline.intake.lifecycle import status_line


def cmd_sources(args: argparse.Namespace) -> int:
    settings = read_settings()
    config = read_manager_yaml(settings)
    if not config.sources:
        print(f"no sources registered in {settings.config_path}")
        return EXIT_OK
    github_said = _github_said(settings)
    for spec in config.sources.values():
        where = os.path.relpath(spec.path, settings.config_path.parent) if spec.path else f"github:{spec.repo}"
        partitions = ", ".join(f"{env}|{spec.name}" for env in spec.environments)
        print(f"{spec.name:<20} {where}  ({spec.variables_file})  partitions: {partitions}")
        refused = _checks_refused(settings, spec.repo) if spec.repo else None
        if refused:
            print(f"{'':<20} {redacted(refused)}")
        said = status_line(github_said.get(spec.name)) if spec.repo else None
        if said:
            print(f"{'':<20} {redacted(said)}")
    return EXIT_OK


def _github_said(settings) -> dict:
    """What GitHub's lifecycle deliveries said of each source's repository (intake/lifecycle.py)."""
    from manager_pipeline.intake.lifecycle import Repositories

    if settings.database_url.startswith("sqlite:///") and not Path(settings.database_url[10:]).exists():
        return {}  # no database yet: nothing was ever received
    return Repositories(settings.database_url).states()


def _checks_refused(settings, repo: str) -> str | None:
    """A line when GitHub refused this repository's last check run (a GitHub App without `checks: write`):
    its feedback went as commit statuses instead."""
    import datetime

    from manager_pipeline.feedback.outbox import Outbox

    if settings.database_url.startswith("sqlite:///") and not Path(settings.database_url[10:]).exists():
        return None  # no database yet: nothing was ever sent
    refused = Outbox(settings.database_url).checks_refused(repo)
    if refused is None:
        return None
    at, note = refused
    when = datetime.datetime.fromtimestamp(at, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"check runs refused (last at {when}), commit statuses sent instead: {note}"


def cmd_add_source(args: argparse.Namespace) -> int:
    from manager_pipeline.defs.resources import github_resource
    from manager_pipeline.errors import ConfigError
    from manager_pipeline.onboarding.add import AddRequest, add_source
    from manager_pipeline.onboarding.errors import OnboardingError

    settings = read_settings()
    request = AddRequest(
        name=args.name,
        repo=args.repo,
        path=args.path,
        variables_file=args.variables_file,
        environments=tuple(e for item in args.environments for e in item.split(",")) if args.environments else None,
        webhook_url=args.webhook_url,
        webhook=not args.no_webhook,
        org_secret=args.org_secret,
        dry_run=args.dry_run,
    )
    try:
        github = github_resource() if args.repo else None
        add_source(request, settings.config_path, github.client if github and github.configured else None)
    except (OnboardingError, ConfigError) as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def cmd_remove_source(args: argparse.Namespace) -> int:
    from manager_pipeline.onboarding.errors import OnboardingError
    from manager_pipeline.onboarding.remove import remove_source

    settings = read_settings()
    force = args.force
    if args.destroy and not args.dry_run:
        # Decommissioning: a destroy plan for each environment with state, as the one who removes the
        # source (someone else approves it); the entry goes, its partitions stay until those destroys applied.
        try:
            environments = read_manager_yaml(settings).source(args.name).environments
        except ManagerError as exc:
            raise UsageError(str(exc)) from None
        for environment in environments:
            code = cmd_destroy(argparse.Namespace(source=args.name, env=environment))
            if code != EXIT_OK:
                print(f"error: the destroy of {args.name} in {environment} was not planned; manager.yaml is unchanged",
                      file=sys.stderr)
                return code
        force = True
    try:
        remove_source(args.name, settings.config_path, settings.aws.state_bucket, force, args.dry_run)
    except OnboardingError as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def cmd_feedback(args: argparse.Namespace) -> int:
    import datetime

    settings = read_settings()
    from manager_pipeline.defs.instance import prepare_home

    prepare_home(settings)
    outbox = load_resources(settings)["feedback"].outbox()
    if args.retry is not None:
        item = outbox.get(args.retry)
        if item is None:
            raise UsageError(f"no feedback item {args.retry}; `manager-pipeline feedback --dead` lists the dead ones")
        if not outbox.retry(args.retry):
            print(f"error: feedback item {args.retry} is {item.state}, not dead or waiting", file=sys.stderr)
            return EXIT_FAILED
        print(f"feedback item {args.retry} ({item.item.kind} for {item.item.repo}) re-queued; the daemon sends it next")
        return EXIT_OK
    items = outbox.items("dead" if args.dead else None)
    if not items:
        print("no dead feedback items" if args.dead else "nothing waiting for GitHub")
        return EXIT_OK
    print(f"{'ID':<8} {'STATE':<11} {'ATTEMPTS':<9} {'REPOSITORY':<30} {'KIND':<13} {'NEXT/CREATED (UTC)':<20} LAST ERROR")
    for stored in items:
        when = stored.next_attempt_at if stored.state == "pending" and stored.next_attempt_at else stored.created_at
        shown = datetime.datetime.fromtimestamp(when or 0, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        error = " ".join(redacted(stored.last_error or "-").split())[:120]  # redacted before the cut
        print(
            redacted(
                f"{stored.id:<8} {stored.state:<11} {stored.attempts:<9} {stored.item.repo:<30} "
                f"{stored.item.kind:<13} {shown:<20} {error}"
            )
        )
    if any(stored.state == "dead" for stored in items):
        print("re-queue one with: manager-pipeline feedback --retry ID")
    return EXIT_OK


def add_parsers(subparsers) -> None:
    subparsers.add_parser("sources", help="list registered sources and their partitions").set_defaults(func=cmd_sources)
    add = subparsers.add_parser(
        "add-source", help="register a source: manager.yaml entry, variables check, webhook on GitHub"
    )
    add.add_argument("name", help="the source's name (partition name): lowercase, digits, . _ -")
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument("--repo", metavar="OWNER/NAME", help="the GitHub repository")
    where.add_argument("--path", metavar="FOLDER", help="a local checkout instead (no webhook)")
    add.add_argument("--variables-file", default="infra/variables.yml", help="inside the repository")
    add.add_argument(
        "--environments", nargs="+", metavar="ENV", help="environments it deploys to (default: staging, production)"
    )
    add.add_argument(
        "--webhook-url", help="the receiver's public URL (default: $MANAGER_WEBHOOK_URL); /webhooks/github is added"
    )
    add.add_argument("--org-secret", action="store_true", help="sign with GITHUB_WEBHOOK_SECRET, not a new secret")
    add.add_argument("--no-webhook", action="store_true", help="no webhook (a workflow or polling sends changes)")
    add.add_argument("--dry-run", action="store_true", help="show the manager.yaml diff and what would be done")
    add.set_defaults(func=cmd_add_source)
    remove = subparsers.add_parser("remove-source", help="unregister a source (its infrastructure is not destroyed)")
    remove.add_argument("name")
    remove.add_argument(
        "--force", action="store_true", help="remove the manager.yaml entry only; its state objects are kept"
    )
    remove.add_argument(
        "--destroy",
        action="store_true",
        help="first plan the destroy of each environment with state (each then needs its approval and apply)",
    )
    remove.add_argument("--dry-run", action="store_true", help="show the manager.yaml diff only")
    remove.set_defaults(func=cmd_remove_source)
    feedback = subparsers.add_parser("feedback", help="list feedback waiting for GitHub, or dead; re-queue a dead item")
    feedback.add_argument("--dead", action="store_true", help="only the items parked after their last attempt")
    feedback.add_argument("--retry", type=int, metavar="ID", help="re-queue this (dead) item for the next delivery")
    feedback.set_defaults(func=cmd_feedback)
