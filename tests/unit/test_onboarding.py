"""add-source / remove-source without GitHub: the text edit of manager.yaml, its checks, and the
command's decisions against a fake ``GitHubClient`` (tests/integration/test_onboarding.py runs them
against the GitHub stand-in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from manager_pipeline import cli
from manager_pipeline.config.file import parse_config
from manager_pipeline.errors import ContractError
from manager_pipeline.github.client import GitHubError, Hook, NotAFile, Repository
from manager_pipeline.intake.receiver import PATH
from manager_pipeline.onboarding.add import AddRequest, add_source
from manager_pipeline.onboarding.errors import OnboardingError, Refused
from manager_pipeline.onboarding.manager_yaml import NewSource, add_entry, remove_entry
from manager_pipeline.onboarding.remove import remove_source
from manager_pipeline.onboarding.webhook import WEBHOOK_EVENTS, secret_env_name, webhook_url
from tests.support import EXAMPLE_VARIABLES, REPO

SHIPPED = (REPO / "manager.yaml").read_text()
COMPACT = """sources:
- {name: web, repo: acme/web}
- {name: api, repo: acme/mono, variables_file: services/api/infra/variables.yml}
environments:
  staging: {auto_apply: true}
  production: {auto_apply: false, approvers: [alice]}
"""
SPACED = """# Sources first.
sources:
    # The web shop.
    - name: web   # the shop
      repo: acme/web

    - name: api
      repo: acme/mono
      variables_file: "services/api/infra/variables.yml"
      # environments: [staging]

# Then the environments.
environments:
    staging: {auto_apply: true}
    production: {auto_apply: false, approvers: [alice]}
"""
HEAD = "c0ffee" + "0" * 34
URL = "https://manager.example.com/webhooks/github"


def parse(text: str, path: Path = Path("/srv/manager/manager.yaml")):
    return parse_config(text, path)


# --- the text edit --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [SHIPPED, COMPACT, SPACED], ids=["shipped", "compact", "spaced"])
def test_the_new_entry_is_one_inserted_block_and_every_other_byte_stays(text):
    entry = NewSource("shop", repo="acme/shop", environments=("staging",), webhook_secret_env="SHOP_WEBHOOK_SECRET")
    new = add_entry(text, entry)
    old_lines, new_lines = text.splitlines(keepends=True), new.splitlines(keepends=True)
    # Exactly one contiguous run of lines was inserted; the rest is the file as it was.
    start = next(i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=False)) if a != b)
    inserted = len(new_lines) - len(old_lines)
    assert new_lines[:start] + new_lines[start + inserted :] == old_lines
    block = "".join(new_lines[start : start + inserted])
    assert "shop" in block and "SHOP_WEBHOOK_SECRET" in block and "#" not in block
    config = parse(new)
    assert list(config.sources)[-1] == "shop" and config.sources["shop"].repo == "acme/shop"
    assert config.sources["shop"].environments == ("staging",)
    assert config.sources["shop"].webhook_secret_env == "SHOP_WEBHOOK_SECRET"
    # Its inverse gives back the very file.
    assert remove_entry(new, "shop") == text


def test_the_block_takes_the_files_own_indentation_and_style():
    assert add_entry(SPACED, NewSource("shop", repo="acme/shop")).endswith(
        "      # environments: [staging]\n\n    - name: shop\n      repo: acme/shop\n\n# Then the environments.\n"
        "environments:\n    staging: {auto_apply: true}\n    production: {auto_apply: false, approvers: [alice]}\n"
    )
    assert (
        "- {name: web, repo: acme/web}\n- {name: api, repo: acme/mono, variables_file: services/api/infra/"
        "variables.yml}\n- {name: shop, repo: acme/shop, environments: [staging]}\nenvironments:"
        in add_entry(COMPACT, NewSource("shop", repo="acme/shop", environments=("staging",)))
    )
    # Values YAML would read as something else are quoted.
    text = add_entry(COMPACT, NewSource("x", path="my app/src", variables_file="yes"))
    assert '{name: x, path: "my app/src", variables_file: "yes"}' in text


def test_line_endings_a_byte_order_mark_and_a_missing_last_newline_are_kept():
    crlf = "\ufeff" + SPACED.replace("\n", "\r\n")
    new = add_entry(crlf, NewSource("shop", repo="acme/shop"))
    assert new.startswith("\ufeff") and "\n" not in new.replace("\r\n", "")
    assert remove_entry(new, "shop") == crlf
    unterminated = "sources:\n  - name: web\n    repo: acme/web"
    assert add_entry(unterminated, NewSource("shop", repo="acme/shop")) == (
        "sources:\n  - name: web\n    repo: acme/web\n  - name: shop\n    repo: acme/shop\n"
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("environments:\n  staging: {}\n", "environments:\n  staging: {}\nsources:\n  - name: shop\n    repo: a/s\n"),
        (
            "sources: []  # none yet\nterraform_dir: tf\n",
            "sources: # none yet\n  - name: shop\n    repo: a/s\nterraform_dir: tf\n",
        ),
        (
            "sources:\n  # - name: x\n  #   repo: a/x\n\nterraform_dir: tf\n",
            "sources:\n  # - name: x\n  #   repo: a/x\n  - name: shop\n    repo: a/s\n\nterraform_dir: tf\n",
        ),
        ("# nothing yet\n", "# nothing yet\nsources:\n  - name: shop\n    repo: a/s\n"),
    ],
    ids=["no-key", "empty-flow", "only-comments", "comments-only-file"],
)
def test_a_file_without_sources_gets_a_list(text, expected):
    assert add_entry(text, NewSource("shop", repo="a/s")) == expected
    assert list(parse(expected).sources) == ["shop"]


def test_removing_keeps_the_other_sources_and_comments_byte_for_byte():
    # The comment above it stays (it may head more than this entry), and so does the blank line after it.
    assert remove_entry(SPACED, "web") == SPACED.replace("    - name: web   # the shop\n      repo: acme/web\n", "")
    assert remove_entry(SPACED, "api") == SPACED.replace(
        '\n    - name: api\n      repo: acme/mono\n      variables_file: "services/api/infra/variables.yml"\n'
        "      # environments: [staging]\n",
        "",
    )
    assert remove_entry(COMPACT, "web") == COMPACT.replace("- {name: web, repo: acme/web}\n", "")
    # The shipped example: only its entry goes (the commented-out GitHub example stays).
    shipped = remove_entry(SHIPPED, "example")
    assert shipped == SHIPPED.replace(
        "  - name: example\n    path: examples/source_monorepo\n    # variables_file: infra/variables.yml\n"
        "    # environments: [staging, production]\n",
        "",
    )
    assert parse(shipped).sources == {}


def test_a_one_line_flow_list_is_refused_rather_than_rewritten():
    with pytest.raises(OnboardingError, match="written on one line"):
        add_entry("sources: [{name: web, repo: acme/web}]\n", NewSource("shop", repo="a/s"))


def test_names_of_secrets_and_webhook_urls():
    assert secret_env_name("web") == "WEB_WEBHOOK_SECRET"
    assert secret_env_name("my-app.v2") == "MY_APP_V2_WEBHOOK_SECRET"
    assert secret_env_name("9lives") == "S_9LIVES_WEBHOOK_SECRET"
    assert secret_env_name("a-b", {"A_B_WEBHOOK_SECRET"}) == "A_B_2_WEBHOOK_SECRET"
    assert webhook_url("https://m.example.com", {}) == f"https://m.example.com{PATH}"
    assert webhook_url(None, {"MANAGER_WEBHOOK_URL": "https://m.example.com/"}) == f"https://m.example.com{PATH}"
    assert webhook_url("https://m.example.com/proxy/hook", {}) == "https://m.example.com/proxy/hook"
    assert webhook_url(None, {}) is None
    with pytest.raises(OnboardingError, match="not an http"):
        webhook_url("m.example.com", {})


# --- add-source against a fake GitHub -------------------------------------------------------------


class FakeGitHub:
    """The GitHubClient methods add-source uses; ``fail`` maps a method to the GitHubError it raises."""

    def __init__(self, files=None, hooks=(), fail=None, default_branch="main"):
        self.files = {"infra/variables.yml": EXAMPLE_VARIABLES.read_bytes()} if files is None else files
        self.hook_list = list(hooks)
        self.fail = fail or {}
        self.default_branch = default_branch
        self.created: list[dict] = []

    def _maybe_fail(self, method):
        if method in self.fail:
            raise self.fail[method]

    def repository(self, repo):
        self._maybe_fail("repository")
        return Repository(repo, self.default_branch, f"https://github.example/{repo}")

    def head_sha(self, repo, branch):
        assert branch == self.default_branch
        return HEAD

    def file_at(self, repo, path, sha):
        assert sha == HEAD
        if path == "infra":
            raise NotAFile(path, None, "a folder")
        if path not in self.files:
            raise GitHubError(path, 404, "Not Found")
        return self.files[path]

    def hooks(self, repo):
        self._maybe_fail("hooks")
        return self.hook_list

    def create_hook(self, repo, url, secret, events):
        self._maybe_fail("create_hook")
        self.created.append({"repo": repo, "url": url, "secret": secret, "events": tuple(events)})
        return Hook(77, url, "json", tuple(events), True)


@pytest.fixture
def manager_yaml(tmp_path) -> Path:
    path = tmp_path / "manager.yaml"
    path.write_text(SPACED)
    return path


def run_add(path: Path, github: FakeGitHub | None, **fields):
    lines: list[str] = []
    request = AddRequest(**{"name": "shop", "repo": "acme/shop", "webhook_url": URL, **fields})
    add_source(request, path, (lambda: github) if github is not None else None, lines.append, {})
    return "\n".join(lines)


def test_add_source_writes_the_entry_creates_the_hook_and_prints_its_secret_once(manager_yaml):
    github = FakeGitHub()
    output = run_add(manager_yaml, github)
    [hook] = github.created
    assert hook["url"] == URL and hook["events"] == WEBHOOK_EVENTS and len(hook["secret"]) == 64
    text = manager_yaml.read_text()
    assert text == add_entry(SPACED, NewSource("shop", repo="acme/shop", webhook_secret_env="SHOP_WEBHOOK_SECRET"))
    assert hook["secret"] not in text
    assert output.count(hook["secret"]) == 1 and f"export SHOP_WEBHOOK_SECRET={hook['secret']}" in output
    assert "created webhook 77 on acme/shop" in output and "is valid for staging, production" in output
    # The file is replaced, not left with a temporary file beside it.
    assert [p.name for p in manager_yaml.parent.iterdir()] == ["manager.yaml"]


def test_a_repository_whose_default_branch_is_not_main_says_so_in_its_entry(manager_yaml):
    run_add(manager_yaml, FakeGitHub(default_branch="trunk"), environments=("staging",), webhook=False)
    spec = parse(manager_yaml.read_text(), manager_yaml).sources["shop"]
    assert spec.default_branch == "trunk" and spec.environments == ("staging",) and spec.webhook_secret_env is None


def test_an_existing_hook_to_the_url_is_not_created_twice(manager_yaml):
    github = FakeGitHub(hooks=[Hook(5, URL, "json", ("push",), True)])
    output = run_add(manager_yaml, github)
    assert github.created == []
    assert "already exists on acme/shop (id 5); not creating a second" in output
    assert "pull_request, issue_comment, pull_request_review" in output  # the events it lacks
    assert parse(manager_yaml.read_text(), manager_yaml).sources["shop"].webhook_secret_env is None
    assert "export" not in output


@pytest.mark.parametrize("failing", ["hooks", "create_hook"])
def test_a_token_that_may_not_manage_hooks_gets_what_to_paste(manager_yaml, failing):
    github = FakeGitHub(fail={failing: GitHubError("webhooks", 404 if failing == "hooks" else 403, "Not Found")})
    output = run_add(manager_yaml, github)
    assert github.created == []
    assert "https://github.example/acme/shop/settings/hooks/new" in output
    for line in (
        f"Payload URL:       {URL}",
        "Content type:      application/json",
        "Secret:            the value of SHOP_WEBHOOK_SECRET",
        "Pushes, Pull requests, Issue comments, Pull request reviews",
        "export SHOP_WEBHOOK_SECRET=",
    ):
        assert line in output
    assert parse(manager_yaml.read_text(), manager_yaml).sources["shop"].webhook_secret_env == "SHOP_WEBHOOK_SECRET"


def test_without_a_webhook_url_it_prints_what_to_paste(manager_yaml):
    output = run_add(manager_yaml, FakeGitHub(), webhook_url=None)
    assert "no webhook URL: give --webhook-url or set MANAGER_WEBHOOK_URL" in output
    assert f"https://<the receiver, reachable from GitHub>{PATH}" in output


def test_a_dry_run_shows_the_diff_and_changes_nothing(manager_yaml):
    github = FakeGitHub()
    output = run_add(manager_yaml, github, dry_run=True)
    assert manager_yaml.read_text() == SPACED and github.created == []
    assert "+    - name: shop\n+      repo: acme/shop\n+      webhook_secret_env: SHOP_WEBHOOK_SECRET" in output
    assert f"would create a webhook on acme/shop: {URL}" in output and "export" not in output


def untouched(path: Path, before: tuple[bytes, int]) -> bool:
    return (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize(
    "fields, github, message",
    [
        ({"name": "web"}, FakeGitHub(), "source `web` is already registered (manager.yaml:4); choose another name"),
        ({"name": "Shop"}, FakeGitHub(), "'Shop' is not a valid source name"),
        (
            {"environments": ("stagin",)},
            FakeGitHub(),
            "unknown environment `stagin`; did you mean `staging`? (manager.yaml defines: staging, production)",
        ),
        ({"repo": "acme/web"}, FakeGitHub(), "acme/web:infra/variables.yml is already registered as source `web`"),
        (
            {},
            FakeGitHub(fail={"repository": GitHubError("repository", 404, "Not Found")}),
            "unknown repository `acme/shop` on GitHub",
        ),
        ({}, FakeGitHub(files={}), "acme/shop has no infra/variables.yml at the head of `main` (c0ffee000000)"),
        ({"variables_file": "infra"}, FakeGitHub(), "is a folder, not a variables file"),
        ({"variables_file": "../x.yml"}, FakeGitHub(), "must be a relative path inside the repository"),
        ({}, None, "add-source --repo reads the repository through GitHub: set GITHUB_TOKEN"),
        ({"org_secret": True}, FakeGitHub(), "--org-secret: GITHUB_WEBHOOK_SECRET is not set here"),
    ],
    ids=[
        "name-taken",
        "bad-name",
        "unknown-env",
        "same-repo",
        "unknown-repo",
        "no-file",
        "folder",
        "outside",
        "no-credentials",
        "org-secret-unset",
    ],
)
def test_bad_input_is_one_line_and_manager_yaml_is_untouched(manager_yaml, fields, github, message):
    before = (manager_yaml.read_bytes(), manager_yaml.stat().st_mtime_ns)
    with pytest.raises(OnboardingError) as caught:
        run_add(manager_yaml, github, **fields)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert untouched(manager_yaml, before)
    assert github is None or github.created == []


def test_an_invalid_variables_file_lists_its_problems_and_writes_nothing(manager_yaml):
    variables = EXAMPLE_VARIABLES.read_text().replace("min_instances: 1", "min_instances: lots", 1)
    github = FakeGitHub(files={"infra/variables.yml": variables.encode()})
    with pytest.raises(ContractError, match="min_instances"):
        run_add(manager_yaml, github)
    assert manager_yaml.read_text() == SPACED and github.created == []


@pytest.mark.parametrize(
    "broken, where",
    [
        ("sources:\n  - name: web\n   repo: acme/web\n", "manager.yaml:3:"),
        ("sources:\n  - name: web\n    repo: acme/web\n  - name: web\n    repo: acme/other\n", "manager.yaml:4:"),
        ("sources:\n  - name: web\n    rpo: acme/web\n    colour: blue\n", "and 1 more problem"),
    ],
    ids=["syntax", "defined-twice", "two-problems"],
)
def test_a_broken_manager_yaml_is_refused_in_one_line_and_left_as_it_is(tmp_path, broken, where):
    path = tmp_path / "manager.yaml"
    path.write_text(broken)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    with pytest.raises(OnboardingError) as caught:
        run_add(path, FakeGitHub())
    assert where in str(caught.value) and "fix manager.yaml first (nothing was changed)" in str(caught.value)
    assert "\n" not in str(caught.value) and untouched(path, before)


def test_a_file_changed_meanwhile_is_not_overwritten(manager_yaml):
    class Racing(FakeGitHub):
        def hooks(self, repo):
            manager_yaml.write_text(SPACED + "# edited by someone else\n")
            return []

    with pytest.raises(OnboardingError, match="changed while this command ran"):
        run_add(manager_yaml, Racing())
    assert manager_yaml.read_text().endswith("# edited by someone else\n")


def test_a_local_checkout_is_registered_relative_to_manager_yaml(manager_yaml, monkeypatch):
    folder = manager_yaml.parent / "checkouts" / "shop"
    (folder / "infra").mkdir(parents=True)
    (folder / "infra" / "variables.yml").write_bytes(EXAMPLE_VARIABLES.read_bytes())
    lines: list[str] = []
    monkeypatch.chdir(folder.parent)
    add_source(AddRequest("shop", path="shop"), manager_yaml, None, lines.append, {})
    assert "      path: checkouts/shop\n" in manager_yaml.read_text()
    assert parse(manager_yaml.read_text(), manager_yaml).sources["shop"].path == folder.resolve()
    assert "no webhook" in "\n".join(lines)


# --- remove-source ----------------------------------------------------------------------------------


def test_remove_source_refuses_without_force_and_names_the_destroys_to_run_first(manager_yaml):
    before = (manager_yaml.read_bytes(), manager_yaml.stat().st_mtime_ns)
    with pytest.raises(Refused) as caught:
        remove_source("web", manager_yaml, "state-bucket")
    message = str(caught.value)
    assert "may still have infrastructure" in message and "destroy it first (`manager-pipeline destroy web staging`" in message
    assert "s3://state-bucket/web/staging/terraform.tfstate" in message and "--force" in message
    assert untouched(manager_yaml, before)


def test_remove_source_with_force_drops_the_entry_only(manager_yaml):
    lines: list[str] = []
    remove_source("web", manager_yaml, "state-bucket", force=True, out=lines.append)
    assert manager_yaml.read_text() == remove_entry(SPACED, "web")
    output = "\n".join(lines)
    assert "state objects are kept: s3://state-bucket/web/staging/terraform.tfstate" in output
    with pytest.raises(OnboardingError, match="unknown source `web`"):
        remove_source("web", manager_yaml, "state-bucket", force=True)


# --- the command line -------------------------------------------------------------------------------


def test_cli_bad_input_exits_2_with_one_line(manager_yaml, monkeypatch, capsys):
    monkeypatch.setenv("MANAGER_CONFIG", str(manager_yaml))
    for name in ("GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["add-source", "web", "--repo", "acme/web"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: source `web` is already registered") and err.count("\n") == 1
    assert cli.main(["remove-source", "web"]) == cli.EXIT_FAILED
    assert "`manager-pipeline destroy web staging`" in capsys.readouterr().err
    assert manager_yaml.read_text() == SPACED
    with pytest.raises(SystemExit):
        cli.main(["add-source", "shop", "--repo", "a/b", "--path", "x"])


def test_add_source_prints_the_ruleset_that_makes_the_default_branch_wait_for_its_plans(manager_yaml):
    import json
    import shlex

    output = run_add(manager_yaml, FakeGitHub(default_branch="trunk"), webhook=False)
    command = next(line for line in output.splitlines() if "gh api" in line)
    assert command.strip().startswith("gh api --method POST repos/acme/shop/rulesets --input - <<< ")
    body = json.loads(shlex.split(command.split("<<<", 1)[1])[0])
    assert body["conditions"]["ref_name"]["include"] == ["~DEFAULT_BRANCH"] and body["enforcement"] == "active"
    (rule,) = body["rules"]
    assert rule["type"] == "required_status_checks"
    assert [c["context"] for c in rule["parameters"]["required_status_checks"]] == [
        "manager-pipeline/staging", "manager-pipeline/production"]
    assert "`trunk` of acme/shop" in output


def test_with_a_github_app_only_its_check_counts():
    from manager_pipeline.onboarding.protection import ruleset

    checks = ruleset(["staging"], app_id="123456")["rules"][0]["parameters"]["required_status_checks"]
    assert checks == [{"context": "manager-pipeline/staging", "integration_id": 123456}]
