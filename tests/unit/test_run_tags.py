"""What a run row shows: at most five tags a person filters by; the rest hidden; the partition tags Dagster's
own launches carry on every run the CLI makes too, so the job's Partitions page counts it."""

from __future__ import annotations

from pathlib import Path

import yaml

from manager_pipeline.defs.partitions import CODE_LOCATION, partition_tags
from manager_pipeline.events import COMMIT_TAG, HIDDEN_PREFIX, KIND_TAG, OUTCOME_TAG, VISIBLE_TAGS, DispatchEvent, sign_author

REPO = Path(__file__).resolve().parents[2]


def _shown(tags: dict[str, str]) -> list[str]:
    # Dagster shows user tags on a run's row; `dagster/` ones are its own (folded), `.dagster/` ones hidden.
    return sorted(key for key in tags if not key.startswith(("dagster/", ".dagster/")))


def test_a_busy_run_shows_at_most_five_tags_and_they_are_what_people_filter_by():
    event = DispatchEvent(
        "web", "production", sha="a" * 40, branch="main", pr=12, delivery_id="d-1", plan_only=False,
        trigger="webhook", author="dev", trigger_repo="acme/app", trigger_ref="refs/heads/main", trigger_sha="b" * 40,
    )
    key = b"k" * 32
    tags = sign_author(
        partition_tags("deploy", "web", "production") | event.to_tags() | {KIND_TAG: "deploy", OUTCOME_TAG: "applied"},
        key,
    )
    assert _shown(tags) == sorted(VISIBLE_TAGS) and len(VISIBLE_TAGS) <= 5
    assert tags[COMMIT_TAG] == "a" * 12
    # Nothing is lost: the whole event reads back from the hidden tags.
    assert DispatchEvent.from_tags("web", "production", tags, author_key=key) == event
    assert all(key.startswith(HIDDEN_PREFIX) for key in tags if key not in VISIBLE_TAGS and "dagster/" not in key[:9])


def test_a_run_queued_by_an_earlier_release_reads_the_same():
    old = {"manager/sha": "c" * 40, "manager/plan-only": "true", "manager/pr": "7", "manager/trigger": "webhook"}
    event = DispatchEvent.from_tags("web", "staging", old)
    assert (event.sha, event.plan_only, event.pr, event.trigger) == ("c" * 40, True, 7, "webhook")


def test_partition_tags_name_the_code_location_workspace_yaml_loads():
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == CODE_LOCATION
    tags = partition_tags("deploy", "web", "staging")
    assert tags["dagster/partition"] == "staging|web"
    assert tags["dagster/partition_set"] == "deploy_partition_set"
    assert tags[".dagster/repository"] == f"__repository__@{CODE_LOCATION}"
