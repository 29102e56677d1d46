"""Every repository path the documentation names (README.md and docs/*.md) exists.

A path is a backticked name that starts with an entry of the repository's top folder (`terraform/`,
`docs/setup.md`, `manager.yaml`) or with a package of `manager_pipeline/` (`defs/jobs.py`, as the
architecture page names modules); it must exist from the repository's top or inside the package.
Other backticked words (tags like `manager/sha`, a source repository's `infra/variables.yml`) are
not paths of this repository and are left alone.
"""

from __future__ import annotations

import re

import pytest

from tests.support import REPO

PACKAGE = REPO / "manager_pipeline"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Paths a document names on purpose although they do not exist: the file it tells a reader to create.
NOT_YET = {("contract.md", "terraform/search.tf"): "the example of a new section's module file"}

_TICKED = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def _top() -> set[str]:
    return {entry.name for entry in REPO.iterdir() if not entry.name.startswith(".")} - {"manager_pipeline.egg-info"}


def _packages() -> set[str]:
    return {entry.name for entry in PACKAGE.iterdir() if entry.is_dir() and not entry.name.startswith("__")}


def named_paths(text: str, top: set[str], packages: set[str]) -> list[str]:
    """The repository paths ``text`` names in backticks, in order."""
    found = []
    for match in _TICKED.finditer(text):
        token = match.group(1).strip()
        if not _PATH.fullmatch(token) or ".." in token:
            continue
        first = token.split("/")[0]
        if ("/" in token and first in top | packages) or token in top:
            found.append(token)
    return found


def test_the_scan_takes_repository_paths_and_leaves_other_words():
    text = "`terraform/` `docs/setup.md` `defs/jobs.py` `manager.yaml` `manager/sha` `infra/variables.yml` `a b/c`"
    assert named_paths(text, {"terraform", "docs", "manager.yaml"}, {"defs"}) == [
        "terraform/", "docs/setup.md", "defs/jobs.py", "manager.yaml"
    ]


@pytest.mark.parametrize("doc", DOCS, ids=[doc.name for doc in DOCS])
def test_every_path_a_document_names_exists(doc):
    top, packages = _top(), _packages()
    missing = [
        path
        for path in dict.fromkeys(named_paths(doc.read_text(), top, packages))
        if (doc.name, path) not in NOT_YET and not ((REPO / path).exists() or (PACKAGE / path).exists())
    ]
    assert missing == [], f"{doc.relative_to(REPO)} names paths that do not exist: {', '.join(missing)}"
