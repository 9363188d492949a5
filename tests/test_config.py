import pytest

from mathray.config import ConfigError, StrictModel, code_version, config_hash, load_config, parse_job_args
from mathray.jobs.ingest import IngestConfig


class Inner(StrictModel):
    n: int = 4
    temperature: float = 0.7


class Job(StrictModel):
    inner: Inner = Inner()
    output: str = "runs/x"
    tags: list[str] = []


def test_yaml_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("inner:\n  n: 8\noutput: s3://b/p\n")
    cfg = load_config(Job, f, ["inner.temperature=0.9", "tags=[a, b]"])
    assert (cfg.inner.n, cfg.inner.temperature, cfg.output, cfg.tags) == (8, 0.9, "s3://b/p", ["a", "b"])


@pytest.mark.parametrize("override, fragment", [
    (["inner.bogus=1"], "inner.bogus: unknown key"),
    (["inner.n=abc"], "inner.n: Input should be a valid integer"),
    (["nokey"], "not of the form key.sub=value"),
    (["output.sub=1"], "output: Input should be a valid string"),
])
def test_bad_overrides_name_the_key(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(Job, None, override)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Job, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("inner: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Job, bad)


def test_hash_tracks_content():
    a, b = Job(), Job(inner=Inner(n=5))
    assert config_hash(a) == config_hash(Job()) != config_hash(b)


def test_code_version_names_git_or_source():
    v = code_version()
    assert v.startswith("git:") or "+src." in v


def test_cli_exits_2_with_message(capsys):
    with pytest.raises(SystemExit) as e:
        parse_job_args(IngestConfig, ["--set", "shard_rows=many"])
    assert e.value.code == 2
    assert "shard_rows" in capsys.readouterr().err
