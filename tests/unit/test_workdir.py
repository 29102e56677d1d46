import io
import json
import shutil
from pathlib import Path

import pytest

from manager_pipeline.contract import DeployConfig, InstanceSettings
from manager_pipeline.errors import ManagerError
from manager_pipeline.terraform.workdir import (
    COPY_REGION_LOCAL,
    ENDPOINT_OVERRIDE_FILE,
    STATE_OVERRIDE_FILE,
    TFVARS_FILE,
    BackendSettings,
    copy_module,
    copy_region_in_state,
    copy_region_of,
    endpoint_override,
    module_digest,
    prepare_workdir,
    provider_aliases,
    read_previous_state,
    state_key,
    takes_previous_state,
)

REPO = Path(__file__).resolve().parents[2]

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
        '  default_tags {\n    tags = { alias = "not-an-alias" }\n  }\n}\n\n'
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


def _copy_vault(arn: str, **where) -> dict:
    return {
        "mode": "managed",
        "type": "aws_backup_vault",
        "name": "backup_copy",
        **where,
        "instances": [{"index_key": 0, "attributes": {"arn": arn, "name": "web-staging-copy"}}],
    }


STATE = {
    "version": 4,
    "outputs": {"backup_copy_vault_arn": {"value": "arn:aws:backup:eu-west-1:1:backup-vault:stale-output"}},
    "resources": [
        {
            "mode": "managed",
            "type": "aws_backup_vault",
            "name": "backup",
            "instances": [{"attributes": {"arn": "arn:aws:backup:us-east-1:1:backup-vault:web-staging"}}],
        },
        _copy_vault("arn:aws:backup:us-west-2:1:backup-vault:other", module="module.other"),
        _copy_vault("arn:aws:backup:us-west-2:123456789012:backup-vault:web-staging-copy"),
    ],
}


class FakeS3:
    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects

    def get_object(self, Bucket, Key):
        from botocore.exceptions import ClientError

        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}


def test_copy_region_comes_from_the_state_s_own_copy_vault():
    # The root module's aws_backup_vault.backup_copy, by its ARN: not an output, not another module's.
    assert copy_region_in_state(STATE) == "us-west-2"
    assert copy_region_in_state({"resources": STATE["resources"][:2]}) is None
    assert copy_region_in_state({"version": 4, "resources": []}) is None and copy_region_in_state(None) is None
    with pytest.raises(ManagerError, match="no region in its ARN"):
        copy_region_in_state({"resources": [_copy_vault("not-an-arn")]})


def test_init_hands_the_module_the_copy_region_of_the_previous_state(tmp_path):
    module = REPO / "terraform"
    assert takes_previous_state(module)
    backend = BackendSettings(bucket="b", region="us-east-1", key=state_key("web", "staging"))
    workdir = prepare_workdir(tmp_path / "run", module, CONFIG, backend, None)
    assert not (workdir.path / STATE_OVERRIDE_FILE).exists() and copy_region_of(workdir.path) is None

    s3 = FakeS3({backend.key: json.dumps(STATE).encode()})
    assert read_previous_state(workdir.path, s3, backend) == "us-west-2"
    override = json.loads((workdir.path / STATE_OVERRIDE_FILE).read_text())
    assert override["locals"] == {COPY_REGION_LOCAL: "us-west-2"}
    assert copy_region_of(workdir.path) == "us-west-2"
    # Beside the inputs, not among them: the tfvars and their digest are the source's alone.
    assert COPY_REGION_LOCAL not in (workdir.path / TFVARS_FILE).read_text()
    assert workdir.variables_digest == CONFIG.digest and workdir.module_digest == module_digest(module)

    # A partition's first run (no state object yet): the override says no copy vault.
    assert read_previous_state(workdir.path, FakeS3({}), backend) is None
    assert json.loads((workdir.path / STATE_OVERRIDE_FILE).read_text())["locals"] == {COPY_REGION_LOCAL: None}
    assert copy_region_of(workdir.path) is None


def test_no_state_override_for_a_module_without_the_local(tmp_path, module):
    # An override of a local the module does not declare would fail the run.
    assert not takes_previous_state(module)
    backend = BackendSettings(bucket="b", region="us-east-1", key="k")
    copy_module(tmp_path / "run", module, backend, None)
    assert read_previous_state(tmp_path / "run", FakeS3({"k": json.dumps(STATE).encode()}), backend) is None
    assert not (tmp_path / "run" / STATE_OVERRIDE_FILE).exists()


def test_a_state_override_left_in_a_module_is_not_copied(tmp_path):
    module = tmp_path / "module"
    shutil.copytree(REPO / "terraform", module, ignore=shutil.ignore_patterns(".terraform*"))
    digest = module_digest(module)
    (module / STATE_OVERRIDE_FILE).write_text(json.dumps({"locals": {COPY_REGION_LOCAL: "eu-west-1"}}))
    assert module_digest(module) == digest
    copy_module(tmp_path / "run", module, BackendSettings(bucket="b", region="us-east-1", key="k"), None)
    assert not (tmp_path / "run" / STATE_OVERRIDE_FILE).exists()


def test_the_plugin_cache_is_seeded_from_the_mirror_once_so_parallel_inits_never_create_it(tmp_path):
    from manager_pipeline.terraform.toolchain import seed_plugin_cache

    mirror, cache = tmp_path / "providers", tmp_path / "plugin-cache"
    binary = mirror / "registry.terraform.io" / "hashicorp" / "aws" / "3.39.0" / "linux_amd64" / "terraform-provider-aws"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF provider")
    (mirror / ".lock").write_text("")
    (mirror / ".unpack-x").mkdir()
    (mirror / ".unpack-x" / "half").write_text("left by a killed unpack")
    seed_plugin_cache(mirror, cache)
    seeded = cache / binary.relative_to(mirror)
    assert seeded.read_bytes() == binary.read_bytes() and seeded.stat().st_ino == binary.stat().st_ino
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == [".lock", "terraform-provider-aws"]
    seed_plugin_cache(mirror, cache)  # a second call finds it there and changes nothing
    assert seeded.stat().st_ino == binary.stat().st_ino


def test_the_state_a_failed_apply_could_not_save_is_kept_per_partition_for_the_next_run(tmp_path):
    from manager_pipeline.terraform.errored import keep_errored_state, waiting_errored_states

    workdir, root = tmp_path / "run", tmp_path / "errored-state"
    workdir.mkdir()
    assert keep_errored_state(workdir, root, "app", "staging") is None  # nothing to keep
    (workdir / "errored.tfstate").write_text('{"serial": 4}')
    kept = keep_errored_state(workdir, root, "app", "staging")
    assert kept is not None and not (workdir / "errored.tfstate").exists()
    assert kept.read_text() == '{"serial": 4}' and (kept.stat().st_mode & 0o777) == 0o600
    assert waiting_errored_states(root, "app", "staging") == [kept]
    assert waiting_errored_states(root, "app", "production") == []
