"""Where variables come from: one reader per kind of source, one document out."""

from manager_pipeline.sources.document import VariablesDocument
from manager_pipeline.sources.local import LocalSource, git_revision

__all__ = ["VariablesDocument", "LocalSource", "git_revision"]
