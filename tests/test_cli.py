import yaml

from mathray import cli


def test_lists_jobs_and_prints_default_configs(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    for job in cli.JOBS:
        assert f"python -m rayjobs.{job}" in out or job in out
    for job in cli.JOBS:
        assert cli.main(["config", job]) == 0
        assert isinstance(yaml.safe_load(capsys.readouterr().out), dict)


def test_every_shipped_config_loads():
    from mathray.config import load_config

    for job in cli.JOBS:
        for path in cli.config_files(job):
            load_config(cli._config_class(job), path)
