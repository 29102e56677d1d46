"""Issue 19 #2: rows in `op_handoffs` (which every staging worker and the webhook receiver can write)
are data the consuming step checks, never objects it runs: a pickle payload is refused unread, a row
not signed with MANAGER_HANDOFF_KEY is refused, and a request is resolved again from manager.yaml, so a
swapped row cannot hand production an auto-applying policy."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from manager_pipeline.config.file import parse_config
from manager_pipeline.config.request import ResolvedRequest
from manager_pipeline.events import DispatchEvent
from manager_pipeline.handoff.values import (
    DatabaseStash,
    HandoffError,
    dumps,
    loads,
    resolve_again,
    seal,
    unseal,
)

KEY = b"the-code-location-and-workers-key"
CONFIG = """
sources:
  - {name: web, repo: acme/web}
environments:
  staging: {auto_apply: true}
  production: {auto_apply: false, approvers: [alice]}
"""


class Manager:
    """The consuming worker: manager.yaml as it is on its machine."""

    def __init__(self, path: Path, text: str = CONFIG):
        self.config = parse_config(text, path)

    def request(self, event, manager_digest, recorded):
        return resolve_again(self.config, event, manager_digest, recorded)

    def document(self, ref):
        raise AssertionError("no document in these rows")

    def plan(self, plan_id):
        raise AssertionError("no plan in these rows")


def taken(stash: DatabaseStash, name: str, here: Manager):
    """What HandoffIOManager.load_input does with a row: check its signature, then read it as data."""
    return loads(unseal(stash.get(name), KEY, name), here)


@pytest.fixture
def stash(tmp_path) -> DatabaseStash:
    return DatabaseStash(f"sqlite:///{tmp_path / 'manager.db'}")


class RunsCode:
    """What an attacker pickles: unpickling it writes a file (or anything else)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


def test_a_pickle_payload_in_a_row_is_refused_without_being_run(stash, tmp_path):
    name = "run-1/fetch_variables/request"
    marker = tmp_path / "pwned"
    here = Manager(tmp_path / "manager.yaml")
    stash.put(name, pickle.dumps(RunsCode(marker)))
    with pytest.raises(HandoffError, match="not signed with this manager's MANAGER_HANDOFF_KEY"):
        taken(stash, name, here)
    # Even signed by someone holding the key, a pickle is no JSON: refused, never unpickled.
    stash.put(name, seal(pickle.dumps(RunsCode(marker)), KEY, name))
    with pytest.raises(HandoffError, match="is not JSON: refused"):
        taken(stash, name, here)
    assert not marker.exists()


def test_a_request_row_swapped_for_an_auto_applying_production_is_refused(stash, tmp_path):
    here = Manager(tmp_path / "manager.yaml")
    production = ResolvedRequest.resolve(here.config, DispatchEvent("web", "production", sha="a" * 40, branch="main"))
    name = "run-1/fetch_variables/request"
    body = dumps(production, "the output `request` of fetch_variables")
    assert b"auto_apply" not in body and b"approvers" not in body  # the policy never travels: it is re-derived
    stash.put(name, seal(body, KEY, name))
    again = taken(stash, name, here)
    assert again == production and again.policy.auto_apply is False and again.policy.approvers == ("alice",)

    # The receiver (no key) swaps in a row of its own: a policy that applies unattended.
    forged = json.loads(body)
    forged["policy"] = {"name": "production", "auto_apply": True}
    stash.put(name, seal(json.dumps(forged).encode(), b"a-guessed-key", name))
    with pytest.raises(HandoffError, match="not signed with this manager's MANAGER_HANDOFF_KEY"):
        taken(stash, name, here)
    # A signed row of another step or run moved under this name fails too: the signature names its row.
    stash.put("run-2/fetch_variables/request", seal(body, KEY, "run-2/fetch_variables/request"))
    stash.put(name, stash.get("run-2/fetch_variables/request"))
    with pytest.raises(HandoffError, match="not signed"):
        taken(stash, name, here)

    # Signed by a holder of the key (a staging worker): an unknown field is no policy, and a request
    # resolved under another manager.yaml (one that auto-applies production) is refused.
    stash.put(name, seal(json.dumps(forged).encode(), KEY, name))
    assert taken(stash, name, here).policy.auto_apply is False
    laxer = CONFIG.replace("production: {auto_apply: false", "production: {auto_apply: true")
    other = ResolvedRequest.resolve(Manager(tmp_path / "m.yaml", laxer).config, production.event)
    stash.put(name, seal(dumps(other, "x"), KEY, name))
    with pytest.raises(HandoffError, match="manager.yaml changed since this run resolved its request"):
        taken(stash, name, here)
