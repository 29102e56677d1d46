"""manager-pipeline: a central Terraform manager on Dagster."""

__version__ = "0.1.0"
