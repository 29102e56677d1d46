"""Last line of defence: no secret of the manager's environment leaves in feedback.

Values of variables whose names say they are secret are replaced wherever they appear in
text bound for GitHub. (Terraform's sensitive values never get this far: Terraform masks
them in plans and the manager masks sensitive outputs.)
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY|ACCESS_KEY|CREDENTIAL|API_KEY)", re.I)
MASK = "***"


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    values: set[str] = set()
    for name, value in env.items():
        if _SECRET_NAME.search(name) and len(value) >= 6:
            values.add(value)
            values.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 16)
    return sorted(values, key=len, reverse=True)


def redact(data: Any, secrets: list[str]) -> Any:
    if isinstance(data, str):
        for secret in secrets:
            if secret in data:
                data = data.replace(secret, MASK)
        return data
    if isinstance(data, list):
        return [redact(item, secrets) for item in data]
    if isinstance(data, dict):
        return {key: redact(value, secrets) for key, value in data.items()}
    return data
