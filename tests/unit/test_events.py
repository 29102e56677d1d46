from pydantic import SecretStr

from manager_pipeline.events import AUTHOR_TAG, SHA_TAG, DispatchEvent, sign_author, vouched_author
from manager_pipeline.signing import KEY_FILE, tag_key


def test_tags_round_trip():
    event = DispatchEvent(
        source="web",
        environment="production",
        sha="a" * 40,
        branch="main",
        pr=42,
        delivery_id="d-1",
        plan_only=True,
        trigger="webhook",
    )
    assert DispatchEvent.from_tags("web", "production", event.to_tags()) == event


def test_missing_tags_mean_a_manual_run_and_backfills_are_named():
    assert DispatchEvent.from_tags("web", "staging", {}) == DispatchEvent("web", "staging")
    assert DispatchEvent.from_tags("web", "staging", {"dagster/backfill": "x"}).trigger == "backfill"
    assert DispatchEvent.from_tags("web", "staging", {"manager/pr": "abc"}).pr is None


KEY = b"k" * 32


def test_an_author_is_believed_only_under_the_managers_own_proof():
    event = DispatchEvent("web", "production", sha="b" * 40, author="alice")
    signed = sign_author(event.to_tags(), KEY)
    assert DispatchEvent.from_tags("web", "production", signed, author_key=KEY).author == "alice"
    # A launchpad run that names an author (no proof), or edits the signed one, has an unknown author.
    assert DispatchEvent.from_tags("web", "production", event.to_tags(), author_key=KEY).author is None
    assert DispatchEvent.from_tags("web", "production", signed | {AUTHOR_TAG: "mallory"}, author_key=KEY).author is None
    assert vouched_author(signed | {AUTHOR_TAG: "mallory"}, "web", "production", KEY) == (None, "mallory")
    # The proof is bound to the partition and the commit: copied onto another run it vouches for nobody.
    assert DispatchEvent.from_tags("api", "production", signed, author_key=KEY).author is None
    assert DispatchEvent.from_tags("web", "staging", signed, author_key=KEY).author is None
    assert DispatchEvent.from_tags("web", "production", signed | {SHA_TAG: "c" * 40}, author_key=KEY).author is None
    # Another manager's key, or none at all, vouches for nobody either.
    assert DispatchEvent.from_tags("web", "production", signed, author_key=b"x" * 32).author is None
    assert DispatchEvent.from_tags("web", "production", signed).author is None


def test_the_run_tag_key_is_kept_owner_only_and_derived_from_the_handoff_key_where_there_is_one(tmp_path):
    key_file = tmp_path / "dagster" / KEY_FILE
    first = tag_key(None, key_file)
    assert len(first) == 32 and tag_key(None, key_file) == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    from_handoff = tag_key(SecretStr("handoff-secret"), key_file)
    assert from_handoff != first and from_handoff == tag_key(SecretStr("handoff-secret"), tmp_path / "elsewhere")
    # Never the handoff key itself: a signature of one kind never passes for the other.
    assert b"handoff-secret" not in from_handoff
