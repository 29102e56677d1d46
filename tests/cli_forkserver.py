"""`manager-pipeline` for the tests, with its imports paid once: `python -m tests.cli_forkserver SOCKET`.

The CLI spends ~3 s of CPU importing Dagster, boto3 and PyGithub before it does anything; the suite runs it
some hundreds of times on two cores. This server imports the CLI once, then for each request on its Unix
socket forks a child that becomes that command: a session of its own, the request's environment (all of
it, nothing of the server's), folder and argv, stdin from /dev/null, stdout and stderr into files, then
`main()`, the exit functions, and the answer `{"code", "stdout", "stderr"}`. What runs is the CLI's own
code in a fresh process; only the import is shared. A test's command that must be a process of its own
from the start (signals, a killed run) is started with `subprocess` as before.

The CLI imports more as it goes (a run imports some 390 modules of Dagster's execution, Alembic, SQLAlchemy's
dialects, rich...: ~0.45 s of a `run`'s 1.8 s of CPU). Each child writes the names of the libraries' modules
it imported to a file beside the socket, and the server imports them before its next fork: later children
start with them, as a child of a process that had run that command would. A `run` child's CPU:
1.8 s -> 1.1 s (with what it imports already imported, and the server's objects frozen for its collector).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import signal
import socket
import sys
import tempfile

from manager_pipeline.policy.checkov_server import answer_one


# The libraries whose modules the server learns from its children: third-party code only. Not the manager's
# own (defs/definitions.py builds the code location from the environment as it is imported) nor Celery's app.
LEARNED_PACKAGES = frozenset(
    "alembic boto3 botocore dagster dagster_aws dagster_postgres dagster_shared fsspec github jsonschema mako "
    "pydantic pygments rich s3transfer sqlalchemy structlog upath yaml".split()
)


def _learn(before: frozenset[str], learned: str) -> None:
    """In the child, once its command is done: name the libraries' modules it imported (one append)."""
    new = [name for name in set(sys.modules) - before if name.split(".", 1)[0] in LEARNED_PACKAGES]
    if new:
        fd = os.open(learned, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, ("\n".join(sorted(new)) + "\n").encode())
        finally:
            os.close(fd)


def _import_learned(learned: str, offset: int) -> int:
    """In the server, before a fork: import what children named since ``offset``; the new offset."""
    try:
        with open(learned, "rb") as names:
            names.seek(offset)
            text = names.read()
    except FileNotFoundError:
        return offset
    complete = text[: text.rfind(b"\n") + 1]  # a child's append in progress is read next time
    for name in complete.decode().split():
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - a module that only imports in its command's context
                pass
    return offset + len(complete)


def _command(request: dict, main, learned: str) -> int:
    """In the forked child (``answer_one`` caught its output): become the requested command."""
    before = frozenset(sys.modules)
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
        _learn(before, learned)


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
    learned, offset = f"{path}.learned", 0
    while True:
        conn, _ = server.accept()
        offset = _import_learned(learned, offset)
        # What the server imported is never garbage: its children's collections need not walk it (nor copy
        # its pages by touching their reference counts), as gc.freeze's documentation advises before a fork.
        gc.freeze()
        if os.fork() == 0:
            server.close()
            answer_one(conn, lambda request: _command(request, main, learned))
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
