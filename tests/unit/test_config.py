from pathlib import Path

import pytest

from manager_pipeline.config import load_config, parse_config
from manager_pipeline.errors import ConfigError, UnknownSourceError
from manager_pipeline.yamlfile import YamlError
from tests.support import REPO

ROOT = Path("/srv/manager/manager.yaml")


def parse(text: str):
    return parse_config(text, ROOT)


def test_defaults_fill_in_what_a_source_leaves_out():
    config = parse("sources:\n  - name: web\n    path: ../web\n")
    web = config.sources["web"]
    assert web.path == Path("/srv/web")
    assert web.variables_file == "infra/variables.yml"
    assert web.environments == ("staging", "production")
    assert config.environments["staging"].auto_apply is True
    assert config.environments["production"].auto_apply is False
    assert config.environments["production"].apply_branches == ("main",)
    assert config.terraform_dir == Path("/srv/manager/terraform")
    assert config.partitions() == [("web", "staging"), ("web", "production")]


def test_repo_sources_and_policies():
    config = parse(
        "sources:\n  - name: api\n    repo: acme/api\n    environments: [staging]\n"
        "environments:\n  staging: {auto_apply: true, apply_branches: [main, release]}\n"
    )
    assert config.sources["api"].repo == "acme/api" and config.sources["api"].path is None
    assert config.environments["staging"].apply_branches == ("main", "release")


@pytest.mark.parametrize(
    "text, message",
    [
        ("sourcs: []\n", "unknown key `sourcs`; did you mean `sources`?"),
        ("sources:\n  - name: Web\n    path: x\n", "is not a valid source name"),
        ("sources:\n  - name: web\n", "give exactly one of `path`"),
        ("sources:\n  - name: web\n    path: x\n    repo: a/b\n", "give exactly one of `path`"),
        ("sources:\n  - name: web\n    repo: not-a-repo\n", "expected a GitHub `owner/name`"),
        ("sources:\n  - {name: web, path: x}\n  - {name: web, path: y}\n", "defined twice"),
        ("sources:\n  - {name: web, path: x, environments: [qa]}\n", "`qa` is not defined under `environments:`"),
        ("sources:\n  - {name: web, path: x, variables_file: ../secrets.yml}\n", "relative path inside"),
        ("environments:\n  staging: {auto_apply: yes please}\n", "expected true or false"),
        ("environments:\n  staging: {auto_aply: true}\n", "did you mean `auto_apply`?"),
        ("environments:\n  staging: {apply_branches: main}\n", "expected a non-empty list"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_invalid_config_says_what_to_fix(text, message):
    with pytest.raises(ConfigError, match=None) as caught:
        parse(text)
    assert message in str(caught.value)


def test_yaml_errors_carry_the_location():
    with pytest.raises(YamlError, match=r"manager.yaml:2:\d+: duplicate key 'sources'"):
        parse("sources: []\nsources: []\n")


def test_unknown_partition_parts_are_named():
    config = parse("sources:\n  - {name: web, path: x, environments: [staging]}\n")
    with pytest.raises(UnknownSourceError, match="unknown source `wbe`; did you mean `web`?"):
        config.check_partition("wbe", "staging")
    with pytest.raises(UnknownSourceError, match="unknown environment `stagin`; did you mean `staging`?"):
        config.check_partition("web", "stagin")
    with pytest.raises(UnknownSourceError, match="does not deploy to `production`"):
        config.check_partition("web", "production")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file; create manager.yaml or point MANAGER_CONFIG"):
        load_config(tmp_path / "manager.yaml")


def test_the_repository_manager_yaml_loads():
    config = load_config(REPO / "manager.yaml")
    assert "example" in config.sources
    assert (config.sources["example"].path / "infra" / "variables.yml").is_file()


def test_partition_changes_follow_manager_yaml():
    from manager_pipeline.defs.partitions import partition_changes

    config = parse("sources:\n  - {name: web, path: x}\n  - {name: api, path: y}\n")
    assert partition_changes(config, ["web", "old"]) == (["api"], ["old"])
    assert partition_changes(config, ["api", "web"]) == ([], [])
