"""The object store's size follows the memory the node may use: by default
30% of what is available -- under a container's (cgroup's) limit, of that
limit -- and a store larger than the machine is refused."""

import os
import subprocess
import sys

import pytest

import manta as ray
from manta._private import node as _node

GIB = 1 << 30


@pytest.fixture
def cgroup_1_5_gib(tmp_path, monkeypatch):
    """A fake cgroup v2 tree whose limit is 1.5 GiB, 512 MiB of it in use
    (MANTA_CGROUP_ROOT names it; nodes started here inherit it)."""
    cg = tmp_path / "cgroup"
    cg.mkdir()
    (cg / "memory.max").write_text(f"{3 * GIB // 2}\n")
    (cg / "memory.current").write_text(f"{512 << 20}\n")
    (cg / "memory.stat").write_text("anon 0\ninactive_file 0\n")
    monkeypatch.setenv("MANTA_CGROUP_ROOT", str(cg))
    return cg


def test_default_store_follows_the_cgroup_limit(cluster_factory, cgroup_1_5_gib):
    cluster_factory(num_cpus=1)
    store = ray.cluster_resources()["object_store_memory"]
    want = int((3 * GIB // 2 - (512 << 20)) * 0.3)
    assert want <= store < want + (64 << 10)  # rounded up to whole pages


def test_store_larger_than_the_container_is_refused(cluster_factory, cgroup_1_5_gib):
    with pytest.raises(ValueError, match="greater than the total available memory"):
        cluster_factory(num_cpus=1, object_store_memory=2 * GIB)
    assert not ray.is_initialized()


def test_daemon_refuses_a_store_larger_than_the_machine(tmp_path):
    session = tmp_path / "s-big"
    out = subprocess.run([_node.mantad_path(), "--session-dir", str(session),
                          "--object-store-memory", str(1 << 50)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert "greater than the total available memory" in out.stderr
    assert not session.exists()
    bad = subprocess.run([_node.mantad_path(), "--session-dir", str(session),
                          "--object-store-memory", "lots"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and "--object-store-memory must be" in bad.stderr


def _own_memory_cgroup():
    """This process's cgroup v1 memory directory, if it may make children."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(","):
            d = "/sys/fs/cgroup/memory" + (path if path != "/" else "")
            return d if os.access(d, os.W_OK) else None
    return None


def test_a_real_cgroup_limit_is_seen(tmp_path):
    """In a real memory cgroup limited to 1.5 GiB, the memory a node may use
    is 1.5 GiB (run where this process may create a child cgroup)."""
    parent = _own_memory_cgroup()
    if parent is None:
        pytest.skip("no writable cgroup v1 memory hierarchy")
    child = os.path.join(parent, f"manta-test-{os.getpid()}")
    try:
        os.mkdir(child)
        with open(os.path.join(child, "memory.limit_in_bytes"), "w") as f:
            f.write(str(3 * GIB // 2))
    except OSError as e:
        if os.path.isdir(child):
            os.rmdir(child)
        pytest.skip(f"cannot make a memory cgroup here: {e}")
    try:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        env.pop("MANTA_CGROUP_ROOT", None)
        script = ("import os, sys\n"
                  f"open({os.path.join(child, 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
                  "from manta import _manta\n"
                  "print(_manta.memory()[0], _manta.memory()[2])\n")
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=60, env=env, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr
        total, store = map(int, out.stdout.split())
        assert total == 3 * GIB // 2
        assert store <= int(total * 0.3)
    finally:
        os.rmdir(child)  # its only process has exited
