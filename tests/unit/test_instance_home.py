"""DAGSTER_HOME always gets an instance config that keeps one run per partition."""

from manager_pipeline.defs.instance import prepare_home
from manager_pipeline.settings import Settings


def settings_for(tmp_path, **env):
    return Settings.from_env(
        {"MANAGER_CONFIG": str(tmp_path / "elsewhere" / "manager.yaml"), "DAGSTER_HOME": str(tmp_path / "home"), **env}
    )


def test_a_manager_yaml_away_from_the_repository_still_gets_one_run_per_partition(tmp_path):
    home = prepare_home(settings_for(tmp_path))
    text = (home / "dagster.yaml").read_text()
    assert "key: dagster/partition" in text and "applyLimitPerUniqueValue: true" in text


def test_an_instance_config_without_the_limit_is_kept_and_warned_about(tmp_path, capsys):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    prepare_home(settings_for(tmp_path))
    assert (tmp_path / "home" / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    assert "two runs of one source and environment may start together" in capsys.readouterr().err
