"""The last good policy (policy/last_good.py): a policy file that goes bad neither stops the checks nor
lets plans through unchecked; the copy kept of the last good policy stands in, and says why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from manager_pipeline.policy import ChecksFile, PolicyConfigError, environment_policy
from manager_pipeline.policy.last_good import KEPT_FILE, read_kept

REPO = Path(__file__).resolve().parents[2]
KNOWN = {"CKV_AWS_18", "CKV_AWS_20", "CKV_AWS_21"}


@pytest.fixture
def layout(tmp_path):
    """A manager's folder: a custom policy (the example's required tag), a module with a reviewed skip."""
    shutil.copytree(REPO / "examples" / "policies", tmp_path / "policies")
    module = tmp_path / "terraform"
    module.mkdir()
    (module / "policy-skips.yaml").write_text(
        "skips:\n  - check: CKV_AWS_18\n    resources: [aws_s3_bucket.logs]\n    reason: the log bucket itself\n"
    )
    return tmp_path


def load(layout: Path, environment: str = "production", keep: bool = True):
    checks = ChecksFile(custom_policies="policies", warn=("CKV_AWS_21",))
    return environment_policy(
        environment,
        checks,
        root=layout,
        module_dir=layout / "terraform",
        known=KNOWN,
        keep=layout / "kept" if keep else None,
    )


def test_a_good_policy_is_kept_and_rewritten_only_when_it_changes(layout):
    first = load(layout)
    assert first.kept_because is None and "CKV2_MP_1" in first.policy.custom
    kept = layout / "kept" / "production" / KEPT_FILE
    taken = json.loads(kept.read_text())["taken_at"]
    stamp = kept.stat().st_mtime_ns
    assert load(layout).kept_because is None
    assert kept.stat().st_mtime_ns == stamp, "the same policy was written again"
    # A change of a custom policy's contents is a new good policy: kept anew.
    policy_file = layout / "policies" / "cost_center_tag.yaml"
    policy_file.write_text(policy_file.read_text() + "\n# reviewed again\n")
    load(layout)
    assert (layout / "kept" / "production" / "custom" / "cost_center_tag.yaml").read_text().endswith("again\n")
    assert json.loads(kept.read_text())["taken_at"] >= taken


@pytest.mark.parametrize(
    "broken, where",
    [
        (("policies/cost_center_tag.yaml", "metadata: [unclosed\n"), "cost_center_tag.yaml:2"),
        (("terraform/policy-skips.yaml", "skips:\n  - check: CKV_AWS_18\n"), "policy-skips.yaml:2"),
        (("terraform/policy-skips.yaml", "skips:\n  - {check: CKV_AWS_1234, reason: gone}\n"), "policy-skips.yaml:2"),
    ],
    ids=["custom-policy-unparsable", "skip-without-reason", "skip-of-unknown-check"],
)
def test_a_bad_policy_file_leaves_the_last_good_policy_in_force_and_says_where(layout, broken, where):
    good = load(layout).policy
    name, text = broken
    (layout / name).write_text(text)
    loaded = load(layout)
    assert loaded.kept_because and where in loaded.kept_because, loaded.kept_because
    assert "last good policy" in loaded.kept_because
    # The same decisions as the good one: the custom check still counts, the reviewed skip still skips.
    stand_in = loaded.policy
    assert stand_in.decide("CKV2_MP_1", "aws_s3_bucket.site") == ("enforced", None)
    assert stand_in.decide("CKV_AWS_18", "aws_s3_bucket.logs")[0] == "skipped"
    assert stand_in.decide("CKV_AWS_21", "aws_s3_bucket.site") == ("warning", None)
    assert set(stand_in.custom) == set(good.custom)
    # checkov reads the kept copy of the custom policy, not the broken file.
    assert stand_in.custom_policies == layout / "kept" / "production" / "custom"
    assert (stand_in.custom_policies / "cost_center_tag.yaml").read_text() == (
        REPO / "examples" / "policies" / "cost_center_tag.yaml"
    ).read_text()
    # The bad files are never kept: fixing them again is what moves the kept policy on.
    assert load(layout).policy == stand_in


def test_with_no_good_policy_kept_a_bad_file_is_refused_never_passed(layout):
    (layout / "policies" / "cost_center_tag.yaml").write_text("metadata: [unclosed\n")
    with pytest.raises(PolicyConfigError) as refused:
        load(layout)
    assert "cost_center_tag.yaml:2" in str(refused.value) and "no good policy of production was kept" in str(
        refused.value
    )
    # Without a folder to keep in, the problem is the error itself.
    with pytest.raises(PolicyConfigError, match="cost_center_tag.yaml:2"):
        load(layout, keep=False)


def test_each_environment_keeps_its_own_and_a_tampered_copy_is_not_used(layout):
    load(layout, "production")
    load(layout, "staging")
    assert read_kept(layout / "kept" / "staging")[0].failing == "warn"
    assert read_kept(layout / "kept" / "production")[0].failing == "enforce"
    # A kept custom policy edited behind the manager's back is not the policy that was good.
    (layout / "kept" / "production" / "custom" / "cost_center_tag.yaml").write_text("metadata: {}\n")
    assert read_kept(layout / "kept" / "production") is None
    (layout / "policies" / "cost_center_tag.yaml").write_text("metadata: [unclosed\n")
    with pytest.raises(PolicyConfigError, match="no good policy of production was kept"):
        load(layout, "production")


def test_an_unknown_check_id_in_manager_yaml_is_a_bad_policy_too(layout):
    good = load(layout).policy
    typo = ChecksFile(custom_policies="policies", enforce=("CKV_AWS_2000",))
    loaded = environment_policy(
        "production", typo, root=layout, module_dir=layout / "terraform", known=KNOWN, keep=layout / "kept"
    )
    assert "no check has the id CKV_AWS_2000" in loaded.kept_because
    assert "environments.production.checks.enforce.0" in loaded.kept_because
    # The kept policy stands: what it enforces and its custom checks, not the typo.
    assert loaded.policy.enforce == good.enforce == frozenset() and set(loaded.policy.custom) == set(good.custom)


def _write_and_read(args: tuple[str, int]) -> list[str]:
    """One of many at once: keep one of two policies again and again, reading the kept one each time."""
    layout, n = Path(args[0]), args[1]
    from manager_pipeline.policy.last_good import write_kept

    seen = []
    for i in range(15):
        checks = ChecksFile(custom_policies="policies", warn=("CKV_AWS_21",) if (n + i) % 2 else ("CKV_AWS_20",))
        loaded = environment_policy(
            "production", checks, root=layout, module_dir=layout / "terraform", known=KNOWN, keep=None
        )
        write_kept(layout / "kept" / "production", loaded.policy)
        kept = read_kept(layout / "kept" / "production")
        seen.append("whole" if kept is not None and "CKV2_MP_1" in (kept[0].custom or {}) else "missing")
    return seen


def test_many_processes_keeping_at_once_never_fail_nor_leave_half_a_copy(layout):
    """Every process of the manager (the code location, each run, each worker) keeps the policy as it
    starts: writers that swap the copy at the same moment must neither raise nor let a reader see none.
    (Threads here: each opens the lock file anew, so flock holds them apart as it holds processes.)"""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(_write_and_read, [(str(layout), n) for n in range(6)]))
    assert {state for seen in results for state in seen} == {"whole"}
    leftovers = [p.name for p in (layout / "kept").iterdir() if p.name not in ("production", ".production.lock")]
    assert leftovers == [], "a swap left its old or new copy behind"
