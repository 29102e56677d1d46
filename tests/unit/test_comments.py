"""Long feedback split into GitHub comments: parts within the limit, markdown balanced, joined back equal."""

from manager_pipeline.feedback.comments import COMMENT_LIMIT, join_parts, split_comment


def test_a_300_kb_plan_is_split_into_balanced_parts_that_join_back_equal():
    plan = "\n".join(f'  + resource "aws_subnet" "s{i}" {{ cidr_block = "10.{i % 250}.0.0/24" }}' for i in range(6000))
    body = f"## plan\n\n<details><summary>Terraform plan</summary>\n\n```text\n{plan}\n```\n\n</details>\n"
    parts = split_comment(body, "plan:app:staging")
    assert len(parts) >= 5 and all(len(part) <= COMMENT_LIMIT for part in parts)
    for part in parts:
        lines = part.split("\n")
        assert sum(1 for line in lines if line.startswith("```")) % 2 == 0
        assert part.count("<details>") == part.count("</details>")
    assert join_parts(parts) == body
