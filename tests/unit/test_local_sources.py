"""Path sources, what needs no git: the early check that the variables file is there.

Reading a source (working tree, a commit) runs git: tests/integration/test_local_sources.py."""

import pytest

from manager_pipeline.config.model import SourceSpec
from manager_pipeline.errors import SourceError
from manager_pipeline.sources import LocalSource


def test_missing_file_says_what_to_do(tmp_path):
    spec = SourceSpec(name="web", environments=("staging",), path=tmp_path)
    with pytest.raises(SourceError, match="no variables file at .*create it or set `variables_file`"):
        LocalSource(spec).check_readable()


def test_missing_folder_says_what_to_fix(tmp_path):
    spec = SourceSpec(name="web", environments=("staging",), path=tmp_path / "absent")
    with pytest.raises(SourceError, match="folder .*absent does not exist; fix its `path` in manager.yaml"):
        LocalSource(spec).check_readable()
