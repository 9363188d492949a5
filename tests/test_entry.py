"""Which cluster a job joins: a cluster that ``ray start`` recorded on this machine only while it answers."""
import socket

from mathray.runtime import entry


def test_a_recorded_cluster_counts_only_while_its_gcs_port_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    assert not entry._running_cluster_on_this_machine()           # nothing recorded
    (tmp_path / "ray").mkdir()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        (tmp_path / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}\n")
        assert entry._running_cluster_on_this_machine()           # alive: ray.init() joins it
    assert not entry._running_cluster_on_this_machine()           # gone (stale file): a local cluster instead
    (tmp_path / "ray" / "ray_current_cluster").write_text("garbage")
    assert not entry._running_cluster_on_this_machine()
