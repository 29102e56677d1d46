"""`run`, `validate`, `schema`, `setup`: deploy one partition in this process, check a variables.yml, print
the schemas, build the toolchain."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from manager_pipeline.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    check_run_request,
    execute,
    read_manager_yaml,
    read_settings,
)
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.settings import Settings


def cmd_run(args: argparse.Namespace) -> int:
    settings = read_settings()
    config = read_manager_yaml(settings)
    check_run_request(config, args.source, args.env)

    from manager_pipeline.aws.standin import LocalAws
    from manager_pipeline.defs.instance import open_instance
    from manager_pipeline.defs.jobs import DEPLOY_JOB
    from manager_pipeline.defs.partitions import sync_source_partitions

    if args.sha is not None and not re.fullmatch(r"[0-9a-f]{40}", args.sha):
        raise UsageError(f"--sha `{args.sha[:80]}` is not a commit id; give the full 40-character hex id")
    instance = open_instance(settings)
    sync_source_partitions(instance, config)
    if settings.aws.mode == "local":
        status = LocalAws(settings.home).ensure_running()
        state = "started" if status.started else "reused"
        print(f"[{'aws':<8}] local AWS stand-in (moto) {state} on {status.endpoint_url}")
    event = DispatchEvent(
        source=args.source,
        environment=args.env,
        sha=args.sha,
        branch=args.branch,
        pr=args.pr,
        plan_only=args.plan_only,
        trigger="cli",
        author=args.author,
    )
    return execute(settings, instance, DEPLOY_JOB, args.source, args.env, event.to_tags())


def _known_environments(settings: Settings) -> list[str]:
    """The manager's environments when its manager.yaml is there; else the defaults."""
    from manager_pipeline.config.model import DEFAULT_ENVIRONMENTS

    if not settings.config_path.is_file():
        return list(DEFAULT_ENVIRONMENTS)
    return list(read_manager_yaml(settings).environments)


def _validate_manager(settings) -> int:
    """manager.yaml and its policies: every problem with its file:line; the checks' ids against the engine's."""
    from manager_pipeline.policy import check_checks_document, installed_checkov, load_reviewed_skips
    from manager_pipeline.yamlfile import parse_yaml

    config = read_manager_yaml(settings)  # a problem of the file itself: one line each, with its place
    checkov = installed_checkov(settings.tools_dir)
    if checkov is None:
        raise UsageError(
            "the policy engine is not installed, so check ids cannot be checked: run `manager-pipeline setup`"
        )
    try:
        document = parse_yaml(config.path.read_text(), str(config.path))
        for name in config.environments:
            check_checks_document(
                document, str(config.path), ("environments", name, "checks"), checkov.checks, config.path.parent
            )
        skips = load_reviewed_skips(config.terraform_dir, known=checkov.checks)
    except ManagerError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    for name, policy in config.environments.items():
        failing = (policy.checks.failing if policy.checks and policy.checks.failing else None) or (
            "enforce" if name == "production" else "warn"
        )
        print(f"{name}: policy checks {failing}" + (f", {len(policy.checks.skips)} skip(s)" if policy.checks else ""))
    print(f"{config.path} is valid; {len(skips)} reviewed skip(s) in the module")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from manager_pipeline.contract import check_document, contract_warnings, parse_variables, resolve
    from manager_pipeline.errors import ContractError

    settings = read_settings()
    if args.manager:
        return _validate_manager(settings)
    if not args.path:
        raise UsageError("name the variables.yml to check, or give --manager to check manager.yaml")
    environments = _known_environments(settings)
    if args.env and args.env not in environments:
        raise UsageError(f"unknown environment `{args.env}` (known: {', '.join(environments)})")
    try:
        source = Path(args.path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.path}: {exc.strerror}") from None
    try:
        document = parse_variables(source, args.path)
        data = check_document(document, environments, args.path)
        resolved = resolve(data, args.env, "validate", args.path).to_tfvars() if args.env else None
    except ContractError as exc:
        if args.format == "json":
            print(json.dumps({"valid": False, "errors": [p.to_dict() for p in exc.problems]}, indent=2))
        else:
            print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    warnings = contract_warnings(data, args.path, document)
    if resolved is not None:
        resolved.pop("source_name")
    if args.format == "json":
        print(
            json.dumps(
                {
                    "valid": True,
                    "file": args.path,
                    "environment": args.env,
                    "warnings": [p.to_dict() for p in warnings],
                    "resolved": resolved,
                },
                indent=2,
            )
        )
    else:
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"{args.path} is valid" + (f"; what Terraform receives for {args.env}:" if resolved else ""))
        if resolved:
            print(json.dumps(resolved, indent=2))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from manager_pipeline.contract import SCHEMA
    from manager_pipeline.contract.generated import markdown_reference, terraform_sections

    if args.manager:
        from manager_pipeline.config.schema import manager_schema

        print(json.dumps(manager_schema(), indent=2))
    elif args.markdown:
        print(markdown_reference())
    elif args.terraform:
        print(terraform_sections(), end="")
    else:
        print(json.dumps(SCHEMA, indent=2))
    return EXIT_OK


def cmd_setup(args: argparse.Namespace) -> int:
    from manager_pipeline.db.migrate import HEAD, upgrade
    from manager_pipeline.defs.instance import prepare_home
    from manager_pipeline.policy import ensure_checkov
    from manager_pipeline.terraform import ensure_toolchain

    settings = read_settings()
    toolchain = ensure_toolchain(settings.tools_dir, settings.terraform_bin, settings.providers)  # type: ignore[arg-type]
    checkov = ensure_checkov(settings.tools_dir)
    home = prepare_home(settings)
    print(f"terraform {toolchain.version}: {toolchain.terraform}")
    print(f"providers: {settings.providers} ({toolchain.cli_config})")
    print(f"policy engine: checkov {checkov.version} ({checkov.python.parent})")
    print(f"dagster instance: {home}")
    before = upgrade(settings.database_url)
    print(f"manager database: revision {HEAD}" + ("" if before == HEAD else f" (was {before or 'none'})"))
    return EXIT_OK


def add_parsers(subparsers) -> None:
    run = subparsers.add_parser("run", help="run the deploy job for one source and environment, in this process")
    run.add_argument("--source", required=True, help="source name from manager.yaml")
    run.add_argument("--env", required=True, help="environment, e.g. staging")
    run.add_argument("--plan-only", action="store_true", help="stop after the plan")
    run.add_argument("--sha", help="read the variables at this commit")
    run.add_argument("--branch", help="the branch the commit is on (decides whether it may apply)")
    run.add_argument("--pr", type=int, help="pull request number (plans only)")
    run.add_argument("--author", help="GitHub login of the change's author (who may not approve it)")
    run.set_defaults(func=cmd_run)
    validate = subparsers.add_parser("validate", help="check a variables.yml against the contract")
    validate.add_argument("path", nargs="?", help="the variables.yml to check")
    validate.add_argument("--manager", action="store_true", help="check manager.yaml and its policies instead")
    validate.add_argument("--env", help="also print what Terraform receives for this environment")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.set_defaults(func=cmd_validate)
    schema = subparsers.add_parser("schema", help="print the JSON Schema of variables.yml")
    generated = schema.add_mutually_exclusive_group()
    generated.add_argument("--markdown", action="store_true", help="the field reference (docs/contract.md) instead")
    generated.add_argument("--terraform", action="store_true", help="terraform/sections.tf instead")
    generated.add_argument("--manager", action="store_true", help="the JSON Schema of manager.yaml instead")
    schema.set_defaults(func=cmd_schema)
    subparsers.add_parser("setup", help="build Terraform and the provider mirror, prepare the instance").set_defaults(
        func=cmd_setup
    )
