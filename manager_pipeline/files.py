"""Folders and files that hold what the manager keeps to itself (variables, plans, reports, its
database): the owner's only, 0700 and 0600, whatever the umask of the process that makes them; and the
lock files by which the manager's many processes take turns at a shared folder."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` made (with its parents) or found, and closed to everyone but its owner."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """``path`` made empty if missing, and closed to everyone but its owner; its content is kept."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    os.chmod(path, PRIVATE_FILE)
    return path


def write_private(path: Path, text: str) -> Path:
    """``text`` written to ``path`` whole (a reader sees the old file or the new one), owner-only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, PRIVATE_FILE)
    tmp.replace(path)
    return path


@contextmanager
def locked(lock_file: Path, *, shared: bool = False, mode: int = 0o666) -> Iterator[None]:
    """``lock_file`` (made, with its folder, when missing; ``mode`` before the umask) held with flock for the
    block: by one process at a time, or ``shared`` by readers while no one holds it alone. Closing the file
    releases it, as a process that dies does."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT, mode)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
