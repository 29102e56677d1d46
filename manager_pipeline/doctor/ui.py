"""The Dagster UI is not reachable without a login.

Dagster's UI has no login of its own, and whoever reaches it can launch runs (applies included).
`manager-pipeline ui` binds 127.0.0.1 unless `--host` says otherwise; where the UI is served to
others, DAGSTER_WEBSERVER_URL is its address (links in comments point there) and an authenticating
proxy (oauth2-proxy, an identity-aware load balancer, ...) must stand in front of it, which
MANAGER_UI_AUTH=proxy declares. With an address that answers, the check also asks it anonymously:
the UI's answer to a request without credentials means the proxy lets anyone through.
"""

from __future__ import annotations

import ipaddress
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Callable
from urllib.parse import urlparse

from manager_pipeline.doctor.result import CheckResult, failed, ok

NAME = "ui exposure"
AUTH_SETTING = "MANAGER_UI_AUTH"
AUTH_VALUES = ("proxy",)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _answers_anonymously(url: str) -> bool | None:
    """Whether the Dagster webserver at ``url`` answers a request without credentials (None: no answer)."""
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
            return response.status == 200 and b"dagster_webserver_version" in response.read(4096)
    except urllib.error.HTTPError:
        return False  # 401/403/302-to-login: something asks who it is
    except (OSError, ValueError):
        return None


def check_ui(
    webserver_url: str, env: Mapping[str, str], probe: Callable[[str], bool | None] = _answers_anonymously
) -> CheckResult:
    host = urlparse(webserver_url).hostname or ""
    auth = (env.get(AUTH_SETTING) or "").strip().lower()
    if auth and auth not in AUTH_VALUES:
        return failed(
            NAME, f"{AUTH_SETTING}={auth!r} is not known: set it to `proxy` (an authenticating proxy fronts the UI)"
        )
    if _loopback(host):
        return ok(
            NAME, f"the UI is on {host} only (DAGSTER_WEBSERVER_URL); keep `manager-pipeline ui` on --host 127.0.0.1"
        )
    if not auth:
        return failed(
            NAME,
            f"DAGSTER_WEBSERVER_URL={webserver_url} is not on this machine and nothing declares a login in front "
            "of it: Dagster's UI has none and can launch applies; put an authenticating proxy in front and set "
            f"{AUTH_SETTING}=proxy",
        )
    if probe(webserver_url):
        return failed(
            NAME,
            f"{webserver_url} answers a request without credentials although {AUTH_SETTING}=proxy: the proxy lets "
            "anyone through; require a login on it",
        )
    return ok(NAME, f"{webserver_url} is behind an authenticating proxy ({AUTH_SETTING}=proxy)")
