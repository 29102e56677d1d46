"""checkov, the policy engine, in a virtualenv of its own beside the Terraform toolchain.

Its pins clash with ours (boto3, networkx, packaging, tabulate), so it never goes into the
manager's environment: ``ensure_checkov`` makes ``<tools_dir>/checkov-<version>`` once (from
PyPI, like every other package), lists checkov's built-in check ids into ``checks.json`` beside
it (the policy loader refuses ids that are not there), and writes a stamp last: a folder without
the stamp is a broken install and is made again. ``manager-pipeline setup`` calls it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from manager_pipeline.errors import ManagerError
from manager_pipeline.files import locked

CHECKOV_VERSION = "3.3.30"
STAMP = ".installed"
CHECKS_FILE = "checks.json"
PIP_TIMEOUT_S = 900
# `checkov --list` takes ~4 s; one `checkov --version` once hung for 10 minutes (a PyPI update check).
LIST_TIMEOUT_S = 120

# checkov asks the Prisma Cloud API for guidelines and PyPI for a newer version on every start
# unless told not to; neither answers here, and neither may see what we scan.
QUIET_ENV = {
    "BC_SKIP_MAPPING": "TRUE",
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
    # A value known only after apply (the ARN of a key the same plan creates) counts as set, not as
    # missing: as terraform/policy-skips.yaml was reviewed (scripts/checkov_plans.py).
    "EVAL_TF_PLAN_AFTER_UNKNOWN": "true",
    "PYTHONWARNINGS": "ignore",
}


class CheckovInstallError(ManagerError):
    """checkov could not be installed or does not work; one line: what failed and what to do."""


@dataclass(frozen=True)
class CheckInfo:
    name: str
    link: str = ""


@dataclass(frozen=True)
class Checkov:
    """An installed checkov: the interpreter of its virtualenv runs it (``python -m`` style, so a
    process can import it before it knows what to scan) and the built-in checks it knows."""

    python: Path
    version: str
    checks_file: Path
    # Scans go to a server that imported checkov once and forks for each (policy/server.py); False: a
    # process of its own per scan (an engine that is not the one `setup` installed, such as a test's).
    served: bool = False

    @property
    def checks(self) -> Mapping[str, CheckInfo]:
        return _read_checks(self.checks_file)


def checkov_dir(tools_dir: Path) -> Path:
    return tools_dir / f"checkov-{CHECKOV_VERSION}"


def engine_env(home: Path | None = None) -> dict[str, str]:
    """The whole environment checkov runs with: no credentials or tokens of ours reach it."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **QUIET_ENV}
    if home is not None:
        env["HOME"] = str(home)
        env["CKV_CACHE_DIR"] = str(home / "cache")
    return env


def _run(argv: list[str], timeout_s: float, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """``argv`` in a process group of its own, killed as a group at ``timeout_s``."""
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


# `checkov --list` prints a markdown table: | n | Id | Type | Entity | Policy | IaC | Resource Link |
_ROW = re.compile(
    r"^\|\s*\d+\s*\|\s*(?P<id>[A-Z0-9_]+)\s*\|[^|]*\|[^|]*\|\s*(?P<name>[^|]*?)\s*\|[^|]*\|\s*(?P<link>[^|]*?)\s*\|$"
)


def parse_check_list(text: str) -> dict[str, CheckInfo]:
    """Check id -> name and link, from `checkov --list` (one row per check and resource type)."""
    checks: dict[str, CheckInfo] = {}
    for line in text.splitlines():
        row = _ROW.match(line.strip())
        if row:
            checks.setdefault(row["id"], CheckInfo(row["name"], row["link"]))
    return checks


@lru_cache(maxsize=4)
def _read_checks(path: Path) -> Mapping[str, CheckInfo]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckovInstallError(f"{path} is unreadable ({exc}); run `manager-pipeline setup` again") from None
    return {check_id: CheckInfo(**info) for check_id, info in raw.items()}


def _install(folder: Path, python: str) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    try:
        done = _run([python, "-m", "venv", str(folder)], 120)
        if done.returncode != 0:
            raise CheckovInstallError(f"could not make a virtualenv at {folder}: {_last_line(done.stderr)}")
        done = _run(
            [
                str(folder / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                f"checkov=={CHECKOV_VERSION}",
            ],
            PIP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise CheckovInstallError(
            f"installing checkov {CHECKOV_VERSION} into {folder} took over {exc.timeout:.0f} s; check that PyPI "
            "answers, then run `manager-pipeline setup` again"
        ) from None
    if done.returncode != 0:
        raise CheckovInstallError(
            f"pip could not install checkov=={CHECKOV_VERSION} into {folder}: {_last_line(done.stderr)}; check that "
            "PyPI answers, then run `manager-pipeline setup` again"
        )
    try:
        listed = _run(
            [str(folder / "bin" / "checkov"), "--list", "--framework", "terraform"], LIST_TIMEOUT_S, engine_env(folder)
        )
    except subprocess.TimeoutExpired:
        raise CheckovInstallError(
            f"`checkov --list` did not end within {LIST_TIMEOUT_S} s; run `manager-pipeline setup` again"
        ) from None
    checks = parse_check_list(listed.stdout)
    if listed.returncode != 0 or not checks:
        raise CheckovInstallError(
            f"the checkov just installed in {folder} does not run: {_last_line(listed.stderr or listed.stdout)}"
        )
    (folder / CHECKS_FILE).write_text(
        json.dumps({key: {"name": info.name, "link": info.link} for key, info in sorted(checks.items())}, indent=1)
    )
    (folder / STAMP).write_text(json.dumps({"checkov": CHECKOV_VERSION, "checks": len(checks)}) + "\n")


def ensure_checkov(tools_dir: Path, python: str | None = None) -> Checkov:
    """checkov at the pinned version in its own virtualenv under ``tools_dir``, installed on first use.

    Idempotent and safe to call from several processes at once (a lock; the stamp is written last).
    ``python`` makes the virtualenv (default: the interpreter running the manager).
    """
    folder = checkov_dir(tools_dir)
    if not (folder / STAMP).is_file():
        with locked(folder.parent / f".{folder.name}.lock"):
            if not (folder / STAMP).is_file():
                _install(folder, python or sys.executable)
    return _installed(folder)


def installed_checkov(tools_dir: Path) -> Checkov | None:
    """The checkov ``manager-pipeline setup`` installed, or None (nothing is installed here)."""
    folder = checkov_dir(tools_dir)
    if not (folder / STAMP).is_file():
        return None
    return _installed(folder)


def _installed(folder: Path) -> Checkov:
    return Checkov(
        python=folder / "bin" / "python", version=CHECKOV_VERSION, checks_file=folder / CHECKS_FILE, served=True
    )
