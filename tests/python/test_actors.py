"""Actors, from the user's side: creation, ordered calls, handles, options,
names and namespaces, lifetimes, kill/exit, async actors, errors.

Every blocking get has a timeout, and a hung test dumps its stack and ends
the run (faulthandler) instead of hanging forever.
"""

import asyncio
import atexit
import concurrent.futures
import faulthandler
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import manta as ray
from manta._private import node as _node
from conftest import _alive, stop_started_node, wait_for

T = 30  # seconds: the bound of every get that should succeed quickly


@pytest.fixture(autouse=True)
def _bounded_in_time():
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.value = start

    def inc(self):
        self.value += 1
        return self.value

    def read(self):
        return self.value

    def pid(self):
        return os.getpid()


@ray.remote
class Log:
    def __init__(self):
        self.items = []

    def append(self, item):
        self.items.append(item)

    def read(self):
        return self.items


def _raises(exc_type, fn):
    try:
        fn()
    except exc_type:
        return True
    return False


def _name_gone(name, namespace=None):
    return _raises(ValueError, lambda: ray.get_actor(name, namespace=namespace))


def _wait_file(path, timeout=20.0):
    """Inside an actor: block until `path` exists (a test-controlled gate)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.005)
    return os.path.exists(path)


# --------------------------------------------------------------- basics

def test_counter_from_the_seeds(ray_start):
    # The seeds' code as written (Counter(object); use_actor returns nothing).
    @ray.remote
    class Counter(object):
        def __init__(self):
            self.value = 0

        def inc(self):
            self.value += 1
            return self.value

    c = Counter.remote()
    ref4 = c.inc.remote()
    ref5 = c.inc.remote()
    assert ray.get([ref4, ref5], timeout=T) == [1, 2]

    @ray.remote
    def use_actor(c):
        ref = c.inc.remote()
        ray.get(ref)

    assert ray.get(use_actor.remote(c), timeout=T) is None
    assert ray.get(c.inc.remote(), timeout=T) == 4  # use_actor's call ran on the same actor


def test_remote_returns_a_handle_at_once(ray_start):
    @ray.remote
    class Slow:
        def __init__(self):
            time.sleep(1.0)

        def ping(self):
            return "pong"

    t = time.monotonic()
    h = Slow.remote()
    ref = h.ping.remote()
    assert time.monotonic() - t < 0.5
    assert isinstance(h, ray.actor.ActorHandle)
    assert isinstance(ref, ray.ObjectRef)
    assert ray.get(ref, timeout=T) == "pong"


def test_calls_from_one_caller_run_in_order_one_at_a_time(ray_start):
    @ray.remote
    class Log:
        def __init__(self):
            self.items = []
            self.busy = False
            self.overlaps = 0

        def append(self, i):
            if self.busy:
                self.overlaps += 1
            self.busy = True
            if i % 25 == 0:
                time.sleep(0.02)  # a window in which an overlapping call would show
            self.items.append(i)
            self.busy = False

        def read(self):
            return self.items, self.overlaps

    log = Log.remote()
    for i in range(200):
        log.append.remote(i)  # results dropped: the calls must still run, in order
    items, overlaps = ray.get(log.read.remote(), timeout=T)
    assert items == list(range(200))
    assert overlaps == 0


def test_concurrent_callers_each_see_their_own_order(ray_start):
    @ray.remote
    def caller(log, k, n):
        refs = [log.append.remote((k, i)) for i in range(n)]
        ray.get(refs)
        return k

    log = Log.remote()
    assert sorted(ray.get([caller.remote(log, k, 50) for k in range(4)], timeout=T)) == \
        [0, 1, 2, 3]

    # Threads of the driver are callers too: each thread's calls keep its order.
    def submit(k):
        for i in range(50):
            log.append.remote((k, i))

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(10, 13)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T)
    items = ray.get(log.read.remote(), timeout=T)
    assert len(items) == 4 * 50 + 3 * 50
    for k in list(range(4)) + list(range(10, 13)):
        assert [i for kk, i in items if kk == k] == list(range(50)), k


def test_a_call_waiting_for_its_argument_keeps_later_calls_behind_it(ray_start, tmp_path):
    """Submission order holds even when an earlier call's argument is not
    ready yet: the later calls wait for it (Ray's sequence numbers)."""
    @ray.remote
    def gated(path, v):
        assert _wait_file(path)
        return v

    log = Log.remote()
    gate = str(tmp_path / "gate")
    log.append.remote(gated.remote(gate, "first"))
    for i in range(3):
        log.append.remote(i)
    read = log.read.remote()
    ready, _ = ray.wait([read], timeout=0.5)
    assert not ready, "a later call ran before the earlier one's argument was ready"
    open(gate, "w").close()
    assert ray.get(read, timeout=T) == ["first", 0, 1, 2]


def test_instantiating_or_calling_directly_is_a_type_error(ray_start):
    with pytest.raises(TypeError, match=r"Counter\.remote\(\)"):
        Counter()
    c = Counter.remote()
    with pytest.raises(TypeError, match=r"\.remote\(\)"):
        c.inc()
    with pytest.raises(AttributeError, match="nope"):
        c.nope.remote()
    assert ray.get(c.inc.remote(), timeout=T) == 1


def test_constructor_and_method_arguments(ray_start):
    @ray.remote
    class Args:
        def __init__(self, a, b=2, *rest, c, **kw):
            self.init = (a, b, rest, c, kw)

        def both(self, x, y=10, **kw):
            return self.init, (x, y, kw)

    x = ray.put(5)
    h = Args.remote(1, 3, 4, c=x, z=9)
    init, call = ray.get(h.both.remote(x, y=x, q=[x]), timeout=T)
    assert init == (1, 3, (4,), 5, {"z": 9})
    assert call[0] == 5 and call[1] == 5
    assert isinstance(call[2]["q"][0], ray.ObjectRef)  # nested refs stay refs


# --------------------------------------------------------------- handles

def test_handles_passed_to_and_returned_from_tasks_and_actors(ray_start):
    @ray.remote
    def make():
        c = Counter.remote(100)
        ray.get(c.inc.remote())
        return c

    @ray.remote
    def inc_in_list(handles):
        return ray.get(handles[0].inc.remote())

    @ray.remote
    class Holder:
        def __init__(self, c):
            self.c = c

        def inc_held(self):
            return ray.get(self.c.inc.remote())

        def held(self):
            return self.c

        def spawn(self, start):
            return Counter.remote(start)

    c = ray.get(make.remote(), timeout=T)  # a handle returned from a task
    assert isinstance(c, ray.actor.ActorHandle)
    assert ray.get(c.inc.remote(), timeout=T) == 102
    assert ray.get(inc_in_list.remote([c]), timeout=T) == 103  # nested in an argument

    h = Holder.remote(c)  # passed to an actor's constructor
    assert ray.get(h.inc_held.remote(), timeout=T) == 104
    c2 = ray.get(h.held.remote(), timeout=T)  # returned from an actor
    assert c2._actor_id == c._actor_id
    assert ray.get(c2.inc.remote(), timeout=T) == 105

    s = ray.get(h.spawn.remote(7), timeout=T)  # created in an actor, returned to us
    assert ray.get(s.inc.remote(), timeout=T) == 8
    assert ray.get(s.inc.remote(), timeout=T) == 9


def test_many_callers_share_one_actor(ray_start):
    @ray.remote
    def bump(c, n):
        for _ in range(n):
            ray.get(c.inc.remote())
        return n

    c = Counter.remote()
    assert ray.get([bump.remote(c, 50) for _ in range(4)], timeout=60) == [50] * 4
    assert ray.get(c.read.remote(), timeout=T) == 200


def test_a_handle_inside_a_stored_object(ray_start):
    @ray.remote
    def inc_boxed(box):
        return ray.get(ray.get(box[0])[0].inc.remote())  # a nested ref stays a ref

    c = Counter.remote()
    pid = ray.get(c.pid.remote(), timeout=T)
    box = ray.put([c])
    del c  # the stored object's handle keeps the actor alive
    assert ray.get(ray.get(box, timeout=T)[0].inc.remote(), timeout=T) == 1
    assert ray.get(inc_boxed.remote([box]), timeout=T) == 2
    assert _alive(pid)
    del box
    assert wait_for(lambda: not _alive(pid), T), "the actor outlived the object holding its handle"


def test_calls_go_straight_to_the_actor_worker(cluster_factory):
    """Once a caller knows where the actor lives, calls do not pass through
    the node daemon (scheduler, control store): they go on while it is
    stopped, from the driver and from a process that borrowed the handle."""
    import signal

    ctx = cluster_factory(num_cpus=2)
    daemon_pid = _node.read_info(ctx["session_dir"])["pid"]
    assert daemon_pid != os.getpid()

    @ray.remote
    class Relay:
        def __init__(self, c):
            self.c = c

        def inc_held(self):
            return ray.get(self.c.inc.remote(), timeout=5)

    c = Counter.remote()
    r = Relay.remote(c)
    assert ray.get(r.inc_held.remote(), timeout=T) == 1  # both callers know their actor
    assert ray.get(c.inc.remote(), timeout=T) == 2
    os.kill(daemon_pid, signal.SIGSTOP)
    try:
        refs = [c.inc.remote() for _ in range(50)]
        assert ray.get(refs, timeout=10) == list(range(3, 53))
        assert ray.get([r.inc_held.remote() for _ in range(5)], timeout=10) == \
            list(range(53, 58))
    finally:
        os.kill(daemon_pid, signal.SIGCONT)
    assert ray.get(c.read.remote(), timeout=T) == 57


# --------------------------------------------------------------- options: resources

def test_default_actor_needs_a_cpu_to_be_placed_but_holds_none(cluster_factory, tmp_path):
    cluster_factory(num_cpus=1)

    @ray.remote
    class Waiter:
        def hold(self, started, release):
            open(started, "w").close()
            return _wait_file(release)

        def ping(self):
            return "pong"

    @ray.remote
    def task():
        return "ran"

    a, b = Waiter.remote(), Waiter.remote()
    assert ray.get([a.ping.remote(), b.ping.remote()], timeout=T) == ["pong", "pong"]
    assert wait_for(lambda: ray.available_resources().get("CPU") == 1.0), \
        ray.available_resources()

    # While both actors run a method, the CPU stays free for a task.
    started = [str(tmp_path / "s0"), str(tmp_path / "s1")]
    release = str(tmp_path / "go")
    refs = [a.hold.remote(started[0], release), b.hold.remote(started[1], release)]
    assert wait_for(lambda: all(os.path.exists(p) for p in started), T)
    assert ray.available_resources().get("CPU") == 1.0
    assert ray.get(task.remote(), timeout=T) == "ran"
    open(release, "w").close()
    assert ray.get(refs, timeout=T) == [True, True]


def test_default_actor_is_not_placed_without_a_cpu(cluster_factory):
    cluster_factory(num_cpus=0)
    c = Counter.remote()
    ready, _ = ray.wait([c.inc.remote()], timeout=1.0)
    assert not ready
    zero = Counter.options(num_cpus=0).remote()  # asks for nothing: placed anywhere
    assert ray.get(zero.inc.remote(), timeout=T) == 1


def test_actor_with_num_cpus_holds_its_cpu(cluster_factory):
    cluster_factory(num_cpus=1)

    a = Counter.options(num_cpus=1).remote()
    assert ray.get(a.inc.remote(), timeout=T) == 1
    assert wait_for(lambda: ray.available_resources().get("CPU", 0) == 0), \
        ray.available_resources()

    b = Counter.options(num_cpus=1).remote()
    ref = b.inc.remote()
    ready, _ = ray.wait([ref], timeout=1.0)
    assert not ready, "the second num_cpus=1 actor was placed while the CPU was held"

    ray.kill(a)  # frees its CPU: the second actor is placed
    assert ray.get(ref, timeout=10) == 1
    ray.kill(b)
    assert wait_for(lambda: ray.available_resources().get("CPU") == 1.0), \
        ray.available_resources()


def test_num_gpus_actor_sees_its_gpu_ids(cluster_factory):
    # An actor that asks for a GPU holds 1 CPU too (Ray's
    # DEFAULT_ACTOR_CREATION_CPU_SPECIFIED): 2 for the GPU actors, 1 to place NoGpu.
    cluster_factory(num_cpus=3, num_gpus=2)

    @ray.remote(num_gpus=1)
    class G:
        def __init__(self):
            self.at_init = ray.get_gpu_ids()

        def ids(self):
            return self.at_init, ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    g1, g2 = G.remote(), G.remote()
    (i1, m1, v1), (i2, m2, v2) = ray.get([g1.ids.remote(), g2.ids.remote()], timeout=T)
    assert len(m1) == 1 and len(m2) == 1
    assert i1 == m1 and i2 == m2
    assert {str(m1[0]), str(m2[0])} == {"0", "1"}
    assert v1 == str(m1[0]) and v2 == str(m2[0])
    assert ray.get(g1.ids.remote(), timeout=T)[1] == m1  # stable across calls
    assert wait_for(lambda: ray.available_resources().get("GPU", 0) == 0), \
        ray.available_resources()

    @ray.remote
    class NoGpu:
        def ids(self):
            return ray.get_gpu_ids()

    assert ray.get(NoGpu.remote().ids.remote(), timeout=T) == []


def test_custom_resources(cluster_factory):
    cluster_factory(num_cpus=2, resources={"fpga": 1})

    first = Counter.options(resources={"fpga": 1}).remote()
    assert ray.get(first.inc.remote(), timeout=T) == 1
    assert wait_for(lambda: ray.available_resources().get("fpga", 0) == 0), \
        ray.available_resources()

    second = Counter.options(resources={"fpga": 1}).remote()
    ref = second.inc.remote()
    ready, _ = ray.wait([ref], timeout=1.0)
    assert not ready
    ray.kill(first)  # frees its fpga: the second actor is placed
    assert ray.get(ref, timeout=10) == 1


# --------------------------------------------------------------- names and namespaces

def test_named_actor_and_get_actor(ray_start):
    c = Counter.options(name="counter").remote()
    assert ray.get(c.inc.remote(), timeout=T) == 1
    same = ray.get_actor("counter")
    assert isinstance(same, ray.actor.ActorHandle)
    assert ray.get(same.inc.remote(), timeout=T) == 2

    @ray.remote
    def by_name():
        return ray.get(ray.get_actor("counter").inc.remote())

    assert ray.get(by_name.remote(), timeout=T) == 3  # a task of the job finds it too

    with pytest.raises(ValueError):
        ray.get_actor("no-such-actor")


def test_named_actor_in_a_named_namespace(cluster_factory):
    cluster_factory(num_cpus=2, namespace="mine")

    a = Counter.options(name="a").remote()
    assert ray.get(a.inc.remote(), timeout=T) == 1
    assert ray.get(ray.get_actor("a").inc.remote(), timeout=T) == 2
    assert ray.get(ray.get_actor("a", namespace="mine").inc.remote(), timeout=T) == 3
    with pytest.raises(ValueError):
        ray.get_actor("a", namespace="other")

    b = Counter.options(name="b", namespace="other").remote()
    assert ray.get(b.inc.remote(), timeout=T) == 1
    with pytest.raises(ValueError):
        ray.get_actor("b")  # not in our namespace
    assert ray.get(ray.get_actor("b", namespace="other").inc.remote(), timeout=T) == 2

    # The same name in another namespace is another actor.
    a2 = Counter.options(name="a", namespace="other").remote(50)
    assert ray.get(a2.inc.remote(), timeout=T) == 51
    assert ray.get(ray.get_actor("a").inc.remote(), timeout=T) == 4


def test_get_if_exists_and_duplicate_names(ray_start):
    a = Counter.options(name="x").remote()
    assert ray.get(a.inc.remote(), timeout=T) == 1

    b = Counter.options(name="x", get_if_exists=True).remote()
    assert ray.get(b.inc.remote(), timeout=T) == 2  # the same actor

    with pytest.raises(ValueError, match="x"):
        Counter.options(name="x").remote()

    fresh = Counter.options(name="y", get_if_exists=True).remote(10)  # none yet: created
    assert ray.get(fresh.inc.remote(), timeout=T) == 11

    with pytest.raises(ValueError):
        Counter.options(get_if_exists=True).remote()  # get_if_exists needs a name

    # A killed actor's name can be taken again.
    ray.kill(a)
    assert wait_for(lambda: _name_gone("x"), T)
    again = Counter.options(name="x").remote(20)
    assert ray.get(again.inc.remote(), timeout=T) == 21


def test_get_if_exists_from_many_callers_makes_one_actor(ray_start):
    @ray.remote
    def racer():
        h = Counter.options(name="race", get_if_exists=True).remote()
        # The handle goes back with the count: a non-detached actor lives
        # while a handle does, and the first racer (its owner) may finish
        # before the others have looked it up.
        return h, ray.get(h.inc.remote())

    got = ray.get([racer.remote() for _ in range(8)], timeout=60)
    assert sorted(n for _, n in got) == list(range(1, 9))  # one counter saw all eight calls


_DETACHED_DRIVER = """
import os, sys
import manta as ray

ray.init(address=sys.argv[1], namespace="detach-ns")

@ray.remote
class Keeper:
    def __init__(self):
        self.v = 0

    def inc(self):
        self.v += 1
        return self.v

    def pid(self):
        return os.getpid()

keeper = Keeper.options(name="keeper", lifetime="detached").remote()
owned = Keeper.options(name="owned").remote()
print(ray.get(keeper.inc.remote(), timeout=30), ray.get(keeper.pid.remote(), timeout=30),
      ray.get(owned.pid.remote(), timeout=30), flush=True)
"""


def test_detached_actor_outlives_its_driver(tmp_path):
    from manta._private import node

    sock, pid, session, port, proc = node.start(embedded=False, head=True, port=0, detach=True)
    try:
        script = tmp_path / "driver.py"
        script.write_text(_DETACHED_DRIVER)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        out = subprocess.run([sys.executable, str(script), f"127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        first, keeper_pid, owned_pid = (int(x) for x in out.stdout.split())
        assert first == 1

        ray.init(address=f"127.0.0.1:{port}", namespace="detach-ns")
        # The non-detached named actor died with its driver; its name is free.
        assert wait_for(lambda: _name_gone("owned"), T)
        assert wait_for(lambda: not _alive(owned_pid), T)
        # The detached one lives on, state and all.
        keeper = ray.get_actor("keeper")
        assert ray.get(keeper.inc.remote(), timeout=T) == 2
        assert ray.get(keeper.pid.remote(), timeout=T) == keeper_pid
        assert ray.get(ray.get_actor("keeper", namespace="detach-ns").inc.remote(),
                       timeout=T) == 3
        # Detached actors must be killed by hand.
        ray.kill(keeper)
        assert wait_for(lambda: not _alive(keeper_pid), T)
        assert wait_for(lambda: _name_gone("keeper"), T)
        ray.shutdown()
    finally:
        stop_started_node(proc, session)


@ray.remote
class _SlowStart:
    def __init__(self, started, release):
        open(started, "w").close()
        while not os.path.exists(release):  # the creator dies meanwhile
            time.sleep(0.01)

    def ping(self):
        return "pong"


@ray.remote
class _Creator:
    def make(self, started, release):
        h = _SlowStart.options(name="orphan", lifetime="detached").remote(started, release)
        return os.getpid(), h


@pytest.mark.parametrize("how", ["ray.kill", "SIGKILL"])
def test_detached_actor_outlives_a_creator_killed_while_it_starts(ray_start, tmp_path, how):
    # The creator dies after its detached actor's constructor began and
    # before it returned: nobody is left to hear the constructor's reply,
    # yet the actor must be reachable by handle and by name.
    started, release = str(tmp_path / "started"), str(tmp_path / "release")
    creator = _Creator.remote()
    creator_pid, handle = ray.get(creator.make.remote(started, release), timeout=T)
    assert wait_for(lambda: os.path.exists(started), T)
    if how == "ray.kill":
        ray.kill(creator)
    else:
        os.kill(creator_pid, signal.SIGKILL)
    assert wait_for(lambda: not _alive(creator_pid), T)
    open(release, "w").close()
    assert ray.get(handle.ping.remote(), timeout=10) == "pong"
    assert ray.get(ray.get_actor("orphan").ping.remote(), timeout=10) == "pong"
    ray.kill(handle)


@ray.remote
class _PlacedLater:
    def ping(self):
        return "pong"


@ray.remote
class _EarlyCreator:
    def make(self):
        return os.getpid(), _PlacedLater.options(name="unplaced", lifetime="detached",
                                                 num_cpus=2).remote()


def test_detached_actor_whose_creator_dies_before_it_is_placed_fails_fast(ray_start, tmp_path):
    # Its constructor never reached a worker, and nothing else will start
    # it: calls fail with the cause instead of waiting for ever.
    release = str(tmp_path / "release")

    @ray.remote(num_cpus=1)
    def hold(path):  # keeps the actor's 2 CPUs from being free
        while not os.path.exists(path):
            time.sleep(0.01)

    held = hold.remote(release)
    creator = _EarlyCreator.remote()
    creator_pid, handle = ray.get(creator.make.remote(), timeout=T)
    ray.kill(creator)
    assert wait_for(lambda: not _alive(creator_pid), T)
    open(release, "w").close()
    ray.get(held, timeout=T)
    with pytest.raises(ray.exceptions.ActorDiedError, match="creator died"):
        ray.get(handle.ping.remote(), timeout=10)
    with pytest.raises(ValueError):
        ray.get_actor("unplaced")


# --------------------------------------------------------------- concurrency options

def test_max_concurrency_runs_calls_on_threads(ray_start):
    @ray.remote(max_concurrency=4)
    class Meet:
        def __init__(self):
            self.barrier = threading.Barrier(4)

        def meet(self):
            self.barrier.wait(timeout=5)  # passes only if 4 calls run at once
            return threading.get_ident()

    m = Meet.remote()
    idents = ray.get([m.meet.remote() for _ in range(4)], timeout=T)
    assert len(set(idents)) == 4

    @ray.remote
    class Peak:
        def __init__(self):
            self.lock = threading.Lock()
            self.cur = 0
            self.peak = 0

        def work(self):
            with self.lock:
                self.cur += 1
                self.peak = max(self.peak, self.cur)
            time.sleep(0.2)
            with self.lock:
                self.cur -= 1

        def read(self):
            return self.peak

    p = Peak.options(max_concurrency=2).remote()
    ray.get([p.work.remote() for _ in range(6)], timeout=T)
    assert ray.get(p.read.remote(), timeout=T) == 2


def test_max_restarts_and_max_task_retries_are_accepted(ray_start):
    @ray.remote(max_restarts=2, max_task_retries=-1)
    class R:
        def ping(self):
            return "pong"

    assert ray.get(R.remote().ping.remote(), timeout=T) == "pong"
    h = Counter.options(max_restarts=-1, max_task_retries=3).remote()
    assert ray.get(h.inc.remote(), timeout=T) == 1


def test_method_num_returns(ray_start):
    @ray.remote
    class Multi:
        @ray.method(num_returns=2)
        def two(self, x):
            return x, x + 1

        def pair(self):
            return 1, 2

    m = Multi.remote()
    a, b = m.two.remote(10)
    assert ray.get([a, b], timeout=T) == [10, 11]
    c, d = m.pair.options(num_returns=2).remote()
    assert ray.get([c, d], timeout=T) == [1, 2]
    assert ray.get(m.pair.remote(), timeout=T) == (1, 2)


# --------------------------------------------------------------- kill and exit

def test_kill_an_actor(ray_start, tmp_path):
    @ray.remote
    class Victim:
        def ping(self):
            return os.getpid()

        def block(self, path):
            return _wait_file(path)

    v = Victim.remote()
    pid = ray.get(v.ping.remote(), timeout=T)
    pending = v.block.remote(str(tmp_path / "never"))
    ray.kill(v)
    t = time.monotonic()
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(pending, timeout=T)  # a call in progress fails at once
    assert time.monotonic() - t < 10
    with pytest.raises(ray.exceptions.ActorDiedError) as ei:
        ray.get(v.ping.remote(), timeout=T)
    assert isinstance(ei.value, ray.exceptions.RayActorError)
    assert wait_for(lambda: not _alive(pid), T)

    with pytest.raises(ValueError):
        ray.kill(ray.put(1))
    with pytest.raises(ValueError):
        ray.kill("not an actor")


def test_actor_died_error_names_the_actor(ray_start):
    c = Counter.remote()
    assert ray.get(c.inc.remote(), timeout=T) == 1
    ray.kill(c)
    with pytest.raises(ray.exceptions.ActorDiedError) as ei:
        ray.get(c.inc.remote(), timeout=T)
    assert ei.value.actor_id == c._actor_id.hex()
    assert "class_name: Counter" in str(ei.value)
    assert "killed by ray.kill()" in str(ei.value)


def test_kill_by_a_process_that_borrowed_the_handle(ray_start):
    @ray.remote
    def killer(h):
        ray.kill(h)
        return "killed"

    c = Counter.remote()
    pid = ray.get(c.pid.remote(), timeout=T)
    assert ray.get(killer.remote(c), timeout=T) == "killed"
    assert wait_for(lambda: not _alive(pid), T)
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(c.inc.remote(), timeout=T)


@pytest.mark.parametrize("how", ["kill_by_a_borrower", "exit_actor"])
def test_a_restartable_actor_killed_for_good_stays_dead(ray_start, how):
    """ray.kill() from any process (no_restart=True) and exit_actor() end a
    restartable actor for good; its owner does not bring it back."""
    @ray.remote(max_restarts=3)
    class Keeper:
        def pid(self):
            return os.getpid()

        def leave(self):
            ray.actor.exit_actor()

    @ray.remote
    def killer(h):
        ray.kill(h)

    k = Keeper.remote()
    pid = ray.get(k.pid.remote(), timeout=T)
    if how == "exit_actor":
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(k.leave.remote(), timeout=T)
        cause = "exit_actor"
    else:
        ray.get(killer.remote(k), timeout=T)
        cause = "killed by ray.kill()"
    assert wait_for(lambda: not _alive(pid), T)
    with pytest.raises(ray.exceptions.ActorDiedError) as ei:
        ray.get(k.pid.remote(), timeout=T)
    assert cause in str(ei.value)


def test_an_actor_whose_process_dies_raises_actor_died(ray_start):
    @ray.remote
    class Fragile:
        def crash(self):
            os._exit(1)

        def ping(self):
            return "pong"

    f = Fragile.remote()
    assert ray.get(f.ping.remote(), timeout=T) == "pong"
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(f.crash.remote(), timeout=T)
    with pytest.raises(ray.exceptions.ActorDiedError):
        ray.get(f.ping.remote(), timeout=T)


def test_exit_actor(ray_start, tmp_path):
    @ray.remote
    class Quitter:
        def __init__(self, marker):
            atexit.register(lambda: open(marker, "w").close())

        def pid(self):
            return os.getpid()

        def quit(self, after):
            ray.actor.exit_actor()
            open(after, "w").close()  # never reached

    marker, after = str(tmp_path / "atexit"), str(tmp_path / "after")
    q = Quitter.remote(marker)
    pid = ray.get(q.pid.remote(), timeout=T)
    with pytest.raises(ray.exceptions.RayActorError) as ei:
        ray.get(q.quit.remote(after), timeout=T)
    assert "exit_actor()" in str(ei.value)  # as Ray's test_exit_actor_* tests check
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(q.pid.remote(), timeout=T)
    assert wait_for(lambda: os.path.exists(marker), T), "atexit handlers did not run"
    assert wait_for(lambda: not _alive(pid), T)
    assert not os.path.exists(after)


def test_exit_actor_from_an_async_actor(ray_start):
    @ray.remote
    class AsyncQuitter:
        async def ping(self):
            return "pong"

        async def quit(self):
            ray.actor.exit_actor()

    q = AsyncQuitter.remote()
    assert ray.get(q.ping.remote(), timeout=T) == "pong"
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(q.quit.remote(), timeout=T)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(q.ping.remote(), timeout=T)


def test_exit_actor_outside_an_actor_is_a_type_error(ray_start):
    with pytest.raises(TypeError):
        ray.actor.exit_actor()

    @ray.remote
    def in_a_task():
        ray.actor.exit_actor()

    with pytest.raises(TypeError):
        ray.get(in_a_task.remote(), timeout=T)


# --------------------------------------------------------------- lifetime

def test_actor_ends_when_its_last_handle_is_gone(ray_start):
    c = Counter.remote()
    pid = ray.get(c.pid.remote(), timeout=T)
    del c
    assert wait_for(lambda: not _alive(pid), T), "the actor outlived its handles"


def test_a_call_submitted_before_dropping_the_handle_completes(ray_start, tmp_path):
    @ray.remote
    class Writer:
        def pid(self):
            return os.getpid()

        def write_later(self, path):
            time.sleep(0.3)
            with open(path, "w") as f:
                f.write("done")
            return "written"

    w = Writer.remote()
    pid = ray.get(w.pid.remote(), timeout=T)
    path = str(tmp_path / "out")
    ref = w.write_later.remote(path)
    del w
    assert ray.get(ref, timeout=T) == "written"
    with open(path) as f:
        assert f.read() == "done"
    assert wait_for(lambda: not _alive(pid), T)

    # Fire-and-forget: the result is never fetched, the call still runs.
    w = Writer.remote()
    pid = ray.get(w.pid.remote(), timeout=T)
    path2 = str(tmp_path / "out2")
    w.write_later.remote(path2)
    del w
    assert wait_for(lambda: os.path.exists(path2), T)
    assert wait_for(lambda: not _alive(pid), T)


def test_a_handle_held_elsewhere_keeps_the_actor_alive(ray_start):
    @ray.remote
    class Holder:
        def __init__(self, c):
            self.c = c

        def inc_held(self):
            return ray.get(self.c.inc.remote())

        def pid(self):
            return os.getpid()

    c = Counter.remote()
    pid = ray.get(c.pid.remote(), timeout=T)
    h = Holder.remote(c)
    holder_pid = ray.get(h.pid.remote(), timeout=T)
    del c
    assert ray.get(h.inc_held.remote(), timeout=T) == 1
    assert ray.get(h.inc_held.remote(), timeout=T) == 2
    assert _alive(pid)
    del h  # the last handle of the holder, and with it the counter's last one
    assert wait_for(lambda: not _alive(holder_pid), T)
    assert wait_for(lambda: not _alive(pid), T)


# --------------------------------------------------------------- async actors

@ray.remote
class Napper:
    def __init__(self):
        self.cur = 0
        self.peak = 0

    async def nap(self, s):
        self.cur += 1
        self.peak = max(self.peak, self.cur)
        await asyncio.sleep(s)
        self.cur -= 1
        return s

    async def read_peak(self):
        return self.peak


def test_async_methods_run_concurrently(ray_start):
    a = Napper.remote()
    ray.get(a.read_peak.remote(), timeout=T)  # started
    t = time.monotonic()
    assert ray.get([a.nap.remote(0.3) for _ in range(10)], timeout=T) == [0.3] * 10
    elapsed = time.monotonic() - t
    assert elapsed < 1.5, elapsed
    assert ray.get(a.read_peak.remote(), timeout=T) == 10


def test_async_actor_max_concurrency_limits_the_overlap(ray_start):
    a = Napper.options(max_concurrency=2).remote()
    ray.get(a.read_peak.remote(), timeout=T)
    t = time.monotonic()
    ray.get([a.nap.remote(0.3) for _ in range(10)], timeout=T)
    elapsed = time.monotonic() - t
    assert 1.4 <= elapsed < 2.9, elapsed
    assert ray.get(a.read_peak.remote(), timeout=T) == 2


def test_cancel_of_a_running_async_call_cancels_its_coroutine(ray_start):
    @ray.remote
    class Sleeper:
        def __init__(self):
            self.state = "idle"

        async def nap(self):
            self.state = "napping"
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.state = "cancelled"
                raise
            self.state = "woke"

        async def read(self):
            return self.state

    s = Sleeper.remote()
    ref = s.nap.remote()
    assert wait_for(lambda: ray.get(s.read.remote(), timeout=T) == "napping", T)
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=T)
    # The coroutine saw the cancellation; the actor goes on.
    assert ray.get(s.read.remote(), timeout=T) == "cancelled"


def test_await_refs_inside_an_async_actor(ray_start):
    @ray.remote
    def double(x):
        return 2 * x

    @ray.remote
    class Relay:
        def __init__(self, other):
            self.other = other

        async def via_task(self, x):
            return await double.remote(x)

        async def via_actor(self):
            return await self.other.inc.remote()

        async def gathered(self, n):
            return await asyncio.gather(*[double.remote(i) for i in range(n)])

    r = Relay.remote(Counter.remote())
    assert ray.get(r.via_task.remote(21), timeout=T) == 42
    assert ray.get(r.via_actor.remote(), timeout=T) == 1
    assert ray.get(r.gathered.remote(5), timeout=T) == [0, 2, 4, 6, 8]


def test_refs_are_awaitable_in_driver_asyncio_code(ray_start):
    @ray.remote
    def double(x):
        return 2 * x

    @ray.remote
    def fail():
        raise ValueError("async boom")

    c = Counter.remote()

    async def main():
        a = await double.remote(21)
        b = await c.inc.remote()
        xs = await asyncio.gather(*[double.remote(i) for i in range(4)])
        try:
            await fail.remote()
            raised = None
        except ValueError as e:
            raised = e
        return a, b, xs, raised

    a, b, xs, raised = asyncio.run(asyncio.wait_for(main(), T))
    assert (a, b, xs) == (42, 1, [0, 2, 4, 6])
    assert isinstance(raised, ray.exceptions.RayTaskError) and "async boom" in str(raised)


def test_ref_future_is_a_concurrent_future(ray_start):
    @ray.remote
    def double(x):
        return 2 * x

    @ray.remote
    def fail():
        raise KeyError("future boom")

    c = Counter.remote()
    fut = double.remote(4).future()
    assert isinstance(fut, concurrent.futures.Future)
    assert fut.result(timeout=T) == 8
    assert c.inc.remote().future().result(timeout=T) == 1
    err = fail.remote().future().exception(timeout=T)
    assert isinstance(err, ray.exceptions.RayTaskError) and isinstance(err, KeyError)
    done, _ = concurrent.futures.wait([double.remote(i).future() for i in range(5)], timeout=T)
    assert sorted(f.result() for f in done) == [0, 2, 4, 6, 8]


# --------------------------------------------------------------- errors

class MyError(Exception):
    pass


def test_an_exception_in_a_method_is_raised_at_get_and_the_actor_lives_on(ray_start):
    @ray.remote
    class Flaky:
        def __init__(self):
            self.calls = 0

        def work(self, fail):
            self.calls += 1
            if fail:
                raise MyError(f"bad call {self.calls}")
            return self.calls

    f = Flaky.remote()
    with pytest.raises(ray.exceptions.RayTaskError) as ei:
        ray.get(f.work.remote(True), timeout=T)
    assert isinstance(ei.value, MyError)
    assert "bad call 1" in str(ei.value)
    with pytest.raises(MyError):
        ray.get(f.work.remote(True), timeout=T)
    assert ray.get(f.work.remote(False), timeout=T) == 3


@pytest.mark.parametrize("kind", ["async", "threaded"])
def test_an_exception_in_an_async_or_threaded_method_leaves_the_actor_alive(ray_start, kind):
    if kind == "async":
        @ray.remote
        class Flaky:
            async def work(self, fail):
                if fail:
                    raise MyError("async bad call")
                return os.getpid()
    else:
        @ray.remote(max_concurrency=3)
        class Flaky:
            def work(self, fail):
                if fail:
                    raise MyError("threaded bad call")
                return os.getpid()

    f = Flaky.remote()
    pid = ray.get(f.work.remote(False), timeout=T)
    with pytest.raises(ray.exceptions.RayTaskError) as ei:
        ray.get(f.work.remote(True), timeout=T)
    assert isinstance(ei.value, MyError) and f"{kind} bad call" in str(ei.value)
    assert ray.get(f.work.remote(False), timeout=T) == pid  # the same process lives on


def test_an_exception_in_init_fails_every_call_with_actor_died(ray_start):
    @ray.remote
    class Broken:
        def __init__(self):
            raise ValueError("init boom 42")

        def ping(self):
            return "pong"

    b = Broken.remote()  # no error here
    for _ in range(2):
        with pytest.raises(ray.exceptions.ActorDiedError) as ei:
            ray.get(b.ping.remote(), timeout=T)
        assert isinstance(ei.value, ray.exceptions.RayActorError)
        assert "init boom 42" in str(ei.value)
        assert ei.value.actor_init_failed
