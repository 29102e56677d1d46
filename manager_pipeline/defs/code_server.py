"""The manager's code location served by a `dagster api grpc` of the manager's own: what `manager-pipeline ui`
puts under its webserver and daemon, and what the tests of a daemon under load use.

Left to themselves a webserver and a daemon each start a code server, and the daemon's tells itself to shut
down once 20 s pass without the daemon's heartbeat (a busy machine): while runs it started are still going it
stays up, and the daemon hands it every run it dequeues, each failing ("Tried to start a run on a server after
telling it to shut down"; seen in CI under load). A server of the manager's own has no heartbeat to miss, and
the code loads once instead of twice."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Mapping

from manager_pipeline.errors import ManagerError
from manager_pipeline.yamlfile import load_yaml

LOCATION_MODULE = "manager_pipeline.defs.definitions"


def serve_code_location(
    root: Path, env: Mapping[str, str], *, stdout: IO | None = None, timeout: float = 600
) -> tuple[subprocess.Popen, Path]:
    """The code location of ``root``'s workspace.yaml served on a Unix socket in a folder only this user can
    enter, once it answers; the server's process (a session of its own) and a workspace file in that folder that
    points at it. The caller stops the process's group and removes the workspace file's folder."""
    workspace_file = root / "workspace.yaml"
    [entry] = load_yaml(workspace_file.read_text(), str(workspace_file)).get("load_from") or [{}]
    module = entry.get("python_module") or {}
    name = module.get("module_name") or LOCATION_MODULE
    location = module.get("location_name") or name
    folder = Path(tempfile.mkdtemp(prefix="manager-pipeline-code-"))  # 0700; short enough for a socket's path
    path = folder / "code.sock"
    argv = [str(Path(sys.executable).parent / "dagster"), "api", "grpc", "-m", name]
    argv += ["-d", str(root / module.get("working_directory", ".")), "-s", str(path), "--location-name", location]
    process = subprocess.Popen(
        argv, cwd=root, env=dict(env), stdout=stdout, stderr=subprocess.STDOUT if stdout else None,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None:
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise ManagerError(f"the code location {name} did not load within {timeout:.0f} s") from None
                time.sleep(0.2)
        if process.poll() is not None:
            raise ManagerError(f"the code server for {name} ended before it served (see its output)")
    except BaseException:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    workspace = folder / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - grpc_server:\n      socket: {path}\n      location_name: {location}\n")
    return process, workspace
