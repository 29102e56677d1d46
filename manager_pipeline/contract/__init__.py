"""variables.yml -> DeployConfig: parse safely, check against the schema, resolve one environment."""

from manager_pipeline.contract.deploy_config import DeployConfig, InstanceSettings
from manager_pipeline.contract.schema import SCHEMA
from manager_pipeline.contract.validate import (
    check_document,
    contract_warnings,
    load_variables,
    parse_variables,
    resolve,
)

__all__ = [
    "SCHEMA",
    "DeployConfig",
    "InstanceSettings",
    "check_document",
    "contract_warnings",
    "load_variables",
    "parse_variables",
    "resolve",
]
