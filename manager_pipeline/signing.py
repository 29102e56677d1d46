"""The key that vouches for what the manager's own sensors and commands say on a run.

A run's tags can be set by anyone who can launch a run (the UI's launchpad, a re-execution with edited
tags); the author of the change, which the self-approval rule checks, must not be one of those words.
The dispatch sensor and the CLI sign it (``events.sign_author``) with this key, and a step reads an
author only when its proof holds; any other author counts as unknown, and the approval asks GitHub for
the author of the commit planned.

The key: derived from ``MANAGER_HANDOFF_KEY`` where it is set (every machine of a deployment with
workers holds it: the code location and the workers, never the webhook receiver), else a random key
kept owner-only in the Dagster home, made on first use (one machine: every process there reads it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from manager_pipeline.errors import ManagerError
from manager_pipeline.files import PRIVATE_FILE, private_dir
from manager_pipeline.settings import Settings

KEY_FILE = "run-tags.key"
# A key of its own for tags, derived from the handoff key: a signature of one kind never passes for the other.
_PURPOSE = b"manager-pipeline run tags v1"


def run_tag_key(settings: Settings) -> bytes:
    """The key that signs run tags on this machine (see the module's text)."""
    return tag_key(settings.celery.handoff_key, settings.dagster_home / KEY_FILE)


def tag_key(handoff_key: SecretStr | None, key_file: Path) -> bytes:
    """Derived from ``handoff_key`` when there is one, else kept in ``key_file`` (made on first use)."""
    if handoff_key is not None:
        return hmac.new(handoff_key.get_secret_value().encode(), _PURPOSE, hashlib.sha256).digest()
    return _key_file(key_file)


def _key_file(path: Path) -> bytes:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    key = secrets.token_bytes(32)
    # Written whole under another name, then linked in: a second process sees no key or the whole key.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex())
    try:
        os.link(tmp, path)
    except FileExistsError:  # another process made it first: take its key
        return _read(path)
    finally:
        tmp.unlink()
    return key


def _read(path: Path) -> bytes:
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 32:
        raise ManagerError(f"{path} holds no run tag key: remove it, and the next run makes a new one")
    return key
