"""The database section: RDS or Aurora on the stand-in, its password only in Secrets Manager."""

from __future__ import annotations

import json

import pytest

from tests.integration.sections import base_document, gone, with_section

pytestmark = pytest.mark.integration


def test_database(stack):
    rds, secrets = stack.client("rds"), stack.client("secretsmanager")
    outputs = stack.apply(
        with_section(
            stack,
            database={
                "engine": "postgres",
                "engine_version": "15.3",
                "backup_retention_period": 5,
                "deletion_protection": False,
            },
        )
    )
    [db] = rds.describe_db_instances(DBInstanceIdentifier=f"{stack.name}-db")["DBInstances"]
    assert db["Engine"] == "postgres" and db["DBInstanceClass"] == "db.t3.micro" and db["AllocatedStorage"] == 20
    assert db["BackupRetentionPeriod"] == 5 and db["StorageEncrypted"] is True and db["MultiAZ"] is False
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == f"{stack.name}-db"
    assert outputs["database_endpoint"] == db["Endpoint"]["Address"] and outputs["database_port"] == 5432
    secret_arn = outputs["database_secret_arn"]
    secret = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])
    assert secret["host"] == db["Endpoint"]["Address"] and len(secret["password"]) == 36
    # The password is in no output.
    assert secret["password"] not in json.dumps(stack.runner.outputs())
    stack.assert_no_changes()

    outputs = stack.apply(base_document(stack.project))
    assert outputs.get("database_endpoint") is None
    assert gone(lambda: rds.describe_db_instances(DBInstanceIdentifier=f"{stack.name}-db"), "DBInstanceNotFound")
    assert "DeletedDate" in secrets.describe_secret(SecretId=secret_arn)


