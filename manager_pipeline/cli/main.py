"""manager-pipeline: run the deploy job, list sources, open the UI, stop the local stand-in.

Exit codes: 0 done, 1 the run failed (the message says at which stage and why),
2 a usage error (unknown source or environment, missing variables file, bad manager.yaml);
`drift` also exits 2 when it finds drift (its usage errors say `error:` on stderr).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from manager_pipeline.cli import fleet, plans, run, sources, ui
from manager_pipeline.cli.common import EXIT_FAILED, EXIT_USAGE, UsageError
from manager_pipeline.doctor import command as doctor
from manager_pipeline.errors import ManagerError
from manager_pipeline.settings import Settings

# The command groups, in the order `--help` lists their commands.
GROUPS = (run, sources, ui, plans, fleet)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="manager-pipeline", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(commands)
    doctor.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ManagerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - only a database that cannot be reached is told apart here
        unreachable = _database_unreachable(exc)
        if unreachable is None:
            raise
        print(f"error: {unreachable}", file=sys.stderr)
        return EXIT_USAGE


def _database_unreachable(exc: BaseException) -> str | None:
    """One line for the manager's database not answering (a setting or a service to fix), else None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError):
        return None
    try:
        settings = Settings.from_env()
        shown = (
            "the SQLite file in DAGSTER_HOME"
            if settings.embedded_database
            else make_url(settings.database_url).render_as_string(hide_password=True)
        )
    except Exception:  # noqa: BLE001 - a URL too broken to show is not shown
        shown = "MANAGER_DATABASE_URL"
    cause = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
    return f"the manager's database does not answer ({shown}): {cause}; check it is up and MANAGER_DATABASE_URL"


if __name__ == "__main__":  # python -m manager_pipeline.cli.main
    sys.exit(main())
