"""The shared provider process: real aws provider from the mirror, attached to and stopped."""

import json

import pytest

from manager_pipeline.aws.standin import pid_alive
from manager_pipeline.terraform import ensure_toolchain
from manager_pipeline.terraform.provider_server import provider_servers

pytestmark = pytest.mark.integration


def test_mirror_providers_are_served_once_and_stopped(tools_dir):
    toolchain = ensure_toolchain(tools_dir)
    assert set(toolchain.mirror_providers) == {"registry.terraform.io/hashicorp/aws"}
    with provider_servers(toolchain.mirror_providers, {"PATH": "/usr/bin:/bin"}) as env:
        reattach = json.loads(env["TF_REATTACH_PROVIDERS"])
        entry = reattach["registry.terraform.io/hashicorp/aws"]
        assert entry["Protocol"] == "grpc" and pid_alive(entry["Pid"])
    assert not pid_alive(entry["Pid"])
