"""The `manager-pipeline` command: argument parsing, a file per command group, each calling the same
stage functions as the Dagster jobs."""

from manager_pipeline.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from manager_pipeline.cli.main import main

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "main"]
