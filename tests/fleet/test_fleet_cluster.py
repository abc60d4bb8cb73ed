"""``nuwa patch IMAGE... --scheduler ADDRESS``: a real Dask cluster started by the test on 127.0.0.1.

A scheduler and two worker processes (``python -m distributed.cli.dask_scheduler`` /
``dask_worker --no-nanny``, so the pid the test holds is the worker itself) run the same fleet
as the embedded default and must give the same results. Then a worker is killed with SIGKILL
while it is writing an image's output (its temporary overlay exists): nothing is lost -- every
image is patched, equal to the image patched alone, and no temporary file is left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from fleetkit import DEBS, comparable, deb_args, fleet, outcomes, overlay, patched_alone, tree_of
from helpers.cli import nuwa_env
from helpers.paths import DEFAULT_IMAGE

pytestmark = [pytest.mark.judge]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and ``n`` single-threaded workers on 127.0.0.1, each a process of ours."""

    def __init__(self, n: int, scratch: str):
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        env = nuwa_env({"DASK_DISTRIBUTED__WORKER__DAEMON": "False"})
        py = sys.executable
        host, port = self.address[6:].split(":")
        self.scheduler = subprocess.Popen([py, "-m", "distributed.cli.dask_scheduler", "--host", host, "--port", port,
                                           "--no-dashboard"], env=env, cwd=scratch,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers = [subprocess.Popen([py, "-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1",
                                          "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                          "--local-directory", scratch], env=env, cwd=scratch,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        for _ in range(n)]
        from distributed import Client  # the test's own view of the cluster

        self.client = Client(self.address, timeout="60s")
        self.client.wait_for_workers(n, timeout=120)

    def pids(self) -> dict[str, int]:
        """Worker address -> pid (asked of the workers themselves)."""
        return self.client.run(os.getpid)

    def close(self) -> None:
        """End the processes this cluster started (by pid), then reap them."""
        self.client.close()
        for p in self.workers + [self.scheduler]:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    if not os.path.exists(DEFAULT_IMAGE) or not DEBS:
        pytest.skip("testimages/default.qcow2 or testimages/updates is missing")
    d = str(tmp_path_factory.mktemp("alone"))
    out, doc = patched_alone(d)
    return out, doc, tree_of(out, os.path.join(d, "judge"))


@pytest.fixture
def cluster(tmp_path):
    scratch = tmp_path / "dask"
    scratch.mkdir()
    c = Cluster(2, str(scratch))
    try:
        yield c
    finally:
        c.close()


def _fleet_dir(d, n: int) -> list[str]:
    os.makedirs(d / "out")
    return [overlay(str(d / f"vm{i}.qcow2")) for i in range(n)]


def test_a_real_cluster_gives_the_local_results(cluster, alone, tmp_path):
    images = _fleet_dir(tmp_path / "remote", 4)
    cut = tmp_path / "remote" / "cut.qcow2"
    cut.write_bytes(b"QFI\xfb\x00\x00\x00\x03truncated")
    images.append(str(cut))
    r, doc = fleet(*images, *deb_args(), "--output-dir", tmp_path / "remote" / "out", "--scheduler", cluster.address)
    assert r.returncode == 3, r.stderr
    local_images = _fleet_dir(tmp_path / "local", 4)
    (tmp_path / "local" / "cut.qcow2").write_bytes(cut.read_bytes())
    local_images.append(str(tmp_path / "local" / "cut.qcow2"))
    rl, local = fleet(*local_images, *deb_args(), "--output-dir", tmp_path / "local" / "out", "--workers", "2")
    assert rl.returncode == 3
    assert comparable(doc) == comparable(local)
    # the cluster's workers did the work (their pids), not the client
    workers = {e["worker"].split(":")[1] for e in doc["images"] if e["outcome"] == "patched"}
    assert workers <= {str(p) for p in cluster.pids().values()}
    for i in range(4):
        assert tree_of(str(tmp_path / "remote" / "out" / f"vm{i}.qcow2"), str(tmp_path / f"judge{i}")) == alone[2]


def test_a_worker_killed_mid_write_loses_nothing(cluster, alone, tmp_path):
    n = 6
    images = _fleet_dir(tmp_path, n)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "nuwa", "patch", *images, *deb_args(), "--output-dir", str(out),
                             "--scheduler", cluster.address, "--json"], env=nuwa_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        pids = cluster.pids()
        killed = None
        deadline = time.monotonic() + 240
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            writing = [f for f in os.listdir(out) if f.startswith(".vm") and ".nuwa-" in f]
            if writing:
                index = writing[0][1:].split(".qcow2")[0][2:]
                for addr, keys in cluster.client.processing().items():
                    if any(str(k).startswith(f"nuwa-image-{index}-") for k in keys) and addr in pids:
                        os.kill(pids[addr], signal.SIGKILL)
                        killed = (addr, writing[0])
                        break
            time.sleep(0.02)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert killed is not None, "no worker was caught writing an output"
    assert proc.returncode == 0, stderr
    import json

    doc = json.loads(stdout)
    assert outcomes(doc) == {f"vm{i}.qcow2": "patched" for i in range(n)}
    assert sorted(os.listdir(out)) == [f"vm{i}.qcow2" for i in range(n)]  # the dead worker's temporary is gone
    survivors = {str(p) for a, p in pids.items() if a != killed[0]}
    assert {e["worker"].split(":")[1] for e in doc["images"]} <= survivors | {str(pids[killed[0]])}
    for i in range(n):
        assert tree_of(str(out / f"vm{i}.qcow2"), str(tmp_path / f"judge{i}")) == alone[2]
