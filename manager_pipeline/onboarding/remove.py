"""`remove-source`: unregister a source; its infrastructure is not destroyed (``Refused`` unless forced)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from manager_pipeline.errors import ConfigError
from manager_pipeline.onboarding.errors import OnboardingError, Refused
from manager_pipeline.onboarding.manager_yaml import check_removed, diff, read_manager, remove_entry, write_atomically


def remove_source(
    name: str,
    config_path: Path,
    state_bucket: str,
    force: bool = False,
    dry_run: bool = False,
    out: Callable[[str], None] = print,
) -> None:
    """Unregister a source (with ``force``: its state objects are kept); Refused without it."""
    from manager_pipeline.terraform.workdir import state_key

    original, text, config = read_manager(config_path)
    try:
        spec = config.source(name)
    except ConfigError as exc:
        raise OnboardingError(str(exc)) from None
    states = ", ".join(f"s3://{state_bucket}/{state_key(name, e)}" for e in spec.environments) or "none"
    destroys = ", ".join(f"`manager-pipeline destroy {name} {e}`" for e in spec.environments)
    if not force:
        raise Refused(
            f"source `{name}` may still have infrastructure (its state: {states}); destroy it first ({destroys}, "
            "each approved and applied), or give --destroy to plan those destroys and remove the entry in one step. "
            "To only remove its manager.yaml entry, keeping its state objects (its partitions stay until those "
            "destroys are applied), give --force"
        )
    new_text = remove_entry(text, name, config_path.name)
    check_removed(new_text, config, name)
    if dry_run:
        out(diff(text, new_text, config_path.name).rstrip("\n"))
        out(f"dry run: would remove source `{name}` from {config_path}; its state objects would be kept: {states}")
        return
    write_atomically(config_path, original, new_text)
    out(f"removed source `{name}` from {config_path}")
    out(
        f"its Terraform state objects are kept: {states} (whatever they describe still exists; its partitions "
        f"stay until it is destroyed: {destroys})"
    )
    if spec.repo:
        out(
            f"the receiver now refuses deliveries from {spec.repo} for it; delete the repository's webhook if "
            "nothing else uses it"
            + (f", and {spec.webhook_secret_env} from the receiver's environment" if spec.webhook_secret_env else "")
        )
