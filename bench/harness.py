"""What the benchmarks in bench/ share: the services a deployment runs (each started in a process
group of its own and stopped by its pid), bare `terraform init && plan` of the manager's module,
/proc sampling of memory, and the small table they print. Not a benchmark itself.

The set-up helpers are the tests' own (tests/support.py), so a benchmark measures the same
manager the tests check.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from manager_pipeline.aws.standin import endpoint_answers, free_port, moto_server_command  # noqa: E402
from manager_pipeline.settings import AwsSettings, Settings  # noqa: E402
from manager_pipeline.terraform import Toolchain, ensure_toolchain  # noqa: E402
from tests.support import BIN, GitHubStandIn, Manager, stop_process, wait_until  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def toolchain() -> tuple[Path, Toolchain]:
    """The machine's shared Terraform toolchain and its folder (as the tests' `tools_dir` fixture finds it)."""
    settings = Settings.from_env({k: v for k, v in os.environ.items() if k != "TERRAFORM_BIN"})
    return settings.tools_dir, ensure_toolchain(settings.tools_dir)


# --- processes -----------------------------------------------------------------------------


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): with the pid, names one process for good."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


def children_map() -> dict[int, list[int]]:
    """ppid -> pids, for every process in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(root: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """The pids below ``root`` in the process tree (read from /proc unless ``children`` is given)."""
    children = children_map() if children is None else children
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Services:
    """The processes a benchmark started: each in a session (process group) of its own, stopped
    through it in reverse order; any descendant seen meanwhile that outlived its group is ended by pid."""

    logs: Path
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    seen: set[tuple[int, int | None]] = field(default_factory=set)  # (pid, start time)

    def start(self, name: str, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes.append((name, process))
        return process

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def remember_descendants(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                self.seen.update((pid, start_time(pid)) for pid in descendants(process.pid))

    def stop(self, name: str) -> None:
        """Stop the service ``name`` (and what it started) now."""
        self.remember_descendants()
        for entry in [e for e in self.processes if e[0] == name]:
            stop_process(entry[1])
            self.processes.remove(entry)

    def stop_all(self) -> None:
        self.remember_descendants()
        for _, process in reversed(self.processes):
            stop_process(process)
        for pid, started in self.seen:
            # Only a process seen below one this benchmark started, and still that same process.
            if started is not None and start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.processes.clear()


def in_workspace(prefix: str, keep: bool, measure: Callable[[Path, Services], None]) -> None:
    """Run ``measure`` in a temporary folder with its services; stop them all, and remove the folder
    unless ``keep`` (then say where it is)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    services = Services(work / "logs")
    try:
        measure(work, services)
    finally:
        services.stop_all()
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def start_moto(services: Services) -> str:
    """The AWS stand-in, as tests/conftest.py starts it."""
    port = free_port()
    process = services.start("moto", moto_server_command(port), cwd=services.logs)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: process.poll() is not None or endpoint_answers(url, 0.5), 30, "moto", services.log("moto"))
    assert process.poll() is None, services.log("moto").read_text(errors="replace")
    return url


def start_standin(services: Services) -> GitHubStandIn:
    """The GitHub stand-in, `python -m tests.github_standin --port P`."""
    port = free_port()
    process = services.start(
        "github-standin", [sys.executable, "-m", "tests.github_standin", "--port", str(port)], cwd=REPO
    )
    standin = GitHubStandIn(f"http://127.0.0.1:{port}")

    log = services.log("github-standin")
    wait_until(lambda: standin.answers_or_ended(process), 30, "the GitHub stand-in", log, interval=0.1)
    assert process.poll() is None, services.log("github-standin").read_text(errors="replace")
    return standin


def start_daemon(services: Services, manager: Manager) -> subprocess.Popen:
    """`dagster-daemon run` on the manager's workspace, as tests/integration/test_daemon.py starts it."""
    return services.start(
        "dagster-daemon",
        [str(BIN / "dagster-daemon"), "run", "-w", str(manager.root / "workspace.yaml")],
        cwd=manager.root,
        env=manager.env,
    )


def wait_for_sensor_tick(manager: Manager, name: str, timeout: float, log: Path) -> float:
    """Wait until the daemon has evaluated sensor ``name`` once (its code location is loaded); when."""
    from dagster import DagsterInstance
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    instance = DagsterInstance.from_config(str(manager.dagster_home))

    def ticked():
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.name == name:
                ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
                if ticks and ticks[0].status != TickStatus.STARTED:
                    return ticks[0].timestamp
        return None

    return wait_until(ticked, timeout, f"the first tick of sensor {name}", log, interval=0.5)


# --- bare Terraform --------------------------------------------------------------------------


@dataclass
class Bare:
    """`terraform init && terraform plan` of the manager's module with the inputs a run would give
    it (same tfvars, backend, state key and endpoint), in a fresh working directory each time."""

    tools: Toolchain
    module: Path
    endpoint: str
    bucket: str
    scratch: Path

    def __post_init__(self) -> None:
        from manager_pipeline.aws.target import STAND_IN_CREDENTIALS, AwsTarget

        aws = AwsSettings(mode="endpoint", endpoint_url=self.endpoint, region="us-east-1", state_bucket=self.bucket)
        self.target = AwsTarget(settings=aws, endpoint_url=self.endpoint, credentials=dict(STAND_IN_CREDENTIALS))
        self.target.ensure_state_bucket()
        # No TF_PLUGIN_CACHE_DIR: with the filesystem mirror each init only links the provider from
        # the mirror, and concurrent inits sharing one cache fail now and then ("failed to create
        # directory ... file exists") while re-linking the cache's entry.
        self.env = self.target.process_env() | {k: v for k, v in self.tools.env().items() if k != "TF_PLUGIN_CACHE_DIR"}

    def prepare(self, source: str, environment: str, variables: str):
        """A fresh working directory (not timed: what a person copies by hand)."""
        from manager_pipeline.contract import load_variables, resolve
        from manager_pipeline.terraform import BackendSettings, prepare_workdir, state_key

        config = resolve(load_variables(variables, ["staging", "production"]), environment, source)
        backend = BackendSettings(self.bucket, "us-east-1", state_key(source, environment), self.endpoint)
        return prepare_workdir(
            self.scratch / f"bare-{source}-{uuid.uuid4().hex[:8]}", self.module, config, backend, self.endpoint
        )

    def run(self, workdir) -> float:
        """Seconds for init and plan in ``workdir``."""
        started = time.perf_counter()
        for argv in (
            ["init", "-input=false", "-no-color", f"-backend-config={workdir.backend_file}"],
            ["plan", "-input=false", "-no-color"],
        ):
            done = subprocess.run(
                [str(self.tools.terraform), *argv], cwd=workdir.path, env=self.env, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"bare terraform {argv[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return time.perf_counter() - started

    def once(self, source: str, environment: str, variables: str) -> float:
        return self.run(self.prepare(source, environment, variables))


# --- memory ----------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of ``pid`` in bytes; {} once it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, amount, _ = line.split()
                    values[key[:-1]] = int(amount) * 1024
    except OSError:
        return {}
    return values


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class TreeSampler:
    """Samples the processes below ``root`` every ``interval`` s: the peak resident set (VmHWM) of
    each process whose command line ``is_run`` picks out, and the peak sum of resident sets of such
    a process and everything below it (Terraform, the provider)."""

    def __init__(self, root: int, is_run: Callable[[str], bool], interval: float = 0.25):
        self.root, self.is_run, self.interval = root, is_run, interval
        self.run_hwm: dict[int, int] = {}
        self.tree_peak: dict[int, int] = {}
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._commands: dict[int, str] = {}

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            children = children_map()
            pids = descendants(self.root, children)
            self.seen.update(pids)
            for pid in pids:
                # Read again until it matches: a process just forked still shows its parent's command line.
                if pid not in self._commands:
                    command = cmdline(pid)
                    if not self.is_run(command):
                        continue
                    self._commands[pid] = command
                status = proc_status(pid)
                if status:
                    self.run_hwm[pid] = max(self.run_hwm.get(pid, 0), status["VmHWM"])
                    below = descendants(pid, children)
                    tree = status["VmRSS"] + sum(proc_status(p).get("VmRSS", 0) for p in below)
                    self.tree_peak[pid] = max(self.tree_peak.get(pid, 0), tree)
            self._stop.wait(self.interval)


def tree_rss(root: int) -> list[tuple[int, str, int]]:
    """(pid, command, resident bytes) of ``root`` and every process below it."""
    return [(pid, cmdline(pid), proc_status(pid).get("VmRSS", 0)) for pid in [root, *descendants(root)]]


# --- output ----------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def mib(amount: float) -> str:
    return f"{amount / 2**20:.0f} MiB"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = zip(row, widths, strict=True)
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(cells)))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
