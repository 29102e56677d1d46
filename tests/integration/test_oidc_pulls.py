"""OIDC pull request deliveries against the GitHub stand-in: what the token does not pin is GitHub's word."""

from __future__ import annotations

import uuid

import pytest

from manager_pipeline.defs.resources import GitHubResource
from tests.support import pull_request_payload
from tests.unit.test_oidc import issuer, keys, make_app, send, token  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "github_says, body_claims, expected",
    [
        ({}, {"sha": "a" * 40}, "queued"),  # the body names another head commit than GitHub's
        ({"head_repo": "mallory/web"}, {}, "waiting"),  # a fork whose body claims to be the repository's own
        ({"author_association": "NONE"}, {"association": "OWNER"}, "waiting"),  # an outsider claiming OWNER
    ],
)
def test_an_oidc_pull_request_takes_its_head_fork_and_author_from_github_not_the_body(
    tmp_path, issuer, keys, github_standin, github_says, body_claims, expected  # noqa: F811 - the fixtures
):
    """Issue 19 #6: the token pins the repository, the pull request's number and its branch, not its head
    commit, fork or author: those are GitHub's word (GET /repos/{repo}/pulls/{n}), as polling reads them."""
    repo, head = f"acme/web-{uuid.uuid4().hex[:8]}", "b" * 40
    github_standin.token(gh_token := f"ghp_{uuid.uuid4().hex}")
    pull = {"number": 12, "head_sha": head, "head_ref": "feature", "author": "dev", "author_association": "MEMBER"}
    github_standin.repo(repo, commits={head: {}}, branches={"main": head}, pulls=[{**pull, **github_says}])
    client = GitHubResource(api_url=github_standin.url, token=gh_token, retries=0, throttle=False).client()
    app = make_app(tmp_path, issuer, f"sources:\n  - {{name: web, repo: {repo}}}\n", pulls=client.pull_request)
    pr_claims = {"event_name": "pull_request", "ref": "refs/pull/12/merge", "head_ref": "feature", "repository": repo}
    body = pull_request_payload(repo=repo, number=12, **{"sha": head, "association": "MEMBER", **body_claims})
    status, answer = send(app, body, token(keys, **pr_claims), event="pull_request")
    assert status == 202 and answer["status"] == expected, answer
    [stored] = app.inbox.after(0, 10)
    assert stored.delivery.sha == head and stored.delivery.author == "dev"
    if expected == "waiting":
        assert stored.state == "waiting" and ("mallory/web" in stored.note or "(NONE)" in stored.note)


def test_a_token_of_another_repository_does_not_borrow_a_recorded_repository_id(tmp_path, issuer, keys):  # noqa: F811
    """Any repository's workflow can request a token with the manager's audience: the id its body names
    counts only as the token's `repository_id` claim."""
    import json

    from manager_pipeline.intake.webhooks import signature_for
    from tests.support import push_payload
    from tests.unit.test_oidc import SECRET

    app = make_app(tmp_path, issuer, "sources:\n  - {name: web, repo: acme/web}\n")
    own = json.loads(push_payload(repo="acme/web", sha="1" * 40))
    own["repository"]["id"] = 4242
    body = json.dumps(own).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1",
               "X-Hub-Signature-256": signature_for(SECRET.encode(), body)}
    assert app.handle(headers, body)[0] == 202  # the id 4242 is recorded for `web`
    evil = json.loads(push_payload(repo="evil/x", sha="2" * 40))
    evil["repository"]["id"] = 4242
    forged = token(keys, repository="evil/x", sha="2" * 40, repository_id="666")
    status, answer = send(app, json.dumps(evil).encode(), forged, delivery="d-2")
    assert status == 403 and "not a source" in answer["error"]
    # The renamed repository's own token (its repository_id is the recorded one) is taken.
    moved = json.loads(push_payload(repo="acme/shop", sha="3" * 40))
    moved["repository"]["id"] = 4242
    status, answer = send(app, json.dumps(moved).encode(), token(keys, repository="acme/shop", sha="3" * 40,
                                                                  repository_id="4242"), delivery="d-3")
    assert (status, answer["status"], answer["sources"]) == (202, "queued", ["web"])
