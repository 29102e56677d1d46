"""The caller's side of the checkov server (``checkov_server.py``, run by checkov's own Python).

``ask`` hands one checkov command line to the server of an installed checkov, starting the server
when none answers, and returns ``(exit code, stdout, stderr)`` as a process of its own would. It
returns None when no server could take the request (it could not start, or left before it took it):
the caller then runs checkov in a process of its own, as before. Once the server's child has taken
the request, what happens is the scan's: a timeout stops the child (its whole session) and raises
``TimeoutError``; a child that dies without an answer is a crash (exit code -1).

The server leaves by itself after ``IDLE_S`` without a scan; ``stop`` ends it at once (by its
process id, written beside its socket).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from manager_pipeline.policy.install import Checkov, engine_env

SCRIPT = Path(__file__).with_name("checkov_server.py")
SOCKET_NAME = "server.sock"
IDLE_S = 300.0
# How long a caller waits for a server it started to listen (checkov's import; minutes on a loaded machine
# would be worse than a process of its own, which the caller then starts instead).
START_WAIT_S = 30.0
# sun_path holds 108 bytes; a longer path cannot be a socket, and checkov runs as a process of its own.
_MAX_PATH = 100


def socket_path(checkov: Checkov) -> Path:
    return checkov.python.parent.parent / "home" / SOCKET_NAME


def _connect(path: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None
    return conn


def _servable(checkov: Checkov) -> Path | None:
    """The socket of ``checkov``'s server, or None when it is not served (not the installed one, or a
    folder whose path is too long for a socket)."""
    path = socket_path(checkov)
    return path if checkov.served and len(str(path)) <= _MAX_PATH else None


def start(checkov: Checkov) -> bool:
    """Start the server of ``checkov`` unless one is there (it exits at once if another holds the
    lock); True when a server may be listening soon."""
    path = _servable(checkov)
    if path is None:
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        # The server detaches itself (checkov_server.py forks): what is waited for here ends at once.
        subprocess.run(
            [str(checkov.python), str(SCRIPT), str(path), str(IDLE_S)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=path.parent,
            env=engine_env(path.parent),
            start_new_session=True,
            close_fds=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def running_or_started(checkov: Checkov) -> bool:
    """True when the server of ``checkov`` answers or was just started (it imports while the caller
    does something else); False when it cannot be served."""
    path = _servable(checkov)
    conn = _connect(path) if path else None
    if conn is not None:
        conn.close()
        return True
    return start(checkov)


def _reached(checkov: Checkov, deadline: float) -> socket.socket | None:
    path = _servable(checkov)
    if path is None:
        return None
    conn = _connect(path)
    if conn is not None or not start(checkov):
        return conn
    while time.monotonic() < deadline:
        time.sleep(0.1)
        conn = _connect(path)
        if conn is not None:
            return conn
    return None


def _line(conn: socket.socket, deadline: float) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        conn.settimeout(remaining)
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _kill_session(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def ask(checkov: Checkov, argv: list[str], cwd: Path, timeout_s: float) -> tuple[int, str, str] | None:
    """One checkov run by the server: (exit code, stdout, stderr); None when no server took it."""
    deadline = time.monotonic() + timeout_s
    conn = _reached(checkov, min(deadline, time.monotonic() + START_WAIT_S))
    if conn is None:
        return None
    with conn:
        try:
            header = json.loads(_line(conn, deadline) or b"null")
        except TimeoutError:
            raise  # the scan's own time ran out (its child, without a request, ends when we close)
        except (OSError, ValueError):
            return None  # the server left (idle) as we came: not taken
        if not isinstance(header, dict) or not isinstance(header.get("pid"), int):
            return None
        pid = header["pid"]
        try:
            conn.sendall((json.dumps({"argv": argv, "cwd": str(cwd)}) + "\n").encode())
            answer = _line(conn, deadline)
        except TimeoutError:
            _kill_session(pid)
            raise
        except OSError:
            answer = b""
    try:
        data = json.loads(answer)
        return int(data["code"]), str(data["stdout"]), str(data["stderr"])
    except (ValueError, KeyError, TypeError):
        return -1, "", "the policy engine's server child ended without an answer"


def stop(checkov: Checkov) -> int | None:
    """End the server of ``checkov`` now; its process id, or None when none was running."""
    pid_file = socket_path(checkov).with_name(SOCKET_NAME + ".pid")
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:  # a pid written by a server that is gone may be another process's now
        if SCRIPT.name.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    except OSError:
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.05)
    return pid


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs: a zombie (ended, its parent, init, not yet done with it) does not."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"
