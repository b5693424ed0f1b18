"""Connections: descriptors across init()/shutdown() cycles."""

import os

import manta as ray
from conftest import _session_pids, assert_no_leftovers


def _fds(pid="self"):
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---------------------------------------------------------------- descriptors per cycle

@ray.remote
def _fetch(refs):
    return ray.get(refs[0])


def test_init_shutdown_cycles_leak_no_descriptors():
    def cycle():
        ctx = ray.init(num_cpus=1)
        pids = _session_pids(ctx["session_dir"])
        # A borrowed ref makes the worker connect to this driver.
        assert ray.get(_fetch.remote([ray.put(5)]), timeout=60) == 5
        ray.shutdown()
        assert_no_leftovers(pids, ctx["session_dir"])

    cycle()
    fds, threads = _fds(), len(os.listdir("/proc/self/task"))
    for _ in range(4):
        cycle()
    assert _fds() == fds, os.listdir("/proc/self/fd")
    assert len(os.listdir("/proc/self/task")) == threads
