"""Stage: variables.yml -> the validated DeployConfig of one environment. The one place that does it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from manager_pipeline.config.model import SourceSpec
from manager_pipeline.contract import DeployConfig, load_variables, resolve
from manager_pipeline.errors import ManagerError
from manager_pipeline.events import DispatchEvent
from manager_pipeline.redact import register_secret
from manager_pipeline.sources import VariablesDocument

Fetch = Callable[[SourceSpec, DispatchEvent], VariablesDocument]


def read_config(
    document: VariablesDocument, environments: Sequence[str], environment: str, source: str
) -> DeployConfig:
    """``document`` checked against the contract (``environments``: those manager.yaml declares for the
    source) and resolved for ``environment``; a ``ContractError`` says what to change, with lines.
    The source's own secret (its Slack webhook) is masked by every sink of this process from now on."""
    data = load_variables(document.text, list(environments), document.location)
    config = replace(resolve(data, environment, source, document.location), origin=document)
    register_secret(config.slack_webhook)
    return config


def current_variables(
    fetch: Fetch, spec: SourceSpec, environments: Sequence[str], source: str, environment: str, branch: str | None
) -> tuple[DeployConfig | None, str | None]:
    """(config, problem) of the variables the source holds now on ``branch``: what an apply checks
    that a plan still stands for."""
    try:
        document = fetch(spec, DispatchEvent(source, environment, branch=branch))
        return read_config(document, environments, environment, source), None
    except ManagerError as exc:
        return None, str(exc).splitlines()[0]
