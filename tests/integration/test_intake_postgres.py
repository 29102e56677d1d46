"""Issue 10 #3 on PostgreSQL: pending inbox rows are claimed with FOR UPDATE SKIP LOCKED, so two
dispatchers never take the same row (the late lower id: tests/unit/test_intake.py)."""

from __future__ import annotations

import threading
import uuid

import pytest

from manager_pipeline.intake.inbox import Inbox
from manager_pipeline.intake.webhooks import Delivery

psycopg2 = pytest.importorskip("psycopg2")
pytestmark = pytest.mark.integration
SERVER = "host=127.0.0.1 port=5432 user=postgres"


@pytest.fixture
def inbox():
    name = f"inbox_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg2.connect(f"{SERVER} dbname=postgres")
    except psycopg2.OperationalError:
        pytest.skip("no PostgreSQL server on this machine")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    yield Inbox(f"postgresql://postgres@127.0.0.1:5432/{name}")
    admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


def push(number: int) -> Delivery:
    return Delivery(f"pg-{number}", "push", None, "acme/app", ("app",), sha=f"{number:040x}", branch=f"b{number}")


def test_two_dispatchers_claim_disjoint_rows(inbox):
    for number in range(1, 5):
        inbox.add(push(number))
    first_has_rows, release = threading.Event(), threading.Event()
    taken: dict[str, list[str]] = {}

    def slow(events):
        taken["first"] = [e.delivery.delivery_id for e in events]
        first_has_rows.set()
        release.wait(30)  # holds its row locks while the second dispatcher claims
        return {e.id: ("dispatching", None, [("app", "staging")]) for e in events}

    worker = threading.Thread(target=inbox.claim, args=(2, slow))
    worker.start()
    assert first_has_rows.wait(30)
    inbox.claim(10, lambda events: taken.setdefault("second", [e.delivery.delivery_id for e in events]) and {})
    release.set()
    worker.join(30)
    assert taken["first"] == ["pg-1", "pg-2"] and taken["second"] == ["pg-3", "pg-4"]
    # Rows 3 and 4 were read but not marked: still pending, taken by the next claim.
    again = inbox.claim(10, lambda events: {e.id: ("dispatching", None, [("app", "staging")]) for e in events})
    assert sorted(again) == [3, 4] and inbox.states() == {"dispatching": 4}
