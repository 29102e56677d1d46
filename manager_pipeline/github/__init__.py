"""The GitHub boundary: the one place that talks to GitHub, through PyGithub."""

from manager_pipeline.github.client import GitHubSettings, connect
from manager_pipeline.github.publisher import GitHubPublisher
from manager_pipeline.github.source import GitHubSource

__all__ = ["GitHubPublisher", "GitHubSettings", "GitHubSource", "connect"]
