"""put/get/wait, serialization, zero-copy reads and freeing of objects."""

import gc
import threading
import time

import numpy as np
import pytest

import manta as ray
from conftest import wait_for


def test_put_get_round_trip(ray_start):
    for v in [1, "s", b"b", None, [1, {"a": (2, 3)}], {1, 2}, 3.5, np.arange(5)]:
        out = ray.get(ray.put(v))
        if isinstance(v, np.ndarray):
            assert (out == v).all()
        else:
            assert out == v


def test_get_list_and_single(ray_start):
    refs = [ray.put(i) for i in range(5)]
    assert ray.get(refs) == list(range(5))
    assert ray.get(refs[2]) == 2
    assert ray.get([]) == []


def test_get_rejects_non_refs(ray_start):
    with pytest.raises(ValueError, match="ObjectRef"):
        ray.get(1)
    with pytest.raises(TypeError):
        ray.get([ray.put(1), 2])
    with pytest.raises(ValueError, match="timeout"):
        ray.get(ray.put(1), timeout=-1)


def test_put_of_a_ref_is_refused(ray_start):
    with pytest.raises(TypeError, match="ObjectRef"):
        ray.put(ray.put(1))


def test_get_timeout(ray_start):
    @ray.remote
    def slow():
        time.sleep(3)

    ref = slow.remote()
    t = time.monotonic()
    with pytest.raises(ray.exceptions.GetTimeoutError) as info:
        ray.get(ref, timeout=0.2)
    assert isinstance(info.value, TimeoutError)
    assert 0.15 < time.monotonic() - t < 2


def test_wait_semantics(ray_start):
    @ray.remote
    def sleep(t):
        time.sleep(t)
        return t

    fast = [sleep.remote(0) for _ in range(3)]
    slow = sleep.remote(5)
    ray.get(fast)
    ready, rest = ray.wait(fast + [slow], num_returns=3, timeout=10)
    assert ready == fast and rest == [slow]
    ready, rest = ray.wait(fast + [slow], num_returns=4, timeout=0.2)
    assert ready == fast and rest == [slow]
    ready, rest = ray.wait([slow], timeout=0)
    assert ready == [] and rest == [slow]
    ready, rest = ray.wait(fast + [slow], num_returns=2, fetch_local=False)
    assert ready == fast[:2] and rest == [fast[2], slow]
    assert ray.wait([]) == ([], [])


def test_wait_returns_in_input_order_at_most_num_returns(ray_start):
    refs = [ray.put(i) for i in range(6)]
    ready, rest = ray.wait(refs, num_returns=2)
    assert ready == refs[:2] and rest == refs[2:]


@pytest.mark.parametrize("call, err, text", [
    (lambda r: ray.wait(r[0]), TypeError, "list"),
    (lambda r: ray.wait([1]), TypeError, "list containing"),
    (lambda r: ray.wait([r[0], r[0]]), ValueError, "unique"),
    (lambda r: ray.wait(r, num_returns=0), ValueError, "Invalid number"),
    (lambda r: ray.wait(r, num_returns=3), ValueError, "greater than"),
    (lambda r: ray.wait(r, timeout=-1), ValueError, "nonnegative"),
])
def test_wait_checks(ray_start, call, err, text):
    refs = [ray.put(1), ray.put(2)]
    with pytest.raises(err, match=text):
        call(refs)


def _mapping_of(addr):
    """The name of this process's memory mapping that holds `addr`."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= addr < hi:
                return parts[5] if len(parts) > 5 else ""
    return None


def test_large_array_is_zero_copy_and_read_only(ray_start):
    a = np.arange(2_000_000, dtype=np.float64)
    ref = ray.put(a)
    b = ray.get(ref)
    c = ray.get(ref)
    assert (b == a).all()
    assert not b.flags.writeable
    # Two gets map the same shared memory: no copy was made.
    assert b.__array_interface__["data"][0] == c.__array_interface__["data"][0]
    assert b.__array_interface__["data"][0] % 64 == 0
    assert _mapping_of(b.__array_interface__["data"][0]).startswith("/memfd:manta-store")
    with pytest.raises(ValueError):
        b[0] = 1


def test_large_array_argument_is_read_only_shared_memory_in_the_worker(ray_start):
    @ray.remote
    def inspect(x):
        addr = x.__array_interface__["data"][0]
        return (bool(x.flags.writeable), _mapping_of(addr).startswith("/memfd:manta-store"),
                addr % 64, float(x[-1]))

    # Not writable, read in place from the node's shared memory.
    assert ray.get(inspect.remote(np.arange(2_000_000, dtype=np.float64))) == \
        (False, True, 0, 1_999_999.0)


def test_array_outlives_its_ref(ray_start):
    ref = ray.put(np.ones(1_000_000))
    arr = ray.get(ref)
    del ref
    gc.collect()
    # The array still reads its shared memory: the store keeps it while pinned.
    assert arr.sum() == 1_000_000


def test_large_arguments_and_returns_go_through_the_store(ray_start):
    @ray.remote
    def double(x):
        return x * 2

    a = np.ones(3_000_000)
    out = ray.get(double.remote(a))
    assert out.shape == a.shape and (out == 2).all()


def test_closures_lambdas_and_local_classes(ray_start):
    factor = 3

    class Box:
        def __init__(self, v):
            self.v = v

    @ray.remote
    def f(box, fn):
        return Box(fn(box.v) * factor)

    out = ray.get(f.remote(Box(2), lambda x: x + 1))
    assert out.v == 9


def test_unserializable_argument_is_a_type_error_at_remote(ray_start):
    @ray.remote
    def f(x):
        return x

    with pytest.raises(TypeError):
        f.remote(threading.Lock())
    with pytest.raises(TypeError):
        ray.put(threading.Lock())


def test_objects_are_freed_when_no_ref_remains(cluster_factory):
    cluster_factory(num_cpus=1, object_store_memory=500 * 1024 * 1024)
    for i in range(100):
        ref = ray.put(np.full(100 * 1024 * 1024 // 8, i, dtype=np.int64))
        assert ray.get(ref)[0] == i
        del ref
    gc.collect()

    def store_empty():
        from manta._private.worker import cluster_status
        return cluster_status()["nodes"][0]["store_used"] == 0

    assert wait_for(store_empty, 10)


def test_task_results_in_the_store_are_freed(cluster_factory):
    cluster_factory(num_cpus=1, object_store_memory=400 * 1024 * 1024)

    @ray.remote
    def big(i):
        return np.full(50 * 1024 * 1024 // 8, i, dtype=np.int64)

    for i in range(20):
        assert ray.get(big.remote(i))[-1] == i
    gc.collect()
    from manta._private.worker import cluster_status
    assert wait_for(lambda: cluster_status()["nodes"][0]["store_used"] == 0, 10)


def test_object_held_by_a_running_task_is_not_freed(ray_start):
    @ray.remote
    def hold(x):
        time.sleep(0.5)
        return int(x.sum())

    ref = ray.put(np.ones(1_000_000, dtype=np.int64))
    out = hold.remote(ref)
    del ref
    gc.collect()
    assert ray.get(out) == 1_000_000


def test_object_held_by_a_pending_task_is_not_freed(ray_start):
    @ray.remote
    def slow():
        time.sleep(0.5)
        return 1

    @ray.remote
    def both(a, b):
        return a + int(b.sum())

    ref = ray.put(np.ones(1_000_000, dtype=np.int64))
    out = both.remote(slow.remote(), ref)  # waits for slow() with ref pending
    del ref
    gc.collect()
    assert ray.get(out, timeout=60) == 1_000_001


def test_task_arguments_are_freed_after_the_task(cluster_factory):
    cluster_factory(num_cpus=1)

    @ray.remote
    def total(x):
        return int(x.sum())

    ref = ray.put(np.ones(10_000_000, dtype=np.int64))
    out = total.remote(ref)
    del ref
    assert ray.get(out) == 10_000_000
    gc.collect()
    from manta._private.worker import cluster_status
    assert wait_for(lambda: cluster_status()["nodes"][0]["store_used"] == 0, 10)


def test_refs_nested_in_objects_keep_their_objects_alive(ray_start):
    inner = ray.put(np.arange(1000))
    outer = ray.put([inner])
    del inner
    gc.collect()
    (got,) = ray.get(outer)
    assert ray.get(got)[-1] == 999


def test_borrowed_refs_from_tasks(ray_start):
    @ray.remote
    def make():
        return [ray.put(np.arange(200_000))]

    @ray.remote
    def use(lst):
        return int(ray.get(lst[0]).sum())

    lst = ray.get(make.remote())
    assert ray.get(use.remote(lst)) == int(np.arange(200_000).sum())
    assert int(ray.get(lst[0]).sum()) == int(np.arange(200_000).sum())


def test_auto_init_on_first_use():
    try:
        assert not ray.is_initialized()
        ref = ray.put(5)
        assert ray.is_initialized()
        assert ray.get(ref) == 5
        del ref
        for first_use in (lambda: ray.get([]), lambda: ray.wait([])):
            ray.shutdown()
            assert not ray.is_initialized()
            first_use()
            assert ray.is_initialized()
    finally:
        ray.shutdown()
