"""``mathray`` (the job list) and ``mathray config JOB``; every shipped job config loads as written."""
from pathlib import Path

import yaml
from pydantic import BaseModel

from mathray import cli
from mathray.config import load_config

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.name for p in (REPO / "rayjobs" / "configs").glob("*.yaml"))
ENTRY_MODULES = sorted(p.stem for p in (REPO / "rayjobs").glob("*.py") if p.stem != "__init__")


def _sections(out: str) -> dict[str, list[str]]:
    """The listing split at each unindented line (a job's header): {job: [its header, its other lines]}."""
    sections: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line and not line[0].isspace():
            sections[line.split()[0]] = [line]
        else:
            list(sections.values())[-1].append(line.strip())
    return sections


def test_lists_every_entry_module_with_its_command_and_configs(capsys):
    assert cli.main([]) == 0
    sections = _sections(capsys.readouterr().out)
    assert sorted(sections) == ENTRY_MODULES
    listed = []
    for job, lines in sections.items():
        assert lines[0].split() == [job, "python", "-m", f"rayjobs.{job}", "--config", "FILE", "[--set",
                                    "key=value", "...]"]
        listed += [line.removeprefix("rayjobs/configs/") for line in lines if line.startswith("rayjobs/configs/")]
    assert sorted(listed) == SHIPPED            # every shipped config, each under one job


def test_config_prints_the_jobs_own_defaults(capsys, tmp_path):
    """The printed YAML, loaded back by the job's (strict) config class, is that class's default config."""
    for job in ENTRY_MODULES:
        assert cli.main(["config", job]) == 0
        printed = tmp_path / f"{job}.yaml"
        printed.write_text(capsys.readouterr().out)
        cls = cli._config_class(job)
        assert load_config(cls, printed) == cls(), job


def _differences(written: dict, loaded, path: str = "") -> list[str]:
    """The keys whose loaded value is not the value written in the file (a null leaves the value to the
    config's own default resolution)."""
    diffs = []
    for key, want in written.items():
        got = getattr(loaded, key) if isinstance(loaded, BaseModel) else loaded[key]
        if isinstance(want, dict) and isinstance(got, (BaseModel, dict)):
            diffs += _differences(want, got, f"{path}{key}.")
            continue
        if isinstance(got, BaseModel):
            got = got.model_dump(mode="json")
        elif isinstance(got, (list, tuple)):
            got = [x.model_dump(mode="json") if isinstance(x, BaseModel) else x for x in got]
        if want is not None and got != want:
            diffs.append(f"{path}{key}: file {want!r}, loaded {got!r}")
    return diffs


def test_every_shipped_config_loads_as_written():
    loaded = []
    for job in cli.JOBS:
        for path in cli.config_files(job):
            cfg = load_config(cli._config_class(job), path)
            assert isinstance(cfg, cli._config_class(job))
            assert _differences(yaml.safe_load(path.read_text()) or {}, cfg) == [], path.name
            loaded.append(path.name)
    assert sorted(loaded) == SHIPPED


def test_job_recipes_load_as_their_jobs_configs():
    """The quick-start and ProcessBench recipes (one job each, named by the file: ingest.yaml, score_prm.yaml,
    evaluate_steps.yaml ...) load strictly as written, with every value the file sets."""
    loaded = []
    for folder in ("quickstart", "processbench"):
        for path in sorted((REPO / "rayjobs" / "configs" / "recipes" / folder).glob("*.yaml")):
            job = max((j for j in cli.JOBS if path.stem == j or path.stem.startswith(j + "_")), key=len)
            cfg = load_config(cli._config_class(job), path)
            assert _differences(yaml.safe_load(path.read_text()) or {}, cfg) == [], path.name
            loaded.append(f"{folder}/{path.name}:{job}")
    assert "processbench/evaluate_steps.yaml:evaluate_steps" in loaded and "quickstart/score_prm.yaml:score" in loaded
    assert len(loaded) == 8
