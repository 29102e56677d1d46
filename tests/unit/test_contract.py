"""The variables.yml contract: what it accepts, what it refuses and how it says so."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manager_pipeline.contract import SCHEMA, load_variables, resolve
from manager_pipeline.contract.generated import markdown_reference, terraform_sections
from manager_pipeline.contract.schema import SECTIONS
from manager_pipeline.errors import ContractError
from tests.support import REPO

EXAMPLE_PATH = REPO / "examples" / "source_monorepo" / "infra" / "variables.yml"
FULL_PATH = REPO / "examples" / "variables.full.yml"
EXAMPLE = EXAMPLE_PATH.read_text()
ENVS = ["staging", "production"]
MINIMAL = (
    "project_name: tiny\n"
    "environments:\n"
    "  staging:\n"
    "    region: eu-west-1\n"
    "    instance_type: t3.nano\n"
    "    min_instances: 0\n"
    "    max_instances: 1\n"
)


def load(text: str | bytes):
    return load_variables(text, ENVS)


def problems_of(text: str | bytes) -> list[str]:
    with pytest.raises(ContractError) as caught:
        load(text)
    return [str(p) for p in caught.value.problems]


def edit(old: str, new: str, text: str = EXAMPLE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --- what is accepted -------------------------------------------------------------------


def test_example_resolves_per_environment_with_placeholders_replaced():
    data = load(EXAMPLE)
    staging = resolve(data, "staging", "example")
    production = resolve(data, "production", "example")
    assert staging.tags["Stage"] == "staging" and production.tags["Stage"] == "production"
    assert staging.instances.instance_type == "t3.micro" and production.instances.max_instances == 6
    assert staging.vpc_cidr == "10.20.0.0/16" and staging.availability_zones == 2
    assert staging.digest != production.digest


def test_a_file_using_every_optional_section_validates_and_reaches_terraform():
    data = load(FULL_PATH.read_text())
    assert set(SECTIONS) <= set(data), "the full example must show every section"
    config = resolve(data, "production", "shop")
    tfvars = config.to_tfvars()
    assert tfvars["database"]["engine_version"] == "16.3"
    assert tfvars["storage"]["lifecycle_rules"][0]["transition_storage_class"] == "GLACIER"
    assert tfvars["custom"] == {"anything": "goes", "nested": {"deep": [1, 2, 3]}}
    assert config.tags == {"Team": "shop", "CostCenter": "4711", "Stage": "production", "Public": "false"}
    assert config.instances.backup_retention_days == 30 and config.enable_nat_gateway is True


def test_defaults_fill_what_is_left_out():
    config = resolve(load(MINIMAL), "staging", "tiny")
    assert config.vpc_cidr == "10.0.0.0/16" and config.availability_zones == 2 and config.tags == {}
    assert config.instances.backup_retention_days == 7 and config.instances.enable_monitoring is False
    assert all(config.sections[name] is None for name in SECTIONS)
    with pytest.raises(ContractError, match=r"environments.production: missing; add an `production:` section"):
        resolve(load(MINIMAL), "production", "tiny")


def test_yaml_merge_keys_may_override_merged_values():
    text = (
        MINIMAL.replace("  staging:\n", "  staging: &base\n") + "  production:\n    <<: *base\n    max_instances: 4\n"
    )
    config = resolve(load(text), "production", "tiny")
    assert config.instances.max_instances == 4 and config.region == "eu-west-1"


def test_tfvars_match_the_terraform_variables_one_to_one():
    declared = set()
    for path in (REPO / "terraform").glob("*.tf"):
        declared |= set(re.findall(r'^variable "([a-z_]+)"', path.read_text(), re.M))
    assert set(resolve(load(EXAMPLE), "staging", "example").to_tfvars()) == declared


def test_generated_files_are_in_step_with_the_schema():
    assert (REPO / "terraform" / "sections.tf").read_text() == terraform_sections()
    assert json.loads((REPO / "schema" / "variables.schema.json").read_text()) == SCHEMA
    assert markdown_reference() in (REPO / "docs" / "contract.md").read_text()


def test_examples_point_editors_at_the_schema():
    for path in (EXAMPLE_PATH, FULL_PATH):
        first = path.read_text().splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert match and (path.parent / match.group(1)).resolve() == REPO / "schema" / "variables.schema.json"


# --- what is refused, and the message for it ----------------------------------------------

LAUGHS = "".join(
    f"{name}: &{name} [{', '.join(['*' + prev] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f"], ["a", "b", "c", "d", "e", "f", "g"], strict=True)
)

CASES = [
    # the file itself
    (
        "empty",
        "",
        "variables.yml: (top level): expected a mapping with project_name and environments, got an empty file",
    ),
    (
        "list",
        "- a\n- b\n",
        "variables.yml:1:1: (top level): expected a mapping with project_name and environments, got a list",
    ),
    ("scalar", "just text\n", "got text"),
    ("unclosed", "project_name: [a, b\n", "variables.yml:2:1: (file): expected ',' or ']'"),
    (
        "duplicate",
        "project_name: a\nproject_name: b\n",
        "variables.yml:2:1: (file): duplicate key 'project_name' (first defined at line 1)",
    ),
    (
        "python-tag",
        "project_name: !!python/object/apply:os.system [id]\n",
        "variables.yml:1:15: (file): tag tag:yaml.org,2002:python/object/apply:os.system is not allowed",
    ),
    ("binary-tag", "project_name: !!binary aGk=\n", "tag tag:yaml.org,2002:binary is not allowed: only plain data"),
    (
        "two-documents",
        "project_name: a\n---\nproject_name: b\n",
        "variables.yml:2:1: (file): holds more than one YAML document; keep exactly one",
    ),
    ("billion-laughs", LAUGHS, "expands to more than 20000 values through anchors and aliases"),
    ("recursive-anchor", "project_name: &x [*x]\n", "variables.yml:1:15: (file): an anchor refers to itself"),
    ("not-utf8", b"project_name: caf\xe9\n", "is not UTF-8 text (invalid byte at offset 17); save it as UTF-8"),
    ("too-big", "project_name: x\n" + "#" * (256 * 1024), "bytes; the limit is 256 KiB"),
    ("bool-key", edit("  Team: platform", "  on: platform"), 'key `on` is not read as text; quote it ("on")'),
    ("tabs", "project_name: x\nenvironments:\n\tstaging: {}\n", "indent with spaces, not tabs"),
    # keys
    (
        "unknown-top",
        edit("networking:", "netwroking:"),
        "variables.yml:24:1: netwroking: unknown key `netwroking`; did you mean `networking`?",
    ),
    (
        "unknown-nested",
        edit("  vpc_cidr:", "  vpc_cdir:"),
        "variables.yml:25:3: networking.vpc_cdir: unknown key `vpc_cdir`; did you mean `vpc_cidr`?",
    ),
    (
        "unknown-env-key",
        edit("    instance_type: t3.micro", "    instance_typ: t3.micro"),
        "environments.staging.instance_typ: unknown key `instance_typ`; did you mean `instance_type`?",
    ),
    ("missing-required", edit("project_name: demo-app\n", ""), "(top level): `project_name` is required"),
    (
        "missing-env-field",
        edit("    instance_type: t3.small\n", ""),
        "environments.production: `instance_type` is required",
    ),
    ("no-environments", MINIMAL.split("environments:")[0] + "environments: {}\n", "environments: must not be empty"),
    (
        "unknown-environment",
        edit("  staging:", "  qa:"),
        "environments.qa: the manager does not deploy to `qa` (known: staging, production)",
    ),
    # values
    (
        "project-case",
        edit("project_name: demo-app", "project_name: Demo_App"),
        "project_name: 'Demo_App' is not valid: Lowercase DNS-label",
    ),
    (
        "project-long",
        edit("project_name: demo-app", "project_name: " + "a" * 41),
        "project_name: '" + "a" * 41 + "' is not valid",
    ),
    (
        "project-date",
        edit("project_name: demo-app", "project_name: 2024-01-01"),
        "project_name: '2024-01-01' is not valid",
    ),
    (
        "region",
        edit("region: us-east-1", "region: mars"),
        "variables.yml:10:13: environments.staging.region: 'mars' is not valid: AWS region name",
    ),
    (
        "instance-type",
        edit("instance_type: t3.micro", "instance_type: large"),
        "environments.staging.instance_type: 'large' is not valid",
    ),
    (
        "min-over-max",
        edit("min_instances: 1", "min_instances: 5"),
        "environments.staging.min_instances: 5 is more than max_instances (2)",
    ),
    (
        "not-a-number",
        edit("max_instances: 2", "max_instances: two"),
        "environments.staging.max_instances: expected integer, got text 'two'",
    ),
    (
        "negative",
        edit("min_instances: 1", "min_instances: -1"),
        "environments.staging.min_instances: -1 is less than 0",
    ),
    (
        "not-a-bool",
        edit("enable_monitoring: false", "enable_monitoring: yes please"),
        "environments.staging.enable_monitoring: expected boolean, got text 'yes please'",
    ),
    (
        "retention",
        edit("backup_retention_days: 1", "backup_retention_days: 40"),
        "environments.staging.backup_retention_days: 40 is more than 35",
    ),
    ("cloud", edit("cloud_provider: aws", "cloud_provider: gcp"), "cloud_provider: 'gcp' is not one of 'aws'"),
    (
        "public-cidr",
        edit("vpc_cidr: 10.20.0.0/16", "vpc_cidr: 8.8.0.0/16"),
        "networking.vpc_cidr: 8.8.0.0/16 must be a private range between /16 and /24",
    ),
    (
        "wide-cidr",
        edit("vpc_cidr: 10.20.0.0/16", "vpc_cidr: 10.0.0.0/8"),
        "networking.vpc_cidr: 10.0.0.0/8 must be a private range between /16 and /24",
    ),
    (
        "host-bits",
        edit("vpc_cidr: 10.20.0.0/16", "vpc_cidr: 10.20.0.1/16"),
        "networking.vpc_cidr: '10.20.0.1/16' is not an IPv4 CIDR block",
    ),
    (
        "zones",
        edit("availability_zones: 2", "availability_zones: 7"),
        "networking.availability_zones: 7 is more than 6",
    ),
    # tags
    (
        "aws-prefix",
        edit("  Team: platform", "  aws:team: platform"),
        "tags.aws:team: the `aws:` prefix is reserved by AWS",
    ),
    (
        "tag-value-long",
        edit("Team: platform", "Team: " + "x" * 257),
        "tags.Team: is 257 characters in staging; at most 256",
    ),
    ("tag-key-long", edit("  Team: platform", "  " + "K" * 129 + ": platform"), "must be at most 128 characters"),
    (
        "tag-count",
        edit("tags:\n", "tags:\n" + "".join(f"  T{i}: v\n" for i in range(47))),
        "make 55; AWS allows 50 per resource",
    ),
    (
        "placeholder",
        edit('Stage: "{{ environment }}"', 'Stage: "{{ env }}"'),
        "tags.Stage: unknown placeholder `{{ env }}`; the only one is `{{ environment }}`",
    ),
    ("tag-null", edit("Team: platform", "Team:"), "tags.Team: expected string or number or boolean, got nothing None"),
    ("tag-chars", edit("Team: platform", "Team: 'plat<form>'"), "tag values may hold letters, digits"),
    # optional sections
    (
        "security-cidr",
        MINIMAL + "security:\n  allowed_cidr_blocks: [10.0.0.0/33]\n",
        "security.allowed_cidr_blocks[0]: '10.0.0.0/33' is not an IPv4 CIDR block",
    ),
    (
        "lifecycle-id",
        MINIMAL + "storage:\n  lifecycle_rules:\n    - prefix: logs/\n",
        "storage.lifecycle_rules[0]: `id` is required",
    ),
    (
        "lifecycle-class",
        MINIMAL + "storage:\n  lifecycle_rules:\n    - {id: a, transition_storage_class: COLD}\n",
        "storage.lifecycle_rules[0].transition_storage_class: 'COLD' is not one of",
    ),
    (
        "feature-flag",
        MINIMAL + "features:\n  enable_queue: 'yes'\n",
        "features.enable_queue: expected boolean, got text 'yes'",
    ),
    (
        "log-retention",
        MINIMAL + "monitoring:\n  log_retention_days: 10\n",
        "monitoring.log_retention_days: 10 is not one of 1, 3, 5",
    ),
    (
        "slack",
        MINIMAL + "notifications:\n  slack_channel: deploys\n",
        "notifications.slack_channel: 'deploys' is not valid: Slack channel",
    ),
    ("port", MINIMAL + "compute:\n  container_port: 70000\n", "compute.container_port: 70000 is more than 65535"),
    ("engine", MINIMAL + "database:\n  engine: oracle\n", "database.engine: 'oracle' is not one of 'postgres'"),
    (
        "section-typo",
        MINIMAL + "database:\n  multiaz: true\n",
        "database.multiaz: unknown key `multiaz`; did you mean `multi_az`?",
    ),
    ("section-type", MINIMAL + "scaling: fast\n", "scaling: expected object, got text 'fast'"),
]


@pytest.mark.parametrize("text, message", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_malformed_or_malicious_input_gets_a_message_that_says_what_to_change(text, message):
    problems = problems_of(text)
    assert any(message in problem for problem in problems), problems


def test_every_problem_is_listed_each_with_file_line_column_and_path():
    text = edit("networking:", "netwroking:", edit("min_instances: 1", "min_instances: 5"))
    assert problems_of(text) == [
        "variables.yml:12:20: environments.staging.min_instances: 5 is more than max_instances (2)",
        "variables.yml:24:1: netwroking: unknown key `netwroking`; did you mean `networking`?",
    ]


def test_the_error_message_is_what_users_see():
    with pytest.raises(ContractError) as caught:
        load(edit("networking:", "netwroking:"))
    assert str(caught.value).startswith("variables.yml is not valid (1 problem):\n  - variables.yml:24:1: netwroking")


# --- properties ---------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)


def only_contract_errors(source) -> None:
    try:
        data = load(source)
    except ContractError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)
    else:
        for environment in data["environments"]:
            if environment in ENVS:
                resolve(data, environment, "prop")


@PROPERTY_SETTINGS
@given(st.text(max_size=400))
def test_any_text_is_valid_or_a_contract_error(text):
    only_contract_errors(text)


@PROPERTY_SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_are_valid_or_a_contract_error(raw):
    only_contract_errors(raw)


@PROPERTY_SETTINGS
@given(nested)
def test_any_nested_data_is_valid_or_a_contract_error(data):
    only_contract_errors(yaml.safe_dump(data))


def _leaf_paths(data, path=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaf_paths(value, (*path, key))
    else:
        yield path


EXAMPLE_DATA = yaml.safe_load(EXAMPLE)
EXAMPLE_LEAVES = list(_leaf_paths(EXAMPLE_DATA))


@PROPERTY_SETTINGS
@given(st.sampled_from(EXAMPLE_LEAVES), nested)
def test_the_example_with_any_value_swapped_is_valid_or_a_contract_error(path, value):
    data = json.loads(json.dumps(EXAMPLE_DATA))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    only_contract_errors(yaml.safe_dump(data))
