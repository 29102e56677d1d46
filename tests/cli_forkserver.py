"""`manager-pipeline` for the tests, with its imports paid once: `python -m tests.cli_forkserver SOCKET`.

The CLI spends ~3 s of CPU importing Dagster, boto3 and PyGithub before it does anything; the suite runs it
some hundreds of times on two cores. This server imports the CLI once, then for each request on its Unix
socket forks a child that becomes that command: a session of its own, the request's environment (all of
it, nothing of the server's), folder and argv, stdin from /dev/null, stdout and stderr into files, then
`main()`, the exit functions, and the answer `{"code", "stdout", "stderr"}`. What runs is the CLI's own
code in a fresh process; only the import is shared. A test's command that must be a process of its own
from the start (signals, a killed run) is started with `subprocess` as before.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import tempfile

from manager_pipeline.policy.checkov_server import answer_one


def _command(request: dict, main) -> int:
    """In the forked child (``answer_one`` caught its output): become the requested command."""
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # TMPDIR is the request's
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.argv = request["argv"]
    try:
        return main()  # its exit (SystemExit) and a crash are answer_one's, as Python's own ending would be
    finally:
        atexit._run_exitfuncs()  # prints what a function raised and goes on, as at a process's end


def serve(path: str) -> None:
    # What the CLI imports, imported now; nothing is run (no settings read, no instance opened).
    import boto3  # noqa: F401
    import github  # noqa: F401

    import manager_pipeline.defs.location  # noqa: F401
    import manager_pipeline.defs.instance  # noqa: F401
    from manager_pipeline.cli.main import main

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(32)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        conn, _ = server.accept()
        if os.fork() == 0:
            server.close()
            answer_one(conn, lambda request: _command(request, main))
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
