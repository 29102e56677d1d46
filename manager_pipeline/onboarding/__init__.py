"""Onboarding a source in one step (`add-source`), and its inverse (`remove-source`).

``add.py`` checks and registers a source, ``remove.py`` unregisters one, ``manager_yaml.py`` edits
manager.yaml in place (its layout kept, the edit read back before it is written) and ``webhook.py``
sets up the source's webhook on GitHub.
"""

from manager_pipeline.onboarding.add import AddRequest, add_source
from manager_pipeline.onboarding.errors import OnboardingError, Refused
from manager_pipeline.onboarding.manager_yaml import NewSource, add_entry, remove_entry
from manager_pipeline.onboarding.remove import remove_source
from manager_pipeline.onboarding.webhook import WEBHOOK_EVENTS, secret_env_name, webhook_url

__all__ = [
    "WEBHOOK_EVENTS",
    "AddRequest",
    "NewSource",
    "OnboardingError",
    "Refused",
    "add_entry",
    "add_source",
    "remove_entry",
    "remove_source",
    "secret_env_name",
    "webhook_url",
]
