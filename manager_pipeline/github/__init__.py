"""The GitHub boundary: ``GitHubClient`` is the one place that talks to GitHub (through PyGithub).

``GitHubSource`` (a variables file at a commit) and ``GitHubApprovals`` (reviews and `/approve`
comments) are thin users of it; feedback delivery (``feedback/delivery.py``) is another.
"""

from manager_pipeline.github.client import (
    DEFAULT_API_URL,
    Comment,
    GitHubClient,
    GitHubError,
    GitHubNotConfigured,
    Review,
)
from manager_pipeline.github.source import GitHubSource

__all__ = [
    "DEFAULT_API_URL",
    "Comment",
    "GitHubClient",
    "GitHubError",
    "GitHubNotConfigured",
    "GitHubSource",
    "Review",
]
