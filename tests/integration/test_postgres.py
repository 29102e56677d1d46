"""A production-style deployment: the Dagster instance, the inbox and the outbox in PostgreSQL."""

from __future__ import annotations


import psycopg2
import pytest
from dagster import DagsterInstance

from manager_pipeline.feedback.outbox import FeedbackItem, Outbox
from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.webhooks import Delivery
from tests.support import LIGHT_MODULE, run_partition

pytestmark = pytest.mark.integration
# The instance in PostgreSQL is under test, not what terraform/ builds.
TERRAFORM_DIR = LIGHT_MODULE

SERVER = "host=127.0.0.1 port=5432 user=postgres"


def test_inbox_and_outbox_work_on_postgresql(database):
    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    inbox = Inbox(url)
    delivery = Delivery("pg-1", "push", None, "acme/web", ("web",), sha="a" * 40, branch="main")
    row, new = inbox.add(delivery)
    assert new and inbox.add(delivery) == (None, False)
    assert [e.delivery.delivery_id for e in inbox.after(0, 10)] == ["pg-1"]
    inbox.mark({row: ("dispatched", None)})
    assert inbox.states() == {"dispatched": 1}
    outbox = Outbox(url)
    [item_id] = outbox.add([FeedbackItem("acme/web", "status", {"sha": "a" * 40})])
    assert outbox.claim(item_id) and not outbox.claim(item_id)
    outbox.delivered(item_id)
    assert outbox.undelivered() == []


def test_the_deploy_job_runs_on_a_postgresql_instance(manager, database, monkeypatch):
    (manager.dagster_home).mkdir(parents=True)
    (manager.dagster_home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_db:\n"
        f"      hostname: 127.0.0.1\n      username: postgres\n      password: ''\n      db_name: {database}\n"
        "      port: 5432\n"
        "concurrency:\n  runs:\n    tag_concurrency_limits:\n"
        "      - {key: dagster/partition, value: {applyLimitPerUniqueValue: true}, limit: 1}\n"
    )
    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    monkeypatch.setenv("MANAGER_DATABASE_URL", url)
    manager.env["MANAGER_DATABASE_URL"] = url
    instance = DagsterInstance.from_config(str(manager.dagster_home))
    result = run_partition(manager, "app", "production", instance=instance)
    assert result.success
    plan_id = result.output_for_node("plan").plan_id
    with psycopg2.connect(f"{SERVER} dbname={database}") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchone() == (1,)
        cursor.execute("SELECT state FROM plan_records WHERE plan_id = %s", (plan_id,))
        assert cursor.fetchone() == ("awaiting-approval",)
