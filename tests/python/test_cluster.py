"""Resources, the runtime context, worker output, clusters started apart."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

import manta as ray
from manta._private import node as _node
from conftest import _alive, _session_pids, listening_ports, stop_started_node, wait_for


def test_init_shutdown_is_initialized(cluster_factory):
    assert not ray.is_initialized()
    ctx = cluster_factory(num_cpus=1)
    assert ray.is_initialized()
    assert os.path.isdir(ctx["session_dir"])
    with pytest.raises(RuntimeError, match="twice"):
        ray.init()
    ray.init(ignore_reinit_error=True)


def test_init_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_cpus"):
        ray.init(num_cpus=-1)
    with pytest.raises(ValueError, match="CPU"):
        ray.init(resources={"CPU": 2})
    with pytest.raises(RuntimeError, match="Unknown keyword"):
        ray.init(bogus_arg=1)
    with pytest.raises(ValueError, match="minimum allowed is 78643200 bytes"):
        ray.init(object_store_memory=10)
    assert not ray.is_initialized()


def test_cluster_and_available_resources(cluster_factory):
    cluster_factory(num_cpus=3, num_gpus=2, resources={"fpga": 4},
                    object_store_memory=300 * 1024 * 1024)
    total = ray.cluster_resources()
    assert total["CPU"] == 3 and total["GPU"] == 2 and total["fpga"] == 4
    assert "memory" in total and total["object_store_memory"] == 300 * 1024 * 1024
    assert ray.available_resources()["CPU"] == 3

    @ray.remote(num_cpus=2, resources={"fpga": 3})
    def hold():
        time.sleep(1.0)
        return 1

    ref = hold.remote()
    assert wait_for(lambda: ray.available_resources().get("fpga") == 1, 10)
    assert ray.available_resources()["CPU"] == 1
    ray.get(ref)
    assert wait_for(lambda: ray.available_resources().get("fpga") == 4, 10)


@pytest.mark.parametrize("node, demand", [
    ({"num_cpus": 2}, {"num_cpus": 2}),                 # each needs both CPUs
    ({"num_cpus": 2, "num_gpus": 1}, {"num_gpus": 1}),  # each needs the one GPU
])
def test_tasks_start_only_when_demand_fits(cluster_factory, node, demand):
    cluster_factory(**node)

    @ray.remote(**demand)
    def span(t):
        s = time.monotonic()
        time.sleep(t)
        return s, time.monotonic()

    a, b = ray.get([span.remote(0.4), span.remote(0.4)])
    # Two such tasks cannot overlap.
    assert a[1] <= b[0] or b[1] <= a[0]


def test_fractional_demands_share_a_cpu(cluster_factory):
    cluster_factory(num_cpus=1)

    @ray.remote(num_cpus=0.5)
    def half(t):
        s = time.monotonic()
        time.sleep(t)
        return s, time.monotonic()

    a, b = ray.get([half.remote(0.6), half.remote(0.6)])
    assert max(a[0], b[0]) < min(a[1], b[1])  # they overlapped


def test_infeasible_demand_stays_pending_with_a_warning(cluster_factory, capfd):
    cluster_factory(num_cpus=1)

    @ray.remote(resources={"unobtainium": 1})
    def never():
        return 1

    ref = never.remote()
    ready, _ = ray.wait([ref], timeout=1.0)
    assert ready == []
    assert wait_for(lambda: "cannot be scheduled" in capfd.readouterr().err, 5)


def test_runtime_context_and_gpu_ids(cluster_factory, tmp_path):
    cluster_factory(num_cpus=2, num_gpus=2)

    @ray.remote(num_gpus=1)
    def info():
        ctx = ray.get_runtime_context()
        return (ctx.get_task_id(), ctx.get_node_id(), ctx.get_job_id(),
                ctx.get_assigned_resources(), ray.get_gpu_ids(),
                os.environ.get("CUDA_VISIBLE_DEVICES"))

    task_id, node_id, job_id, res, gpus, cvd = ray.get(info.remote())
    ctx = ray.get_runtime_context()
    assert task_id and ctx.get_task_id() is None
    assert node_id == ctx.get_node_id()
    assert job_id == ctx.get_job_id() == "01000000"  # the first job, as Ray writes its JobID
    assert res == {"CPU": 1.0, "GPU": 1.0}
    assert len(gpus) == 1 and cvd == str(gpus[0])

    @ray.remote(num_gpus=0.5)
    def half():
        return ray.get_gpu_ids()

    assert len(ray.get(half.remote())) == 1

    @ray.remote(num_gpus=2)
    def both():
        return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    assert ray.get(both.remote()) == ([0, 1], "0,1")

    @ray.remote(num_gpus=1, num_cpus=0.5)
    def meet(me, other):
        open(me, "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists(other) and time.monotonic() < deadline:
            time.sleep(0.01)
        return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    # Two tasks running at once (each waits to see the other) get one GPU
    # each, not the same one.
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    (ga, ca), (gb, cb) = ray.get([meet.remote(a, b), meet.remote(b, a)], timeout=60)
    assert sorted(ga + gb) == [0, 1] and {ca, cb} == {"0", "1"}

    @ray.remote
    def none():
        return ray.get_gpu_ids()

    assert ray.get(none.remote()) == []


def test_worker_output_reaches_the_driver(ray_start, capfd):
    @ray.remote
    def talk():
        print("hello from a task")
        import logging
        logging.getLogger("t").warning("a warning from a task")
        return os.getpid()

    pid = ray.get(talk.remote())

    def seen():
        out = capfd.readouterr()
        seen.out += out.out
        seen.err += out.err
        return (f"(pid={pid}) hello from a task" in seen.out
                and f"(pid={pid}) a warning from a task" in seen.err)

    seen.out = seen.err = ""
    assert wait_for(seen, 5), (seen.out, seen.err)


def test_connect_to_a_started_head_node():
    from manta._private import node

    sock, pid, session, port, proc = node.start(embedded=False, head=True, port=0, detach=True)
    try:
        ray.init(address="auto")
        assert ray.cluster_resources()["CPU"] >= 1

        @ray.remote
        def f():
            return 7

        assert ray.get(f.remote()) == 7
        ray.shutdown()
        ray.init(address=f"127.0.0.1:{port}")
        assert ray.get(f.remote()) == 7
        ray.shutdown()
        # The node outlives its drivers.
        assert proc.poll() is None
    finally:
        stop_started_node(proc, session)


def _cli(*args, timeout=60):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-m", "manta", *args], capture_output=True,
                         text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    return out.returncode, out.stdout, out.stderr


def test_cli_start_status_stop(tmp_path, monkeypatch):
    root = tempfile.mkdtemp(prefix="mt-", dir="/tmp")  # short: socket paths
    monkeypatch.setenv("MANTA_TEMP_DIR", root)
    pids = []
    try:
        code, out, err = _cli("start", "--head", "--port", "0", "--num-cpus", "2",
                              "--num-gpus", "1", "--resources", '{"fpga": 3}',
                              "--object-store-memory", str(200 << 20))
        assert code == 0, err
        (name,) = [n for n in os.listdir(root) if n.startswith("s-")]
        session = os.path.join(root, name)
        pids = _session_pids(session)
        # Private to the user; TCP on loopback only.
        assert os.stat(session).st_mode & 0o077 == 0
        assert os.stat(_node.session_paths(session)["socket"]).st_mode & 0o077 == 0
        daemon = _node.read_info(session)["pid"]
        ports = listening_ports(daemon)
        assert ports and all(a == "0100007F" for a, _ in ports), ports  # 127.0.0.1

        ray.init(address="auto")
        assert ray.cluster_resources()["GPU"] == 1

        @ray.remote(num_cpus=1, resources={"fpga": 2})
        def hold(path):
            open(path, "w").close()
            time.sleep(30)

        started = str(tmp_path / "started")
        ref = hold.remote(started)
        big = ray.put(bytes(50 << 20))
        assert wait_for(lambda: os.path.exists(started), 30)
        code, out, err = _cli("status")
        assert code == 0, err
        assert "1 node" in out
        for key, used_total in (("CPU", "1/2"), ("GPU", "0/1"), ("fpga", "2/3")):
            assert re.search(rf"\n +{key} +{used_total}\n", out), out
        assert re.search(r"object store +50\.\d+ MiB used of 200\.00 MiB", out), out
        del big, ref
        ray.shutdown()

        pids = sorted(set(pids) | set(_session_pids(session)))  # with the workers
        code, out, err = _cli("stop")
        assert code == 0 and "Stopped 1 manta node" in out, (out, err)
        assert wait_for(lambda: not any(_alive(p) for p in pids), 10)
        assert not os.path.exists(session)
        code, out, _ = _cli("status")
        assert code == 1 and "No cluster is running" in out
    finally:
        if ray.is_initialized():
            ray.shutdown()
        _cli("stop")
        assert wait_for(lambda: not any(_alive(p) for p in pids), 10)
        shutil.rmtree(root, ignore_errors=True)


def test_connect_to_nothing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MANTA_TEMP_DIR", str(tmp_path))
    with pytest.raises(ConnectionError, match="manta start --head"):
        ray.init(address="auto")
    with pytest.raises(ConnectionError):
        ray.init(address="127.0.0.1:1")
    assert not ray.is_initialized()


def test_driver_exit_stops_its_local_cluster(tmp_path):
    script = tmp_path / "drv.py"
    script.write_text(
        "import manta, os, sys\n"
        "ctx = manta.init(num_cpus=1)\n"
        "@manta.remote\n"
        "def f(): return os.getpid()\n"
        "print(ctx['session_dir'], manta.get(f.remote()), flush=True)\n"
        "os._exit(0)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, env=env)
    session, worker_pid = out.stdout.split()
    assert wait_for(lambda: not os.path.exists(session), 10)
    assert wait_for(lambda: not os.path.exists(f"/proc/{worker_pid}"), 10)


def test_workers_import_the_drivers_manta_not_another_copy(tmp_path):
    """A copy of manta elsewhere on the driver's path (say, an older one in
    site-packages) never shadows the one the driver imported."""
    decoy = tmp_path / "elsewhere" / "manta"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('another copy of manta')\n")
    script = f"""
import sys
sys.path.append({str(decoy.parent)!r})
import manta as ray
ray.init(num_cpus=1)

@ray.remote
def which():
    import manta
    return manta.__file__

print("same:", ray.get(which.remote(), timeout=60) == ray.__file__)
ray.shutdown()
"""
    here = os.path.dirname(os.path.dirname(ray.__file__))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, PYTHONPATH=here))
    assert "same: True" in out.stdout, (out.stdout, out.stderr[-2000:])


@pytest.fixture
def head_port(tmp_path, monkeypatch):
    """A head node (listening on 127.0.0.1) in a session root of this test's own."""
    from manta.cluster_utils import Cluster

    root = tempfile.mkdtemp(prefix="mt-", dir="/tmp")  # short: socket paths are limited
    monkeypatch.setenv("MANTA_TEMP_DIR", root)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    pids = _session_pids(cluster.head_node.session_dir)
    yield cluster.head_node.node_manager_port
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()
    assert wait_for(lambda: not any(_alive(p) for p in pids), 10)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("host, why", [
    ("db-server.invalid", "cannot resolve host db-server.invalid"),
    ("127.0.0.2", "listens on 127.0.0.2"),       # the head listens on 127.0.0.1 only
    ("192.0.2.1", "not an address of this machine"),  # TEST-NET-1: never this machine's
])
def test_connect_honours_the_host(head_port, host, why):
    """The host of "host:port" counts: a head on this port but another
    address is not the cluster asked for, and a host that does not resolve
    or is elsewhere is a ConnectionError saying so (never the local head)."""
    with pytest.raises(ConnectionError, match=why):
        ray.init(address=f"{host}:{head_port}")
    assert not ray.is_initialized()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_connect_by_host_and_port(head_port, host):
    ray.init(address=f"{host}:{head_port}")
    assert ray.is_initialized()
