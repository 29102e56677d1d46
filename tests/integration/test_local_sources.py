import pytest

from manager_pipeline.config.model import SourceSpec
from manager_pipeline.errors import SourceError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.sources import LocalSource, git_revision
from tests.support import commit_all, git, make_source_repo


def spec_for(path):
    return SourceSpec(name="web", environments=("staging",), path=path)


def test_reads_the_working_tree_and_records_commit_and_branch(tmp_path):
    repo = make_source_repo(tmp_path / "web", "project_name: a\n", branch="main")
    document = LocalSource(spec_for(repo)).fetch(DispatchEvent("web", "staging"))
    assert document.text == "project_name: a\n"
    assert document.sha == git(repo, "rev-parse", "HEAD") and document.branch == "main"


def test_reads_an_exact_commit(tmp_path):
    repo = make_source_repo(tmp_path / "web", "project_name: old\n")
    old = git(repo, "rev-parse", "HEAD")
    (repo / "infra" / "variables.yml").write_text("project_name: new\n")
    commit_all(repo, "new")
    document = LocalSource(spec_for(repo)).fetch(DispatchEvent("web", "staging", sha=old, branch="main"))
    assert document.text == "project_name: old\n" and document.sha == old


def test_unknown_commit_is_a_clear_error(tmp_path):
    repo = make_source_repo(tmp_path / "web", "x: 1\n")
    with pytest.raises(SourceError, match="cannot read infra/variables.yml at commit deadbeef"):
        LocalSource(spec_for(repo)).fetch(DispatchEvent("web", "staging", sha="deadbeef" * 5))


def test_plain_folder_falls_back_to_the_default_branch(tmp_path):
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "variables.yml").write_text("x: 1\n")
    assert git_revision(tmp_path) == (None, None)
    document = LocalSource(spec_for(tmp_path)).fetch(DispatchEvent("web", "staging"))
    assert document.sha is None and document.branch == "main"


def test_detached_head_falls_back_to_the_default_branch(tmp_path):
    repo = make_source_repo(tmp_path / "web", "x: 1\n")
    git(repo, "checkout", "-q", "--detach")
    assert LocalSource(spec_for(repo)).fetch(DispatchEvent("web", "staging")).branch == "main"


@pytest.mark.parametrize(
    "content, message",
    [(b"\xff\xfe bad", "is not UTF-8"), (b"a: " + b"x" * (256 * 1024), "the limit is 256 KiB")],
)
def test_unreadable_files_are_refused(tmp_path, content, message):
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "variables.yml").write_bytes(content)
    with pytest.raises(SourceError, match=message):
        LocalSource(spec_for(tmp_path)).fetch(DispatchEvent("web", "staging"))


def test_a_commit_is_verified_on_its_branch_only_when_git_can_reach_it_from_there(tmp_path):
    repo = make_source_repo(tmp_path / "web", "project_name: a\n", branch="main")
    on_main = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "infra" / "variables.yml").write_text("project_name: b\n")
    on_feature = commit_all(repo, "feature work")
    source = LocalSource(spec_for(repo))
    assert source.fetch(DispatchEvent("web", "staging", sha=on_main, branch="main")).branch_verified
    # A launchpad tag naming `main` on a commit that is not there never makes it an apply of main.
    claimed = source.fetch(DispatchEvent("web", "staging", sha=on_feature, branch="main"))
    assert claimed.branch == "main" and not claimed.branch_verified
    git(repo, "checkout", "-q", "--detach", on_feature)
    detached = source.fetch(DispatchEvent("web", "staging"))
    assert detached.branch == "main" and not detached.branch_verified


def test_uncommitted_changes_are_never_verified_on_a_branch(tmp_path):
    repo = make_source_repo(tmp_path / "web", "project_name: a\n", branch="main")
    (repo / "infra" / "variables.yml").write_text("project_name: edited\n")
    document = LocalSource(spec_for(repo)).fetch(DispatchEvent("web", "staging"))
    assert document.text == "project_name: edited\n" and not document.branch_verified


@pytest.mark.parametrize("sha", ["--output=/tmp/owned", "HEAD~1", "a" * 39, "A" * 40])
def test_only_full_hex_commit_ids_reach_git(tmp_path, sha):
    repo = make_source_repo(tmp_path / "web", "project_name: a\n")
    with pytest.raises(SourceError, match="is not a commit id; give the full 40-character hex id"):
        LocalSource(spec_for(repo)).fetch(DispatchEvent("web", "staging", sha=sha))
    assert not (tmp_path / "owned").exists()


def test_a_variables_file_linking_out_of_the_source_folder_is_refused(tmp_path):
    repo = make_source_repo(tmp_path / "web", "project_name: a\n")
    secret = tmp_path / "elsewhere.yml"
    secret.write_text("project_name: stolen\n")
    (repo / "infra" / "variables.yml").unlink()
    (repo / "infra" / "variables.yml").symlink_to(secret)
    with pytest.raises(SourceError, match="leads outside the source's folder"):
        LocalSource(spec_for(repo)).fetch(DispatchEvent("web", "staging"))
