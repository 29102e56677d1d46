"""Fixtures of the integration tests that more than one module uses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest

from manager_pipeline.terraform.provider_server import provider_servers
from manager_pipeline.terraform.runner import TerraformRunner
from tests.integration.sections import Stack, _open_stack, base_document


@pytest.fixture(scope="module")
def stack(tmp_path_factory, moto_endpoint, tools_dir):
    project = f"sec{uuid.uuid4().hex[:6]}"
    root, toolchain, env = _open_stack(tmp_path_factory.mktemp("sections") / "run", moto_endpoint, tools_dir, project)
    with provider_servers(toolchain.mirror_providers, env) as reattach:
        runner = TerraformRunner(root, toolchain.terraform, env | reattach)
        solo = TerraformRunner(root, toolchain.terraform, env)
        solo.init(root / "backend.hcl")  # installs the provider too, for runs without the shared process
        setup = Stack(path=root, runner=runner, project=project, endpoint=moto_endpoint, solo_runner=solo)
        outputs = setup.apply(base_document(project))
        assert outputs["vpc_id"].startswith("vpc-")
        # Absent sections: no resources, null outputs.
        assert all(outputs.get(name) is None for name in ("storage_bucket_name", "log_group_name", "database_endpoint"))
        yield setup


POSTGRES = "host=127.0.0.1 port=5432 user=postgres"


@contextmanager
def own_database() -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL (trust auth), dropped afterwards; its name."""
    name = f"mp_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(f"{POSTGRES} dbname=postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


@pytest.fixture
def database():
    with own_database() as name:
        yield name
