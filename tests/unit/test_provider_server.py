"""The shared provider process, when there is nothing to serve (serving one: tests/integration)."""

from manager_pipeline.terraform.provider_server import provider_servers


def test_no_providers_no_reattach():
    with provider_servers({}, {}) as env:
        assert env == {}
