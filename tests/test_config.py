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


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """``code_version`` (cached per process) reading a stand-in package under tmp_path; the cache is cleared
    before and after, so no other test sees the stand-in's version."""
    import mathray

    monkeypatch.setattr(mathray, "__file__", str(tmp_path / "mathray" / "__init__.py"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))   # no checkout above tmp_path counts
    code_version.cache_clear()
    yield lambda: (code_version.cache_clear(), code_version())[1]
    code_version.cache_clear()


def _package(root, text: str) -> None:
    """A stand-in ``mathray`` package under ``root`` (code_version reads the files beside mathray.__file__)."""
    (root / "mathray").mkdir(parents=True, exist_ok=True)
    (root / "mathray" / "__init__.py").write_text("")
    (root / "mathray" / "jobs.py").write_text(text)


def test_code_version_without_git_hashes_the_source(tmp_path, stand_in):
    """Outside a git checkout (``ray job submit`` uploads no .git): the version plus a hash of the source,
    the same for the same files, another when a file changes."""
    import re

    import mathray

    _package(tmp_path, "x = 1\n")
    first = stand_in()
    assert re.fullmatch(re.escape(mathray.__version__) + r"\+src\.[0-9a-f]{12}", first), first
    assert stand_in() == first
    _package(tmp_path, "x = 2\n")
    assert stand_in() != first


def test_code_version_in_a_checkout_is_its_commit_and_dirty_only_for_code(tmp_path, stand_in):
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    _package(tmp_path, "x = 1\n")
    (tmp_path / "notes.txt").write_text("a")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    head = git("rev-parse", "HEAD")
    assert stand_in() == f"git:{head[:12]}"
    (tmp_path / "notes.txt").write_text("b")              # a change outside mathray/ and rayjobs/
    assert stand_in() == f"git:{head[:12]}"
    _package(tmp_path, "x = 2\n")                         # a change to the code
    assert stand_in() == f"git:{head[:12]}-dirty"


def test_cli_exits_2_with_message(capsys):
    with pytest.raises(SystemExit) as e:
        parse_job_args(IngestConfig, ["--set", "shard_rows=many"])
    assert e.value.code == 2
    assert "shard_rows" in capsys.readouterr().err
