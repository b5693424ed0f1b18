"""Remote functions: submission, arguments, options and the task graph."""

import os
import threading
import time

import numpy as np
import pytest

import manta
import manta as ray
from conftest import wait_for


def test_zeros_dot_from_the_seeds(ray_start):
    @ray.remote
    def zeros(shape):
        return np.zeros(shape)

    @ray.remote
    def dot(a, b):
        return np.dot(a, b)

    ref1 = zeros.remote([5, 5])
    ref2 = zeros.remote([5, 5])
    ref3 = dot.remote(ref1, ref2)
    out = ray.get(ref3)
    assert out.shape == (5, 5) and not out.any()


def test_read_array_add_from_the_seeds(ray_start, tmp_path):
    for i in (1, 2):
        np.save(tmp_path / f"a{i}.npy", np.arange(10) * i)

    @ray.remote
    def read_array(file):
        return np.load(file)

    @ray.remote
    def add(a, b):
        return np.add(a, b)

    id1 = read_array.remote(str(tmp_path / "a1.npy"))
    id2 = read_array.remote(str(tmp_path / "a2.npy"))
    assert list(ray.get(add.remote(id1, id2))) == [3 * i for i in range(10)]


def test_remote_returns_a_ref_at_once(ray_start):
    @ray.remote
    def slow():
        time.sleep(0.5)
        return 1

    t = time.monotonic()
    ref = slow.remote()
    assert isinstance(ref, ray.ObjectRef)
    assert time.monotonic() - t < 0.4
    assert ray.get(ref) == 1


def test_calling_a_remote_function_directly_is_a_type_error(ray_start):
    @ray.remote
    def f():
        return 1

    with pytest.raises(TypeError, match=r"f\.remote\(\)"):
        f()


def test_kwargs_and_defaults(ray_start):
    @ray.remote
    def f(a, b=2, *args, c, d=4, **kw):
        return (a, b, args, c, d, kw)

    assert ray.get(f.remote(1, c=3)) == (1, 2, (), 3, 4, {})
    assert ray.get(f.remote(1, 5, 6, 7, c=3, e=9)) == (1, 5, (6, 7), 3, 4, {"e": 9})


def test_top_level_refs_are_resolved_nested_refs_stay_refs(ray_start):
    @ray.remote
    def kinds(a, nested, kw=None):
        return (type(a).__name__, type(nested[0]).__name__, type(kw).__name__,
                ray.get(nested[0]))

    x = ray.put(41)
    assert ray.get(kinds.remote(x, [x], kw=x)) == ("int", "ObjectRef", "int", 41)


def test_tasks_wait_for_their_dependencies(ray_start):
    @ray.remote
    def slow(v):
        time.sleep(0.3)
        return v

    @ray.remote
    def add(a, b):
        return a + b

    assert ray.get(add.remote(slow.remote(1), slow.remote(2))) == 3


def test_tasks_submit_tasks_and_return_refs(ray_start):
    @ray.remote
    def leaf(i):
        return i * 10

    @ray.remote
    def parent(n):
        return [leaf.remote(i) for i in range(n)]

    @ray.remote
    def returns_ref():
        return ray.put("inner")

    refs = ray.get(parent.remote(4))
    assert all(isinstance(r, ray.ObjectRef) for r in refs)
    assert ray.get(refs) == [0, 10, 20, 30]
    assert ray.get(ray.get(returns_ref.remote())) == "inner"


def test_tasks_call_put_and_wait(ray_start):
    @ray.remote
    def leaf(i):
        return i + 1

    @ray.remote
    def waits():
        refs = [leaf.remote(i) for i in range(3)] + [ray.put("p")]
        ready, rest = ray.wait(refs, num_returns=4, timeout=30)
        return ready == refs and rest == [], ray.get(ready)

    assert ray.get(waits.remote(), timeout=60) == (True, [1, 2, 3, "p"])


@pytest.mark.parametrize("warm_up", ["batch", "one_at_a_time"])
def test_short_tasks_are_not_held_behind_a_long_one(cluster_factory, tmp_path, warm_up):
    """Tasks of a class known to be short are pipelined to a worker; when one
    of them runs long, the tasks queued behind it run elsewhere instead of
    waiting for it (here they must finish before the long one may end).  A
    warm-up one task at a time leaves the driver holding a single worker."""
    cluster_factory(num_cpus=2)

    @ray.remote
    def f(x, gate=None):
        deadline = time.monotonic() + 60
        while gate and not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.005)
        return x

    if warm_up == "batch":
        assert ray.get([f.remote(i) for i in range(2000)], timeout=60) == list(range(2000))
    else:
        assert [ray.get(f.remote(i), timeout=60) for i in range(200)] == list(range(200))
    gate = str(tmp_path / "gate")
    slow = f.remote(-1, gate)
    quick = [f.remote(i) for i in range(50)]
    try:
        assert ray.get(quick, timeout=30) == list(range(50))
    finally:
        open(gate, "w").close()
    assert ray.get(slow, timeout=30) == -1


def test_nested_tree_deeper_than_num_cpus_does_not_deadlock(ray_start):
    @ray.remote
    def tree(depth):
        if depth == 0:
            return 1
        return sum(ray.get([tree.remote(depth - 1), tree.remote(depth - 1)]))

    assert ray.get(tree.remote(4), timeout=60) == 16


@ray.remote
def tree_get(depth):
    if depth == 0:
        return 1
    return sum(ray.get([tree_get.remote(depth - 1), tree_get.remote(depth - 1)]))


@ray.remote
def tree_wait(depth):
    if depth == 0:
        return 1
    refs = [tree_wait.remote(depth - 1), tree_wait.remote(depth - 1)]
    ready, _ = ray.wait(refs, num_returns=2)  # blocks in wait(), then get() finds them ready
    return sum(ray.get(ready))


@pytest.mark.parametrize("tree", [tree_get, tree_wait], ids=["get", "wait"])
def test_a_tree_with_more_blocked_tasks_than_the_worker_cap(ray_start, tree):
    """Depth 6 on 2 CPUs: up to 63 tasks wait for their children at once,
    more than the node's cap of 16 task workers.  Workers blocked in get()
    or wait() lend their CPU and do not count against that cap (it once
    deadlocked with every worker blocked)."""
    assert ray.get(tree.remote(6), timeout=120) == 64


def test_at_the_cap_of_blocked_workers_requests_wait_and_say_why(cluster_factory, monkeypatch,
                                                                  capfd):
    """With no room for blocked workers beyond the cap of 16, a tree that
    needs more waits, and the node says why instead of hanging silently."""
    monkeypatch.setenv("MANTA_MAX_BLOCKED_WORKERS", "0")
    cluster_factory(num_cpus=2)
    ref = tree_get.remote(6)
    err = []
    assert wait_for(lambda: err.append(capfd.readouterr().err) or
                    "blocked in get() or wait(), and no more may start" in "".join(err), 60), "".join(err)
    assert ray.wait([ref], timeout=0.1)[0] == []


def test_idle_leases_are_returned_when_others_wait(cluster_factory, monkeypatch):
    """The driver keeps the node's one CPU leased, idle, for its first
    class of tasks; a task of another class asks for a worker, and the node
    reclaims the idle lease at once instead of after idle_lease_ms."""
    monkeypatch.setenv("MANTA_IDLE_LEASE_MS", "60000")
    cluster_factory(num_cpus=1)

    @ray.remote
    def one():
        return 1

    assert ray.get(one.remote(), timeout=20) == 1
    assert ray.get(one.options(num_cpus=0.5).remote(), timeout=20) == 1


def partition(collection):
    pivot = collection.pop()
    greater, lesser = [], []
    for element in collection:
        (greater if element > pivot else lesser).append(element)
    return lesser, pivot, greater


@ray.remote
def quick_sort_distributed(collection):
    # Ray's "nested tasks" pattern program (a tree of tasks), with its
    # threshold scaled down from 200000 so that the tree is as deep.
    if len(collection) <= 1000:
        return sorted(collection)
    lesser, pivot, greater = partition(collection)
    lesser_ref = quick_sort_distributed.remote(lesser)
    greater_ref = quick_sort_distributed.remote(greater)
    return ray.get(lesser_ref) + [pivot] + ray.get(greater_ref)


def test_rays_nested_tasks_pattern_program(ray_start):
    import random
    unsorted = random.Random(3).choices(range(10**6), k=20000)
    assert ray.get(quick_sort_distributed.remote(unsorted), timeout=120) == sorted(unsorted)


def test_num_returns(ray_start):
    @ray.remote(num_returns=3)
    def three():
        return 1, 2, 3

    a, b, c = three.remote()
    assert ray.get([a, b, c]) == [1, 2, 3]
    assert ray.get(three.options(num_returns=1).remote()) == (1, 2, 3)
    assert three.options(num_returns=0).remote() is None


def test_wrong_number_of_returns_is_an_error(ray_start):
    @ray.remote(num_returns=2)
    def one():
        return [1]

    a, _ = one.remote()
    with pytest.raises(ray.exceptions.RayTaskError, match="num_returns=2"):
        ray.get(a)


@pytest.mark.parametrize("opts, err, names", [
    ({"num_cpus": -1}, ValueError, "num_cpus"),
    ({"num_gpus": -0.5}, ValueError, "num_gpus"),
    ({"resources": {"CPU": 1}}, ValueError, "CPU"),
    ({"resources": {"fpga": -1}}, ValueError, "fpga"),
    ({"num_returns": -1}, ValueError, "num_returns"),
    ({"max_retries": -2}, ValueError, "max_retries"),
    ({"not_an_option": 1}, ValueError, "not_an_option"),
    ({"num_cpus": "two"}, TypeError, "num_cpus"),
])
def test_bad_options_are_rejected_naming_the_option(opts, err, names):
    def f():
        return 1

    with pytest.raises(err, match=names):
        manta.remote(**opts)(f)


def test_options_override_per_call(ray_start):
    @ray.remote(num_cpus=1)
    def f():
        return ray.get_runtime_context().get_assigned_resources()

    assert ray.get(f.options(num_cpus=0.5).remote()) == {"CPU": 0.5}
    assert ray.get(f.remote()) == {"CPU": 1.0}
    with pytest.raises(ValueError):
        f.options(num_cpus=-3)


def test_functions_are_shipped_once_per_worker(cluster_factory):
    cluster_factory(num_cpus=1)
    loads = []

    class Marker:
        def __reduce__(self):
            return (_count_load, ())

    marker = Marker()

    @ray.remote
    def f():
        _ = marker  # in the closure: unpickled when the function is loaded
        import sys
        return sys.modules["builtins"].__dict__.get("_manta_test_loads", 0)

    counts = ray.get([f.remote() for _ in range(20)])
    assert counts[-1] == 1, counts
    del loads


def _count_load():
    import builtins
    builtins._manta_test_loads = getattr(builtins, "_manta_test_loads", 0) + 1
    return None


def test_remote_before_init_starts_a_local_cluster():
    @ray.remote
    def f(x):
        return x + 1

    try:
        assert not ray.is_initialized()
        ref = f.remote(1)
        assert ray.is_initialized()
        assert ray.get(ref, timeout=60) == 2
    finally:
        ray.shutdown()


def test_many_small_tasks(ray_start):
    @ray.remote
    def inc(x):
        return x + 1

    refs = [inc.remote(i) for i in range(2000)]
    assert ray.get(refs) == list(range(1, 2001))


def test_submission_from_threads(ray_start):
    @ray.remote
    def sq(x):
        return x * x

    out = {}

    def run(k):
        out[k] = ray.get([sq.remote(i) for i in range(50)])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(out[k] == [i * i for i in range(50)] for k in range(4))
