import json
import os

import jsonschema
import pytest
import yaml

from conftest import REPO


def _schema():
    import ray.autoscaler

    with open(os.path.join(os.path.dirname(ray.autoscaler.__file__), "ray-schema.json")) as f:
        return json.load(f)


def test_cluster_yaml_is_a_valid_autoscaler_config():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    jsonschema.validate(config, _schema())
    validate_config(prepare_config(config))
    assert config["provider"]["type"] == "aws"
    gpu_types = [t for n, t in config["available_node_types"].items() if n != config["head_node_type"]]
    assert gpu_types and all(t["max_workers"] >= t["min_workers"] == 0 for t in gpu_types)
    assert any("mathray" in c for c in config["setup_commands"])


def test_schema_rejects_unknown_keys():
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    config["not_a_key"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, _schema())
