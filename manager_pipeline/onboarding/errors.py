"""What add-source and remove-source raise: nothing is changed when they do."""

from __future__ import annotations

from manager_pipeline.errors import ManagerError


class OnboardingError(ManagerError):
    """Bad input to add-source / remove-source: one line, and manager.yaml was not changed."""


class Refused(ManagerError):
    """A request that is understood but not done (removing a source that may still have infrastructure)."""
