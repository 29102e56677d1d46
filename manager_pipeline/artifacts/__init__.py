"""Where plans live between plan and apply: one folder per plan, with its metadata."""

from manager_pipeline.artifacts.store import PlanArtifact, PlanStore, S3PlanFiles, sha256_file

__all__ = ["PlanArtifact", "PlanStore", "S3PlanFiles", "sha256_file"]
