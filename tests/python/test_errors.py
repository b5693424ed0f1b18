"""How failures reach the caller: task exceptions, crashed workers."""

import os
import time

import pytest

import manta as ray


class MyError(Exception):
    pass


def test_task_exception_is_a_ray_task_error_and_the_cause(ray_start):
    @ray.remote
    def boom():
        raise MyError("kaboom")

    with pytest.raises(MyError) as info:
        ray.get(boom.remote())
    e = info.value
    assert isinstance(e, ray.exceptions.RayTaskError)
    text = str(e)
    assert "kaboom" in text and "boom" in text and "Traceback" not in text.split("\n")[0]
    assert "test_errors.py" in text  # the remote traceback


def test_builtin_exception_types_are_kept(ray_start):
    @ray.remote
    def f(x):
        return {}[x]

    with pytest.raises(KeyError):
        ray.get(f.remote("missing"))


def test_errors_flow_through_dependent_tasks(ray_start, tmp_path):
    @ray.remote
    def bad():
        raise ValueError("root cause")

    @ray.remote
    def dependent(x, marker):
        open(marker, "w").close()
        return x + 1

    marker = str(tmp_path / "ran")
    ref = dependent.remote(dependent.remote(bad.remote(), marker), marker)
    with pytest.raises(ValueError, match="root cause") as info:
        ray.get(ref)
    assert isinstance(info.value, ray.exceptions.RayTaskError)
    # A task whose argument failed does not run: get raises the root cause.
    assert not os.path.exists(marker)


def test_one_failure_in_a_list_raises(ray_start):
    @ray.remote
    def maybe(i):
        if i == 3:
            raise RuntimeError("three")
        return i

    with pytest.raises(RuntimeError, match="three"):
        ray.get([maybe.remote(i) for i in range(5)])


def test_worker_crash_is_worker_crashed_error(ray_start):
    @ray.remote(max_retries=0)
    def die():
        os._exit(1)

    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(die.remote(), timeout=30)

    @ray.remote
    def fine():
        return "still works"

    assert ray.get(fine.remote()) == "still works"


def test_crashed_task_is_retried(ray_start, tmp_path):
    marker = tmp_path / "once"

    @ray.remote(max_retries=2)
    def crash_once(path):
        if not os.path.exists(path):
            open(path, "w").close()
            os._exit(1)
        return "retried"

    assert ray.get(crash_once.remote(str(marker)), timeout=30) == "retried"


def test_exceptions_module_keeps_rays_names():
    from manta import exceptions as ex

    for name in ["RayError", "RayTaskError", "RayActorError", "ActorDiedError", "GetTimeoutError",
                 "WorkerCrashedError", "ObjectLostError", "OwnerDiedError", "TaskCancelledError",
                 "ObjectStoreFullError", "OutOfMemoryError", "RaySystemError"]:
        assert hasattr(ex, name), name
    assert issubclass(ex.GetTimeoutError, TimeoutError)


def test_error_in_an_argument_that_cannot_be_unpickled(ray_start):
    class Unloadable:
        def __reduce__(self):
            return (_raise_on_load, ())

    @ray.remote
    def f(x):
        return 1

    with pytest.raises(ray.exceptions.RayTaskError, match="cannot load me"):
        ray.get(f.remote(Unloadable()))


def _raise_on_load():
    raise RuntimeError("cannot load me")


def test_slow_tasks_do_not_block_others(ray_start):
    @ray.remote
    def slow():
        time.sleep(2)
        return "slow"

    @ray.remote
    def fast():
        return "fast"

    s = slow.remote()
    t = time.monotonic()
    assert ray.get(fast.remote(), timeout=10) == "fast"
    assert time.monotonic() - t < 1.5
    assert ray.get(s) == "slow"


def test_put_into_a_full_store_is_object_store_full_error(cluster_factory, monkeypatch):
    np = pytest.importorskip("numpy")
    monkeypatch.setenv("MANTA_STORE_FULL_WAIT_MS", "200")  # the node's wait for room
    cluster_factory(num_cpus=1, object_store_memory=80 << 20)
    held = []
    with pytest.raises(ray.exceptions.ObjectStoreFullError, match="no room for"):
        for _ in range(8):
            held.append(ray.put(np.zeros(20 << 20, dtype=np.uint8)))
    assert 1 <= len(held) < 4


def test_a_full_store_fails_after_rays_grace_period(cluster_factory, monkeypatch):
    """With the default wait (Ray's oom_grace_period_s: 2 s), not a 10 s stall."""
    np = pytest.importorskip("numpy")
    monkeypatch.delenv("MANTA_STORE_FULL_WAIT_MS", raising=False)
    cluster_factory(num_cpus=1, object_store_memory=80 << 20)
    held = [ray.put(np.zeros(50 << 20, dtype=np.uint8))]
    start = time.monotonic()
    with pytest.raises(ray.exceptions.ObjectStoreFullError):
        held.append(ray.put(np.zeros(50 << 20, dtype=np.uint8)))
    assert 1.5 < time.monotonic() - start < 8


def test_calls_after_the_head_died_are_ray_system_errors_naming_it(tmp_path, monkeypatch):
    """The head a driver connected to is killed: put and remote calls raise
    RaySystemError naming the head's address, not a bare RuntimeError."""
    import tempfile
    import shutil

    from manta.cluster_utils import Cluster

    np = pytest.importorskip("numpy")
    root = tempfile.mkdtemp(prefix="mt-", dir="/tmp")  # short: socket paths are limited
    monkeypatch.setenv("MANTA_TEMP_DIR", root)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        address = cluster.address
        ray.init(address=address)

        @ray.remote
        def f():
            return 1

        assert ray.get(f.remote()) == 1
        cluster.head_node.proc.kill()
        cluster.head_node.proc.wait(10)
        with pytest.raises(ray.exceptions.RaySystemError, match=f"node at {address}"):
            ray.put(np.zeros(1 << 20, dtype=np.uint8))  # a store object: needs the node

        @ray.remote
        def g():
            return 2

        with pytest.raises(ray.exceptions.RaySystemError, match=f"node at {address}"):
            g.remote()
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("bad", [1e15, float("nan"), float("inf"), -1])
def test_out_of_range_resource_amounts_are_a_value_error_at_the_call(ray_start, bad):
    """Refused at the call, naming the resource; the driver goes on (a
    demand of 1e15 once reached the node, which dropped the driver)."""
    @ray.remote
    def f():
        return 1

    @ray.remote
    class A:
        def ping(self):
            return 1

    with pytest.raises(ValueError, match="resource x"):
        f.options(resources={"x": bad}).remote()
    with pytest.raises(ValueError, match="resource num_cpus"):
        f.options(num_cpus=bad).remote()
    with pytest.raises(ValueError, match="resource x"):
        A.options(resources={"x": bad}).remote()
    # The extension checks what it is given too, whoever calls it.
    from manta import _manta
    with pytest.raises(ValueError, match="resource 'x'"):
        _manta.TaskOptions({"x": bad}, 1, 0)
    assert ray.get(f.remote(), timeout=20) == 1
    assert ray.get(A.remote().ping.remote(), timeout=20) == 1
