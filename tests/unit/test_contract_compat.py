"""Files written for the original manager-repository pipeline: accepted as they are, resolved to
canonical names, and every field either builds something or is refused at its line."""

from __future__ import annotations

import json
import re

import pytest

from manager_pipeline.contract import contract_warnings, load_variables, parse_variables, resolve
from manager_pipeline.contract.generated import markdown_reference, terraform_sections
from manager_pipeline.errors import ContractError
from manager_pipeline.feedback import Outcome, OutcomeStatus
from manager_pipeline.feedback.github_items import items_for
from manager_pipeline.feedback.slack import NotifySettings, slack_message
from manager_pipeline.events import DispatchEvent
from tests.support import REPO

# Verbatim copies of the two files the original pipeline ships (shared/mission/upstream-variables.*.yml).
MISSION = REPO / "examples" / "original_pipeline"
UPSTREAM_SOURCE = (MISSION / "variables.source.yml").read_text()
UPSTREAM_EXTENDED = (MISSION / "variables.extended.yml").read_text()
ENVS = ["staging", "production"]
BASE = (
    "project_name: shop\n"
    "environments:\n"
    "  staging: {region: us-east-1, instance_type: t3.micro, min_instances: 1, max_instances: 2}\n"
    "  production: {region: us-west-2, instance_type: t3.small, min_instances: 2, max_instances: 4}\n"
)
EC2 = "compute:\n  ami_id: ami-0c55b159cbfafe1f0\n"
# Staging deploys to us-east-1 and production to us-west-2: one image cannot serve both.
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:1.4.2"
LAMBDA = f"compute:\n  type: lambda\n  image: {IMAGE}\n"
LAMBDA_BASE = BASE.replace("production: {region: us-west-2", "production: {region: us-east-1")


def problems(text: str) -> list[str]:
    with pytest.raises(ContractError) as caught:
        load_variables(text, ENVS)
    return [str(p) for p in caught.value.problems]


def staging(text: str) -> dict:
    return resolve(load_variables(text, ENVS), "staging", "app").to_tfvars()


# --- the shared files, as they are ----------------------------------------------------------


@pytest.mark.parametrize("text", [UPSTREAM_SOURCE, UPSTREAM_EXTENDED], ids=["source", "extended"])
def test_the_original_pipelines_files_validate_in_every_environment(text):
    data = load_variables(text, ENVS)
    for environment in data["environments"]:
        assert resolve(data, environment, "app").environment == environment


def test_the_extended_example_resolves_every_section_under_canonical_names():
    tfvars = staging(UPSTREAM_EXTENDED)
    assert tfvars["storage"]["versioning"] is True and "versioning_enabled" not in tfvars["storage"]
    assert tfvars["storage"]["bucket_name"] == "my-app-storage"
    assert tfvars["storage"]["lifecycle_rules"] == [{"id": "expire-old-versions", "enabled": True, "expiration_days": 90}]
    assert tfvars["scaling"] == {
        "target_cpu_utilization": 70,
        "target_memory_utilization": 80,
        "scale_in_cooldown": 300,
        "scale_out_cooldown": 300,
    }
    assert tfvars["database"]["backup_retention_days"] == 7 and "backup_retention_period" not in tfvars["database"]
    assert tfvars["monitoring"]["enabled"] is True and "enable_cloudwatch" not in tfvars["monitoring"]
    assert tfvars["notifications"]["emails"] == ["ops@example.com", "dev@example.com"]
    assert tfvars["backup"]["cross_region_copy"] is None and tfvars["backup"]["retention_days"] == 30
    assert tfvars["compute"]["type"] == "ec2" and tfvars["compute"]["ami_id"] == "ami-0c55b159cbfafe1f0"
    assert tfvars["features"] == {"enable_queue": False, "enable_cache": True}
    assert tfvars["tags"]["environment"] == "staging"
    assert tfvars["custom"]["worker_count"] == 2


def test_the_slack_webhook_never_reaches_terraform_and_is_kept_for_the_manager():
    config = resolve(load_variables(UPSTREAM_EXTENDED, ENVS), "production", "app")
    text = json.dumps(config.to_tfvars())
    assert "hooks.slack.com" not in text and "slack_webhook" not in text
    assert config.slack_webhook == "https://hooks.slack.com/services/YOUR/WEBHOOK/URL"
    assert "hooks.slack.com" not in repr(config)


@pytest.mark.parametrize(
    "copy",
    [
        "tags:\n  Hook: https://hooks.slack.com/services/YOUR/WEBHOOK/URL\n",
        "custom:\n  alerts: {url: 'see https://hooks.slack.com/services/YOUR/WEBHOOK/URL'}\n",
    ],
    ids=["in-a-tag", "in-custom"],
)
def test_a_secret_copied_into_another_field_is_refused_at_that_field_without_its_value(copy):
    section = copy.split(":", 1)[0]
    text = UPSTREAM_EXTENDED.replace(f"{section}:\n", copy, 1) if f"\n{section}:\n" in UPSTREAM_EXTENDED else UPSTREAM_EXTENDED + copy
    with pytest.raises(ContractError) as refused:
        load_variables(text, ENVS)
    message = str(refused.value)
    assert "holds the value of notifications.slack_webhook, a secret" in message
    assert f"{section}." in message and "hooks.slack.com" not in message


def test_validate_warns_about_a_secret_in_the_file_at_its_line():
    document = parse_variables(UPSTREAM_EXTENDED)
    data = load_variables(UPSTREAM_EXTENDED, ENVS)
    warnings = [str(w) for w in contract_warnings(data, "variables.yml", document)]
    assert any(w.startswith("variables.yml:108:18: notifications.slack_webhook: a secret") for w in warnings), warnings
    assert all("hooks.slack.com" not in w for w in warnings)


# --- any file with the original names and other valid values -----------------------------

ALIASES = [
    # (section text with the original name, path in the resolved section, value)
    ("storage:\n  versioning_enabled: false\n", ("storage", "versioning"), False),
    ("storage:\n  lifecycle_rules:\n    - {name: tidy, expiration_days: 30}\n", ("storage", "lifecycle_rules", 0, "id"), "tidy"),
    ("monitoring:\n  enable_cloudwatch: true\n  log_retention_days: 60\n", ("monitoring", "log_retention_days"), 60),
    ("database:\n  backup_retention_period: 14\n", ("database", "backup_retention_days"), 14),
    (EC2 + "scaling:\n  cpu_threshold: 55\n", ("scaling", "target_cpu_utilization"), 55),
    (EC2 + "scaling:\n  memory_threshold: 65\n", ("scaling", "target_memory_utilization"), 65),
    (EC2 + "scaling:\n  scale_up_cooldown: 120\n", ("scaling", "scale_out_cooldown"), 120),
    (EC2 + "scaling:\n  scale_down_cooldown: 600\n", ("scaling", "scale_in_cooldown"), 600),
    ("notifications:\n  email_list: [a@example.com]\n", ("notifications", "emails"), ["a@example.com"]),
    ("backup:\n  cross_region_copy: us-west-1\n", ("backup", "cross_region_copy"), "us-west-1"),
    ("backup:\n  cross_region_copy: false\n", ("backup", "cross_region_copy"), None),
    (EC2 + "  key_name: deploy\n  user_data_script: echo hi\n", ("compute", "user_data_script"), "echo hi"),
]


@pytest.mark.parametrize("section, path, value", ALIASES, ids=[a[1][-1] for a in ALIASES])
def test_an_original_field_name_resolves_to_its_canonical_name(section, path, value):
    resolved = staging(BASE + section)
    for key in path:
        resolved = resolved[key]
    assert resolved == value


BOTH = [
    ("storage:\n  versioning: true\n  versioning_enabled: true\n", "storage.versioning_enabled", 6, 7),
    ("monitoring:\n  enabled: true\n  enable_cloudwatch: true\n", "monitoring.enable_cloudwatch", 6, 7),
    ("database:\n  backup_retention_days: 3\n  backup_retention_period: 3\n", "database.backup_retention_period", 6, 7),
    (EC2 + "scaling:\n  cpu_threshold: 50\n  target_cpu_utilization: 60\n", "scaling.cpu_threshold", 9, 8),
    ("notifications:\n  emails: [a@b.co]\n  email_list: [a@b.co]\n", "notifications.email_list", 6, 7),
]


@pytest.mark.parametrize("section, alias, canonical_line, alias_line", BOTH, ids=[b[1] for b in BOTH])
def test_both_spellings_of_one_field_are_refused_naming_both_lines(section, alias, canonical_line, alias_line):
    found = [p for p in problems(BASE + section) if f": {alias}: gives both" in p]
    assert len(found) == 1, problems(BASE + section)
    assert f"(line {canonical_line})" in found[0] and f"(line {alias_line})" in found[0] and "keep one" in found[0]


TYPOS = [
    ("storage:\n  versioning_enabeld: true\n", "did you mean `versioning_enabled`?"),
    (EC2 + "scaling:\n  cpu_treshold: 50\n", "did you mean `cpu_threshold`?"),
    (EC2 + "scaling:\n  target_cpu_utilisation: 50\n", "did you mean `target_cpu_utilization`?"),
    ("notifications:\n  emial_list: [a@b.co]\n", "did you mean `email_list`?"),
    ("features:\n  enable_cahce: true\n", "not supported by this manager: features.enable_cahce; did you mean `enable_cache`?"),
]


@pytest.mark.parametrize("section, message", TYPOS, ids=[t[1].split("`")[1] for t in TYPOS])
def test_typos_in_either_spelling_get_a_suggestion(section, message):
    assert any(message in p for p in problems(BASE + section)), problems(BASE + section)


# --- nothing accepted and ignored ------------------------------------------------------------

REFUSED = [
    ("monitoring:\n  enable_xray: true\n", "6:16: monitoring.enable_xray: not supported by this manager: monitoring.enable_xray"),
    ("security:\n  enable_shield: true\n", "security.enable_shield: not supported by this manager"),
    ("notifications:\n  enable_pagerduty: true\n", "notifications.enable_pagerduty: not supported by this manager"),
    ("features:\n  enable_search: true\n", "features.enable_search: not supported by this manager"),
    ("features:\n  dark_mode: false\n", "6:3: features.dark_mode: not supported by this manager: features.dark_mode"),
    ("compute:\n  type: eks\n", "compute.type: not supported by this manager: compute.type `eks` (supported: ec2, ecs, lambda)"),
    ("monitoring:\n  alarm_cpu_threshold: 80\n", "monitoring.alarm_cpu_threshold: needs a compute section"),
    ("security:\n  ssl_certificate_arn: arn:aws:acm:us-east-1:1:certificate/x\n", "needs a compute section"),
    ("scaling:\n  cpu_threshold: 60\n", "scaling: needs a compute section (there is nothing to scale without one)"),
    ("notifications:\n  slack_channel: '#ops'\n", "needs notifications.slack_webhook"),
    ("monitoring:\n  enabled: false\n  alarm_email: a@b.co\n", "monitoring.alarm_email: monitoring.enabled is false"),
    ("backup:\n  enable_cloudwatch: true\n", "unknown key `enable_cloudwatch`"),
]


@pytest.mark.parametrize("section, message", REFUSED, ids=[r[1].split(":")[2 if r[1][0].isdigit() else 0] for r in REFUSED])
def test_a_field_that_would_build_nothing_is_refused_at_its_line(section, message):
    assert any(message in p for p in problems(BASE + section)), problems(BASE + section)


@pytest.mark.parametrize("section", ["monitoring:\n  enable_xray: false\n", "features:\n  enable_cdn: false\n"])
def test_a_flag_this_manager_cannot_build_is_accepted_when_false_and_reaches_nothing(section):
    resolved = staging(BASE + section)
    assert "enable_xray" not in json.dumps(resolved) and "enable_cdn" not in json.dumps(resolved)


# --- contradictions are refused here, not by Terraform later ------------------------------

CONFLICTS = [
    ("networking: {availability_zones: 1}\ndatabase:\n  multi_az: true\n", "database.multi_az: a standby needs a second availability zone"),
    ("storage:\n  bucket_name: " + "b" * 50 + "\n", "(the bucket's name in production) is 66 characters; S3 allows 63"),
    ("database:\n  engine_version: 15.3\n", 'database.engine_version: expected string, got a number 15.3 (quote it: "15.3")'),
    ("monitoring:\n  alarm_email: ops-at-example\n", "monitoring.alarm_email: 'ops-at-example' is not valid: An e-mail address"),
    (
        "storage:\n  lifecycle_rules:\n    - {id: r, transition_days: 120, transition_storage_class: GLACIER, expiration_days: 90}\n",
        "objects would be deleted (expiration_days 90) before they move (transition_days 120)",
    ),
    ("storage:\n  lifecycle_rules:\n    - {id: r, transition_days: 10}\n", "add transition_storage_class"),
    ("storage:\n  buckets:\n    - {name: access-logs}\n", "names the manager's access-log bucket"),
    ("backup:\n  cross_region_copy: us-east-1\n", "us-east-1 is staging's own region"),
    ("compute:\n  type: ec2\n", "compute: `ami_id` is required for compute of type ec2"),
    ("compute:\n  type: ecs\n  image: nginx\n  cpu: 256\n  memory: 4096\n", "4096 MiB does not fit Fargate's 256 CPU units"),
    ("compute:\n  type: ecs\n  image: nginx\n  ami_id: ami-12345678\n", "compute.ami_id: applies to compute of type ec2 only"),
    ("database:\n  engine: aurora-mysql\n  allocated_storage: 20\n", "Aurora grows its storage by itself"),
    ("notifications:\n  slack_webhook: not-a-url\n", "notifications.slack_webhook: is not valid (value hidden)"),
]


@pytest.mark.parametrize("section, message", CONFLICTS, ids=[c[1][:30] for c in CONFLICTS])
def test_conflicting_settings_get_an_error_at_the_line(section, message):
    found = problems(BASE + section)
    assert any(message in p for p in found), found
    assert all(re.match(r"variables\.yml:\d+:\d+: ", p) for p in found), found
    assert all("not-a-url" not in p for p in found)


# --- compute of type lambda ------------------------------------------------------------------


def test_a_lambda_section_validates_and_reaches_terraform_with_its_defaults():
    tfvars = resolve(load_variables(LAMBDA_BASE + LAMBDA, ENVS), "staging", "app").to_tfvars()
    assert tfvars["compute"]["type"] == "lambda" and tfvars["compute"]["image"] == IMAGE
    assert (tfvars["compute"]["memory"], tfvars["compute"]["timeout"]) == (512, 30)
    sized = resolve(load_variables(LAMBDA_BASE + LAMBDA + "  memory: 2048\n  timeout: 900\n", ENVS), "staging", "app")
    assert (sized.sections["compute"]["memory"], sized.sections["compute"]["timeout"]) == (2048, 900)
    # Lambda needs no second availability zone: it has no load balancer.
    load_variables(LAMBDA_BASE + "networking: {availability_zones: 1}\n" + LAMBDA, ENVS)


LAMBDA_REFUSED = [
    ("compute:\n  type: lambda\n", "5:1: compute: `image` is required for compute of type lambda"),
    (LAMBDA + "  ami_id: ami-0c55b159cbfafe1f0\n", "8:3: compute.ami_id: applies to compute of type ec2 only (this is lambda)"),
    (LAMBDA + "  instance_type: t3.micro\n", "8:3: compute.instance_type: applies to compute of type ec2 only (this is lambda)"),
    (LAMBDA + "  cpu: 256\n", "8:3: compute.cpu: applies to compute of type ecs only (this is lambda)"),
    (LAMBDA + "  desired_count: 2\n", "8:3: compute.desired_count: applies to compute of type ec2 or ecs only (this is lambda)"),
    (LAMBDA + "  container_port: 8080\n", "compute.container_port: applies to compute of type ec2 or ecs only (this is lambda)"),
    (LAMBDA + "  health_check_path: /up\n", "compute.health_check_path: applies to compute of type ec2 or ecs only"),
    (EC2 + "  timeout: 30\n", "compute.timeout: applies to compute of type lambda only (this is ec2)"),
    (LAMBDA + "  memory: 16384\n", "8:11: compute.memory: 16384 MiB is outside what Lambda allows (128 to 10240)"),
    ("compute:\n  type: lambda\n  image: nginx:1.27\n", "compute.image: `nginx:1.27` is not an Amazon ECR image"),
    (LAMBDA + "  timeout: 901\n", "compute.timeout: 901 is more than 900"),
    (LAMBDA + "scaling:\n  cpu_threshold: 60\n", "8:1: scaling: compute of type lambda scales by itself"),
    (LAMBDA + "monitoring:\n  alarm_cpu_threshold: 80\n", "monitoring.alarm_cpu_threshold: compute of type lambda publishes no CPU metric"),
    (LAMBDA + "security:\n  ssl_certificate_arn: arn:aws:acm:us-east-1:1:certificate/x\n", "has no load balancer to terminate TLS on"),
    (LAMBDA + "security:\n  enable_waf: true\n", "security.enable_waf: the web ACL guards the load balancer"),
]


@pytest.mark.parametrize("section, message", LAMBDA_REFUSED, ids=[r[1][:40] for r in LAMBDA_REFUSED])
def test_a_setting_that_means_nothing_for_lambda_is_refused_at_its_line(section, message):
    found = problems(LAMBDA_BASE + section)
    assert any(message in p for p in found), found
    assert all(re.match(r"variables\.yml:\d+:\d+: ", p) for p in found), found


def test_a_lambda_image_from_another_region_is_refused_naming_the_environment():
    found = problems(BASE + LAMBDA)
    assert any("compute.image: the image is in us-east-1 and production deploys to us-west-2" in p for p in found), found


def test_environment_retention_flows_into_the_database_and_backup_unless_they_say_otherwise():
    text = BASE.replace("max_instances: 2}", "max_instances: 2, backup_retention_days: 3}")
    resolved = staging(text + "database: {engine: mysql}\nbackup: {schedule: 'rate(12 hours)'}\n")
    assert resolved["database"]["backup_retention_days"] == 3 and resolved["backup"]["retention_days"] == 3
    off = staging(text.replace("backup_retention_days: 3", "backup_retention_days: 0") + "backup: {}\n")
    assert off["backup"] is None


# --- generated artefacts and the manager's side --------------------------------------------


def test_terraform_receives_canonical_names_only_and_the_readme_lists_both():
    sections = terraform_sections()
    for alias in ("versioning_enabled", "enable_cloudwatch", "cpu_threshold", "email_list", "slack_webhook", "enable_xray"):
        assert re.search(rf"\b{alias}\b", sections) is None, alias
    reference = markdown_reference()
    assert "| `storage.versioning_enabled` |" in reference and "name of `storage.versioning`" in reference
    assert "| `scaling.cpu_threshold` |" in reference and "| `scaling.target_cpu_utilization` |" in reference


def _outcome(status: OutcomeStatus) -> Outcome:
    return Outcome(
        event=DispatchEvent("app", "staging", sha="a" * 40),
        status=status,
        headline="Applied plan p1.",
        error="boom https://hooks.slack.com/services/T/B/SECRET" if status is OutcomeStatus.FAILED else None,
        failed_stage="apply" if status is OutcomeStatus.FAILED else None,
    )


def test_on_success_and_on_failure_decide_the_github_notification():
    quiet = NotifySettings(on_success=False, on_failure=True)
    kinds = [i.kind for i in items_for(_outcome(OutcomeStatus.APPLIED), "o/r", "a" * 40, 1, "run", "http://ui", quiet)]
    assert "notification" not in kinds and "status" in kinds
    kinds = [i.kind for i in items_for(_outcome(OutcomeStatus.FAILED), "o/r", "a" * 40, 1, "run", "http://ui", quiet)]
    assert "notification" in kinds


def test_the_webhook_is_masked_in_github_feedback_and_slack_messages():
    hook = "https://hooks.slack.com/services/T/B/SECRET"
    notify = NotifySettings(slack_webhook=hook, slack_channel="#ops")
    items = items_for(_outcome(OutcomeStatus.FAILED), "o/r", "a" * 40, 1, "run", "http://ui", notify)
    assert all(hook not in json.dumps(item.payload) for item in items)
    message = slack_message(_outcome(OutcomeStatus.FAILED), "http://ui/runs/1", "#ops", notify.secrets)
    assert hook not in json.dumps(message) and message["channel"] == "#ops" and "failed at apply" in message["text"]


def test_a_placeholder_certificate_is_accepted_with_a_warning_at_its_line():
    document = parse_variables(UPSTREAM_EXTENDED)
    warnings = [str(w) for w in contract_warnings(load_variables(UPSTREAM_EXTENDED, ENVS), "variables.yml", document)]
    assert any(w.startswith("variables.yml:75:24: security.ssl_certificate_arn: looks like a placeholder") for w in warnings)
    issued = UPSTREAM_EXTENDED.replace("certificate/...", "certificate/0b6e5b4c-1d2e-4f5a-9b8c-7d6e5f4a3b2c")
    assert not any("placeholder" in str(w) for w in contract_warnings(load_variables(issued, ENVS)))


# --- backup.cross_region_copy: true, the original pipeline's switch ------------------------


def test_cross_region_copy_true_copies_each_environment_to_its_paired_region():
    text = UPSTREAM_EXTENDED.replace("cross_region_copy: false", "cross_region_copy: true")
    assert "cross_region_copy: true" in text
    data = load_variables(text, ENVS)
    # The extended example's staging is in us-east-1, its production in us-west-2.
    assert resolve(data, "staging", "app").to_tfvars()["backup"]["cross_region_copy"] == "us-west-2"
    assert resolve(data, "production", "app").to_tfvars()["backup"]["cross_region_copy"] == "us-east-1"


def test_cross_region_copy_true_in_a_region_without_a_pair_asks_for_the_region():
    text = BASE.replace("region: us-west-2", "region: ap-southeast-3") + "backup:\n  cross_region_copy: true\n"
    found = problems(text)
    assert found == [
        "variables.yml:6:22: backup.cross_region_copy: production's region ap-southeast-3 has no paired region to "
        "copy backups to: name the region (or false for no copy)"
    ], found


def test_every_paired_region_is_another_valid_region_and_the_pairs_are_documented():
    from manager_pipeline.contract.schema import COPY_REGIONS, SECTIONS

    pattern = re.compile(SECTIONS["backup"]["properties"]["cross_region_copy"]["pattern"])
    assert all(home != paired and pattern.match(paired) for home, paired in COPY_REGIONS.items())
    assert "us-west-2 -> us-east-1" in markdown_reference()


# --- a missing required key is reported once --------------------------------------------


def test_each_missing_required_key_is_reported_once():
    text = "project_name: shop\nenvironments:\n  staging: {enable_monitoring: true}\n"
    found = problems(text)
    assert found == [
        "variables.yml:3:12: environments.staging: `region` is required",
        "variables.yml:3:12: environments.staging: `instance_type` is required",
        "variables.yml:3:12: environments.staging: `min_instances` is required",
        "variables.yml:3:12: environments.staging: `max_instances` is required",
    ], found


# --- the module's safe defaults, as Terraform receives them -------------------------------


def test_flow_logs_tls_policy_and_encryption_default_to_the_safe_choice():
    tfvars = staging(BASE + "storage: {}\nsecurity: {}\n" + LAMBDA.replace("lambda", "ecs").replace(IMAGE, "nginx"))
    assert tfvars["flow_logs"] is True
    assert tfvars["security"]["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert tfvars["security"]["unrestricted_egress"] is False
    assert tfvars["storage"]["encryption"] == "aws:kms"
    assert tfvars["compute"]["read_only_root_filesystem"] is True
    # Unset: the module protects the load balancer in production only.
    assert tfvars["compute"].get("deletion_protection") is None
    opted_out = staging(BASE + "networking: {flow_logs: false}\nsecurity: {ssl_policy: ELBSecurityPolicy-TLS-1-2-2017-01}\n")
    assert opted_out["flow_logs"] is False and opted_out["security"]["ssl_policy"] == "ELBSecurityPolicy-TLS-1-2-2017-01"
    assert any("ssl_policy" in p and "not valid" in p for p in problems(BASE + "security: {ssl_policy: TLS-anything}\n"))


def test_the_access_log_bucket_name_must_fit_s3s_limit():
    # 40 characters of project and `production` make 63 with `-access-logs`: S3's limit, accepted.
    load_variables(BASE.replace("project_name: shop", "project_name: " + "p" * 40), ENVS)
    text = BASE.replace("project_name: shop", "project_name: " + "p" * 40).replace("production:", "production-eu:")
    with pytest.raises(ContractError) as caught:
        load_variables(text, ["staging", "production-eu"])
    assert [str(p) for p in caught.value.problems] == [
        f"variables.yml:1:15: project_name: `{'p' * 40}-production-eu-access-logs` (the access-log bucket in "
        "production-eu) is 66 characters; S3 allows 63: shorten project_name or the environment's name"
    ]
