import re
from pathlib import Path

import pytest

from manager_pipeline.contract import parse_variables, resolve, validate_document
from manager_pipeline.errors import ContractError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = (REPO / "examples" / "source_monorepo" / "infra" / "variables.yml").read_text()
ENVS = ["staging", "production"]


def load(text: str):
    return validate_document(parse_variables(text), ENVS)


def test_example_resolves_per_environment_with_placeholders_replaced():
    document = load(EXAMPLE)
    staging = resolve(document, "staging", "example")
    production = resolve(document, "production", "example")
    assert staging.tags["Stage"] == "staging" and production.tags["Stage"] == "production"
    assert staging.compute.instance_type == "t3.micro" and production.compute.max_instances == 6
    assert staging.vpc_cidr == "10.20.0.0/16" and staging.availability_zones == 2
    assert staging.digest != production.digest


def test_tfvars_match_the_terraform_variables_one_to_one():
    declared = set(re.findall(r'^variable "([a-z_]+)"', (REPO / "terraform" / "variables.tf").read_text(), re.M))
    tfvars = resolve(load(EXAMPLE), "staging", "example").to_tfvars()
    assert set(tfvars) == declared


def test_defaults_apply_when_optional_sections_are_missing():
    document = load(
        "project_name: tiny\nenvironments:\n  staging:\n    region: eu-west-1\n"
        "    instance_type: t3.nano\n    min_instances: 0\n    max_instances: 1\n"
    )
    config = resolve(document, "staging", "tiny")
    assert config.vpc_cidr == "10.0.0.0/16" and config.enable_nat_gateway is False and config.tags == {}
    assert config.compute.backup_retention_days == 7
    with pytest.raises(ContractError, match="environments.production: missing; add an `production:` section"):
        resolve(document, "production", "tiny")


@pytest.mark.parametrize(
    "change, message",
    [
        (("networking:", "netwroking:"), "netwroking: unknown key `netwroking`; did you mean `networking`?"),
        (("project_name: demo-app", "project_name: Demo_App"), "project_name: 'Demo_App' does not match"),
        (("max_instances: 2", "max_instances: 0"), "environments.staging.min_instances: 1 is more than max_instances"),
        (("vpc_cidr: 10.20.0.0/16", "vpc_cidr: 8.8.0.0/16"), "must be a private range between /16 and /24"),
        (("vpc_cidr: 10.20.0.0/16", "vpc_cidr: 10.0.0.0/8"), "must be a private range between /16 and /24"),
        (("vpc_cidr: 10.20.0.0/16", "vpc_cidr: 10.20.0.1/16"), "is not an IPv4 CIDR block"),
        (("availability_zones: 2", "availability_zones: 9"), "networking.availability_zones: 9 is greater than"),
        (("  staging:", "  qa:"), "environments.qa: the manager does not deploy to `qa`"),
        (("region: us-east-1", "region: mars"), "environments.staging.region: 'mars' does not match"),
        (("project_name: demo-app\n", ""), "(top level): `project_name` is required"),
    ],
)
def test_contract_violations_name_the_key(change, message):
    with pytest.raises(ContractError) as caught:
        load(EXAMPLE.replace(*change, 1))
    assert message in str(caught.value)


def test_every_problem_is_listed_not_just_the_first():
    text = EXAMPLE.replace("networking:", "netwroking:").replace("min_instances: 1", "min_instances: 5")
    with pytest.raises(ContractError) as caught:
        load(text)
    assert caught.value.problems == [
        "netwroking: unknown key `netwroking`; did you mean `networking`?",
        "environments.staging.min_instances: 5 is more than max_instances (2)",
    ]


def test_non_mapping_documents_are_refused():
    for text in ("", "- a\n", "just text\n"):
        with pytest.raises(ContractError, match="expected a mapping"):
            load(text)
