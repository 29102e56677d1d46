from pathlib import Path

import pytest

from manager_pipeline.config.file import load_config, parse_config
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


def problems_of(text: str) -> tuple[list[str], str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return [str(problem) for problem in caught.value.problems], str(caught.value)


def test_an_unknown_key_is_placed_at_its_line_with_a_suggestion():
    problems, message = problems_of("sources:\n  - name: web\n    path: ../web\n    varibles_file: infra/v.yml\n")
    expected = "manager.yaml:4:5: sources[0].varibles_file: unknown key `varibles_file`; did you mean `variables_file`?"
    assert problems == [expected]
    # One problem is one line: what the CLI prints and the webhook receiver logs.
    assert message == expected


def test_a_bad_value_is_placed_at_the_value():
    problems, _ = problems_of("sources:\n  - name: web\n    repo: acme\n")
    assert problems == ["manager.yaml:3:11: sources[0].repo: expected a GitHub `owner/name`, got 'acme'"]
    problems, _ = problems_of("environments:\n  production:\n    approvers: [alice, 'bad login!']\n")
    assert problems == [
        "manager.yaml:3:24: environments.production.approvers[1]: 'bad login!' is neither a GitHub login nor an "
        "`org/team` slug"
    ]


def test_every_problem_is_listed_at_once_in_file_order():
    text = (
        "sources:\n"  # 1
        "  - name: web\n"  # 2
        "    path: ../web\n"  # 3
        "    environments: [stagin]\n"  # 4
        "  - name: Api\n"  # 5
        "    repo: acme/api\n"  # 6
        "  - name: web\n"  # 7
        "    repo: acme/web\n"  # 8
        "environments:\n"  # 9
        "  staging: {auto_apply: yes please}\n"  # 10
        "  production: {max_plan_age: 7, aprovers: [alice]}\n"  # 11
        "terraform_dri: infra\n"  # 12
    )
    problems, message = problems_of(text)
    assert problems == [
        "manager.yaml:4:20: sources[0].environments[0]: `stagin` is not defined under `environments:`; "
        "did you mean `staging`?",
        "manager.yaml:5:11: sources[1].name: 'Api' is not a valid source name "
        "(lowercase letters, digits, '.', '_' and '-', starting with a letter or digit)",
        "manager.yaml:7:11: sources[2].name: source `web` is defined twice (first as sources[0])",
        "manager.yaml:10:25: environments.staging.auto_apply: expected true or false, got 'yes please'",
        "manager.yaml:11:30: environments.production.max_plan_age: expected hours or days such as `12h` or `7d`, got 7",
        "manager.yaml:11:33: environments.production.aprovers: unknown key `aprovers`; did you mean `approvers`?",
        "manager.yaml:12:1: terraform_dri: unknown key `terraform_dri`; did you mean `terraform_dir`?",
    ]
    assert message.startswith("manager.yaml is not valid (7 problems):\n  - manager.yaml:4:20: ")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sources:\n  - name: web\n", "manager.yaml:2:5: sources[0]: give exactly one of `path`"),
        ("sources:\n  - path: x\n", "manager.yaml:2:5: sources[0]: `name` is required"),
        ("sources:\n  - web\n", "manager.yaml:2:5: sources[0]: expected a mapping with `name` and `path` or `repo`"),
        ("environments:\n  Prod: {}\n", "manager.yaml:2:3: environments.Prod: 'Prod' is not a valid environment name"),
        ("environments:\n  production: {required_approvals: 11, approvers: [a]}\n", "from 0 to 10, got 11"),
        ("environments:\n  production: {required_approvals: true, approvers: [a]}\n", "a whole number, got True"),
        # Gated means someone approves: 0 approvals would apply every plan unreviewed.
        ("environments:\n  production: {required_approvals: 0}\n", "`required_approvals: 0` would apply without"),
        ("environments:\n  production: {max_plan_age: 0d}\n", "expected hours or days such as `12h` or `7d`"),
        ("sources:\n  - {name: web, path: x, default_branch: ''}\n", "sources[0].default_branch: expected a non-empty"),
        ("sources:\n  - {name: web, path: x, environments: []}\n", "sources[0].environments: expected a non-empty"),
        ("terraform_dir: 5\n", 'manager.yaml:1:16: terraform_dir: expected text, got 5 (quote it: "5")'),
    ],
)
def test_each_rule_is_placed(text, expected):
    problems, _ = problems_of(text)
    assert len(problems) == 1 and expected in problems[0]


def test_policies_that_need_no_approval_count():
    config = parse(
        "environments:\n  staging: {auto_apply: true, required_approvals: 0}\n"
        "  production: {required_approvals: 2, approvers: [alice, acme/platform], max_plan_age: 1.5d}\n"
        "  qa:\n"
    )
    assert config.policy("staging").required_approvals == 0
    production = config.policy("production")
    assert (production.required_approvals, production.max_plan_age_hours) == (2, 36)
    assert production.approvers == ("alice", "acme/platform")
    assert config.policy("qa").gated and config.policy("qa").required_approvals == 1


def test_a_broken_yaml_file_is_placed_too():
    with pytest.raises(YamlError) as caught:
        parse("sources:\n\t- name: web\n")
    assert (caught.value.line, caught.value.column) == (2, 1)
    assert "manager.yaml:2:1: " in str(caught.value) and "indent with spaces, not tabs" in str(caught.value)


def test_the_published_schema_accepts_the_repository_manager_yaml_and_refuses_unknown_keys():
    import yaml
    from jsonschema import Draft202012Validator

    from manager_pipeline.config.schema import manager_schema

    validator = Draft202012Validator(manager_schema())
    assert not list(validator.iter_errors(yaml.safe_load((REPO / "manager.yaml").read_text())))
    assert validator.is_valid({"sources": [{"name": "web", "path": "x"}], "environments": {"staging": None}})
    assert not validator.is_valid({"sources": [{"name": "web", "path": "x", "pth": "y"}]})
    assert not validator.is_valid({"sources": [{"name": "web", "path": "x", "repo": "a/b"}]})
    assert not validator.is_valid({"environments": {"production": {"max_plan_age": "soon"}}})


def test_manager_config_pointing_at_a_folder_says_so_in_one_line(tmp_path):
    from manager_pipeline.config.file import load_config

    with pytest.raises(ConfigError, match="is a folder; point MANAGER_CONFIG at the manager.yaml file in it"):
        load_config(tmp_path)
