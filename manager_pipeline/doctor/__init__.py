"""`manager-pipeline doctor`: for this manager.yaml and environment, each thing a real set-up needs,
checked read-only, with one line saying what is missing and how to fix it.

One check per function, each returning a ``CheckResult`` (ok, failed, or could-not-run, which does
not pass either); ``run_checks`` runs them all. No check changes anything or shows a secret.
"""

from manager_pipeline.doctor.checks import run_checks
from manager_pipeline.doctor.result import CheckResult, Status

__all__ = ["CheckResult", "Status", "run_checks"]
