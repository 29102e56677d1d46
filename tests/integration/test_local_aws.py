import json

import pytest

from manager_pipeline.aws.standin import LocalAws, endpoint_answers, pid_alive


@pytest.fixture
def local_aws(tmp_path):
    aws = LocalAws(tmp_path)
    yield aws
    aws.stop()


def test_starts_once_is_reused_and_stops(local_aws, tmp_path):
    first = local_aws.ensure_running()
    assert first.started and endpoint_answers(first.endpoint_url)
    second = local_aws.ensure_running()
    assert not second.started and (second.pid, second.endpoint_url) == (first.pid, first.endpoint_url)
    assert local_aws.stop() is True
    assert not endpoint_answers(first.endpoint_url)
    assert not (tmp_path / "local-aws.json").exists()
    assert local_aws.stop() is False


def test_a_stale_record_is_replaced(local_aws, tmp_path):
    (tmp_path / "local-aws.json").write_text(json.dumps({"pid": 999999, "endpoint_url": "http://127.0.0.1:9"}))
    status = local_aws.ensure_running()
    assert status.started and status.pid != 999999 and pid_alive(status.pid)
