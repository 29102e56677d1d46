"""One provider process shared by a sequence of Terraform commands.

Terraform starts each provider plugin anew for every command, and more than once within a
plan (schema, validation, refresh): for the aws provider that is most of a small plan's
time. Providers served from our own mirror can instead be started once in their
``-debug`` mode and attached to through ``TF_REATTACH_PROVIDERS``, as Terraform's own
provider test framework does for every test step. The process belongs to one working
directory for the length of one op and is stopped afterwards.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import signal
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from manager_pipeline.errors import TerraformError

_PR_SET_PDEATHSIG = 1
_REATTACH_LINE = re.compile(r"TF_REATTACH_PROVIDERS='(?P<json>\{.*\})'")
START_TIMEOUT_S = 30.0


def die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started it dies (a killed run leaves no provider)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _start(binary: Path, env: Mapping[str, str]) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [str(binary), "-debug"],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    found: dict = {}

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = _REATTACH_LINE.search(line)
            if match and not found:
                found.update(json.loads(match.group("json")))
                ready.set()
        ready.set()

    ready = threading.Event()
    # Keeps draining stdout for the provider's lifetime so it never blocks on a full pipe.
    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(START_TIMEOUT_S) or not found:
        _stop(process)
        raise TerraformError(f"provider {binary.name} did not start in debug mode")
    return process, found


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            process.kill()
            process.wait(timeout=5)


@contextmanager
def provider_servers(binaries: Mapping[str, Path], env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Start the given providers; yield the environment that makes Terraform attach to them."""
    processes: list[subprocess.Popen] = []
    reattach: dict = {}
    try:
        for binary in binaries.values():
            process, entry = _start(binary, env)
            processes.append(process)
            reattach.update(entry)
        yield {"TF_REATTACH_PROVIDERS": json.dumps(reattach)} if reattach else {}
    finally:
        for process in processes:
            _stop(process)
