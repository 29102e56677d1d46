import pytest

from manager_pipeline.config import SourceSpec
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
        LocalSource(spec_for(repo)).fetch(DispatchEvent("web", "staging", sha="deadbeef"))


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
