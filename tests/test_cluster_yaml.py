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


def test_cluster_yaml_security_settings():
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "RAY_AUTH_MODE=token" in head
    assert all("RAY_AUTH_MODE=token" in c for c in config["worker_start_ray_commands"] if "ray start" in c)
    assert any("auth_token" in k for k in config["file_mounts"])
    text = (REPO / "cluster.yaml").read_text()
    assert "AWS_SECRET_ACCESS_KEY" not in text and "AWS_ACCESS_KEY_ID" not in text


def test_kuberay_rayjob_example():
    job = yaml.safe_load((REPO / "kuberay-rayjob.yaml").read_text())
    assert job["kind"] == "RayJob" and "rayjobs.pipeline" in job["spec"]["entrypoint"]
    spec = job["spec"]["rayClusterSpec"]
    assert spec["enableInTreeAutoscaling"] and all(g["minReplicas"] == 0 for g in spec["workerGroupSpecs"])
    env = {e["name"] for e in spec["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]}
    assert {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"} <= env and not any("AWS_" in e for e in env)
