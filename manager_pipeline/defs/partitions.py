"""Partitions: every (source, environment) pair is one partition of the deploy job."""

from __future__ import annotations

from typing import Iterable

from dagster import (
    DagsterInstance,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from manager_pipeline.config.model import ManagerConfig

SOURCE = "source"
ENVIRONMENT = "environment"

source_partitions = DynamicPartitionsDefinition(name=SOURCE)


def deploy_partitions(environments: Iterable[str]) -> MultiPartitionsDefinition:
    return MultiPartitionsDefinition(
        {SOURCE: source_partitions, ENVIRONMENT: StaticPartitionsDefinition(list(environments))}
    )


def partition_key(source: str, environment: str) -> MultiPartitionKey:
    return MultiPartitionKey({SOURCE: source, ENVIRONMENT: environment})


def split_partition_key(key: str | MultiPartitionKey) -> tuple[str, str]:
    """(source, environment) of a deploy partition key such as ``staging|example``."""
    if isinstance(key, MultiPartitionKey):
        dims = key.keys_by_dimension
    else:
        environment, source = key.split("|", 1)
        dims = {SOURCE: source, ENVIRONMENT: environment}
    return dims[SOURCE], dims[ENVIRONMENT]


def partition_changes(config: ManagerConfig, existing: Iterable[str]) -> tuple[list[str], list[str]]:
    """(to add, to delete) to make the dynamic source partitions match manager.yaml."""
    wanted, have = set(config.sources), set(existing)
    return sorted(wanted - have), sorted(have - wanted)


def sync_source_partitions(instance: DagsterInstance, config: ManagerConfig) -> list[str]:
    """Add the partitions of new sources (before a run in this process); the ones added. The partitions of
    sources that left manager.yaml are retired by the partition sync sensor only, which first checks that
    their state holds nothing (defs/intake.py)."""
    added, _ = partition_changes(config, instance.get_dynamic_partitions(SOURCE))
    if added:
        instance.add_dynamic_partitions(SOURCE, added)
    return added


# The code location's name in workspace.yaml (its python_module): the UI names runs' repository by it.
CODE_LOCATION = "manager_pipeline.defs.definitions"


def partition_tags(job_name: str, source: str, environment: str) -> dict[str, str]:
    """The tags Dagster's own launches (sensors, backfills, the launchpad) give a run of a partition, which
    the job's Partitions page and the partition's history find runs by: a run the CLI executes in its
    process carries them too."""
    key = partition_key(source, environment)
    return {
        "dagster/partition": str(key),
        f"dagster/partition/{SOURCE}": source,
        f"dagster/partition/{ENVIRONMENT}": environment,
        # Dagster names a job's partition set `<job>_partition_set`, and its Partitions page counts the runs
        # of the code location (repository@location) it serves: the two tags Dagster's own launches set
        # (Dagster 1.13; no public API builds them).
        "dagster/partition_set": f"{job_name}_partition_set",
        ".dagster/repository": f"__repository__@{CODE_LOCATION}",
    }
