import json
from pathlib import Path

import pytest

from manager_pipeline.contract import DeployConfig, InstanceSettings
from manager_pipeline.terraform.workdir import (
    ENDPOINT_OVERRIDE_FILE,
    TFVARS_FILE,
    BackendSettings,
    endpoint_override,
    module_digest,
    prepare_workdir,
    provider_aliases,
    state_key,
)

REPO = Path(__file__).resolve().parent.parent

CONFIG = DeployConfig(
    source_name="web",
    project_name="web",
    environment="staging",
    region="us-east-1",
    vpc_cidr="10.0.0.0/16",
    availability_zones=2,
    enable_nat_gateway=False,
    enable_vpn=False,
    instances=InstanceSettings("t3.micro", 1, 2, False, 7),
    tags={"Owner": '${file("/etc/passwd")}', "Quote": 'a"b\\c'},
)


@pytest.fixture
def module(tmp_path) -> Path:
    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    (module / "local_override.tf").write_text("# a developer's leftover\n")
    (module / "terraform.tfstate").write_text("{}")
    (module / ".terraform").mkdir()
    (module / ".terraform" / "junk").write_text("x")
    return module


def test_workdir_holds_the_module_and_the_inputs_as_data(tmp_path, module):
    backend = BackendSettings(bucket="b", region="us-east-1", key=state_key("web", "staging"))
    workdir = prepare_workdir(tmp_path / "run", module, CONFIG, backend, None)
    names = sorted(p.name for p in workdir.path.iterdir())
    assert names == ["backend.hcl", "main.tf", TFVARS_FILE]
    tfvars = json.loads((workdir.path / TFVARS_FILE).read_text())
    # Values stay values: nothing is interpolated or quoted into HCL.
    assert tfvars["tags"]["Owner"] == '${file("/etc/passwd")}' and tfvars["tags"]["Quote"] == 'a"b\\c'
    assert 'key          = "web/staging/terraform.tfstate"' in workdir.backend_file.read_text()
    assert "endpoints" not in workdir.backend_file.read_text()
    assert workdir.variables_digest == CONFIG.digest


def test_stand_in_endpoint_goes_into_backend_and_provider_override(tmp_path, module):
    url = "http://127.0.0.1:5000"
    backend = BackendSettings(bucket="b", region="us-east-1", key="k", endpoint_url=url)
    workdir = prepare_workdir(tmp_path / "run", module, CONFIG, backend, url)
    assert f'endpoints = {{ s3 = "{url}"' in workdir.backend_file.read_text()
    override = (workdir.path / ENDPOINT_OVERRIDE_FILE).read_text()
    assert f'ec2 = "{url}"' in override and "skip_get_ec2_platforms      = true" in override


def test_hcl_strings_escape_template_sequences():
    backend = BackendSettings(bucket="b${x}", region="r", key='k"%{y}')
    hcl = backend.to_hcl()
    assert 'bucket       = "b$${x}"' in hcl and 'key          = "k\\"%%{y}"' in hcl


def test_module_digest_follows_code_not_leftovers(module):
    before = module_digest(module)
    (module / ".terraform" / "more").write_text("y")
    (module / "x_override.tf").write_text("# ignored")
    assert module_digest(module) == before
    (module / "main.tf").write_text('terraform {\n  backend "s3" {}\n}\n# changed\n')
    assert module_digest(module) != before


def test_manager_module_is_digestible():
    assert len(module_digest(REPO / "terraform")) == 64


def test_stand_in_override_covers_every_aliased_provider_and_the_stand_ins_gaps(tmp_path, module):
    (module / "copy.tf").write_text(
        'provider "aws" {\n  alias  = "backup_copy"\n  region = "us-west-2"\n\n'
        "  default_tags {\n    tags = { alias = \"not-an-alias\" }\n  }\n}\n\n"
        'provider "aws" {\n  region = "us-east-1"\n}\n\n'
        'provider "google" {\n  alias = "other_cloud"\n}\n\n'
        'resource "aws_backup_selection" "by_tag" {\n  count = 1\n}\n\n'
        'resource "aws_backup_selection" "by_name" {\n  for_each = toset(["a"])\n}\n\n'
        'resource "aws_elasticache_cluster" "cache" {\n  count = 1\n}\n'
    )
    url = "http://127.0.0.1:5000"
    backend = BackendSettings(bucket="b", region="us-east-1", key="k", endpoint_url=url)
    workdir = prepare_workdir(tmp_path / "run", module, CONFIG, backend, url)
    assert provider_aliases(workdir.path) == ["backup_copy"]
    override = (workdir.path / ENDPOINT_OVERRIDE_FILE).read_text()
    # One block for the default provider and one per alias, each with every endpoint.
    assert override.count('provider "aws" {') == 2 and 'alias                       = "backup_copy"' in override
    assert override.count(f'cloudwatchlogs = "{url}"') == 2 and "other_cloud" not in override
    assert override.count("skip_get_ec2_platforms      = true") == 2
    # What the stand-in cannot hold is left out; what it cannot read back is not compared.
    assert 'resource "aws_backup_selection" "by_tag" {\n  count = 0\n}' in override
    assert 'resource "aws_backup_selection" "by_name" {\n  for_each = {}\n}' in override
    assert "ignore_changes = [security_group_ids]" in override


def test_endpoint_override_without_aliases_is_one_provider_block():
    override = endpoint_override("http://127.0.0.1:5000")
    assert override.count('provider "aws" {') == 1 and "alias" not in override and "resource" not in override


def test_old_working_directories_are_pruned_and_the_current_one_kept(tmp_path):
    import os
    import time

    from manager_pipeline.terraform.workdir import prune_workdirs

    for name in ("old-run", "current", "fresh-run"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manager.auto.tfvars.json").write_text("{}")
    week_ago = time.time() - 8 * 24 * 3600
    for name in ("old-run", "current"):
        os.utime(tmp_path / name, (week_ago, week_ago))
    assert prune_workdirs(tmp_path, 7 * 24 * 3600, keep="current") == ["old-run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "fresh-run"]


def test_working_directories_live_under_a_root_only_the_manager_can_enter(tmp_path):
    import stat

    from manager_pipeline.defs.resources import TerraformResource

    resource = TerraformResource(tools_dir=str(tmp_path / "tools"), workdirs=str(tmp_path / "workdirs"))
    path = resource.workdir_for("run-1")
    assert path.parent == tmp_path / "workdirs"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
