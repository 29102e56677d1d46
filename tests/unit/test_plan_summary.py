from manager_pipeline.terraform.plan import SENSITIVE, UNKNOWN, PlanSummary, mask_outputs, planned_outputs, summarize

PLAN = {
    "resource_changes": [
        {"address": "aws_vpc.main", "change": {"actions": ["create"]}},
        {"address": "aws_subnet.a", "change": {"actions": ["update"]}},
        {"address": "aws_eip.old", "change": {"actions": ["delete"]}},
        {"address": "aws_instance.web", "change": {"actions": ["delete", "create"]}},
        {"address": "data.aws_ami.x", "change": {"actions": ["read"]}},
        {"address": "aws_route.keep", "change": {"actions": ["no-op"]}},
    ],
    "output_changes": {"vpc_id": {"actions": ["create"]}, "same": {"actions": ["no-op"]}},
    "planned_values": {
        "outputs": {
            "vpc_id": {"sensitive": False},
            "password": {"sensitive": True, "value": "hunter2"},
            "cidr": {"sensitive": False, "value": "10.0.0.0/16"},
            "nothing": {"sensitive": False, "value": None},
        }
    },
}


def test_counts_follow_terraform_replacements_count_twice():
    summary = summarize(PLAN)
    assert (summary.add, summary.change, summary.destroy) == (2, 1, 2)
    assert summary.line() == "2 to add, 1 to change, 2 to destroy"
    assert summary.deletions == ("aws_eip.old", "aws_instance.web")
    assert summary.output_changes == ("vpc_id",)
    assert PlanSummary.from_dict(summary.to_dict()) == summary


def test_empty_plan_has_no_changes():
    summary = summarize({"resource_changes": [{"address": "a.b", "change": {"actions": ["no-op"]}}]})
    assert not summary.has_changes and summary.line() == "No changes."


def test_outputs_are_masked_and_unknowns_said():
    outputs = planned_outputs(PLAN)
    assert outputs == {"cidr": "10.0.0.0/16", "password": SENSITIVE, "vpc_id": UNKNOWN}
    assert "hunter2" not in repr(outputs)
    assert mask_outputs({"token": {"sensitive": True, "value": "s3cr3t"}}) == {"token": SENSITIVE}
