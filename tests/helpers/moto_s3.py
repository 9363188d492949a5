"""The tests' S3 server: moto over HTTP at a fixed endpoint on 127.0.0.1 that a test can take down and bring
back, as in an outage.

moto runs in a child process: it imports flask, whose context-local proxies make vLLM's in-process engine start
fail in any process holding them (docs/methods.md section 6), and the tests start engines in their own process.
The endpoint is a TCP forwarder in this process: ``stop()`` closes its port and the connections open through it
(new connections are refused and requests in flight are cut, as when a server goes down), ``start()`` opens it
again, and the server behind it still holds every object. ``outage_at_request`` starts an outage at the
moment a chosen request arrives (that request cut), for faults that must land at one point of a job."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_bucket(endpoint: str) -> str:
    """A fresh bucket on the server at ``endpoint``; returns ``s3://<bucket>``."""
    import boto3

    name = f"mathray-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return f"s3://{name}"


def _pump(src: socket.socket, dst: socket.socket, cut: Callable[[bytes], bool] = lambda data: False) -> None:
    """Copy bytes from ``src`` to ``dst`` until either side closes or ``cut(bytes read)`` is true; then close
    both."""
    try:
        while (data := src.recv(1 << 16)) and not cut(data):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class MotoS3:
    def __init__(self):
        self.port, self.backend_port = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.listener: socket.socket | None = None
        self.open: set[socket.socket] = set()     # both ends of every forwarded connection
        self.trigger: tuple[Callable[[bytes], bool], float] | None = None   # outage_at_request's
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.backend_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_for_backend(timeout=60)

    def _wait_for_backend(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the moto server exited with code {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.backend_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the moto server did not listen on port {self.backend_port} in {timeout:.0f} s")

    def start(self) -> None:
        if self.listener is None:
            self.listener = socket.create_server(("127.0.0.1", self.port))
            threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self) -> None:
        """Close the endpoint's port and cut the connections open through it."""
        if self.listener is not None:
            listener, self.listener = self.listener, None
            for sock in [listener, *self.open.copy()]:
                try:
                    sock.shutdown(socket.SHUT_RDWR)     # wakes the accepting thread and the pumps
                except OSError:
                    pass
            listener.close()

    def outage_at_request(self, is_it: Callable[[bytes], bool], down_s: float) -> None:
        """When a client next sends a request for which ``is_it(its first bytes)`` is true, cut it and keep the
        endpoint down for ``down_s`` seconds."""
        self.trigger = (is_it, down_s)

    def _cuts(self, data: bytes) -> bool:
        trigger = self.trigger
        if trigger is None or not trigger[0](data):
            return False
        self.trigger = None
        self.stop()
        threading.Timer(trigger[1], self.start).start()
        return True

    def close(self) -> None:
        self.stop()
        self.process.terminate()
        self.process.wait(timeout=30)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return                                  # stop() closed the port
            try:
                upstream = socket.create_connection(("127.0.0.1", self.backend_port))
            except OSError:
                client.close()
                continue
            pair = {client, upstream}
            self.open |= pair
            for src, dst, cut in ((client, upstream, self._cuts), (upstream, client, lambda data: False)):
                threading.Thread(target=self._pump, args=(src, dst, pair, cut), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair: set[socket.socket], cut) -> None:
        _pump(src, dst, cut)
        self.open -= pair
