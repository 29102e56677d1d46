"""checkov imported once, forked for each scan: run by checkov's own Python (its virtualenv), never
imported by the manager (it imports nothing of ours).

Importing checkov and loading its checks costs ~2.5 s of CPU; a scan of a plan a fraction of that. This
server pays the import once, then, for each connection on its Unix socket, forks a child that runs one
checkov command line exactly as a fresh process would (``Checkov(argv).run()`` in the request's folder)
and answers ``{"code", "stdout", "stderr"}``. The child first sends its process id, so that the caller can
stop it (and what it started: it leads a session of its own) at the caller's timeout.

Only its owner reaches it: the socket is in a folder only the owner can enter, is itself 0600, and
a peer whose uid is not ours is refused. One server per checkov (a lock file beside the socket); it
leaves after ``idle`` seconds without a connection, removing its socket. Usage:
``python checkov_server.py SOCKET IDLE_SECONDS``.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from typing import NoReturn


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def answer_one(conn: socket.socket, run: Callable[[dict], int]) -> NoReturn:
    """In a forked child: lead a session of its own, send its pid, read one request, run ``run(request)``
    in the request's ``cwd`` with stdout and stderr caught in files, answer ``{"code", "stdout",
    "stderr"}``, and exit (never back to the accept loop). Shared with tests/cli_forkserver.py."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        conn.sendall((json.dumps({"pid": os.getpid()}) + "\n").encode())
        request = json.loads(_read_line(conn) or b"{}")
        os.chdir(request["cwd"])
        out = tempfile.TemporaryFile(dir=request["cwd"])
        err = tempfile.TemporaryFile(dir=request["cwd"])
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            code = run(request)
        except SystemExit as exc:  # as Python ends: sys.exit("message") prints it and exits 1
            if not isinstance(exc.code, int | None):
                print(exc.code, file=sys.stderr)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        out.seek(0)
        err.seek(0)
        answer = {
            "code": int(code or 0),
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace"),
        }
        conn.sendall((json.dumps(answer) + "\n").encode())
    except BaseException:  # the caller sees the connection close without an answer: a failed command
        pass
    finally:
        os._exit(0)


def _stop(*_) -> None:
    raise KeyboardInterrupt


def serve(path: str, idle: float) -> int:
    folder = os.path.dirname(path)
    lock = open(path + ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another server has this socket
    warnings.simplefilter("ignore")
    from checkov.common.checks_infra.registry import get_graph_checks_registry
    from checkov.main import Checkov

    get_graph_checks_registry("terraform").load_checks()

    def run(request: dict) -> int:
        return Checkov(request["argv"]).run()

    os.chmod(folder, 0o700)
    fresh = f"{path}.{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(fresh)
    os.chmod(fresh, 0o600)
    server.listen(64)
    os.replace(fresh, path)
    inode = os.stat(path).st_ino
    with open(path + ".pid", "w") as pid_file:
        pid_file.write(f"{os.getpid()}\n")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, _stop)
    server.settimeout(idle)
    try:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                break
            conn.settimeout(None)
            if _peer_uid(conn) != os.getuid():
                conn.close()
                continue
            if os.fork() == 0:
                server.close()
                answer_one(conn, run)
            conn.close()
    except KeyboardInterrupt:
        pass
    finally:
        try:
            if os.stat(path).st_ino == inode:
                os.unlink(path)
                os.unlink(path + ".pid")
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    # Detached: the process its starter waits for ends at once, and the server, its child, is no child of
    # the starter's (never a zombie of a manager process that started it and went on).
    if os.fork() > 0:
        os._exit(0)
    sys.exit(serve(sys.argv[1], float(sys.argv[2])))
