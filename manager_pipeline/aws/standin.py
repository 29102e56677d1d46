"""The embedded AWS stand-in: one moto server on loopback, shared by every run and the UI.

It holds both the state bucket and the resources, so the two start and end together (moto
keeps nothing on disk). Its pid and port live in ``<home>/local-aws.json``; a file lock
keeps two processes from starting two servers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from manager_pipeline.errors import LocalAwsError
from manager_pipeline.files import locked

STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def endpoint_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=timeout) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (urllib.error.URLError, OSError):
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def moto_server_command(port: int) -> list[str]:
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if exe:
        return [exe, "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@dataclass(frozen=True)
class LocalAwsStatus:
    endpoint_url: str
    pid: int
    started: bool


class LocalAws:
    def __init__(self, home: Path):
        self.home = home
        self.state_file = home / "local-aws.json"
        self.log_file = home / "local-aws.log"
        self.lock_file = home / "local-aws.lock"

    def _recorded(self) -> tuple[int, str] | None:
        try:
            data = json.loads(self.state_file.read_text())
            return int(data["pid"]), str(data["endpoint_url"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def running(self) -> LocalAwsStatus | None:
        recorded = self._recorded()
        if recorded and pid_alive(recorded[0]) and endpoint_answers(recorded[1]):
            return LocalAwsStatus(endpoint_url=recorded[1], pid=recorded[0], started=False)
        return None

    def ensure_running(self) -> LocalAwsStatus:
        """The running stand-in, started in the background if there is none."""
        with locked(self.lock_file):
            status = self.running()
            if status:
                return status
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with open(self.log_file, "ab") as log:
                process = subprocess.Popen(
                    moto_server_command(port),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not endpoint_answers(url, timeout=0.5):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise LocalAwsError(f"the local AWS stand-in (moto) did not start; see {self.log_file}")
                time.sleep(0.1)
            self.state_file.write_text(json.dumps({"pid": process.pid, "endpoint_url": url}))
            return LocalAwsStatus(endpoint_url=url, pid=process.pid, started=True)

    def stop(self) -> bool:
        """Stop the stand-in this home started; False when none was running."""
        with locked(self.lock_file):
            recorded = self._recorded()
            self.state_file.unlink(missing_ok=True)
            if not recorded or not pid_alive(recorded[0]):
                return False
            pid = recorded[0]
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.05)
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
            return True
