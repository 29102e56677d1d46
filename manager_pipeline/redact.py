"""Last line of defence: no secret the manager knows leaves a run, wherever the text goes.

Two kinds of secret are known: values of environment variables whose names say they are
secret, and values the code registers when it learns them (``register_secret``: a source's
Slack webhook, the GitHub token or App key, the AWS secret key of the target). Every sink
(GitHub statuses, comments and notifications, Slack, run reports, run metadata, failure
messages, the event log, the CLI's lines, the outbox's errors) passes its text through
``redact_text``/``redact`` at its boundary, before any cut: a secret across a cut cannot
leave as a prefix. (Terraform's sensitive values never get this far: Terraform masks them in
plans and the manager masks sensitive outputs.)
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY|ACCESS_KEY|CREDENTIAL|API_KEY)", re.I)
MASK = "***"
# Shorter values would mask ordinary words; a secret this short is no secret.
MIN_SECRET_LENGTH = 6
# The AWS stand-in's fixed credentials ("testing") are public: masking them would only mangle text.
_PUBLIC_VALUES = frozenset({"testing"})

_registered: set[str] = set()
_lock = threading.Lock()


def _forms(value: str) -> set[str]:
    """``value``, its long lines (a PEM key shows line by line) and its JSON-escaped form."""
    forms = {value}
    forms.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 16)
    escaped = json.dumps(value)[1:-1]
    if escaped != value:
        forms.add(escaped)
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH and form not in _PUBLIC_VALUES}


def register_secret(value: object) -> None:
    """Remember ``value`` as a secret of this process: every sink masks it from now on."""
    if not isinstance(value, str) or len(value.strip()) < MIN_SECRET_LENGTH:
        return
    forms = _forms(value) | _forms(value.strip())
    with _lock:
        _registered.update(forms)


def registered_secrets() -> frozenset[str]:
    with _lock:
        return frozenset(_registered)


def forget_registered_secrets() -> None:
    """For tests: the registry is process-wide."""
    with _lock:
        _registered.clear()


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment's variables whose names say they are secret, longest first.

    The one reader of the environment besides settings.py, on purpose: it masks every secret-looking
    variable, not only the manager's settings (AWS_SECRET_ACCESS_KEY, DAGSTER_PG_PASSWORD, the
    secrets manager.yaml names by variable), so a name no setting declares is masked too."""
    env = os.environ if env is None else env
    values: set[str] = set()
    for name, value in env.items():
        if _SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH:
            values.update(_forms(value))
    return sorted(values, key=len, reverse=True)


def known_secrets(extra: Iterable[str | None] = ()) -> list[str]:
    """Every secret this process knows (environment, registry, ``extra``), longest first."""
    values = {*secret_values(), *registered_secrets()}
    for value in extra:
        if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
            values.update(_forms(value))
    return sorted(values, key=len, reverse=True)


def redact(data: Any, secrets: Iterable[str] | None = None) -> Any:
    """``data`` (text, or lists and dicts of it) with every known secret masked.

    ``secrets`` adds to what the process knows; it never replaces it.
    """
    return _redact(data, known_secrets(secrets or ()))


def redact_text(text: str, secrets: Iterable[str] | None = None) -> str:
    return _redact(text, known_secrets(secrets or ()))


def _redact(data: Any, secrets: list[str]) -> Any:
    if isinstance(data, str):
        for secret in secrets:
            if secret in data:
                data = data.replace(secret, MASK)
        return data
    if isinstance(data, (list, tuple)):
        return type(data)(_redact(item, secrets) for item in data)
    if isinstance(data, dict):
        return {_redact(key, secrets): _redact(value, secrets) for key, value in data.items()}
    return data
