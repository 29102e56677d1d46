"""Terraform commands, each an explicit command line run the way the manager needs.

A command gets only the environment it is given (no manager secret reaches Terraform or a
provider), a closed stdin (an apply waiting for "yes" cannot hang), its progress streamed line by
line to a callback (never the data commands' JSON), and a stop request passed on so Terraform
saves its state and releases its lock. Inputs are in ``*.auto.tfvars.json`` and the backend in a
config file, so no command carries ``-var``; a plan's detailed exit code (2: changes) is read, not
raised on.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

from manager_pipeline.errors import TerraformError

LineSink = Callable[[str], None]
# Commands whose stdout is data, not progress: JSON that holds sensitive values in the clear. Never streamed.
DATA_COMMANDS = frozenset({"show", "output", "state list", "state pull", "state show"})
DEFAULT_LOCK_TIMEOUT = "60s"
_LOCK_FIELD = re.compile(r"^\s*(ID|Path|Operation|Who|Created):\s*(.*)$", re.M)
# How Go says an endpoint did not answer (the aws provider and the S3 backend alike), and the URL it asked.
_UNREACHABLE = re.compile(
    r"dial tcp (?P<address>\S+?): (?:connect: )?"
    r"(?P<why>connection refused|i/o timeout|no route to host|network is unreachable|connection reset by peer)"
    r"|lookup (?P<host>[^\s:]+)[^\n]*?: no such host"
)
_REQUEST_URL = re.compile(r'(?:Get|Put|Post|Head|Delete) "(?P<url>https?://[^/"?]+)')
ERRORED_STATE_FILE = "errored.tfstate"
# For the commands that take them: no colour codes in what people and parsers read, and never a question.
_QUIET = ("-no-color", "-input=false")


class StateLocked(TerraformError):
    """The state is locked by another run, or by a run that was killed and left its lock."""

    def __init__(self, message: str, lock: dict[str, str]):
        super().__init__(message)
        self.lock = lock


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


class TerraformInterrupted(TerraformError):
    """The run was asked to stop while Terraform worked; Terraform was told and waited for."""


@contextmanager
def _forwarding_signals(process: subprocess.Popen) -> Iterator[list[int]]:
    """While Terraform runs, a stop request (SIGTERM, SIGINT) is passed to it as SIGINT, which makes
    it finish the resource in flight, write the state and release its lock, and it is waited for:
    its provider processes must not be stopped under it. Dagster's own handlers run afterwards."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def forward(signum, frame) -> None:
        received.append(signum)
        try:
            process.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received and callable(previous.get(received[0])):
            previous[received[0]](received[0], None)


def _diagnostics(result: CommandResult) -> str:
    text = (result.stderr.strip() or result.stdout.strip()).splitlines()
    return "\n".join(text[-40:]) if text else f"exit code {result.returncode}"


class TerraformRunner:
    """One working directory's Terraform commands."""

    def __init__(
        self,
        working_dir: Path,
        terraform_bin: Path,
        env: Mapping[str, str],
        on_line: LineSink | None = None,
        lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
        endpoint_url: str | None = None,
    ):
        """``endpoint_url``: the AWS endpoint the working directory's HCL names (a stand-in's), which is not in
        ``env`` (Terraform gets none of the AWS_* variables then)."""
        self.working_dir = working_dir
        self.lock_timeout = lock_timeout
        self._terraform, self._env, self._on_line = str(terraform_bin), dict(env), on_line
        self._endpoint_url = endpoint_url

    def _run(self, command: str, *args: str) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of ``terraform <command> <args>`` in the working directory."""
        argv = [self._terraform, *command.split(), *args]
        try:
            process = subprocess.Popen(
                argv,
                cwd=self.working_dir,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise TerraformError(f"cannot run {argv[0]}: {exc}") from None
        stderr_chunks: list[str] = []
        reader = threading.Thread(target=lambda: stderr_chunks.append(process.stderr.read()), daemon=True)
        reader.start()
        stdout_lines = []
        on_line = None if command in DATA_COMMANDS else self._on_line
        with _forwarding_signals(process) as received:
            for line in process.stdout:
                stdout_lines.append(line)
                if on_line:
                    on_line(line.rstrip("\n"))
            returncode = process.wait()
        reader.join()
        if received:
            raise TerraformInterrupted(
                f"terraform {command} was interrupted ({signal.Signals(received[0]).name}) and stopped cleanly: "
                "what it finished is in the state and its lock is released; re-plan to go on"
            )
        return returncode, "".join(stdout_lines), "".join(stderr_chunks)

    def _check(self, what: str, raw: tuple[int, str, str], ok: tuple[int, ...] = (0,)) -> CommandResult:
        result = CommandResult(*raw)
        if result.returncode not in ok:
            message = _diagnostics(result)
            # Before the lock check: a lock that cannot be read for an outage is not someone else's lock.
            unreachable = self._unreachable(what, result.stderr + result.stdout)
            if unreachable:
                raise TerraformError(unreachable)
            if "Error acquiring the state lock" in message:
                lock = dict(_LOCK_FIELD.findall(result.stderr + result.stdout))
                held = ", ".join(f"{key} {lock[key]}" for key in ("ID", "Operation", "Who", "Created") if key in lock)
                raise StateLocked(
                    f"terraform {what}: the state is locked by another run ({held or 'no lock info'})", lock
                )
            if "Saved plan is stale" in message:
                raise TerraformError(
                    f"terraform {what}: the saved plan is stale (the state changed since); re-plan required"
                )
            raise TerraformError(f"terraform {what} failed:\n{message}")
        return result

    def _unreachable(self, what: str, output: str) -> str | None:
        """One line for a command that failed because AWS (or its stand-in) did not answer: which
        endpoint, and what to do; for an apply, where the state it could not save is and the lock."""
        found = _UNREACHABLE.search(output)
        if found is None:
            return None
        url = _REQUEST_URL.search(output)
        endpoint = url.group("url") if url else self._configured_endpoint(found.group("address") or found.group("host"))
        why = found.group("why") or "no such host"
        text = f"terraform {what}: AWS did not answer at {endpoint} ({why})"
        if what != "apply":
            return f"{text}; nothing was changed: run again once it answers (check AWS_ENDPOINT_URL, the network)"
        parts = [text + " and the apply stopped part way"]
        errored = self.working_dir / ERRORED_STATE_FILE
        if errored.is_file():
            parts.append(f"Terraform could not save the state it had changed ({ERRORED_STATE_FILE})")
        if "Error releasing the state lock" in output:
            parts.append("the state lock may be left behind: the next run names it and how to release it")
        parts.append("re-plan once the endpoint answers")
        return "; ".join(parts)

    def _configured_endpoint(self, address: str) -> str:
        """The endpoint (the stand-in's the HCL names, or the setting ``AWS_ENDPOINT_URL`` or a service's own)
        that ``address`` (host:port, or a host) belongs to, as it was set: Go names only the address when an
        error is not a request's (saving the state, releasing the lock), and one name for one endpoint is what a
        person can search for."""
        settings = [value for key, value in sorted(self._env.items()) if key.startswith("AWS_ENDPOINT_URL")]
        for value in [self._endpoint_url, *settings]:
            if value:
                parsed = urlsplit(value)
                host_port = parsed.netloc.rpartition("@")[2]  # never a user or password the URL carries
                if address in (host_port, parsed.hostname):
                    return f"{parsed.scheme}://{host_port}"
        return address

    def init(self, backend_file: Path) -> CommandResult:
        return self._check(
            "init",
            self._run(
                "init",
                *_QUIET,
                f"-backend-config={backend_file}",
                "-reconfigure",
                f"-lock-timeout={self.lock_timeout}",
            ),
        )

    def state_push(self, state_file: Path) -> CommandResult:
        """Push a state file to the backend; Terraform refuses one older than the backend's or of another lineage."""
        return self._check(
            "state push", self._run("state push", f"-lock-timeout={self.lock_timeout}", "-no-color", str(state_file))
        )

    def plan(self, plan_file: Path, destroy: bool = False) -> tuple[bool, CommandResult]:
        """(has changes, result): the saved plan is written to ``plan_file``; with ``destroy``, a plan that
        removes everything the state holds (`plan -destroy`)."""
        result = self._check(
            "plan",
            self._run(
                "plan",
                *_QUIET,
                f"-out={plan_file}",
                f"-lock-timeout={self.lock_timeout}",
                *(["-destroy"] if destroy else []),
                "-detailed-exitcode",
            ),
            ok=(0, 2),
        )
        return result.returncode == 2, result

    def plan_refresh_only(self, plan_file: Path) -> tuple[bool, CommandResult]:
        """(AWS differs from the state, result) of `plan -refresh-only -detailed-exitcode`, saved to ``plan_file``.
        It never waits for the state lock: a held lock is ``StateLocked`` at once, and is never forced."""
        result = self._check(
            "plan -refresh-only",
            self._run("plan", *_QUIET, f"-out={plan_file}", "-lock-timeout=0s", "-refresh-only", "-detailed-exitcode"),
            ok=(0, 2),
        )
        return result.returncode == 2, result

    def show_json(self, plan_file: Path) -> dict[str, Any]:
        result = self._check("show", self._run("show", "-json", "-no-color", str(plan_file)))
        return json.loads(result.stdout)

    def apply(self, plan_file: Path) -> CommandResult:
        # A saved plan is applied without a question: it was the approval.
        return self._check("apply", self._run("apply", *_QUIET, f"-lock-timeout={self.lock_timeout}", str(plan_file)))

    def force_unlock(self, lock_id: str) -> CommandResult:
        return self._check("force-unlock", self._run("force-unlock", "-force", "-no-color", lock_id))

    def state_addresses(self) -> list[str]:
        """Every resource address the state holds: names only, never values."""
        result = self._check("state list", self._run("state list", "-no-color"))
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def outputs(self) -> dict[str, Any]:
        result = self._check("output", self._run("output", "-json", "-no-color"))
        return json.loads(result.stdout or "{}")
