"""Fixtures: every test starts its own local cluster and stops it, and
fails if a process of that cluster is left behind."""

import os
import time

import pytest

import manta
from manta._private import node as _node
from manta._private import worker as _worker


def _session_pids(session_dir):
    """The pids of a session's pid files: its daemon, zygote and workers."""
    return [pid for pid, _start in _node.session_pids(session_dir)]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(pred, timeout=10.0, interval=0.01):
    """Poll `pred` until true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def listening_ports(pid):
    """The (address, port) pairs of the TCP sockets `pid` listens on."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    addr, port = cols[1].split(":")
                    found.append((addr, int(port, 16)))
    return found


def assert_no_leftovers(pids, session_dir):
    assert wait_for(lambda: not any(_alive(p) for p in pids), 10), \
        f"processes left behind: {[p for p in pids if _alive(p)]}"
    sock = _node.session_paths(session_dir)["socket"]
    assert wait_for(lambda: not os.path.exists(sock), 5), \
        "the node's socket file was left behind"


def stop_started_node(proc, session_dir):
    """Disconnect the driver, stop a node this test started (its daemon's
    `proc`) and check that nothing of its session is left."""
    manta.shutdown()
    pids = _session_pids(session_dir)
    proc.terminate()
    proc.wait(10)
    assert_no_leftovers(pids, session_dir)


@pytest.fixture
def cluster_factory():
    """Start a local cluster with the given init() arguments; stopped and
    checked for leftovers at the end of the test."""
    started = []

    def start(**kwargs):
        ctx = manta.init(**kwargs)
        started.append(ctx["session_dir"])
        return ctx

    yield start
    pids = []
    for d in started:
        pids += _session_pids(d)
    manta.shutdown()
    for d in started:
        assert_no_leftovers(pids, d)


@pytest.fixture
def ray_start(cluster_factory):
    """A local cluster with 2 CPUs."""
    cluster_factory(num_cpus=2)
    yield manta


@pytest.fixture(autouse=True)
def _no_cluster_between_tests():
    yield
    if manta.is_initialized():
        manta.shutdown()
        pytest.fail("the test left manta initialized")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test")
    _ = _worker  # imported for side effects (hooks)
