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
    # IAM authentication beside the password, the engine's logs exported, the current CA.
    assert db["IAMDatabaseAuthenticationEnabled"] is True
    assert sorted(db["EnabledCloudwatchLogsExports"]) == ["postgresql", "upgrade"]
    assert db["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    # Its parameter group logs schema changes and slow statements and admits TLS connections only.
    [group] = db["DBParameterGroups"]
    assert group["DBParameterGroupName"].startswith(f"{stack.name}-db-")
    parameters = {
        p["ParameterName"]: p["ParameterValue"]
        for p in rds.describe_db_parameters(DBParameterGroupName=group["DBParameterGroupName"])["Parameters"]
    }
    assert parameters == {"log_statement": "ddl", "log_min_duration_statement": "1000", "rds.force_ssl": "1"}
    # enable_monitoring is false in this environment: no enhanced monitoring, no role for it.
    assert db.get("MonitoringInterval", 0) == 0 and outputs.get("database_monitoring_role_arn") is None
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


