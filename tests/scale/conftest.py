"""Fixtures for the scale-out tests: a real local Ray cluster, a simulated two-node
cluster, and a real ``redis-server`` child process on a free port.

Each cluster is module-scoped (starting Ray costs tens of seconds on a shared 2-core
machine) and always shut down afterwards; Ray's object store is kept at 100-200 MB.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

# the metrics agent can take longer than Ray's 15 s default to start on a loaded machine
os.environ.setdefault("RAY_agent_register_timeout_ms", "120000")
os.environ.setdefault("RAY_raylet_start_wait_time_s", "60")

MB = 1024**2


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ray: needs Ray (starts a local Ray cluster)")
    config.addinivalue_line("markers", "redis: needs redis-server (starts one as a child process)")


def _retry_start(start, cleanup):
    """Start a cluster, retrying; on a heavily loaded machine Ray's agent can miss the
    raylet's fixed start-up deadline (see kernel.ray_startup.agent_port_fallback)."""
    from studio_nb.kernel.ray_startup import start_with_retries

    return start_with_retries(start, cleanup, attempts=3)


@pytest.fixture(scope="module")
def ray_local():
    """A one-node Ray cluster with 2 CPUs, no dashboard, a 200 MB object store."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    _retry_start(
        lambda: ray.init(
            num_cpus=2, include_dashboard=False, object_store_memory=200 * MB, namespace="studio_nb_tests"
        ),
        ray.shutdown,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_two_nodes():
    """A simulated two-node cluster (two raylets on this machine), 1 CPU each."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    holder: list = []

    def start():
        cluster = Cluster()
        holder[:] = [cluster]
        cluster.add_node(num_cpus=1, object_store_memory=100 * MB, include_dashboard=False)
        cluster.add_node(num_cpus=1, object_store_memory=100 * MB)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace="studio_nb_tests")
        return cluster

    def cleanup():
        ray.shutdown()
        for cluster in holder:
            cluster.shutdown()

    cluster = _retry_start(start, cleanup)
    try:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        yield cluster
    finally:
        cleanup()


@pytest.fixture
def ray_engine_factory():
    """Build RayEngines in a fresh namespace per test (named actors do not leak between
    tests) with small CPU requests so 2 CPUs fit every pool; all are shut down after."""
    from studio_nb.kernel.ray_engine import RayEngine

    engines = []

    def make(**kw):
        kw.setdefault("namespace", f"t_{uuid.uuid4().hex[:8]}")
        kw.setdefault("pools", {"llm": {"num_cpus": 0.25}, "retriever": {"num_cpus": 0.25}})
        kw.setdefault("task_options", {"num_cpus": 0.25})
        engine = RayEngine(**kw)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.shutdown()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A throw-away redis-server (no persistence) on a private Unix socket.

    A socket file in a fresh temporary folder cannot collide with anything, unlike a TCP
    port picked in advance (and TCP is switched off: ``--port 0``)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: `apt-get install -y redis-server` (make system-deps)")
    import redis

    sock = tmp_path_factory.mktemp("redis") / "redis.sock"
    proc = subprocess.Popen(
        [exe, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"unix://{sock}?db=0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on {sock}")
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
