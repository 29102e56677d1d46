"""The GitHub stand-in, as a server, refuses a body GitHub's description refuses and reports it; the
checks themselves: tests/unit/test_github_conformance.py."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

SHA = "a" * 40


def test_the_stand_in_answers_a_body_github_refuses_with_422_and_reports_it(github_standin):
    token = "ghp_conformance_probe"
    github_standin.token(token)
    github_standin.repo("acme/conformance", commits={SHA: {}}, branches={"main": SHA})
    request = urllib.request.Request(
        f"{github_standin.url}/repos/acme/conformance/statuses/{SHA}",
        data=json.dumps({"state": "done"}).encode(),
        method="POST",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 422
    # Taken here, so that this test's own hook (tests/conftest.py) does not fail it for them.
    [violation] = github_standin.new_violations()
    assert (violation["operation"], violation["pointer"]) == ("repos/create-commit-status", "$.state")
    assert github_standin.conformance()["requests_checked"] >= 1
