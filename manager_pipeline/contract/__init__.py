"""variables.yml -> DeployConfig: parse safely, validate against the schema, resolve one environment."""

from manager_pipeline.contract.deploy_config import ComputeSettings, DeployConfig
from manager_pipeline.contract.validate import parse_variables, resolve, validate_document

__all__ = ["ComputeSettings", "DeployConfig", "parse_variables", "resolve", "validate_document"]
