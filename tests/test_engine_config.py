from mathray.runtime.engine import EngineConfig, llm_kwargs, pool_kwargs
from mathray.runtime.models import model_fingerprint


def test_cpu_defaults_small_kv_cache():
    kw = llm_kwargs(EngineConfig(model="/m"), "cpu")
    assert kw["kv_cache_memory_bytes"] == 256 * 2**20 and "gpu_memory_utilization" not in kw
    assert kw["enable_chunked_prefill"] is False  # seeded sampling + chunked prefill crash vLLM-CPU
    assert "enable_chunked_prefill" not in llm_kwargs(EngineConfig(model="/m"), "gpu")
    assert pool_kwargs(EngineConfig(model="/m", min_replicas=1, max_replicas=3), "cpu")["num_cpus"] == 1


def test_gpu_pool_and_tensor_parallel():
    one = pool_kwargs(EngineConfig(model="/m", min_replicas=1, max_replicas=8), "gpu")
    assert one["num_gpus"] == 1 and one["compute"].min_size == 1 and one["compute"].max_size == 8
    tp = pool_kwargs(EngineConfig(model="/m", tensor_parallel_size=4), "gpu")
    assert tp["num_gpus"] == 0 and callable(tp["ray_remote_args_fn"])
    assert llm_kwargs(EngineConfig(model="/m", tensor_parallel_size=4), "gpu")["distributed_executor_backend"] == "ray"


def test_engine_core_in_process_on_one_cpu_worker_only(monkeypatch):
    import sys
    import types

    import pytest
    from mathray.config import ConfigError

    monkeypatch.delitem(sys.modules, "werkzeug.local", raising=False)
    assert llm_kwargs(EngineConfig(model="/m"), "cpu")["distributed_executor_backend"] == "uni"
    assert "distributed_executor_backend" not in llm_kwargs(EngineConfig(model="/m", in_process=False), "cpu")
    assert "distributed_executor_backend" not in llm_kwargs(EngineConfig(model="/m"), "gpu")
    assert llm_kwargs(EngineConfig(model="/m", in_process=True), "gpu")["distributed_executor_backend"] == "uni"
    with pytest.raises(ConfigError, match="in_process: true needs one worker.*is 2"):
        llm_kwargs(EngineConfig(model="/m", in_process=True, tensor_parallel_size=2), "gpu")
    # a process holding werkzeug's proxies (the moto S3 server of the tests) starts vLLM in processes of its own
    monkeypatch.setitem(sys.modules, "werkzeug.local", types.ModuleType("werkzeug.local"))
    assert "distributed_executor_backend" not in llm_kwargs(EngineConfig(model="/m"), "cpu")


def test_model_fingerprint_changes_with_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"a" * 100)
    first = model_fingerprint(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"b" * 100)
    assert first != model_fingerprint(str(tmp_path)) and first.startswith(tmp_path.name + "@")


def test_pool_bounds_validated():
    import pytest
    from mathray.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="min_replicas"):
        load_config(EngineConfig, None, ["min_replicas=0"])
